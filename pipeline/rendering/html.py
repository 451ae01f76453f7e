"""Reference steps 2 and 3: MJML → HTML (mjml-python) and CSS inlining (premailer).

The only module that imports mjml and premailer: the costly steps, which the stencils run once per
part and the reference pipeline once per email.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import mjml
import premailer

from pipeline.errors import TemplateError
from pipeline.rendering.templates import HTML_TEMPLATE

_MJML_RESET = re.compile(r"(<style type=\"text/css\")>(\s*#outlook a)")
_POSITION = re.compile(r"position (\d+):\d+")


def compile_mjml(mjml_source: str) -> str:
    """Step 2: MJML → responsive HTML. No remote fonts, no comments."""
    try:
        html: str = mjml.mjml2html(mjml_source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise TemplateError(
            f"{HTML_TEMPLATE}: MJML did not compile: {_near(exc, mjml_source)}"
        ) from exc
    return html


def _near(exc: ValueError, source: str) -> str:
    """mjml-python's message, plus the line of filled-in MJML its position points at."""
    found = _POSITION.search(str(exc))
    if not found:
        return str(exc)
    start = int(found.group(1))
    line = source.count("\n", 0, start) + 1
    snippet = source[start : start + 60].split("\n", 1)[0]
    return f"{exc} (line {line} of the filled-in MJML, near {snippet!r})"


def inline_css(html: str) -> str:
    """Step 3: inline the CSS; ``@media`` rules and their ``!important`` stay in ``<style>``.

    MJML's own reset block (``#outlook a``, ``table, td`` …) stays in the head un-inlined: copying
    it onto every table cell would add kilobytes per paper and change nothing a client shows.
    ``<wbr>`` (a break opportunity in a URL) is written as the void element it is: lxml, which
    does not know it, would give it an end tag.
    """
    try:
        inliner = _Inliner(
            _MJML_RESET.sub(r'\1 data-premailer="ignore">\2', html, count=1), **_OPTIONS
        )
        inlined: str = inliner.transform(pretty_print=False)
    except (premailer.premailer.PremailerError, ValueError) as exc:
        raise TemplateError(f"{HTML_TEMPLATE}: CSS could not be inlined: {exc}") from exc
    return "<!doctype html>\n" + inlined.replace("<wbr></wbr>", "<wbr>")


_OPTIONS: dict[str, Any] = {
    "allow_network": False,
    "strip_important": False,
    "keep_style_tags": True,
    "disable_validation": True,
    "cssutils_logging_level": logging.CRITICAL,
}


class _Inliner(premailer.Premailer):  # type: ignore[misc]
    """premailer, reading each ``<style>`` block's rules once per process.

    premailer has cssutils write every property of every rule out again for each document, most
    of what inlining one costs; every document of a run has the same style blocks (the template's
    head), and the rules (specificity, selector, declarations) are plain tuples, read only.
    A test checks the output is premailer's own.
    """

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        rules, leftover = _style_rules(css_body, ruleset_index)
        return list(rules), list(leftover)


@functools.lru_cache(maxsize=64)
def _style_rules(css_body: str, ruleset_index: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    reader = premailer.Premailer("", **_OPTIONS)
    rules, leftover = reader._parse_style_rules(css_body, ruleset_index)
    return tuple(rules), tuple(leftover)


def to_html(mjml_source: str) -> str:
    """Steps 2 and 3: compile the MJML and inline its CSS."""
    return inline_css(compile_mjml(mjml_source))
