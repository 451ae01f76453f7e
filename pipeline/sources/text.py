"""Cleaning of upstream text and values: whitespace, entities, LaTeX, ids and links.

Upstream text is untrusted: it is decoded once (HTML entities), stripped of control characters,
collapsed to single spaces, and only ``http(s)`` links survive (a ``javascript:`` project page
never reaches an email). Only text (or a number) counts as text: a list or a mapping where a
title or a name should be is "missing", never its Python rendering.

Every field has a length cap (``SHORT_TEXT`` for names, ids and links, ``TITLE_TEXT``,
``LONG_TEXT`` for abstracts); a longer value is cut there and ends with "…" (no real paper comes
near the caps, so the paper is kept rather than skipped), and the cleaning reads a bounded
prefix, never a whole 100 MB string.
"""

from __future__ import annotations

import html
import re

from pipeline.sources.latex import latex_to_unicode
from pipeline.text import one_line


class MalformedItem(ValueError):
    """An upstream record that cannot become a paper (no id, no title …); the message says why."""


SHORT_TEXT = 1_000  # an author, keyword, id, link or category
TITLE_TEXT = 1_000
LONG_TEXT = 20_000  # an abstract or summary (arXiv's own limit is 1,920 characters)
_PREFIX = 8  # the cleaning reads at most this many times the cap (entities and spaces shrink)

_SPACE = re.compile(r"\s+")
_VERSION = re.compile(r"v\d+$")
_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


def clean_text(value: object, limit: int = SHORT_TEXT) -> str:
    """Decode HTML entities exactly once, drop control characters, collapse whitespace, and cut
    to ``limit`` characters. A number reads as its digits; anything else that is not text
    (None, a list, a mapping) is ""."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value) if abs(value) < 10**100 else ""
    if not isinstance(value, str):
        return ""
    return truncate(one_line(html.unescape(value[: limit * _PREFIX])), limit)


def clean_title(value: object, limit: int = TITLE_TEXT) -> str:
    """A title, abstract or summary for people: ``clean_text`` plus LaTeX made readable."""
    return _SPACE.sub(" ", latex_to_unicode(clean_text(value, limit))).strip()


def truncate(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else its start and "…" in that many."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bare_arxiv_id(value: str) -> str:
    """``2310.06110v2`` → ``2310.06110``; also drops an ``arXiv:`` prefix or an abs/pdf URL."""
    value = value.strip().removeprefix("arXiv:").removeprefix("arxiv:")
    for marker in ("/abs/", "/pdf/"):
        if marker in value:
            value = value.split(marker, 1)[1]
    return _VERSION.sub("", value.removesuffix(".pdf"))


def is_arxiv_id(value: str) -> bool:
    """Whether ``value`` is a bare arXiv id (``2310.06110`` or the old ``hep-th/9901001``)."""
    return _ARXIV_ID.fullmatch(value) is not None


def http_url(value: object) -> str | None:
    """``value`` when it is one plain http(s) URL, else None."""
    text = clean_text(value)
    return text if _URL.fullmatch(text) else None


def github_url(value: object) -> str | None:
    """A GitHub link from a full URL or from ``owner/repo`` (both occur upstream)."""
    text = clean_text(value).removesuffix("/")
    if text.lower().startswith("github.com/"):
        text = "https://" + text
    if _GITHUB_REPO.fullmatch(text) and not text.startswith("."):
        return f"https://github.com/{text}"
    return http_url(text)
