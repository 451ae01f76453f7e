"""What the templates see of a digest: view records and the pure text helpers that make them.

Subject, preheader, TL;DR, clipping and folding are plain functions of the records (no I/O, no
third-party library), so they are shared by the reference pipeline, the stencils and the tests.
"""

from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import dataclass

from pipeline.models import Digest, Paper, Reason, ReasonKind, ScoredPaper
from pipeline.text import one_line  # control characters go too: no HTML may hold them

MAX_AUTHORS = 3
MAX_TITLE_CHARS = 300  # upstream is untrusted: a runaway title must not fill the email
TLDR_CHARS = 280
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


def paper_view(rank: int, scored: ScoredPaper, tldr_chars: int) -> PaperView:
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
        return ReasonView("Followed author", one_line(reason.label), one_line(str(reason)))
    detail = one_line(", ".join(reason.terms))
    return ReasonView(one_line(reason.label), detail, one_line(str(reason)))


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
