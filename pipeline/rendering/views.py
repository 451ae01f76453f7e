"""What the templates see of a digest: view records and the pure text helpers that make them.

Subject, preheader, summaries, reasons, clipping and folding are plain functions of the records
(no I/O, no third-party library), so they are shared by the reference pipeline, the stencils and
the tests.
"""

from __future__ import annotations

import functools
import html
import re
import textwrap
from dataclasses import dataclass

from pipeline.models import Digest, Paper, Reason, ReasonKind, ScoredPaper
from pipeline.text import one_line  # control characters go too: no HTML may hold them

MAX_AUTHORS = 3
MAX_TITLE_CHARS = 300  # upstream is untrusted: a runaway title must not fill the email
TLDR_CHARS = 280
MAX_TERMS = 3  # a reason shows this many matched terms, then "+ N more"
OVERVIEW_FROM = 9  # digests with at least this many papers open with a list of their titles
SUMMARY_LABEL = "TL;DR"  # only Hugging Face's AI summary is a summary
ABSTRACT_LABEL = "From the abstract"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
#: Words a full stop follows without ending the sentence ("Fig. 2", "et al. This", "e.g. A").
_ABBREVIATIONS = frozenset(
    {"al", "e.g", "i.e", "eq", "eqs", "fig", "figs", "sec", "secs", "ref", "refs", "tab", "vs"}
    | {"cf", "approx", "no", "nos", "ch", "app", "dr", "prof", "resp", "etc", "st", "mr", "ms"}
)
_INITIAL = re.compile(r"(?:^|\s)[A-Z]$")  # "J" of "J. Smith"
#: A subject's title keeps words up to this long whole; a longer one is cut with an ellipsis.
SUBJECT_WORD_CHARS = 30
#: A run of this many characters without a space gets break opportunities: most mail clients
#: ignore ``overflow-wrap`` and ``word-break``, so a long word or URL would widen the page.
#: A word gets zero-width spaces; a URL gets ``<wbr>`` elements, which copying and auto-linking
#: clients leave out of the address.
LONG_WORD = 24
_URL = re.compile(r"https?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)
_LONG_WORD = re.compile(rf"\S{{{LONG_WORD},}}")
_BREAK_AFTER = re.compile(r"(?<=[/.\-_?&=#:])(?=[^/.\-_?&=#:])")
ZWSP = "\u200b"  # zero-width space: an invisible place where a line may break


@dataclass(frozen=True, slots=True)
class Html:
    """Text already escaped for HTML, with its break opportunities: Jinja2 prints it as it is."""

    markup: str

    def __html__(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup


@dataclass(frozen=True, slots=True)
class ReasonView:
    """One reason as the templates show it: "Learning dynamics — matched lazy regime + 4 more".

    Made from any ``Reason`` by its kind, label and terms, so a kind added by the ranking shows
    sensibly (its label, then its terms) before it gets words of its own in ``_KIND_WORDS``.
    """

    label: str  # the heading: a topic's name, "Followed author", "Close to <topic>" …
    verb: str  # what connects label and detail ("matched"), or ""
    detail: str  # the first matched terms, the author's name, or ""
    more: str  # "+ 4 more" (no-break space) when terms were folded away, or ""
    text: str  # the whole reason in one line, for the text part


@dataclass(frozen=True, slots=True)
class PaperView:
    """What the templates show of one picked paper (display text already made readable).

    ``title``, ``authors`` and ``tldr`` are plain; the ``html_`` forms are escaped HTML with
    break opportunities in long words and URLs (and the summary's URLs as links), for the HTML
    part only.
    """

    paper: Paper
    rank: int
    title: str
    authors: str
    stats: str  # "31 upvotes · 5 comments", or "" when neither is known
    tldr: str  # the AI summary, else the abstract's opening (see ``summary_label``)
    reasons: tuple[ReasonView, ...]
    first: bool = False  # the top card (it has no rule above it)
    summary_label: str = SUMMARY_LABEL  # "TL;DR" for the AI summary, else "From the abstract"
    arxiv_url: str = ""  # arxiv.org/abs/<id>
    html_title: Html = Html("")
    html_authors: Html = Html("")
    html_tldr: Html = Html("")


def subject_for(digest: Digest, newsletter: str = "papermail") -> str:
    """A one-line subject a phone shows the start of: the top paper's title first, then how
    many more and the day; the newsletter's name is the From name, so it is left out here."""
    day = digest.day.strftime("%-d %b")
    if not digest.papers:
        return f"{nothing_matched(digest)} · {day}"
    words = digest.papers[0].paper.title.split()
    top = _clip(" ".join(_clip(w, SUBJECT_WORD_CHARS) for w in words), 90)
    more = len(digest.papers) - 1
    return f"{top} · +{more} more · {day}" if more else f"{top} · {day}"


def preheader(digest: Digest) -> str:
    """The inbox preview line: what the subject cannot say (the next titles, the count)."""
    count = len(digest.papers)
    if not count:
        return f"No paper {_period(digest)[0]} matched your topics or followed authors."
    if count == 1:
        return f"1 paper picked for you. {_clip(tldr(digest.papers[0].paper), 120)}"
    nxt = "; ".join(_clip(s.paper.title, 60) for s in digest.papers[1:3])
    more = "…" if count > 3 and not nxt.endswith("…") else ""  # never two ellipses in a row
    return f"{count} papers picked for you. Also: {nxt}{more}"


def nothing_matched(digest: Digest) -> str:
    """The headline of an email without papers: "Nothing matched your topics today"."""
    return f"Nothing matched your topics {_period(digest)[0]}"


def empty_note(digest: Digest) -> str:
    """What an email without papers says, in the words of the subscriber's frequency."""
    now, nxt = _period(digest)
    return (
        f"No paper {now} matched your topics or followed authors. "
        f"Better an empty inbox than noise: see you {nxt}."
    )


def _period(digest: Digest) -> tuple[str, str]:
    """("today", "tomorrow"), or for a weekly subscriber ("this week", "next Monday")."""
    subscriber = digest.subscriber
    if subscriber.frequency != "weekly":
        return "today", "tomorrow"
    weekday = (subscriber.weekday or digest.day.strftime("%A")).capitalize()
    return "this week", f"next {weekday}"


def tldr(paper: Paper, limit: int = TLDR_CHARS) -> str:
    """HF's AI summary when present, else the abstract's opening, cut at a sentence end.

    Whole sentences up to ``limit``; a first sentence longer than that is cut at a word, with
    an ellipsis, rather than shown whole (the size guard relies on the limit).
    """
    if paper.ai_summary:
        return _clip(paper.ai_summary, limit)
    out = ""
    for sentence in sentences(paper.abstract):
        if out and len(out) + 1 + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
    return _clip(out, limit)


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences: after ``.``, ``!`` or ``?`` and a space before a capital or a
    digit, but not after a common abbreviation ("Fig. 2", "et al. We") or an initial ("J. Smith").
    """
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        if out and _continues(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def _continues(sentence: str) -> bool:
    """Whether the full stop ending ``sentence`` belongs to an abbreviation or an initial."""
    if not sentence.endswith("."):
        return False
    last = sentence[:-1].rsplit(" ", 1)[-1]
    return last.lower().lstrip("([") in _ABBREVIATIONS or _INITIAL.search(sentence[:-1]) is not None


def summary_label(paper: Paper) -> str:
    """What the summary is: "TL;DR" only for the AI summary."""
    return SUMMARY_LABEL if paper.ai_summary else ABSTRACT_LABEL


def _clip(text: str, limit: int) -> str:
    """``text`` cut at the last word boundary before ``limit``, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:-\u2013\u2014 ") + "…"


@functools.lru_cache(maxsize=16384)
def soft_breaks(text: str) -> str:
    """``text`` with zero-width spaces in words of ``LONG_WORD`` characters or more: after URL
    punctuation, and every 20 characters where there is none, so every client can wrap them."""
    if len(text) < LONG_WORD or not _LONG_WORD.search(text):
        return text
    return _LONG_WORD.sub(_break_word, text)


def _break_word(found: re.Match[str]) -> str:
    return ZWSP.join(_pieces(found.group(0)))


def _pieces(word: str) -> list[str]:
    """``word`` cut after URL punctuation, and every 20 characters where there is none."""
    pieces: list[str] = []
    for part in _BREAK_AFTER.split(word):
        pieces.extend(part[i : i + 20] for i in range(0, len(part), 20))
    return [p for p in pieces if p]


@functools.lru_cache(maxsize=16384)
def html_text(text: str, *, links: bool = False) -> Html:
    """``text`` escaped for HTML, long words with zero-width spaces (``soft_breaks``) and URLs
    with ``<wbr>`` elements at the same places, so a URL holds no invisible character (copying
    it, or a client linking it, gets the whole address); with ``links``, URLs are links."""
    out: list[str] = []
    at = 0
    for found in _URL.finditer(text):
        url = found.group(0)
        out.append(html.escape(soft_breaks(text[at : found.start()])))
        shown = "<wbr>".join(map(html.escape, _pieces(url) if len(url) >= LONG_WORD else [url]))
        out.append(f'<a href="{html.escape(url)}">{shown}</a>' if links else shown)
        at = found.end()
    out.append(html.escape(soft_breaks(text[at:])))
    return Html("".join(out))


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
        summary_label=summary_label(paper),
        arxiv_url=f"https://arxiv.org/abs/{paper.id}",
        html_title=html_text(title),
        html_authors=html_text(authors),
        html_tldr=html_text(summary, links=True),
    )


@functools.lru_cache(maxsize=4096)
def _paper_texts(paper: Paper, tldr_chars: int) -> tuple[str, str, str, str]:
    """Title, authors, stats and summary as shown: the same for every subscriber, so kept."""
    authors = ", ".join(_clip(a, 80) for a in paper.authors[:MAX_AUTHORS])
    if len(paper.authors) > MAX_AUTHORS:
        authors += " et al."
    title = _clip(paper.title, MAX_TITLE_CHARS)
    return title, authors, _stats(paper), tldr(paper, tldr_chars)


def _stats(paper: Paper) -> str:
    """Counts in words, so a screen reader says "31 upvotes", not "triangle 31"."""
    parts = []
    if paper.upvotes:
        parts.append(f"{paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.num_comments:
        parts.append(f"{paper.num_comments} comment{'s' if paper.num_comments != 1 else ''}")
    return " · ".join(parts)


#: Per kind of reason: the heading (None: the reason's label; "{}": the label put in those
#: words) and the verb before its terms.
_KIND_WORDS: dict[str, tuple[str | None, str]] = {
    ReasonKind.TOPIC.value: (None, "matched"),
    ReasonKind.WORDS.value: (None, "shares the words"),
    ReasonKind.AUTHOR.value: ("Followed author", ""),
    ReasonKind.SEMANTIC.value: ("Close in meaning to {}", ""),  # terms: none
    ReasonKind.LIKE.value: ("Like {}", ""),  # the example paper's id; its title as the detail
}


@functools.lru_cache(maxsize=4096)
def _reason_view(reason: Reason) -> ReasonView:
    """A reason from its kind, label and terms; an unknown kind shows its label and terms."""
    heading, verb = _KIND_WORDS.get(str(reason.kind), (None, ""))
    if heading is None or "{}" in heading:
        label = (
            one_line(reason.label) if heading is None else heading.format(one_line(reason.label))
        )
        shown = [one_line(t) for t in reason.terms]
    else:  # the label is the detail: "Followed author — Ada Lovelace"
        label, shown = heading, [one_line(reason.label), *map(one_line, reason.terms)]
    shown = [t for t in shown if t]
    folded = len(shown) - MAX_TERMS
    more = f"+\u00a0{folded} more" if folded > 0 else ""  # no line break after the "+"
    detail = ", ".join(shown[:MAX_TERMS])
    verb = verb if detail else ""
    text = " ".join(p for p in (verb, detail, more) if p)
    return ReasonView(label, verb, detail, more, f"{label} — {text}" if text else label)


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
