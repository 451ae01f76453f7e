"""The frozen records that move between the stages.

settings → ``Subscriber`` → gather (``Day`` of ``Paper``) → rank (``Digest`` of ``ScoredPaper`` with
``Reason``) → render (``RenderedEmail``) → deliver (``DeliveryResult``) → ``RunReport``.
Every record is immutable, so a stage can never change what an earlier stage produced.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

Source = Literal["huggingface", "arxiv"]


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper of a day, with clean text fields (SPEC's paper object)."""

    id: str  # bare arXiv id, no version
    title: str
    abstract: str
    authors: tuple[str, ...]
    published: date
    upvotes: int
    url: str
    pdf_url: str
    source: Source
    ai_summary: str | None = None
    keywords: tuple[str, ...] = ()
    github_url: str | None = None
    project_url: str | None = None
    categories: tuple[str, ...] = ()
    num_comments: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The SPEC paper object: required fields always, optional ones only when known."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "published": self.published.isoformat(),
            "upvotes": self.upvotes,
            "url": self.url,
            "pdf_url": self.pdf_url,
            "source": self.source,
        }
        optional: dict[str, Any] = {
            "ai_summary": self.ai_summary,
            "keywords": list(self.keywords) or None,
            "github_url": self.github_url,
            "project_url": self.project_url,
            "categories": list(self.categories) or None,
            "num_comments": self.num_comments,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Paper:
        """Read back what ``to_json`` wrote (the archive's format)."""
        return cls(
            id=data["id"],
            title=data["title"],
            abstract=data["abstract"],
            authors=tuple(data["authors"]),
            published=date.fromisoformat(data["published"]),
            upvotes=sane_count(data["upvotes"]) or 0,
            url=data["url"],
            pdf_url=data["pdf_url"],
            source=data["source"],
            ai_summary=data.get("ai_summary"),
            keywords=tuple(data.get("keywords") or ()),
            github_url=data.get("github_url"),
            project_url=data.get("project_url"),
            categories=tuple(data.get("categories") or ()),
            num_comments=sane_count(data.get("num_comments")),
        )


MAX_COUNT = 10**9  # upvotes or comments beyond this are not a real count (and overflow int64)


def sane_count(value: object) -> int | None:
    """A count of upvotes or comments as a whole number in ``0 … MAX_COUNT``, or None when it is
    missing, not a number, or out of that range ("unknown"). Also guards the archive: a day
    archived before counts were bounded cannot overflow the ranking."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value) if not isinstance(value, int) else value
    except ValueError:
        return None
    if not 0 <= number <= MAX_COUNT:  # also false for NaN
        return None
    return int(number)


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An upstream item that could not be turned into a paper, and why."""

    source: Source
    position: int
    reason: str


@dataclass(frozen=True, slots=True)
class Day:
    """Everything gathered for one Daily Papers day."""

    day: date
    papers: tuple[Paper, ...]
    skipped: tuple[SkippedItem, ...] = ()
    categories: tuple[str, ...] = ()  # the arXiv categories gathered for this day


@dataclass(frozen=True, slots=True)
class Topic:
    """A subscriber's topic: a label, the words or phrases that signal it, and its weight."""

    name: str
    keywords: tuple[str, ...]
    weight: float = 1.0


def slug_of(email: str) -> str:
    """A file-name-safe, readable and distinct name for an address (outbox and preview files):
    ``ada@example.org`` → ``ada_example.org-<10 hex digits>``. The readable part alone would
    merge ``a+b@``, ``a_b@`` and ``a/b@``; the hash of the whole (lower-cased) address keeps them
    apart, and the readable part is cut so that the name stays well under 255 bytes."""
    lowered = email.lower()
    readable = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in lowered)
    digest = hashlib.sha256(lowered.encode("utf-8")).hexdigest()[:10]
    return f"{readable[:80]}-{digest}"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One subscriber's validated preferences, and the file they came from."""

    email: str
    topics: tuple[Topic, ...] = ()
    name: str | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_papers: int = 10
    min_upvotes: int = 0
    send_empty: bool = False
    frequency: Literal["daily", "weekly"] = "daily"
    weekday: str | None = None
    paused: bool = False
    source_file: Path | None = None
    like: tuple[str, ...] = ()  # arXiv ids of example papers: "more like these"

    @property
    def slug(self) -> str:
        """A file-name-safe form of the e-mail address (preview and outbox file names)."""
        return slug_of(self.email)


class ReasonKind(enum.StrEnum):
    """Why a paper was picked."""

    TOPIC = "topic"
    WORDS = "words"  # shares a topic's words (BM25) though none of its keywords (label: the topic)
    AUTHOR = "author"
    SEMANTIC = "semantic"  # close in meaning to a topic (label: the topic's name)
    LIKE = "like"  # close to an example paper (label: its arXiv id; terms: its title)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason a paper was picked: a topic and the terms that matched, a followed author, a
    topic the paper is close to in meaning, or an example paper it is like."""

    kind: ReasonKind
    label: str
    terms: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind is ReasonKind.AUTHOR:
            return f"by {self.label}"
        if self.kind is ReasonKind.SEMANTIC:
            return f"close to {self.label}"
        if self.kind is ReasonKind.LIKE:
            return f"like {self.label}: {self.terms[0]}" if self.terms else f"like {self.label}"
        if self.kind is ReasonKind.WORDS:
            return f"{self.label}: the words {', '.join(self.terms)}"
        return f"{self.label}: {', '.join(self.terms)}" if self.terms else self.label


@dataclass(frozen=True, slots=True)
class ScoredPaper:
    """A paper picked for a subscriber, with its relevance score and reasons."""

    paper: Paper
    score: float
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, Any]:
        """SPEC's ``explain --json`` object."""
        return {
            "id": self.paper.id,
            "title": self.paper.title,
            "score": round(self.score, 4),
            "reasons": [str(r) for r in self.reasons],
        }


