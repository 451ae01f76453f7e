"""Planning: which days a subscriber's digest covers, and which papers it holds.

A daily digest covers the run's day plus the days of the last ``CATCH_UP_DAYS`` that no earlier
digest of that subscriber covered (a missed run, or a day that could not be gathered then); a
weekly one covers the week. Before planning, a run gathers the earlier days its digests cover
and the archive lacks (``gather_covered``); a day that still cannot be gathered is left out of
the digest, which "waits" for it: it is not recorded as covered, so a later digest covers it.

A run ranks every subscriber once over the papers of every covered day (``rank_pool``) and plans
each digest from that ``Pool``; ``plan`` ranks one subscriber alone (``explain``). Papers already
sent, or possibly sent, are never offered again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Protocol

from pipeline import ranking
from pipeline.errors import SourceError
from pipeline.models import Day, Digest, Paper, Subscriber

if TYPE_CHECKING:
    from pipeline.ledger import Served

log = logging.getLogger(__name__)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: A digest draws on at most this many days: a daily subscriber's missed days, a weekly one's week.
CATCH_UP_DAYS = 7
#: Archived days by date (None when a day was never gathered).
Archive = Callable[[date], Day | None]
#: The semantic vectors for these days' papers and these subscribers (``pipeline.semantic``), or
#: None: ranking is then lexical.
Meanings = Callable[[Sequence[Day], Sequence[Subscriber]], ranking.Meaning | None]


class History(Protocol):
    """What planning reads from the delivery ledger (``pipeline.ledger.Ledger`` is one)."""

    def last_covered(self, email: str, *, before: date) -> date | None:
        """The latest day before ``before`` for which ``email`` was served, or None (new)."""

    def sent_papers(self, email: str, *, other_than: date) -> frozenset[str]:
        """Ids of every paper delivered (or possibly delivered) to ``email`` for other days."""

    def served_since(
        self, since: date, *, before: date, email: str | None = None
    ) -> dict[str, list[Served]]:
        """The digests that served each subscriber (or only ``email``) from ``since`` to before
        ``before``, with the days each covered, by lower-case address."""

    def sent_on(self, day: date) -> frozenset[str]:
        """The lower-case addresses whose digest for ``day`` was sent (or possibly sent)."""


def no_archive(_day: date) -> Day | None:
    """An archive that holds no day (the run's own day is always covered)."""
    return None


def covered_days(subscriber: Subscriber, day: date, ledger: History | None) -> tuple[date, ...]:
    """The days whose papers ``subscriber``'s digest for ``day`` draws on, oldest first.

    Weekly: the 7 days ending on ``day``. Daily: ``day``, plus the days of the 6 before it that
    no earlier digest covered, from the first day the subscriber was served (a new subscriber
    starts with ``day``). A digest recorded before covered days were kept counts as covering
    every day up to its own.
    """
    return days_to_cover([subscriber], day, ledger, email=subscriber.email)[subscriber.email]


def days_to_cover(
    subscribers: Sequence[Subscriber], day: date, ledger: History | None, email: str | None = None
) -> dict[str, tuple[date, ...]]:
    """``covered_days`` of every one of ``subscribers`` (by address), the ledger read at once
    (only ``email``'s rows, when given)."""
    earliest = day - timedelta(days=CATCH_UP_DAYS - 1)
    window = tuple(earliest + timedelta(days=n) for n in range(CATCH_UP_DAYS))
    recent = ledger.served_since(earliest, before=day, email=email) if ledger else {}
    days_of: dict[str, tuple[date, ...]] = {}
    for subscriber in subscribers:
        served = recent.get(subscriber.email.lower())
        if subscriber.frequency == "weekly":
            days_of[subscriber.email] = window
        elif served:
            days_of[subscriber.email] = _not_covered(window, served)
        elif ledger and ledger.last_covered(subscriber.email, before=earliest):
            days_of[subscriber.email] = window  # served before the window, not since
        else:
            days_of[subscriber.email] = (day,)  # new
    return days_of


def _not_covered(window: tuple[date, ...], served: Sequence[Served]) -> tuple[date, ...]:
    """The days of ``window`` that none of these digests covered, from the first one's on."""
    first = min(min(s.covers, default=s.day) for s in served)
    done: set[date] = set()
    for digest in served:
        done.update(digest.covers or (d for d in window if d <= digest.day))
    return tuple(d for d in window if d >= first and d not in done)


def archived_days(days: Sequence[date], day: Day, archive: Archive) -> list[Day]:
    """The run's day and the archived ones among ``days`` (what semantic vectors are cached by)."""
    found = [day if when == day.day else archive(when) for when in days]
    return [d for d in found if d is not None]


def papers_of(
    days: Sequence[date], day: Day, archive: Archive
) -> tuple[tuple[date, ...], list[Paper]]:
    """The archived days among ``days`` (the run's own day always counts) and their papers.

    Newest day first, each paper once; a day that is not in the archive is simply not covered.
    """
    found: list[date] = []
    papers: list[Paper] = []
    seen: set[str] = set()
    for when in sorted(days, reverse=True):
        archived = day if when == day.day else archive(when)
        if archived is None:
            continue
        found.append(when)
        for paper in archived.papers:
            if paper.id not in seen:
                seen.add(paper.id)
                papers.append(paper)
    return tuple(sorted(found)), papers


def plan(
    subscriber: Subscriber,
    day: Day,
    ledger: History | None,
    archive: Archive = no_archive,
    rankings: ranking.Rankings | None = None,
    *,
    meanings: Meanings | None = None,
) -> tuple[Digest, tuple[date, ...]]:
    """The digest ``subscriber`` gets for ``day`` and the days it covers; never a paper twice.

    ``rankings`` holds the run's scores for every subscriber over the papers of every day some
    digest covers (``rank_pool``, once a run); without it this subscriber is ranked alone.
    """
    wanted = covered_days(subscriber, day.day, ledger)
    covers, papers = papers_of(wanted, day, archive)
    if rankings is None:
        meaning = meanings(archived_days(wanted, day, archive), [subscriber]) if meanings else None
        rankings = ranking.rank_all(papers, [subscriber], meaning)
    among = frozenset(p.id for p in papers)
    digest = _digest(rankings, subscriber, day.day, ledger, among, wanted=wanted, covers=covers)
    return digest, covers


def _digest(
    rankings: ranking.Rankings,
    subscriber: Subscriber,
    day: date,
    ledger: History | None,
    among: frozenset[str],
    *,
    wanted: tuple[date, ...],
    covers: tuple[date, ...],
) -> Digest:
    """The digest from ``rankings`` among those paper ids, without what was (maybe) sent before,
    with the days it covers and those of ``wanted`` it waits for."""
    sent = ledger.sent_papers(subscriber.email, other_than=day) if ledger else frozenset()
    digest = rankings.digest(subscriber, day, already_sent=sent, among=among)
    waiting = tuple(d for d in wanted if d not in covers)
    return dataclasses.replace(digest, covers=covers, waiting=waiting)


@dataclass(frozen=True, slots=True)
class Pool:
    """What a run plans every digest from (``rank_pool``, once a run): the days each subscriber's
    digest covers and, for each distinct set of covered days, the papers of those days and every
    subscriber who covers them scored against those papers.

    The covered days are read from the ledger once, here: a run writes only its own day, which
    they never depend on.
    """

    day: Day
    days_of: Mapping[str, tuple[date, ...]]  # by e-mail address
    #: covered days wanted → (the days at hand, their papers' ids, their subscribers' rankings)
    holding: Mapping[tuple[date, ...], tuple[tuple[date, ...], frozenset[str], ranking.Rankings]]

    def plan(
        self, subscriber: Subscriber, ledger: History | None
    ) -> tuple[Digest, tuple[date, ...]]:
        """``plan`` for one of the pool's subscribers, without working the days out again."""
        wanted = self.days_of[subscriber.email]
        covers, among, rankings = self.holding[wanted]
        digest = _digest(
            rankings, subscriber, self.day.day, ledger, among, wanted=wanted, covers=covers
        )
        return digest, covers


def rank_pool(
    subscribers: Sequence[Subscriber],
    day: Day,
    ledger: History | None,
    archive: Archive,
    meanings: Meanings | None = None,
) -> Pool:
    """Score every subscriber once, with the others who cover the same days, against the papers
    of those days: as each would be ranked alone (``plan``), and without a weekly subscriber's
    seven days of papers crowding the daily subscribers' candidates."""
    days_of = days_to_cover(subscribers, day.day, ledger)
    groups: dict[tuple[date, ...], list[Subscriber]] = {}
    for subscriber in subscribers:
        groups.setdefault(days_of[subscriber.email], []).append(subscriber)
    every_day = sorted({when for days in groups for when in days})
    meaning = meanings(archived_days(every_day, day, archive), subscribers) if meanings else None
    holding = {}
    known: ranking.Indexed = {}  # each paper indexed once, though the sets of days overlap
    for days, members in groups.items():
        covers, papers = papers_of(days, day, archive)
        rankings = ranking.rank_all(papers, members, meaning, known=known)
        holding[days] = (covers, frozenset(p.id for p in papers), rankings)
    return Pool(day, days_of, holding)


def digest_for(
    subscriber: Subscriber,
    day: Day,
    ledger: History | None,
    rankings: ranking.Rankings | None = None,
    *,
    archive: Archive = no_archive,
    meanings: Meanings | None = None,
) -> Digest:
    """The digest ``subscriber`` would get for ``day``, leaving out papers already sent to them."""
    return plan(subscriber, day, ledger, archive, rankings, meanings=meanings)[0]


@dataclass(frozen=True, slots=True)
class Gathered:
    """The earlier days a run's digests cover, as ``gather_covered`` found them: those at hand
    (archived before, or gathered now) and those that could not be gathered (``missing``)."""

    days: Mapping[date, Day]
    missing: tuple[date, ...]
    fallback: Archive = no_archive  # days no digest of the run needed

    def archive(self, day: date) -> Day | None:
        """The day for planning: the gathered one, else the fallback's."""
        return self.days.get(day) or self.fallback(day)


def gather_covered(
    subscribers: Sequence[Subscriber],
    day: date,
    ledger: History | None,
    gather: Callable[[date], Day],
    fallback: Archive = no_archive,
) -> Gathered:
    """Gather the days before ``day`` that the digests of ``day`` cover, oldest first.

    ``gather`` is the run's own gathering (the archive, else the sources with their retries,
    paging and cleaning, archiving what it fetches), so a day archived already costs no request.
    A day it cannot gather (a ``SourceError``) is logged and left out: the digests that cover it
    wait for it. Subscribers who get nothing on ``day`` (skipped, or sent already) need no day.
    """
    sent = ledger.sent_on(day) if ledger else frozenset()
    served = [s for s in subscribers if not skip_reason(s, day) and s.email.lower() not in sent]
    wanted = {when for days in days_to_cover(served, day, ledger).values() for when in days}
    wanted.discard(day)
    days: dict[date, Day] = {}
    missing: list[date] = []
    for when in sorted(wanted):
        try:
            days[when] = gather(when)
        except SourceError as exc:
            log.warning("%s could not be gathered; the digests covering it wait: %s", when, exc)
            missing.append(when)
    return Gathered(days, tuple(missing), fallback)


def skip_reason(subscriber: Subscriber, day: date) -> str | None:
    """Why ``subscriber`` gets nothing on ``day`` regardless of papers, or None."""
    if subscriber.paused:
        return "paused"
    if subscriber.frequency == "weekly" and WEEKDAYS[day.weekday()] != subscriber.weekday:
        return f"weekly digest, sent on {subscriber.weekday}s"
    return None
