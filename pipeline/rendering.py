"""Rendering: a digest → subject, HTML part and text part.

Jinja2 (autoescaped) fills ``templates/digest.mjml.j2``; mjml-python compiles the MJML to HTML;
premailer inlines the CSS while keeping ``@media`` rules in a ``<style>`` block and never
touching the network. ``templates/digest.txt.j2`` gives the plain-text part. The only module
that imports them. Templates are compiled once per ``Renderer``; each email is only filled in.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import mjml
from premailer import Premailer

from pipeline.errors import TemplateError
from pipeline.models import Digest, Paper, RenderedEmail, ScoredPaper

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
MAX_AUTHORS = 3
TLDR_CHARS = 280
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass(frozen=True, slots=True)
class PaperView:
    """What the templates show of one picked paper."""

    paper: Paper
    rank: int
    authors: str
    tldr: str
    reasons: tuple[str, ...]


class Renderer:
    """Compiles the templates once and renders any number of digests with them."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        unsubscribe_url: str | None = None,
        newsletter: str = "papermail",
    ) -> None:
        self.templates_dir = templates_dir
        self.unsubscribe_url = unsubscribe_url
        self.newsletter = newsletter
        self._html_env = self._environment(autoescape=True)
        self._text_env = self._environment(autoescape=False)
        self._html = self._load(self._html_env, HTML_TEMPLATE)
        self._text = self._load(self._text_env, TEXT_TEMPLATE)

    def _environment(self, *, autoescape: bool) -> jinja2.Environment:
        if not self.templates_dir.is_dir():
            raise TemplateError(f"templates directory not found: {self.templates_dir}")
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir),
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["wrap"] = _wrap
        return env

    def _load(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        try:
            return env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template not found: {self.templates_dir / name}") from exc

    def render(self, digest: Digest) -> RenderedEmail:
        """Subject, HTML and text for one digest."""
        context = {
            "newsletter": self.newsletter,
            "digest": digest,
            "subscriber": digest.subscriber,
            "day": digest.day.strftime("%A, %-d %B %Y"),
            "papers": [_view(i, s) for i, s in enumerate(digest.papers, start=1)],
            "unsubscribe_url": self._unsubscribe(digest.subscriber.email),
            "preferences_file": digest.subscriber.source_file.name
            if digest.subscriber.source_file
            else None,
        }
        try:
            mjml_source = self._html.render(context)
            text = self._text.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(_locate(exc)) from exc
        return RenderedEmail(
            digest=digest,
            subject=subject_for(digest, self.newsletter),
            html=to_html(mjml_source),
            text=text,
        )

    def _unsubscribe(self, email: str) -> str | None:
        return self.unsubscribe_url.replace("{email}", email) if self.unsubscribe_url else None


def subject_for(digest: Digest, newsletter: str = "papermail") -> str:
    """A one-line subject: the day and what is inside (upstream text is single-lined)."""
    day = digest.day.strftime("%-d %b %Y")
    if not digest.papers:
        return f"{newsletter} · {day}: nothing matched today"
    top = " ".join(digest.papers[0].paper.title.split())
    if len(top) > 70:
        top = top[:69].rstrip() + "…"
    count = len(digest.papers)
    noun = "paper" if count == 1 else "papers"
    return f"{newsletter} · {day}: {count} {noun} — {top}"


def to_html(mjml_source: str) -> str:
    """Compile MJML and inline its CSS; ``@media`` rules stay in ``<style>``."""
    try:
        compiled = mjml.mjml2html(mjml_source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise TemplateError(f"{HTML_TEMPLATE}: MJML did not compile: {exc}") from exc
    inliner = Premailer(
        compiled,
        allow_network=False,
        strip_important=False,
        keep_style_tags=True,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    )
    inlined: str = inliner.transform(pretty_print=False)
    return "<!doctype html>\n" + inlined


def _view(rank: int, scored: ScoredPaper) -> PaperView:
    paper = scored.paper
    authors = ", ".join(paper.authors[:MAX_AUTHORS])
    if len(paper.authors) > MAX_AUTHORS:
        authors += " et al."
    return PaperView(
        paper=paper,
        rank=rank,
        authors=authors,
        tldr=tldr(paper),
        reasons=tuple(str(r) for r in scored.reasons),
    )


def tldr(paper: Paper, limit: int = TLDR_CHARS) -> str:
    """HF's AI summary when present, else the abstract's first sentences, clipped at a word."""
    if paper.ai_summary:
        return paper.ai_summary
    sentences = _SENTENCE_END.split(paper.abstract)
    out = ""
    for sentence in sentences:
        if out and len(out) + 1 + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
    if len(out) > limit:
        out = out[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return out


def _wrap(text: str, width: int = 78, indent: str = "") -> str:
    """Wrap text for the plain-text part."""
    return textwrap.fill(
        text, width=width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )


def _locate(exc: jinja2.TemplateError) -> str:
    lineno = getattr(exc, "lineno", None)
    name = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
    return f"{name}:{lineno}: {exc}" if lineno else f"{name}: {exc}"


__all__: Sequence[str] = ("Renderer", "subject_for", "tldr", "to_html")