@dataclass(frozen=True, slots=True)
class Digest:
    """What one subscriber gets for one day, best first."""

    subscriber: Subscriber
    day: date
    papers: tuple[ScoredPaper, ...]
    covers: tuple[date, ...] = ()  # the days whose papers it draws on (planning fills them in)
    waiting: tuple[date, ...] = ()  # days it should cover that could not be gathered yet


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A digest rendered to its subject, HTML and text parts."""

    digest: Digest  # what the email holds: fewer papers than ranked when trimmed for size
    subject: str
    html: str
    text: str
    trimmed: str | None = None  # what was cut to stay under Gmail's clipping size, if anything
    #: The HTML as the pieces it was assembled from (joined, they are ``html``), or () when made
    #: whole. Most pieces are the same string in every email of a run (layout, paper cards), so
    #: delivery encodes each of those once.
    html_parts: tuple[str, ...] = ()


class DeliveryStatus(enum.StrEnum):
    """What happened to one digest."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"
    NOTHING_TO_SEND = "nothing_to_send"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"  # paused, or a weekly subscriber on another weekday
    FAILED_PERMANENT = "failed_permanent"
    FAILED_TRANSIENT = "failed_transient"
    UNCERTAIN = "uncertain"  # the DATA step timed out: the server may have it; not resent


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome for one subscriber and day."""

    email: str
    day: date
    status: DeliveryStatus
    papers: int = 0
    detail: str = ""
    unreachable: bool = False  # the transport could not be reached at all (exit 69)
    attempts: int = 0  # delivery attempts made by this run
    covers: tuple[date, ...] = ()  # the days whose papers the digest draws on (catch-up, weekly)
    waiting: tuple[date, ...] = ()  # days it should cover, not gathered yet: a later digest will
    message_id: str = ""  # the Message-ID of the digest, when it was delivered


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run did, for the summary on stdout and the JSON report in the state directory."""

    day: date
    dry_run: bool
    papers_gathered: int
    results: tuple[DeliveryResult, ...]
    problems: tuple[str, ...] = ()  # every problem in the subscriber files, one line each
    invalid_subscribers: int = 0  # subscriber entries (or whole files) those problems rejected
    skipped_items: tuple[SkippedItem, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    stopped: str = ""  # why the run stopped early (a signal, the server refusing the run), if so
    stop_code: int = 0  # the exit code that stop means (130, 143, 78, 69), 0 when not stopped
    started: datetime | None = None  # when the command started (UTC)
    finished: datetime | None = None  # when the report was written (UTC)
    exit_code: int | None = None  # what the command exits with
    version: str = ""  # papermail's version
    transport: str = ""  # where mail went: an smtp:// URL without credentials, or the outbox
    outbox: bool = False  # True when mail went to the outbox (no PAPERMAIL_SMTP_HOST)

    def count(self, status: DeliveryStatus) -> int:
        """How many subscribers ended with ``status``."""
        return sum(1 for r in self.results if r.status is status)

    @property
    def missing_days(self) -> tuple[date, ...]:
        """The days some digest waits for: they could not be gathered (oldest first)."""
        return tuple(sorted({d for r in self.results for d in r.waiting}))

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, when both are known."""
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()

    def counts(self) -> dict[str, int]:
        """Every status that happened at least once, with its count, in the enum's order."""
        return {s.value: n for s in DeliveryStatus if (n := self.count(s))}

    def to_json(self) -> dict[str, Any]:
        """The report as written to ``<state>/reports/``."""
        return {
            "day": self.day.isoformat(),
            "version": self.version,
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "duration_s": None if self.duration is None else round(self.duration, 3),
            "exit_code": self.exit_code,
            "transport": self.transport,
            "outbox": self.outbox,
            "dry_run": self.dry_run,
            "papers_gathered": self.papers_gathered,
            "summary": {s.value: self.count(s) for s in DeliveryStatus}
            | {
                "invalid_subscribers": self.invalid_subscribers,
                "skipped_upstream_items": len(self.skipped_items),
            },
            "results": [
                {
                    "email": r.email,
                    "day": r.day.isoformat(),
                    "status": r.status.value,
                    "papers": r.papers,
                    "detail": r.detail,
                    "attempts": r.attempts,
                    "covers": [d.isoformat() for d in r.covers],
                    "waiting": [d.isoformat() for d in r.waiting],
                    "message_id": r.message_id or None,
                }
                for r in self.results
            ],
            "problems": list(self.problems),
            "skipped_items": [
                {"source": s.source, "position": s.position, "reason": s.reason}
                for s in self.skipped_items
            ],
            "warnings": list(self.warnings),
            "missing_days": [d.isoformat() for d in self.missing_days],
        } | ({"stopped": self.stopped} if self.stopped else {})
