"""Cleaning of upstream text: whitespace collapsed, HTML entities decoded once, ids normalised."""

from __future__ import annotations

import html
import re

_SPACE = re.compile(r"\s+")
_VERSION = re.compile(r"v\d+$")


def clean_text(value: object) -> str:
    """Collapse hard wraps and runs of whitespace, and decode HTML entities exactly once."""
    if value is None:
        return ""
    return _SPACE.sub(" ", html.unescape(str(value))).strip()


def bare_arxiv_id(value: str) -> str:
    """``2310.06110v2`` → ``2310.06110``; also drops an ``arXiv:`` prefix or an abs/pdf URL."""
    value = value.strip().removeprefix("arXiv:").removeprefix("arxiv:")
    for marker in ("/abs/", "/pdf/"):
        if marker in value:
            value = value.split(marker, 1)[1]
    return _VERSION.sub("", value.removesuffix(".pdf"))
