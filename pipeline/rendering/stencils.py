"""The fast path: the HTML template compiled and inlined once per part, each email only filled in.

MJML and premailer cost ten times what the rest of a run spends per email, and almost everything
they produce is the same for every subscriber. ``Stencils`` runs them once per layout, paper card
(with its line in the overview) and reason, with markers where the per-email values go, and
cuts the result there; each email is those pieces joined with its values, escaped as the
reference pipeline would (lxml writes the attributes). Whatever it cannot reproduce exactly
raises ``NotStencilable``, and the ``Renderer`` falls back to the reference pipeline.
"""

from __future__ import annotations

import dataclasses
import html as htmllib
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import jinja2
from lxml import etree

from pipeline.models import Subscriber
from pipeline.rendering.html import compile_mjml, inline_css, to_html
from pipeline.rendering.samples import sample_paper
from pipeline.rendering.templates import HTML_TEMPLATE, environment, locate
from pipeline.rendering.views import TLDR_CHARS, PaperView, ReasonView, paper_view

_STENCIL_TEMPLATE = "pm-stencil.mjml.j2"  # extends HTML_TEMPLATE, marking where the parts go


class NotStencilable(Exception):
    """The templates do something stencils cannot reproduce exactly; render the reference way."""


#: A slot: how to write one per-email value (escaped), or the name of a region of parts.
Fill = Callable[[Sequence[str]], str]
Regions = dict[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class _Stencil:
    """Finished HTML cut at its slots: ``pieces[0] slots[0] pieces[1] … slots[n-1] pieces[n]``."""

    pieces: tuple[str, ...]
    slots: tuple[Fill | str, ...]

    def fill(self, values: Sequence[str], regions: Regions, out: list[str]) -> None:
        """Append the pieces to ``out``, with each slot's text for these values and regions.

        The pieces are appended as they are (the same string objects for every email), so the
        delivery stage can encode each once per run (``RenderedEmail.html_parts``)."""
        out.append(self.pieces[0])
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            if isinstance(slot, str):
                out.extend(regions[slot])
            else:
                out.append(slot(values))
            out.append(piece)


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


LAYOUT_VALUES = (
    "summary",
    "preheader",
    "email",
    "name",
    "preferences_file",
    "unsubscribe_url",
    "preferences_url",
    "empty_note",
)
REASON_VALUES = ("label", "verb", "detail", "more", "text")
_ATTRIBUTE = re.compile(r"""([^\s"'=<>/]+)=("[^"]*"|'[^']*')""")
_RAW_ELEMENTS = ("style", "script")


class Stencils:
    """The HTML template compiled and inlined once per part, cut where per-email values go.

    * the layout (``digest.mjml.j2`` without its cards and overview lines), per day,
      ``omitted``, ``overview`` and the truth of each per-email value, with text markers
      ``pm<nonce>v<k>e`` for ``summary``, ``preheader``, ``subscriber.email`` … (it holds no
      upstream text), and elements where the cards and the overview lines go;
    * each paper's card (``{% block card %}``) per summary length, top or not, with or without
      reasons: it holds the paper's (escaped) text, so its slots, ``item.rank`` and the reasons,
      are elements ``<pm-…-<nonce>>``, which no escaped text can contain;
    * each paper's line in the overview (``{% block toc %}``), made with its card, with no slots
      (nothing in it varies per subscriber);
    * a reason (``{% block reason %}``), with text markers for its ``REASON_VALUES``.

    The markers' nonce is random per renderer. Cards are compiled in batches, all of a digest's
    new papers in one MJML document. Values are escaped as the reference pipeline's parsers and
    serializer would: text as lxml writes it, attributes by lxml itself.
    """

    def __init__(self, templates_dir: Path, newsletter: str) -> None:
        self.newsletter = newsletter
        nonce = secrets.token_hex(8)
        self.nonce = nonce
        mark = {
            k: f"<pm-{k}-{nonce}></pm-{k}-{nonce}>"
            for k in ("cards", "card", "end", "rank", "tocs", "toc", "tocend")
        }
        mark |= {k: f"<pm-{k}-{nonce}></pm-{k}-{nonce}>" for k in ("rs", "re")}
        self.mark = mark
        self._value_pattern = re.compile(
            rf"(?P<region>{mark['cards']}|{mark['tocs']})|pm{nonce}v(?P<value>\d+)e"
        )
        self._toc_pattern = re.compile(rf"{mark['toc']}(.*?){mark['tocend']}", flags=re.DOTALL)
        self._card_pattern = re.compile(rf"{mark['card']}(.*?){mark['end']}", flags=re.DOTALL)
        self._in_card_pattern = re.compile(
            rf"{mark['rank']}|{mark['rs']}(.*?){mark['re']}", flags=re.DOTALL
        )
        stencil = (
            f'{{% extends "{HTML_TEMPLATE}" %}}\n'
            '{% block card %}{% if _pm_build == "layout" %}<mj-raw>' + mark["cards"] + "</mj-raw>\n"
            "{% else %}<mj-raw>" + mark["card"] + "</mj-raw>\n{{ super() }}\n"
            "<mj-raw>" + mark["end"] + "</mj-raw>\n{% endif %}{% endblock %}\n"
            '{% block toc %}{% if _pm_build == "layout" %}'
            + mark["tocs"]
            + "{% else %}"
            + mark["toc"]
            + "{{ super() | trim }}"
            + mark["tocend"]
            + "{% endif %}{% endblock %}\n"
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
        env = environment(templates_dir, autoescape=True, loader=loader)
        self._template = env.get_template(_STENCIL_TEMPLATE)
        self._layouts: dict[tuple[Any, ...], _Stencil] = {}
        self._cards: dict[tuple[Any, ...], _Stencil] = {}
        self._reasons: dict[tuple[bool, ...], _Stencil] = {}
        self._tocs: dict[tuple[Any, ...], str] = {}  # a card's line in the overview

    # per email

    def html(self, context: dict[str, Any]) -> list[str]:
        """The HTML part for a filled-in context, from stencils (made now where missing), in
        parts: joined, they are the HTML."""
        views: list[PaperView] = context["papers"]
        keys = [_card_key(view) for view in views]
        if not all(key in self._cards for key in keys):  # not made by ``Renderer.warm``
            pending = self.compile_cards(views)
            if pending is not None:
                self.store_cards(pending)
        cards: list[str] = []
        for view, key in zip(views, keys, strict=True):
            self._card_html(view, self._cards[key], cards)
        tocs = [self._tocs[key] for key in keys] if context["overview"] else []
        values = _layout_values(context)
        key = (
            context["day"],
            context["omitted"],
            bool(views),
            bool(context["overview"]),
            *map(bool, values),
        )
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = self._build_layout(key)
        out: list[str] = []
        layout.fill([str(v) for v in values], {"cards": cards, "tocs": tocs}, out)
        return out

    def _card_html(self, view: PaperView, card: _Stencil, out: list[str]) -> None:
        reasons: list[str] = []
        for r in view.reasons:
            values = (r.label, r.verb, r.detail, r.more, r.text)
            self._reason(tuple(map(bool, values))).fill(values, {}, reasons)
        card.fill((), {"rank": (str(view.rank),), "reasons": reasons}, out)

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
        reason = self._slot_reason((True,) * len(REASON_VALUES))
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
        inlined = inline_css(pending.compiled)
        chunks = self._card_pattern.findall(inlined)
        tocs = self._toc_pattern.findall(inlined)
        if len(chunks) != len(pending.keys) or len(tocs) not in (0, len(pending.keys)):
            raise NotStencilable(f"found {len(chunks)} of {len(pending.keys)} cards")
        self._refuse_stray_markers(tocs)  # an overview line may not show per-email values
        for key, chunk, toc in zip(pending.keys, chunks, tocs or [""] * len(chunks), strict=True):
            self._cards[key] = self._cut_card(chunk)
            self._tocs[key] = toc

    def _cut_card(self, chunk: str) -> _Stencil:
        pieces: list[str] = []
        slots: list[Fill | str] = []
        at = 0
        for found in self._in_card_pattern.finditer(chunk):
            pieces.append(chunk[at : found.start()])
            at = found.end()
            if found.group(1) is None:
                slots.append("rank")
                continue
            slots.append("reasons")
            every = (True,) * len(REASON_VALUES)
            if every not in self._reasons:
                self._reasons[every] = self._cut_values(found.group(1))
        pieces.append(chunk[at:])
        self._refuse_stray_markers(pieces)
        return _Stencil(tuple(pieces), tuple(slots))

    def _reason(self, key: tuple[bool, ...]) -> _Stencil:
        stencil = self._reasons.get(key)
        if stencil is None:
            sample = paper_view(1, sample_paper(), TLDR_CHARS)
            html = to_html(
                self._render(
                    "reason", [dataclasses.replace(sample, reasons=(self._slot_reason(key),))]
                )
            )
            found = re.search(rf"{self.mark['rs']}(.*?){self.mark['re']}", html, flags=re.DOTALL)
            if found is None:
                raise NotStencilable(f"{HTML_TEMPLATE} has no {{% block reason scoped %}}")
            stencil = self._reasons[key] = self._cut_values(found.group(1))
        return stencil

    def _build_layout(self, key: tuple[Any, ...]) -> _Stencil:
        _day_text, omitted, has_papers, overview, *truths = key
        html = to_html(
            self._render(
                "layout", _Papers(has_papers), omitted, truths, day=key[0], overview=overview
            )
        )
        return self._cut_values(html)

    def _render(
        self,
        build: str,
        papers: Any,
        omitted: int = 0,
        truths: Sequence[bool] = (True,) * len(LAYOUT_VALUES),
        *,
        day: str = "Thursday, 1 January 2026",
        overview: bool = True,
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
            "preferences_url": slot["preferences_url"],
            "empty_note": slot["empty_note"],
            "omitted": omitted,
            "overview": overview,
            "papers": papers,
        }
        try:
            return self._template.render(context)
        except jinja2.TemplateError as exc:
            raise NotStencilable(locate(exc)) from exc
        except (TypeError, ValueError) as exc:  # arithmetic or the like on a per-email value
            raise NotStencilable(f"{HTML_TEMPLATE}: {exc}") from exc

    def _slot_reason(self, truths: tuple[bool, ...]) -> ReasonView:
        slots = (
            _Slot(f"reason.{name}", self._token(k), truthy)
            for k, (name, truthy) in enumerate(zip(REASON_VALUES, truths, strict=True))
        )
        return ReasonView(*slots)  # type: ignore[arg-type]

    def _token(self, k: int) -> str:
        return f"pm{self.nonce}v{k}e"

    def _cut_values(self, html: str) -> _Stencil:
        """Cut HTML holding no upstream text at its text markers (and the cards marker)."""
        pieces: list[str] = []
        slots: list[Fill | str] = []
        at = 0
        for found in self._value_pattern.finditer(html):
            if found.start() < at:
                continue  # a second marker in an attribute already taken whole
            start, end = found.span()
            _refuse_raw_context(html, start)
            if found.group("value") is None:
                slot: Fill | str = (
                    "cards" if found.group("region") == self.mark["cards"] else "tocs"
                )
            else:
                tag_start, tag_end = html.rfind("<", 0, start), html.rfind(">", 0, start)
                if tag_start > tag_end:
                    start, end, slot = self._attribute(html, tag_start, start)
                else:
                    slot = _text_value(int(found.group("value")))
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
                    raise NotStencilable(f"a per-email value in a {name} attribute")
                parts: list[str | int] = []
                value = attr.group(2)[1:-1]
                last = 0
                for token in re.finditer(rf"pm{self.nonce}v(\d+)e", value):
                    parts += [htmllib.unescape(value[last : token.start()]), int(token.group(1))]
                    last = token.end()
                parts.append(htmllib.unescape(value[last:]))
                return attr.start(), attr.end(), _attribute_value(tag.group(1), name, parts)
        raise NotStencilable("a per-email value in an attribute that could not be read")

    def _refuse_stray_markers(self, pieces: Sequence[str]) -> None:
        for piece in pieces:
            if self.nonce in piece:
                raise NotStencilable(
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
        context["preferences_url"],
        context["empty_note"],
    )


def _text_value(k: int) -> Fill:
    return lambda values: escape_text(values[k])


def _attribute_value(tag: str, name: str, parts: Sequence[str | int]) -> Fill:
    def fill(values: Sequence[str]) -> str:
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
        raise NotStencilable(str(exc)) from exc
    out: str = etree.tostring(element, method="html", encoding="utf-8").decode("utf-8")
    return out[len(tag) + 2 : out.index(">")]


def _refuse_raw_context(html: str, at: int) -> None:
    """A value inside ``<style>``, ``<script>`` or a comment would not be escaped: refuse."""
    if html.rfind("<!--", 0, at) > html.rfind("-->", 0, at):
        raise NotStencilable("a per-email value inside an HTML comment")
    for name in _RAW_ELEMENTS:
        if html.rfind(f"<{name}", 0, at) > html.rfind(f"</{name}", 0, at):
            raise NotStencilable(f"a per-email value inside <{name}>")
