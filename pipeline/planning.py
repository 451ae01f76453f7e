"""Planning: which days a subscriber's digest covers, and which papers it holds.

A daily digest covers the run's day plus the days missed since the subscriber was last served (at
most ``CATCH_UP_DAYS`` in all); a weekly one covers the week. A run ranks every subscriber once over
the papers of every covered day (``rank_pool``) and plans each digest from that ``Pool``; ``plan``
ranks one subscriber alone (``explain``). Papers already sent, or possibly sent, are never
offered again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pipeline import ranking
from pipeline.ledger import Ledger
from pipeline.models import Day, Digest, Paper, Subscriber

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: A digest draws on at most this many days: a daily subscriber's missed days, a weekly one's week.
CATCH_UP_DAYS = 7
#: Archived days by date (None when a day was never gathered).
Archive = Callable[[date], Day | None]
#: The semantic vectors for these days' papers and these subscribers (``pipeline.semantic``), or
#: None: ranking is then lexical.
Meanings = Callable[[Sequence[Day], Sequence[Subscriber]], ranking.Meaning | None]


def no_archive(_day: date) -> Day | None:
    """An archive that holds no day (the run's own day is always covered)."""
    return None


def covered_days(subscriber: Subscriber, day: date, ledger: Ledger | None) -> tuple[date, ...]:
    """The days whose papers ``subscriber``'s digest for ``day`` draws on, oldest first.

    Weekly: the 7 days ending on ``day``. Daily: ``day``, plus the days since the last day the
    subscriber was served (at most 7 days in all); a new subscriber starts with ``day``.
    """
    earliest = day - timedelta(days=CATCH_UP_DAYS - 1)
    if subscriber.frequency == "weekly":
        start = earliest
    else:
        last = ledger.last_covered(subscriber.email, before=day) if ledger else None
        start = day if last is None else max(last + timedelta(days=1), earliest)
    return tuple(start + timedelta(days=n) for n in range((day - start).days + 1))


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
    ledger: Ledger | None,
    archive: Archive = no_archive,
    rankings: ranking.Rankings | None = None,
    *,
    meanings: Meanings | None = None,
) -> tuple[Digest, tuple[date, ...]]:
    """The digest ``subscriber`` gets for ``day`` and the days it covers; never a paper twice.

    ``rankings`` holds the run's scores for every subscriber over the papers of every day some
    digest covers (``rank_pool``, once a run); without it this subscriber is ranked alone.
    """
    days = covered_days(subscriber, day.day, ledger)
    covers, papers = papers_of(days, day, archive)
    if rankings is None:
        meaning = meanings(archived_days(days, day, archive), [subscriber]) if meanings else None
        rankings = ranking.rank_all(papers, [subscriber], meaning)
    among = frozenset(p.id for p in papers)
    return _digest(rankings, subscriber, day.day, ledger, among), covers


def _digest(
    rankings: ranking.Rankings,
    subscriber: Subscriber,
    day: date,
    ledger: Ledger | None,
    among: frozenset[str],
) -> Digest:
    """The digest from ``rankings`` among those paper ids, without what was (maybe) sent before."""
    sent = ledger.sent_papers(subscriber.email, other_than=day) if ledger else frozenset()
    return rankings.digest(subscriber, day, already_sent=sent, among=among)


@dataclass(frozen=True, slots=True)
class Pool:
    """What a run plans every digest from (``rank_pool``, once a run): every subscriber scored
    over the papers of every day some digest covers, the days each one's digest covers, and the
    ids of the papers of each distinct set of covered days (nearly every digest has the same).

    The covered days are read from the ledger once, here: a run writes only its own day, which
    they never depend on.
    """

    day: Day
    rankings: ranking.Rankings
    days_of: Mapping[str, tuple[date, ...]]  # by e-mail address
    holding: Mapping[tuple[date, ...], tuple[tuple[date, ...], frozenset[str]]]

    def plan(
        self, subscriber: Subscriber, ledger: Ledger | None
    ) -> tuple[Digest, tuple[date, ...]]:
        """``plan`` for one of the pool's subscribers, without working the days out again."""
        covers, among = self.holding[self.days_of[subscriber.email]]
        return _digest(self.rankings, subscriber, self.day.day, ledger, among), covers


def rank_pool(
    subscribers: Sequence[Subscriber],
    day: Day,
    ledger: Ledger | None,
    archive: Archive,
    meanings: Meanings | None = None,
) -> Pool:
    """Index the papers of every day any of ``subscribers`` will cover, and score them all once."""
    days_of = {s.email: covered_days(s, day.day, ledger) for s in subscribers}
    holding: dict[tuple[date, ...], tuple[tuple[date, ...], frozenset[str]]] = {}
    for days in set(days_of.values()):
        covers, papers = papers_of(days, day, archive)
        holding[days] = (covers, frozenset(p.id for p in papers))
    every_day = sorted({when for days in holding for when in days})
    meaning = meanings(archived_days(every_day, day, archive), subscribers) if meanings else None
    rankings = ranking.rank_all(papers_of(every_day, day, archive)[1], subscribers, meaning)
    return Pool(day, rankings, days_of, holding)


def digest_for(
    subscriber: Subscriber,
    day: Day,
    ledger: Ledger | None,
    rankings: ranking.Rankings | None = None,
    *,
    archive: Archive = no_archive,
    meanings: Meanings | None = None,
) -> Digest:
    """The digest ``subscriber`` would get for ``day``, leaving out papers already sent to them."""
    return plan(subscriber, day, ledger, archive, rankings, meanings=meanings)[0]


def skip_reason(subscriber: Subscriber, day: date) -> str | None:
    """Why ``subscriber`` gets nothing on ``day`` regardless of papers, or None."""
    if subscriber.paused:
        return "paused"
    if subscriber.frequency == "weekly" and WEEKDAYS[day.weekday()] != subscriber.weekday:
        return f"weekly digest, sent on {subscriber.weekday}s"
    return None
