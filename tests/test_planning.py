"""Planning: a run's pool plans every digest exactly as the rankings it holds would alone."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from pipeline.ledger import Ledger, State
from pipeline.models import Day, Paper, Subscriber, Topic
from pipeline.planning import covered_days, plan, rank_pool

DAY = date(2026, 1, 10)
VOCABULARY = ["grokking", "neural operator", "holography", "diffusion model", "PDE", "lattice"]
CATEGORIES = ["cs.LG", "stat.ML", "math.PR"]


def day_of(when: date, rng: random.Random) -> Day:
    """A day of papers: some arXiv-only with categories, some with an id an earlier day had."""
    papers = [
        Paper(
            id=f"2601.{rng.randrange(8) if rng.random() < 0.2 else 100 * when.day + i:05d}",
            title=" ".join(rng.sample(VOCABULARY, 2)),
            abstract=" ".join(rng.sample(VOCABULARY, 3)) + ".",
            authors=(rng.choice(["Ada Lovelace", "Grace Hopper", "Alan Turing"]),),
            published=when,
            upvotes=rng.randrange(20),
            url="https://example.org/",
            pdf_url="https://example.org/pdf",
            source="arxiv" if rng.random() < 0.3 else "huggingface",
            categories=tuple(rng.sample(CATEGORIES, rng.randrange(3))),
        )
        for i in range(12)
    ]
    return Day(when, tuple(papers))


def subscribers_of(rng: random.Random) -> list[Subscriber]:
    """Daily and weekly subscribers with topics, authors, categories and upvote thresholds."""
    return [
        Subscriber(
            email=f"s{i}@example.org",
            topics=(Topic("T", tuple(rng.sample(VOCABULARY, 2)), rng.choice([0.5, 1.0, 2.0])),),
            authors=("G. Hopper",) if i % 3 == 0 else (),
            categories=tuple(rng.sample(CATEGORIES, i % 3)),
            min_upvotes=rng.choice([0, 0, 5]),
            max_papers=rng.choice([3, 5, 10]),
            frequency="weekly" if i % 5 == 0 else "daily",
        )
        for i in range(30)
    ]


def test_the_pool_plans_catch_up_days_and_sent_papers_as_each_subscriber_alone() -> None:
    """Catch-up days (one missing from the archive), weekly digests, papers sent already and
    arXiv-only papers: the pool gives each subscriber the digest they get ranked alone against
    the papers of the days they cover (as ``explain`` ranks them), whoever else is in the run."""
    rng = random.Random(5)
    archived = {DAY - timedelta(days=n): day_of(DAY - timedelta(days=n), rng) for n in (1, 2, 4, 6)}
    today = day_of(DAY, rng)
    archive = archived.get
    subscribers = subscribers_of(rng)
    pool_ids = [p.id for d in (today, *archived.values()) for p in d.papers]
    ledger = Ledger(None)
    for n, sub in enumerate(subscribers[::2]):
        served = DAY - timedelta(days=1 + n % 9)
        ledger.claim(sub.email, served, "<m@example.org>", rng.sample(pool_ids, 6))
        ledger.record(sub.email, served, State.SENT, attempts=1)

    pool = rank_pool(subscribers, today, ledger, archive)
    plans = [pool.plan(sub, ledger) for sub in subscribers]

    assert plans == [plan(sub, today, ledger, archive) for sub in subscribers]
    assert {len(covers) for _, covers in plans} >= {1, 2, 4}, "catch-up days were covered"
    assert any(digest.papers for digest, _ in plans)


def test_a_daily_digest_covers_the_days_no_earlier_digest_covered_within_the_window() -> None:
    """Days an earlier digest waited for (not in its covered days) are covered again, within the
    last seven days; a digest that failed covers nothing; a new subscriber starts with the day."""
    ada = subscribers_of(random.Random(1))[1]
    ledger = Ledger(None)
    assert covered_days(ada, DAY, ledger) == (DAY,)
    before = [DAY - timedelta(days=n) for n in range(11)]
    ledger.claim(ada.email, before[10], "<1@x>", ["p1"], covers=(before[10],))
    ledger.record(ada.email, before[10], State.SENT, attempts=1)
    ledger.record_nothing(ada.email, before[5], covers=(before[8], before[6], before[5]))
    ledger.claim(ada.email, before[2], "<2@x>", ["p2"], covers=(before[4], before[2]))
    ledger.record(ada.email, before[2], State.SENT, attempts=1)
    ledger.claim(ada.email, before[1], "<3@x>", ["p3"], covers=(before[1],))
    ledger.record(ada.email, before[1], State.FAILED_TRANSIENT, attempts=5)
    assert covered_days(ada, DAY, ledger) == (before[3], before[1], DAY)
    assert covered_days(ada, before[4], ledger) == (before[9], before[7], before[4])


def test_a_digest_recorded_before_covered_days_were_kept_covers_every_day_up_to_its_own(
    tmp_path: Path,
) -> None:
    """A ledger written before the ``covers`` column gains it; its rows count as covering every
    day up to theirs, as catch-up assumed then, so no day is sent twice after the upgrade."""
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE digests (email TEXT NOT NULL, day TEXT NOT NULL, state TEXT NOT NULL, "
            "message_id TEXT NOT NULL, papers TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
            " detail TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL, "
            "PRIMARY KEY (email, day))"
        )
        db.execute(
            "INSERT INTO digests VALUES ('s1@example.org', ?, 'sent', '<m@x>', '[]', 1, '', '')",
            ((DAY - timedelta(days=3)).isoformat(),),
        )
    db.close()
    ada = subscribers_of(random.Random(1))[1]
    ledger = Ledger(path)
    assert covered_days(ada, DAY, ledger) == (DAY - timedelta(days=2), DAY - timedelta(days=1), DAY)
    ledger.close()
