"""Rendering: a digest → subject, HTML part and text part.

Three steps, each its own function so ``make bench`` can time them apart:

1. ``Renderer.fill``: Jinja2 fills ``templates/digest.mjml.j2`` (autoescaped, so upstream text stays
   text) and ``templates/digest.txt.j2``. The templates are compiled once, when the ``Renderer`` is
   built, and checked then by rendering a sample digest, so a broken template stops the run before
   anything is sent.
2. ``compile_mjml``: mjml-python turns the MJML into table-based, responsive HTML.
3. ``inline_css``: premailer copies the ``<mj-style>`` rules into ``style`` attributes (for clients
   that drop ``<style>``), keeps the ``@media`` rules and their ``!important`` in a ``<style>``
   block, and never touches the network.

``Renderer.render`` runs the three and guards the size: Gmail clips HTML above about 102 KB, so a
digest that would not fit is trimmed (shorter summaries, then fewer papers) and the
``RenderedEmail`` says what was cut. The only module that imports jinja2, mjml and premailer.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import textwrap
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import mjml
import premailer

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

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
MAX_AUTHORS = 3
MAX_TITLE_CHARS = 300  # upstream is untrusted: a runaway title must not fill the email
TLDR_CHARS = 280
SHORT_TLDR_CHARS = 140  # the first cut when a digest is too big for Gmail
GMAIL_CLIP_BYTES = 102 * 1024  # Gmail shows "[Message clipped]" above this much HTML
HTML_BUDGET = 100_000  # what we allow ourselves, with headroom under Gmail's limit
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
        for papers in ((_sample_paper(),), ()):
            digest = Digest(_SAMPLE_SUBSCRIBER, date(2026, 1, 1), papers)
            filled = self.fill(digest, omitted=1)
            inline_css(compile_mjml(filled.mjml))

    def fill(self, digest: Digest, *, tldr_chars: int = TLDR_CHARS, omitted: int = 0) -> Filled:
        """Step 1: the templates filled in for ``digest`` (``omitted``: papers cut for size)."""
        context = self._context(digest, tldr_chars=tldr_chars, omitted=omitted)
        try:
            return Filled(mjml=self._html.render(context), text=self._text.render(context))
        except jinja2.TemplateError as exc:
            raise TemplateError(_locate(exc)) from exc

    def _context(self, digest: Digest, *, tldr_chars: int, omitted: int) -> dict[str, Any]:
        subscriber = digest.subscriber
        count = len(digest.papers)
        who = subscriber.name or subscriber.email
        summary = (
            f"{count} paper{'s' if count != 1 else ''} picked for {who}"
            if count
            else "Nothing matched your topics today"
        )
        return {
            "newsletter": self.newsletter,
            "digest": digest,
            "subscriber": subscriber,
            "day": digest.day.strftime("%A, %-d %B %Y"),
            "summary": summary,
            "preheader": preheader(digest),
            "papers": [
                _view(rank, scored, tldr_chars)
                for rank, scored in enumerate(digest.papers, start=1)
            ],
            "omitted": omitted,
            "unsubscribe_url": self._unsubscribe(subscriber.email),
            "preferences_file": subscriber.source_file.name if subscriber.source_file else None,
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
        filled = self.fill(digest, tldr_chars=tldr_chars, omitted=omitted)
        return RenderedEmail(
            digest=digest,
            subject=subject_for(digest, self.newsletter),
            html=inline_css(compile_mjml(filled.mjml)),
            text=filled.text,
        )

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
    top = _clip(" ".join(readable_latex(digest.papers[0].paper.title).split()), 70)
    count = len(digest.papers)
    noun = "paper" if count == 1 else "papers"
    return f"{newsletter} · {day}: {count} {noun} — {top}"


def preheader(digest: Digest) -> str:
    """The inbox preview line: how many papers and the first title."""
    count = len(digest.papers)
    if not count:
        return "Nothing matched your topics today."
    top = _clip(readable_latex(digest.papers[0].paper.title), 90)
    more = f" — and {count - 1} more" if count > 1 else ""
    return f"{count} paper{'s' if count != 1 else ''} for you: {top}{more}"


def tldr(paper: Paper, limit: int = TLDR_CHARS) -> str:
    """HF's AI summary when present, else the abstract's first sentences, clipped at a word."""
    if paper.ai_summary:
        return _clip(readable_latex(paper.ai_summary), limit)
    out = ""
    for sentence in _SENTENCE_END.split(readable_latex(paper.abstract)):
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


# --- LaTeX → readable text -----------------------------------------------------------------------

_MATH = re.compile(r"\${1,2}([^$]{1,300}?)\${1,2}")
_STYLE_CMD = re.compile(
    r"\\(?:mathrm|mathbf|mathcal|mathbb|mathit|mathsf|mathtt|boldsymbol|text|textbf|textit|"
    r"textrm|operatorname|emph)\s*\{([^{}]*)\}"
)
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_SQRT = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_ESCAPED = re.compile(r"\\([%&_#$])")
_SPACING = re.compile(r"\\[,;:! ]|~")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_SCRIPT = re.compile(r"([\^_])(?:\{([^{}]*)\}|(\\?[A-Za-z0-9+\-*]))")
# LaTeX command → what to show; pairs of words. (Unicode look-alikes are the point here.)
_SYMBOL_PAIRS = """
alpha α beta β gamma γ delta δ epsilon ε varepsilon ε zeta ζ eta η theta θ vartheta ϑ iota ι
kappa κ lambda λ mu μ nu ν xi ξ pi π rho ρ sigma σ tau τ upsilon υ phi φ varphi φ chi χ psi ψ
omega ω Gamma Γ Delta Δ Theta Θ Lambda Λ Xi Ξ Pi Π Sigma Σ Phi Φ Psi Ψ Omega Ω
times × cdot · cdots ⋯ ldots … dots … leq ≤ le ≤ geq ≥ ge ≥ neq ≠ ne ≠ approx ≈ sim ~ simeq ≃
propto ∝ infty ∞ pm ± mp ∓ to → rightarrow → leftarrow ← Rightarrow ⇒ mapsto ↦ in ∈ notin ∉
subset ⊂ subseteq ⊆ cup ∪ cap ∩ forall ∀ exists ∃ partial ∂ nabla ∇ sum ∑ prod ∏ int ∫
ell ℓ hbar ℏ circ ∘ otimes ⊗ oplus ⊕ langle ⟨ rangle ⟩
"""  # noqa: RUF001
_SYMBOLS: dict[str, str] = {
    **dict(zip(*[iter(_SYMBOL_PAIRS.split())] * 2, strict=True)),
    "left": "",
    "right": "",
}
_SUPERSCRIPT = str.maketrans("0123456789+-=()niT*", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵀ*")
_SUBSCRIPT = str.maketrans("0123456789+-=()aeoxhklmnpstij", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜᵢⱼ")


def readable_latex(text: str) -> str:
    """Inline LaTeX (``$O(n^2)$``, ``$\\mathcal{O}(\\log n)$``) as plain Unicode text.

    Only text between dollar signs is touched; what cannot be shown nicely keeps its ASCII form
    (``x^{ab}`` → ``x^(ab)``), so nothing is lost. The result is still plain, untrusted text.
    """
    return _MATH.sub(lambda m: _math(m.group(1)), text) if "$" in text else text


def _math(src: str) -> str:
    out = _ESCAPED.sub(r"\1", src)
    for _ in range(3):  # nested \mathbf{\hat{x}} and friends unwrap from the inside out
        out = _STYLE_CMD.sub(r"\1", out)
        out = _FRAC.sub(r"(\1)/(\2)", out)
        out = _SQRT.sub(r"√(\1)", out)
    out = _SPACING.sub(" ", out)
    out = _COMMAND.sub(lambda m: _SYMBOLS.get(m.group(1), m.group(1)), out)
    out = _SCRIPT.sub(_script, out)
    return " ".join(out.replace("{", "").replace("}", "").split())


def _script(match: re.Match[str]) -> str:
    """``^2`` → ``²``, ``_{ij}`` → ``ᵢⱼ``; otherwise ``^(...)`` / ``_(...)``."""
    mark, body = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
    table = _SUPERSCRIPT if mark == "^" else _SUBSCRIPT
    translated = body.translate(table)
    if all(ord(c) > 127 or c == "*" for c in translated) and body:
        return translated
    return f"{mark}{body}" if len(body) == 1 else f"{mark}({body})"


# --- views and helpers ---------------------------------------------------------------------------


def _view(rank: int, scored: ScoredPaper, tldr_chars: int) -> PaperView:
    paper = scored.paper
    authors = ", ".join(_clip(a, 80) for a in paper.authors[:MAX_AUTHORS])
    if len(paper.authors) > MAX_AUTHORS:
        authors += " et al."
    return PaperView(
        paper=paper,
        rank=rank,
        title=_clip(readable_latex(paper.title), MAX_TITLE_CHARS),
        authors=authors,
        stats=_stats(paper),
        tldr=tldr(paper, tldr_chars),
        reasons=tuple(_reason_view(r) for r in scored.reasons),
    )


def _stats(paper: Paper) -> str:
    parts = []
    if paper.upvotes:
        parts.append(f"▲ {paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.num_comments:
        parts.append(f"{paper.num_comments} comment{'s' if paper.num_comments != 1 else ''}")
    return " · ".join(parts)


def _reason_view(reason: Reason) -> ReasonView:
    if reason.kind is ReasonKind.AUTHOR:
        return ReasonView("Followed author", reason.label, str(reason))
    return ReasonView(reason.label, ", ".join(reason.terms), str(reason))


def _environment(templates_dir: Path, *, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    return env


def wrap(text: str, width: int = 78, indent: str = "", first: str | None = None) -> str:
    """Fold a paragraph for the text part; words longer than a line (URLs) are never broken."""
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
    name="Template Check",
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


__all__: Sequence[str] = (
    "Filled",
    "Renderer",
    "compile_mjml",
    "inline_css",
    "preheader",
    "readable_latex",
    "subject_for",
    "tldr",
    "to_html",
)
