"""Rendering: a digest → subject, HTML part and text part.

The reference pipeline, three steps each its own function:

1. ``Renderer.fill``: Jinja2 fills ``templates/digest.mjml.j2`` (autoescaped, so upstream text stays
   text) and ``templates/digest.txt.j2``. The templates are compiled once, when the ``Renderer``
   is built, and checked then by rendering sample digests, so a broken template stops the run
   before anything is sent.
2. ``compile_mjml``: mjml-python turns the MJML into table-based, responsive HTML.
3. ``inline_css``: premailer copies the ``<mj-style>`` rules into ``style`` attributes (for clients
   that drop ``<style>``), keeps the ``@media`` rules and their ``!important`` in a ``<style>``
   block, and never touches the network.

Steps 2 and 3 cost ten times what the rest of a run spends per email, and almost everything they
produce is the same for every subscriber. So ``Renderer.render`` runs them once per *part* instead
(see ``_Stencils``): the layout once per run (per shape: papers or none, trimmed or not …), each
paper's card (``{% block card %}``) once per run, a reason (``{% block reason %}``) once. Each
part is compiled and inlined with markers where the per-email values go, and cut there; an email
is then those pieces joined with its values, escaped exactly as the reference pipeline would
have escaped them. ``Renderer.reference`` is the reference pipeline itself; the tests and a
check at construction assert both give the same bytes, and templates that break the rules of
the fast path (README, "Templates and preview") are rendered the reference way, with a warning.

``Renderer.render`` also guards the size: Gmail clips HTML above about 102 KB, so a digest that
would not fit is trimmed (shorter summaries, then fewer papers) and the ``RenderedEmail`` says what
was cut. The only module that imports jinja2, mjml, premailer and lxml.
"""

from __future__ import annotations

import dataclasses
import functools
import html as htmllib
import logging
import re
import secrets
import textwrap
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import jinja2
import mjml
import premailer
from lxml import etree

from pipeline.errors import TemplateError
from pipeline.models import (
    Digest,
    Paper,
    Reason,
    ReasonKind,
    RenderedEmail,
    ScoredPaper,
    Subscriber,
    Topic,
)

