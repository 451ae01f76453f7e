"""The ``Renderer``: templates compiled once, the reference pipeline, and the Gmail size guard.

It fills the templates (Jinja2), assembles each email's HTML from the stencils where it can and
the reference way where it cannot, and trims a digest whose HTML Gmail would clip.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from pipeline.errors import TemplateError
from pipeline.models import Digest, RenderedEmail
from pipeline.quoted_printable import encode_body
from pipeline.rendering.html import to_html
from pipeline.rendering.samples import sample_digests
from pipeline.rendering.stencils import NotStencilable, PendingCards, Stencils
from pipeline.rendering.templates import HTML_TEMPLATE, TEXT_TEMPLATE, environment, locate
from pipeline.rendering.views import (
    OVERVIEW_FROM,
    TLDR_CHARS,
    empty_note,
    nothing_matched,
    paper_view,
    preheader,
    subject_for,
)
from pipeline.text import one_line
from pipeline.unsubscribe import unsubscribe_links

if TYPE_CHECKING:
    from pipeline.settings import Settings

SHORT_TLDR_CHARS = 140  # the first cut when a digest is too big for Gmail
GMAIL_CLIP_BYTES = 102 * 1024  # Gmail shows "[Message clipped]" above this much HTML
#: What we allow ourselves, counted as the HTML goes on the wire (quoted-printable, CRLF), with
#: headroom under Gmail's limit.
HTML_BUDGET = 100_000
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Filled:
    """The templates filled in for one digest: MJML source and the finished text part."""

    mjml: str
    text: str


class Renderer:
    """Compiles the templates once and renders any number of digests with them."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        unsubscribe_url: str | None = None,
        newsletter: str = "papermail",
        max_html_bytes: int = HTML_BUDGET,
        from_address: str = "papermail@localhost",
        preferences_url: str | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.unsubscribe_url = unsubscribe_url
        self.from_address = from_address
        self.preferences_url = one_line(preferences_url) if preferences_url else None
        self.newsletter = newsletter
        self.max_html_bytes = max_html_bytes
        if not templates_dir.is_dir():
            raise TemplateError(f"templates directory not found: {templates_dir}")
        self._html = self._load(environment(templates_dir, autoescape=True), HTML_TEMPLATE)
        self._text = self._load(environment(templates_dir, autoescape=False), TEXT_TEMPLATE)
        self._check()
        self._stencils: Stencils | None = None
        self._check_stencils()

    @classmethod
    def for_settings(cls, settings: Settings) -> Renderer:
        """The renderer the settings ask for (templates, unsubscribe and preferences links)."""
        return cls(
            settings.templates,
            unsubscribe_url=settings.unsubscribe_url,
            from_address=settings.from_email,
            preferences_url=settings.preferences_url,
        )

    @property
    def fast(self) -> bool:
        """Whether emails are assembled from stencils (else each runs the reference pipeline)."""
        return self._stencils is not None

    def _load(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        try:
            return env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or str(self.templates_dir / name)
            raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template not found: {self.templates_dir / name}") from exc

    def _check(self) -> None:
        """Render a sample digest with papers and an empty one, so every error shows up now."""
        for digest in sample_digests()[:2]:
            to_html(self.fill(digest, omitted=1).mjml)  # both templates filled, MJML compiled

    def _check_stencils(self) -> None:
        """Assemble the samples from stencils too; any difference means the reference way."""
        try:
            stencils = Stencils(self.templates_dir, self.newsletter)
            for digest in sample_digests():
                for omitted in (0, 1, 2):
                    fast = "".join(stencils.html(self._context(digest, TLDR_CHARS, omitted)))
                    slow = self.reference(digest, omitted=omitted)
                    if fast != slow:
                        at = next(
                            (i for i, (a, b) in enumerate(zip(fast, slow, strict=False)) if a != b),
                            min(len(fast), len(slow)),
                        )
                        near = slow[max(0, at - 60) : at + 40]
                        raise NotStencilable(f"stencils and reference differ near {near!r}")
        except (NotStencilable, TemplateError) as exc:
            log.warning(
                "%s: rendering each email the slow way (MJML and CSS inlining per email): %s",
                self.templates_dir,
                exc,
            )
        else:
            self._stencils = stencils

    def fill(self, digest: Digest, *, tldr_chars: int = TLDR_CHARS, omitted: int = 0) -> Filled:
        """Reference step 1: the templates filled in for ``digest`` (``omitted``: papers cut)."""
        return self._fill(self._context(digest, tldr_chars, omitted))

    def _fill(self, context: dict[str, Any]) -> Filled:
        return Filled(mjml=self._fill_html(context), text=self.fill_text(context))

    def _fill_html(self, context: dict[str, Any]) -> str:
        """The MJML template filled in for a context."""
        try:
            return self._html.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(locate(exc)) from exc

    def reference(self, digest: Digest, *, tldr_chars: int = TLDR_CHARS, omitted: int = 0) -> str:
        """The HTML part the plain way: ``fill``, ``compile_mjml``, ``inline_css``, per email.

        What the fast path must equal, byte for byte (the tests render many digests both ways).
        """
        return to_html(self._fill_html(self._context(digest, tldr_chars, omitted)))

    def _context(self, digest: Digest, tldr_chars: int, omitted: int) -> dict[str, Any]:
        subscriber = digest.subscriber
        count = len(digest.papers)
        who = one_line(subscriber.name or subscriber.email)
        summary = (
            f"{count} paper{'s' if count != 1 else ''} picked for {who}"
            if count
            else nothing_matched(digest)
        )
        source = subscriber.source_file
        return {
            "newsletter": self.newsletter,
            "subscriber": subscriber,
            "day": _day(digest.day),
            "summary": summary,
            "preheader": preheader(digest),
            "empty_note": "" if count else empty_note(digest),
            "papers": [
                paper_view(rank, scored, tldr_chars)
                for rank, scored in enumerate(digest.papers, start=1)
            ],
            "omitted": omitted,
            "overview": count >= OVERVIEW_FROM,
            "unsubscribe_url": unsubscribe_links(
                subscriber.email, self.from_address, self.unsubscribe_url
            )[0],
            "preferences_file": one_line(source.name) if source else None,
            "preferences_url": self.preferences_url,
        }

    def render(self, digest: Digest) -> RenderedEmail:
        """Subject, HTML and text for one digest, trimmed if the HTML would be clipped."""
        email = self.assemble(digest)
        if self._fits(email):
            return email
        email = self.assemble(digest, tldr_chars=SHORT_TLDR_CHARS)
        if self._fits(email):
            return self._trimmed(email, f"summaries shortened to {SHORT_TLDR_CHARS} characters")
        total, size = len(digest.papers), wire_bytes(email.html, email.html_parts)
        keep = min(total - 1, total * self.max_html_bytes // size)
        while keep >= 0:
            cut = dataclasses.replace(digest, papers=digest.papers[:keep])
            email = self.assemble(cut, tldr_chars=SHORT_TLDR_CHARS, omitted=total - keep)
            if self._fits(email):
                return self._trimmed(
                    email,
                    f"summaries shortened to {SHORT_TLDR_CHARS} characters "
                    f"and {keep} of {total} papers kept",
                )
            keep -= 1
        raise TemplateError(
            f"{HTML_TEMPLATE}: even an email without papers is over {self.max_html_bytes} bytes"
        )

    def warm(self, digests: Iterable[Digest]) -> None:
        """Make every paper card these digests need, in one MJML document and one CSS-inlining
        pass: a batch of a hundred cards costs about what four single digests' cards cost.

        Optional (``render`` makes what is missing); a run calls it for each batch of digests.
        """
        if self._stencils is None:
            return
        seen: set[tuple[Any, ...]] = set()
        views = []
        for digest in digests:
            for rank, scored in enumerate(digest.papers, start=1):
                card = (scored.paper, rank == 1, bool(scored.reasons))  # what tells cards apart
                if card not in seen:
                    seen.add(card)
                    views.append(paper_view(rank, scored, TLDR_CHARS))
        try:
            pending = self._stencils.compile_cards(views)
            if pending is not None:
                self._stencils.store_cards(pending)
        except (NotStencilable, TemplateError) as exc:  # each email will say it again, or not
            log.debug("cards not made in advance: %s", exc)

    def prepare(self, digest: Digest, *, tldr_chars: int = TLDR_CHARS) -> PendingCards | None:
        """Fast step 1: this digest's cards not made yet, in one MJML document, compiled.

        None when every card is made already (or the templates need the reference way).
        ``make bench`` times this (MJML), ``store`` (CSS inlining) and ``assemble`` apart.
        """
        if self._stencils is None:
            return None
        views = [paper_view(rank, s, tldr_chars) for rank, s in enumerate(digest.papers, start=1)]
        return self._stencils.compile_cards(views)

    def store(self, pending: PendingCards | None) -> None:
        """Fast step 2: inline the CSS of what ``prepare`` compiled, cut it, keep the cards."""
        if self._stencils is not None and pending is not None:
            self._stencils.store_cards(pending)

    def assemble(
        self, digest: Digest, *, tldr_chars: int = TLDR_CHARS, omitted: int = 0
    ) -> RenderedEmail:
        """Fast step 3: the email from stencils (made now where ``prepare`` did not), untrimmed."""
        context = self._context(digest, tldr_chars, omitted)
        parts = self._from_stencils(context)
        return RenderedEmail(
            digest=digest,
            subject=subject_for(digest, self.newsletter),
            html="".join(parts) if parts else to_html(self._fill_html(context)),
            text=self.fill_text(context),
            html_parts=tuple(parts),  # none the reference way: nothing in it is shared
        )

    def _from_stencils(self, context: dict[str, Any]) -> list[str]:
        """The HTML's pieces from stencils; empty when the email needs the reference way."""
        if self._stencils is not None:
            try:
                return self._stencils.html(context)
            except (NotStencilable, TemplateError) as exc:  # e.g. a character lxml refuses
                log.debug("rendering one email the reference way: %s", exc)
        return []

    def fill_text(self, context: dict[str, Any]) -> str:
        """The text part from a filled-in context."""
        try:
            return self._text.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(locate(exc)) from exc

    def _fits(self, email: RenderedEmail) -> bool:
        """Whether the HTML is within the budget on the wire; the exact count (a quoted-printable
        encoding) only when a cheap upper bound of it is over."""
        html, parts = email.html, email.html_parts
        return (
            wire_bytes_bound(html, len(parts)) <= self.max_html_bytes
            or wire_bytes(html, parts) <= self.max_html_bytes
        )

    def _trimmed(self, email: RenderedEmail, what: str) -> RenderedEmail:
        size_kb = wire_bytes(email.html, email.html_parts) / 1000
        note = (
            f"digest trimmed to stay under Gmail's {GMAIL_CLIP_BYTES // 1024} KB clipping limit: "
            f"{what} ({size_kb:.0f} KB of HTML)"
        )
        return dataclasses.replace(email, trimmed=note)


def wire_bytes(html: str, parts: Sequence[str] = ()) -> int:
    """The HTML part's body as the delivery stage sends it: UTF-8, quoted-printable, CRLF line
    ends, encoded from ``parts`` (the stencils' pieces, ``RenderedEmail.html_parts``) when given,
    with a soft line break where encoded pieces meet. What Gmail's clipping counts."""
    return len(encode_body(html, parts))


def wire_bytes_bound(html: str, parts: int = 0) -> int:
    """At least ``wire_bytes(html, parts)`` for any ``parts`` pieces, from counts alone:
    quoted-printable writes each non-ASCII byte and each ``=`` as three bytes, may escape
    whitespace before a line end, adds a soft break (``=`` CRLF) at the latest every 73
    characters and a CR at each line end; each piece may add a soft break where it meets the
    next, restart a line, and escape a space at its end."""
    utf8 = len(html.encode("utf-8"))
    non_ascii_bytes = 2 * (utf8 - len(html))  # a 2-byte character is the worst case
    escaped = utf8 + 2 * (non_ascii_bytes + html.count("="))
    lines = html.count("\n") + html.count("\r") + 1
    return escaped + 2 * lines + 3 * (escaped // 70 + lines) + lines + 8 * parts


@functools.lru_cache(maxsize=64)
def _day(day: date) -> str:
    return day.strftime("%A, %-d %B %Y")
