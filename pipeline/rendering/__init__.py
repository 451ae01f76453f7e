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
(see ``Stencils``): the layout once per run (per shape: papers or none, trimmed or not …), each
paper's card (``{% block card %}``) and its line in the overview (``{% block toc %}``) once per
run, a reason (``{% block reason %}``) once. Each
part is compiled and inlined with markers where the per-email values go, and cut there; an email
is then those pieces joined with its values, escaped exactly as the reference pipeline would
have escaped them. ``Renderer.reference`` is the reference pipeline itself; the tests and a
check at construction assert both give the same bytes, and templates that break the rules of
the fast path (``docs/email.md``, "The fast path") are rendered the reference way, with a warning.

``Renderer.render`` also guards the size: Gmail clips HTML above about 102 KB as transmitted
(quoted-printable, which ``wire_bytes`` counts), so a digest that would not fit is trimmed
(shorter summaries, then fewer papers) and the ``RenderedEmail`` says what was cut. The only
package that imports jinja2, mjml, premailer and lxml; its modules:

* ``renderer``: the ``Renderer`` (templates compiled once, ``render`` with the size guard,
  ``reference``, and the fast steps ``prepare``, ``store``, ``assemble``);
* ``stencils``: the fast path (the only module that imports lxml);
* ``html``: steps 2 and 3, ``compile_mjml`` and ``inline_css`` (the only imports of mjml and
  premailer);
* ``templates``: template names, the Jinja2 environment, template error locations;
* ``views``: the records the templates see, and the pure text helpers (subject, preheader,
  summaries, reasons, break opportunities in long words);
* ``samples``: the sample digests the construction-time check renders.

Import from ``pipeline.rendering`` itself; the names below are its interface.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.rendering.html import compile_mjml, inline_css, to_html
from pipeline.rendering.renderer import (
    GMAIL_CLIP_BYTES,
    HTML_BUDGET,
    SHORT_TLDR_CHARS,
    Filled,
    Renderer,
    wire_bytes,
)
from pipeline.rendering.stencils import PendingCards, escape_text, serialize_attribute
from pipeline.rendering.templates import HTML_TEMPLATE, TEXT_TEMPLATE
from pipeline.rendering.views import (
    MAX_AUTHORS,
    MAX_TITLE_CHARS,
    OVERVIEW_FROM,
    TLDR_CHARS,
    PaperView,
    ReasonView,
    preheader,
    subject_for,
    tldr,
    wrap,
)

__all__: Sequence[str] = (
    "GMAIL_CLIP_BYTES",
    "HTML_BUDGET",
    "HTML_TEMPLATE",
    "MAX_AUTHORS",
    "MAX_TITLE_CHARS",
    "OVERVIEW_FROM",
    "SHORT_TLDR_CHARS",
    "TEXT_TEMPLATE",
    "TLDR_CHARS",
    "Filled",
    "PaperView",
    "PendingCards",
    "ReasonView",
    "Renderer",
    "compile_mjml",
    "escape_text",
    "inline_css",
    "preheader",
    "serialize_attribute",
    "subject_for",
    "tldr",
    "to_html",
    "wire_bytes",
    "wrap",
)
