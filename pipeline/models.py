"""The frozen records that move between the stages.

settings → ``Subscriber`` → gather (``Day`` of ``Paper``) → rank (``Digest`` of ``ScoredPaper`` with
``Reason``) → render (``RenderedEmail``) → deliver (``DeliveryResult``) → ``RunReport``.
Every record is immutable, so a stage can never change what an earlier stage produced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
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
            upvotes=int(data["upvotes"]),
            url=data["url"],
            pdf_url=data["pdf_url"],
            source=data["source"],
            ai_summary=data.get("ai_summary"),
            keywords=tuple(data.get("keywords") or ()),
            github_url=data.get("github_url"),
            project_url=data.get("project_url"),
            categories=tuple(data.get("categories") or ()),
            num_comments=data.get("num_comments"),
        )


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
    """A file-name-safe form of an e-mail address: ``ada@example.org`` → ``ada_example.org``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in email.lower())


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

    def count(self, status: DeliveryStatus) -> int:
        """How many subscribers ended with ``status``."""
        return sum(1 for r in self.results if r.status is status)

    def to_json(self) -> dict[str, Any]:
        """The report as written to ``<state>/reports/``."""
        return {
            "day": self.day.isoformat(),
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
                }
                for r in self.results
            ],
            "problems": list(self.problems),
            "skipped_items": [
                {"source": s.source, "position": s.position, "reason": s.reason}
                for s in self.skipped_items
            ],
            "warnings": list(self.warnings),
        }