HTML_TEMPLATE = "digest.mjml.j2"  # with {% block card scoped %} and {% block reason scoped %}
_STENCIL_TEMPLATE = "pm-stencil.mjml.j2"  # extends HTML_TEMPLATE, marking where the parts go
TEXT_TEMPLATE = "digest.txt.j2"
MAX_AUTHORS = 3
MAX_TITLE_CHARS = 300  # upstream is untrusted: a runaway title must not fill the email
TLDR_CHARS = 280
SHORT_TLDR_CHARS = 140  # the first cut when a digest is too big for Gmail
GMAIL_CLIP_BYTES = 102 * 1024  # Gmail shows "[Message clipped]" above this much HTML
HTML_BUDGET = 100_000  # what we allow ourselves, with headroom under Gmail's limit
log = logging.getLogger(__name__)
_MJML_RESET = re.compile(r"(<style type=\"text/css\")>(\s*#outlook a)")
_POSITION = re.compile(r"position (\d+):\d+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass(frozen=True, slots=True)
class ReasonView:
    """One reason as the templates show it: a short label and what matched."""

    label: str  # a topic's name, or "Followed author"
    detail: str  # the matched terms, or the author's name
    text: str  # the whole reason in one line, for the text part


@dataclass(frozen=True, slots=True)
class PaperView:
    """What the templates show of one picked paper (display text already made readable)."""

    paper: Paper
    rank: int
    title: str
    authors: str
    stats: str  # "▲ 31 upvotes · 5 comments", or "" when neither is known
    tldr: str
    reasons: tuple[ReasonView, ...]
    first: bool = False  # the top card (it has no rule above it)


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
    ) -> None:
        self.templates_dir = templates_dir
        self.unsubscribe_url = unsubscribe_url
        self.newsletter = newsletter
        self.max_html_bytes = max_html_bytes
        if not templates_dir.is_dir():
            raise TemplateError(f"templates directory not found: {templates_dir}")
        self._html = self._load(_environment(templates_dir, autoescape=True), HTML_TEMPLATE)
        self._text = self._load(_environment(templates_dir, autoescape=False), TEXT_TEMPLATE)
        self._check()
        self._stencils: _Stencils | None = None
        self._check_stencils()

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
        for digest in _sample_digests()[:2]:
            self.reference(digest, omitted=1)

    def _check_stencils(self) -> None:
        """Assemble the samples from stencils too; any difference means the reference way."""
        try:
            stencils = _Stencils(self.templates_dir, self.newsletter)
            for digest in _sample_digests():
                for omitted in (0, 1, 2):
                    fast = stencils.html(self._context(digest, TLDR_CHARS, omitted))
                    slow = self.reference(digest, omitted=omitted)
                    if fast != slow:
                        at = next(
                            (i for i, (a, b) in enumerate(zip(fast, slow, strict=False)) if a != b),
                            min(len(fast), len(slow)),
                        )
                        near = slow[max(0, at - 60) : at + 40]
                        raise _NotStencilable(f"stencils and reference differ near {near!r}")
        except (_NotStencilable, TemplateError) as exc:
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
        try:
            return Filled(mjml=self._html.render(context), text=self._text.render(context))
        except jinja2.TemplateError as exc:
            raise TemplateError(_locate(exc)) from exc

    def reference(self, digest: Digest, *, tldr_chars: int = TLDR_CHARS, omitted: int = 0) -> str:
        """The HTML part the plain way: ``fill``, ``compile_mjml``, ``inline_css``, per email.

        What the fast path must equal, byte for byte (the tests render many digests both ways).
        """
        filled = self.fill(digest, tldr_chars=tldr_chars, omitted=omitted)
        return inline_css(compile_mjml(filled.mjml))

    def _context(self, digest: Digest, tldr_chars: int, omitted: int) -> dict[str, Any]:
        subscriber = digest.subscriber
        count = len(digest.papers)
        who = _one_line(subscriber.name or subscriber.email)
        summary = (
            f"{count} paper{'s' if count != 1 else ''} picked for {who}"
            if count
            else "Nothing matched your topics today"
        )
        source = subscriber.source_file
        return {
            "newsletter": self.newsletter,
            "subscriber": subscriber,
            "day": _day(digest.day),
            "summary": summary,
            "preheader": preheader(digest),
            "papers": [
                _view(rank, scored, tldr_chars)
                for rank, scored in enumerate(digest.papers, start=1)
            ],
            "omitted": omitted,
            "unsubscribe_url": self._unsubscribe(subscriber.email),
            "preferences_file": _one_line(source.name) if source else None,
        }

    def render(self, digest: Digest) -> RenderedEmail:
        """Subject, HTML and text for one digest, trimmed if the HTML would be clipped."""
        email = self._render(digest, TLDR_CHARS)
        if self._fits(email):
            return email
        email = self._render(digest, SHORT_TLDR_CHARS)
        if self._fits(email):
            return self._trimmed(email, f"summaries shortened to {SHORT_TLDR_CHARS} characters")
        total, size = len(digest.papers), len(email.html.encode())
        keep = min(total - 1, total * self.max_html_bytes // size)
        while keep >= 0:
            cut = dataclasses.replace(digest, papers=digest.papers[:keep])
            email = self._render(cut, SHORT_TLDR_CHARS, omitted=total - keep)
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

    def _render(self, digest: Digest, tldr_chars: int, omitted: int = 0) -> RenderedEmail:
        return self.assemble(digest, tldr_chars=tldr_chars, omitted=omitted)

    def prepare(self, digest: Digest, *, tldr_chars: int = TLDR_CHARS) -> PendingCards | None:
        """Fast step 1: this digest's cards not made yet, in one MJML document, compiled.

        None when every card is made already (or the templates need the reference way).
        ``make bench`` times this (MJML), ``store`` (CSS inlining) and ``assemble`` apart.
        """
        if self._stencils is None:
            return None
        views = [_view(rank, s, tldr_chars) for rank, s in enumerate(digest.papers, start=1)]
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
        return RenderedEmail(
            digest=digest,
            subject=subject_for(digest, self.newsletter),
            html=self._assemble(context),
            text=self.fill_text(context),
        )

    def _assemble(self, context: dict[str, Any]) -> str:
        if self._stencils is not None:
            try:
                return self._stencils.html(context)
            except (_NotStencilable, TemplateError) as exc:  # e.g. a character lxml refuses
                log.debug("rendering one email the reference way: %s", exc)
        return inline_css(compile_mjml(self._fill(context).mjml))

    def fill_text(self, context: dict[str, Any]) -> str:
        """The text part from a filled-in context."""
        try:
            return self._text.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(_locate(exc)) from exc

    def _fits(self, email: RenderedEmail) -> bool:
        return len(email.html.encode()) <= self.max_html_bytes

    def _trimmed(self, email: RenderedEmail, what: str) -> RenderedEmail:
        size_kb = len(email.html.encode()) / 1000
        note = (
            f"digest trimmed to stay under Gmail's {GMAIL_CLIP_BYTES // 1024} KB clipping limit: "
            f"{what} ({size_kb:.0f} KB of HTML)"
        )
        return dataclasses.replace(email, trimmed=note)

    def _unsubscribe(self, email: str) -> str | None:
        return self.unsubscribe_url.replace("{email}", email) if self.unsubscribe_url else None


# --- stencils: the fast path ---------------------------------------------------------------------


class _NotStencilable(Exception):
    """The templates do something stencils cannot reproduce exactly; render the reference way."""


Fill = Callable[[Sequence[str], dict[str, str]], str]


@dataclass(frozen=True, slots=True)
class _Stencil:
    """Finished HTML cut at its slots: ``pieces[0] slots[0] pieces[1] … slots[n-1] pieces[n]``."""

    pieces: tuple[str, ...]
    slots: tuple[Fill, ...]

    def fill(self, values: Sequence[str], regions: dict[str, str]) -> str:
        """The pieces joined with each slot's text for these values and regions."""
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(slot(values, regions))
            out.append(piece)
        return "".join(out)


@dataclass(frozen=True, slots=True)
class PendingCards:
    """Cards compiled by ``Renderer.prepare`` and not yet inlined: their keys and the HTML."""

    keys: tuple[tuple[Any, ...], ...]
    compiled: str


class _Slot:
    """A per-email value while a stencil is built: prints as its marker, allows nothing else.

    Its truth value is the real value's (the stencil is kept per truth value), so ``{% if %}``
    works; anything that would look inside the value (filters, comparisons, attributes, length)
    fails, because the stencil could not know the answer.
    """

    __slots__ = ("_marker", "_name", "_truthy")

    def __init__(self, name: str, marker: str, truthy: bool = True) -> None:
        self._name, self._marker, self._truthy = name, marker, truthy

    def __html__(self) -> str:
        return self._marker

    def __str__(self) -> str:
        return self._marker

    def __bool__(self) -> bool:
        return self._truthy

    def _refuse(self, what: str) -> NoReturn:
        raise jinja2.TemplateRuntimeError(
            f"{self._name} can only be printed or tested with `if` in the HTML templates ({what})"
        )

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse(f".{name}")

    def __eq__(self, other: object) -> bool:
        self._refuse("==")

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        raise jinja2.TemplateRuntimeError(f"{self._name} can only be printed (not its length)")

    def __iter__(self) -> Iterator[Any]:
        self._refuse("loop")


class _Fields:
    """An object whose listed attributes are slots (``subscriber`` in the layout)."""

    def __init__(self, name: str, fields: dict[str, _Slot]) -> None:
        self._name, self._fields = name, fields

    def __getattr__(self, attr: str) -> _Slot:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr not in self._fields:
            raise jinja2.TemplateRuntimeError(
                f"the HTML layout can show {', '.join(f'{self._name}.{f}' for f in self._fields)}"
                f", not {self._name}.{attr}"
            )
        return self._fields[attr]


class _Papers:
    """``papers`` while the layout stencil is built: one pass of the loop, or none."""

    def __init__(self, truthy: bool) -> None:
        self._truthy = truthy

    def __bool__(self) -> bool:
        return self._truthy

    def __iter__(self) -> Iterator[_Fields]:
        return iter([_Fields("item (outside {% block card scoped %})", {})] if self._truthy else [])

    def __len__(self) -> int:
        raise jinja2.TemplateRuntimeError(
            "the HTML layout can loop over papers (each a {% block card %}), not count them"
        )


LAYOUT_VALUES = ("summary", "preheader", "email", "name", "preferences_file", "unsubscribe_url")
REASON_VALUES = ("label", "detail", "text")
_ATTRIBUTE = re.compile(r"""([^\s"'=<>/]+)=("[^"]*"|'[^']*')""")
_RAW_ELEMENTS = ("style", "script")


class _Stencils:
    """The HTML template compiled and inlined once per part, cut where per-email values go.

    * the layout (``digest.mjml.j2`` without its cards), per day, ``omitted`` and the truth of
      each per-email value, with text markers ``pm<nonce>v<k>e`` for ``summary``,
      ``preheader``, ``subscriber.email`` … (it holds no upstream text);
    * each paper's card (``{% block card %}``) per summary length, top or not, with or without
      reasons: it holds the paper's (escaped) text, so its slots, ``item.rank`` and the reasons,
      are elements ``<pm-…-<nonce>>``, which no escaped text can contain;
    * a reason (``{% block reason %}``), with text markers for ``label``, ``detail`` and ``text``.

    The markers' nonce is random per renderer. Cards are compiled in batches, all of a digest's
    new papers in one MJML document. Values are escaped as the reference pipeline's parsers and
    serializer would: text as lxml writes it, attributes by lxml itself.
    """

    def __init__(self, templates_dir: Path, newsletter: str) -> None:
        self.newsletter = newsletter
        nonce = secrets.token_hex(8)
        self.nonce = nonce
        mark = {k: f"<pm-{k}-{nonce}></pm-{k}-{nonce}>" for k in ("cards", "card", "end", "rank")}
        mark |= {k: f"<pm-{k}-{nonce}></pm-{k}-{nonce}>" for k in ("rs", "re")}
        self.mark = mark
        self._value_pattern = re.compile(rf"{mark['cards']}|pm{nonce}v(\d+)e")
        self._card_pattern = re.compile(rf"{mark['card']}(.*?){mark['end']}", flags=re.DOTALL)
        self._in_card_pattern = re.compile(
            rf"{mark['rank']}|{mark['rs']}(.*?){mark['re']}", flags=re.DOTALL
        )
        stencil = (
            f'{{% extends "{HTML_TEMPLATE}" %}}\n'
            '{% block card %}{% if _pm_build == "layout" %}<mj-raw>' + mark["cards"] + "</mj-raw>\n"
            "{% else %}<mj-raw>" + mark["card"] + "</mj-raw>\n{{ super() }}\n"
            "<mj-raw>" + mark["end"] + "</mj-raw>\n{% endif %}{% endblock %}\n"
            "{% block reason %}"
            + mark["rs"]
            + "{{ super() | trim }}"
            + mark["re"]
            + "\n{% endblock %}\n"
        )
        loader = jinja2.ChoiceLoader(
            [
                jinja2.DictLoader({_STENCIL_TEMPLATE: stencil}),
                jinja2.FileSystemLoader(templates_dir),
            ]
        )
        env = _environment(templates_dir, autoescape=True, loader=loader)
        self._template = env.get_template(_STENCIL_TEMPLATE)
        self._layouts: dict[tuple[Any, ...], _Stencil] = {}
        self._cards: dict[tuple[Any, ...], _Stencil] = {}
        self._reasons: dict[tuple[bool, ...], _Stencil] = {}

    # per email

    def html(self, context: dict[str, Any]) -> str:
        """The HTML part for a filled-in context, from stencils (made now where missing)."""
        views: list[PaperView] = context["papers"]
        pending = self.compile_cards(views)
        if pending is not None:
            self.store_cards(pending)
        cards = "".join(self._card_html(view) for view in views)
        values = _layout_values(context)
        key = (context["day"], context["omitted"], bool(views), *map(bool, values))
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = self._build_layout(key)
        return layout.fill([str(v) for v in values], {"cards": cards})

    def _card_html(self, view: PaperView) -> str:
        card = self._cards[_card_key(view)]
        reasons = "".join(
            self._reason(tuple(map(bool, values))).fill(values, {})
            for values in ((r.label, r.detail, r.text) for r in view.reasons)
        )
        return card.fill((), {"rank": str(view.rank), "reasons": reasons})

    # building

    def compile_cards(self, views: Sequence[PaperView]) -> PendingCards | None:
        """The cards not made yet, in one MJML document, compiled; None when there are none."""
        missing: dict[tuple[Any, ...], PaperView] = {}
        for view in views:
            key = _card_key(view)
            if key not in self._cards:
                missing.setdefault(key, view)
        if not missing:
            return None
        # the top card last, so a template that used loop.first (not item.first) shows up
        keys = sorted(missing, key=lambda k: bool(k[2]))
        reason = self._slot_reason((True, True, True))
        build = [
            dataclasses.replace(
                missing[k],
                rank=_Slot("item.rank", self.mark["rank"]),  # type: ignore[arg-type]
                reasons=(reason,) if missing[k].reasons else (),
            )
            for k in keys
        ]
        return PendingCards(tuple(keys), compile_mjml(self._render("cards", build)))

    def store_cards(self, pending: PendingCards) -> None:
        """Inline the CSS of compiled cards, cut them at their slots and keep them."""
        chunks = self._card_pattern.findall(inline_css(pending.compiled))
        if len(chunks) != len(pending.keys):
            raise _NotStencilable(f"found {len(chunks)} of {len(pending.keys)} cards")
        for key, chunk in zip(pending.keys, chunks, strict=True):
            self._cards[key] = self._cut_card(chunk)

    def _cut_card(self, chunk: str) -> _Stencil:
        pieces: list[str] = []
        slots: list[Fill] = []
        at = 0
        for found in self._in_card_pattern.finditer(chunk):
            pieces.append(chunk[at : found.start()])
            at = found.end()
            if found.group(1) is None:
                slots.append(_region("rank"))
                continue
            slots.append(_region("reasons"))
            if (True, True, True) not in self._reasons:
                self._reasons[(True, True, True)] = self._cut_values(found.group(1))
        pieces.append(chunk[at:])
        self._refuse_stray_markers(pieces)
        return _Stencil(tuple(pieces), tuple(slots))

    def _reason(self, key: tuple[bool, ...]) -> _Stencil:
        stencil = self._reasons.get(key)
        if stencil is None:
            sample = _view(1, _sample_paper(), TLDR_CHARS)
            html = inline_css(
                compile_mjml(
                    self._render(
                        "reason", [dataclasses.replace(sample, reasons=(self._slot_reason(key),))]
                    )
                )
            )
            found = re.search(rf"{self.mark['rs']}(.*?){self.mark['re']}", html, flags=re.DOTALL)
            if found is None:
                raise _NotStencilable(f"{HTML_TEMPLATE} has no {{% block reason scoped %}}")
            stencil = self._reasons[key] = self._cut_values(found.group(1))
        return stencil

    def _build_layout(self, key: tuple[Any, ...]) -> _Stencil:
        _day_text, omitted, has_papers, *truths = key
        html = inline_css(
            compile_mjml(self._render("layout", _Papers(has_papers), omitted, truths, day=key[0]))
        )
        return self._cut_values(html)

    def _render(
        self,
        build: str,
        papers: Any,
        omitted: int = 0,
        truths: Sequence[bool] = (True,) * len(LAYOUT_VALUES),
        day: str = "Thursday, 1 January 2026",
    ) -> str:
        slot = {
            name: _Slot(name, self._token(k), truthy)
            for k, (name, truthy) in enumerate(zip(LAYOUT_VALUES, truths, strict=True))
        }
        context = {
            "_pm_build": build,
            "newsletter": self.newsletter,
            "day": day,
            "summary": slot["summary"],
            "preheader": slot["preheader"],
            "subscriber": _Fields("subscriber", {"email": slot["email"], "name": slot["name"]}),
            "preferences_file": slot["preferences_file"],
            "unsubscribe_url": slot["unsubscribe_url"],
            "omitted": omitted,
            "papers": papers,
        }
        try:
            return self._template.render(context)
        except jinja2.TemplateError as exc:
            raise _NotStencilable(_locate(exc)) from exc
        except (TypeError, ValueError) as exc:  # arithmetic or the like on a per-email value
            raise _NotStencilable(f"{HTML_TEMPLATE}: {exc}") from exc

    def _slot_reason(self, truths: tuple[bool, ...]) -> ReasonView:
        label, detail, text = (
            _Slot(f"reason.{name}", self._token(k), truthy)
            for k, (name, truthy) in enumerate(zip(REASON_VALUES, truths, strict=True))
        )
        return ReasonView(label, detail, text)  # type: ignore[arg-type]

    def _token(self, k: int) -> str:
        return f"pm{self.nonce}v{k}e"

    def _cut_values(self, html: str) -> _Stencil:
        """Cut HTML holding no upstream text at its text markers (and the cards marker)."""
        pieces: list[str] = []
        slots: list[Fill] = []
        at = 0
        for found in self._value_pattern.finditer(html):
            if found.start() < at:
                continue  # a second marker in an attribute already taken whole
            start, end = found.span()
            _refuse_raw_context(html, start)
            if found.group(1) is None:
                slot: Fill = _region("cards")
            else:
                tag_start, tag_end = html.rfind("<", 0, start), html.rfind(">", 0, start)
                if tag_start > tag_end:
                    start, end, slot = self._attribute(html, tag_start, start)
                else:
                    slot = _text_value(int(found.group(1)))
            pieces.append(html[at:start])
            slots.append(slot)
            at = end
        pieces.append(html[at:])
        self._refuse_stray_markers(pieces)
        return _Stencil(tuple(pieces), tuple(slots))

    def _attribute(self, html: str, tag_start: int, at: int) -> tuple[int, int, Fill]:
        """The whole attribute holding a marker at ``at``: its span and how to write it."""
        tag = re.match(r"<([A-Za-z][\w:-]*)", html[tag_start:])
        tag_end = html.find(">", at)
        for attr in _ATTRIBUTE.finditer(html, tag_start, tag_end):
            if attr.start() < at < attr.end() and tag is not None:
                name = attr.group(1)
                if name.lower() in ("style", "class", "id") or name.lower().startswith("on"):
                    raise _NotStencilable(f"a per-email value in a {name} attribute")
                parts: list[str | int] = []
                value = attr.group(2)[1:-1]
                last = 0
                for token in re.finditer(rf"pm{self.nonce}v(\d+)e", value):
                    parts += [htmllib.unescape(value[last : token.start()]), int(token.group(1))]
                    last = token.end()
                parts.append(htmllib.unescape(value[last:]))
                return attr.start(), attr.end(), _attribute_value(tag.group(1), name, parts)
        raise _NotStencilable("a per-email value in an attribute that could not be read")

    def _refuse_stray_markers(self, pieces: Sequence[str]) -> None:
        for piece in pieces:
            if self.nonce in piece:
                raise _NotStencilable(
                    "a per-email value was changed by a filter, or printed where it cannot be "
                    "filled in (in a card, only item.rank and the reasons may vary): "
                    f"{piece!r:.200}"
                )


def _card_key(view: PaperView) -> tuple[Any, ...]:
    return (view.paper, view.tldr, view.first, bool(view.reasons))


def _layout_values(context: dict[str, Any]) -> tuple[Any, ...]:
    subscriber: Subscriber = context["subscriber"]
    return (
        context["summary"],
        context["preheader"],
        subscriber.email,
        subscriber.name,
        context["preferences_file"],
        context["unsubscribe_url"],
    )


def _region(name: str) -> Fill:
    return lambda _values, regions: regions[name]


def _text_value(k: int) -> Fill:
    return lambda values, _regions: escape_text(values[k])


def _attribute_value(tag: str, name: str, parts: Sequence[str | int]) -> Fill:
    def fill(values: Sequence[str], _regions: dict[str, str]) -> str:
        raw = "".join(values[p] if isinstance(p, int) else p for p in parts)
        return serialize_attribute(tag, name, raw)

    return fill


def escape_text(value: str) -> str:
    """Text as the reference pipeline writes it: lxml's parser folds CR and CRLF to LF, its
    HTML serializer escapes ``&``, ``<`` and ``>`` and writes everything else as UTF-8."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def serialize_attribute(tag: str, name: str, value: str) -> str:
    """``name="value"`` exactly as lxml writes it on ``tag`` (it %-escapes URLs in ``href``
    and quotes with ``'`` when the value holds ``"``): lxml itself writes it."""
    element = etree.Element(tag)
    try:
        element.set(name, value)
    except ValueError as exc:  # a control character lxml refuses: let the reference decide
        raise _NotStencilable(str(exc)) from exc
    out: str = etree.tostring(element, method="html", encoding="utf-8").decode("utf-8")
    return out[len(tag) + 2 : out.index(">")]


def _refuse_raw_context(html: str, at: int) -> None:
    """A value inside ``<style>``, ``<script>`` or a comment would not be escaped: refuse."""
    if html.rfind("<!--", 0, at) > html.rfind("-->", 0, at):
        raise _NotStencilable("a per-email value inside an HTML comment")
    for name in _RAW_ELEMENTS:
        if html.rfind(f"<{name}", 0, at) > html.rfind(f"</{name}", 0, at):
            raise _NotStencilable(f"a per-email value inside <{name}>")


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
    """
    try:
        inliner = premailer.Premailer(
            _MJML_RESET.sub(r'\1 data-premailer="ignore">\2', html, count=1),
            allow_network=False,
            strip_important=False,
            keep_style_tags=True,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
        )
        inlined: str = inliner.transform(pretty_print=False)
    except (premailer.premailer.PremailerError, ValueError) as exc:
        raise TemplateError(f"{HTML_TEMPLATE}: CSS could not be inlined: {exc}") from exc
    return "<!doctype html>\n" + inlined


def to_html(mjml_source: str) -> str:
    """Steps 2 and 3: compile the MJML and inline its CSS."""
    return inline_css(compile_mjml(mjml_source))


def subject_for(digest: Digest, newsletter: str = "papermail") -> str:
    """A one-line subject: the day and what is inside (upstream text is single-lined)."""
    day = digest.day.strftime("%-d %b %Y")
    if not digest.papers:
        return f"{newsletter} · {day}: nothing matched today"
    top = _clip(" ".join(digest.papers[0].paper.title.split()), 70)
    count = len(digest.papers)
    noun = "paper" if count == 1 else "papers"
    return f"{newsletter} · {day}: {count} {noun} — {top}"


def preheader(digest: Digest) -> str:
    """The inbox preview line: how many papers and the first title."""
    count = len(digest.papers)
    if not count:
        return "Nothing matched your topics today."
    top = _clip(digest.papers[0].paper.title, 90)
    more = f" — and {count - 1} more" if count > 1 else ""
    return f"{count} paper{'s' if count != 1 else ''} for you: {top}{more}"


def tldr(paper: Paper, limit: int = TLDR_CHARS) -> str:
    """HF's AI summary when present, else the abstract's first sentences, clipped at a word."""
    if paper.ai_summary:
        return _clip(paper.ai_summary, limit)
    out = ""
    for sentence in _SENTENCE_END.split(paper.abstract):
        if out and len(out) + 1 + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
    return _clip(out, limit)


def _clip(text: str, limit: int) -> str:
    """``text`` cut at the last word boundary before ``limit``, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:-\u2013\u2014 ") + "…"


# --- views and helpers ---------------------------------------------------------------------------


def _view(rank: int, scored: ScoredPaper, tldr_chars: int) -> PaperView:
    paper = scored.paper
    title, authors, stats, summary = _paper_texts(paper, tldr_chars)
    return PaperView(
        paper=paper,
        rank=rank,
        title=title,
        authors=authors,
        stats=stats,
        tldr=summary,
        reasons=tuple(_reason_view(r) for r in scored.reasons),
        first=rank == 1,
    )


@functools.lru_cache(maxsize=4096)
def _paper_texts(paper: Paper, tldr_chars: int) -> tuple[str, str, str, str]:
    """Title, authors, stats and TL;DR as shown: the same for every subscriber, so kept."""
    authors = ", ".join(_clip(a, 80) for a in paper.authors[:MAX_AUTHORS])
    if len(paper.authors) > MAX_AUTHORS:
        authors += " et al."
    title = _clip(paper.title, MAX_TITLE_CHARS)
    return title, authors, _stats(paper), tldr(paper, tldr_chars)


@functools.lru_cache(maxsize=64)
def _day(day: date) -> str:
    return day.strftime("%A, %-d %B %Y")


def _one_line(text: str) -> str:
    """Per-email text on one line (it reads the same, and escapes the same in every place)."""
    return " ".join(text.split())


def _stats(paper: Paper) -> str:
    parts = []
    if paper.upvotes:
        parts.append(f"▲ {paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.num_comments:
        parts.append(f"{paper.num_comments} comment{'s' if paper.num_comments != 1 else ''}")
    return " · ".join(parts)


@functools.lru_cache(maxsize=4096)
def _reason_view(reason: Reason) -> ReasonView:
    if reason.kind is ReasonKind.AUTHOR:
        return ReasonView("Followed author", _one_line(reason.label), _one_line(str(reason)))
    detail = _one_line(", ".join(reason.terms))
    return ReasonView(_one_line(reason.label), detail, _one_line(str(reason)))


def _environment(
    templates_dir: Path, *, autoescape: bool, loader: jinja2.BaseLoader | None = None
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader or jinja2.FileSystemLoader(templates_dir),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    return env


@functools.lru_cache(maxsize=16384)
def wrap(text: str, width: int = 78, indent: str = "", first: str | None = None) -> str:
    """Fold a paragraph for the text part; words longer than a line (URLs) are never broken.

    Kept per paragraph: a paper's title, authors and TL;DR are folded once per run, not once per
    subscriber (textwrap was most of the per-email cost once the HTML came from stencils).
    """
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _locate(exc: jinja2.TemplateError) -> str:
    """``file:line: message`` for an error raised while a template was being filled in."""
    where: tuple[str, int] | None = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename.endswith(".j2"):
            where = (frame.f_code.co_filename, lineno)
    if where is None:
        line: int | None = getattr(exc, "lineno", None)
        name = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
        return f"{name}:{line}: {exc}" if line else f"{name}: {exc}"
    return f"{where[0]}:{where[1]}: {exc}"


_SAMPLE_SUBSCRIBER = Subscriber(
    email="template-check@example.invalid",
    name="Template <Check> & Co",
    topics=(Topic("Template check", ("check",)),),
    source_file=Path("template-check.yaml"),
)


def _sample_paper() -> ScoredPaper:
    """A paper with every optional field set, so the template check takes every branch."""
    paper = Paper(
        id="0000.00000",
        title="A sample title with $O(n^2)$ and <markup> & {{ braces }}",
        abstract="A first sentence. A second sentence.",
        authors=("A. Author", "B. Author", "C. Author", "D. Author"),
        published=date(2026, 1, 1),
        upvotes=2,
        url="https://example.invalid/papers/0000.00000",
        pdf_url="https://example.invalid/pdf/0000.00000",
        source="huggingface",
        ai_summary="A summary.",
        github_url="https://example.invalid/code",
        project_url="https://example.invalid/project",
        num_comments=1,
    )
    reasons = (
        Reason(ReasonKind.TOPIC, "Template check", ("check",)),
        Reason(ReasonKind.AUTHOR, "A. Author"),
    )
    return ScoredPaper(paper, 1.0, reasons)


def _sample_digests() -> tuple[Digest, ...]:
    """Digests that take every branch: papers with every field and none, 0 to 2 reasons."""
    full = _sample_paper()
    bare = dataclasses.replace(
        full.paper,
        id="0000.00001",
        github_url=None,
        project_url=None,
        upvotes=0,
        num_comments=None,
        ai_summary=None,
        title="Bare <b>&amp;</b>",
    )
    papers = (
        full,
        ScoredPaper(bare, 0.5, ()),
        dataclasses.replace(full, reasons=(Reason(ReasonKind.TOPIC, "No terms <i>"),)),
    )
    plain = dataclasses.replace(_SAMPLE_SUBSCRIBER, name=None, source_file=None)
    return (
        Digest(_SAMPLE_SUBSCRIBER, date(2026, 1, 1), papers),
        Digest(_SAMPLE_SUBSCRIBER, date(2026, 1, 1), ()),
        Digest(plain, date(2026, 1, 2), papers[1:]),
    )


__all__: Sequence[str] = (
    "Filled",
    "PendingCards",
    "Renderer",
    "compile_mjml",
    "inline_css",
    "preheader",
    "subject_for",
    "tldr",
    "to_html",
)
