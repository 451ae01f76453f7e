"""Planning: a run's pool plans every digest exactly as the rankings it holds would alone."""

from __future__ import annotations

import random
from datetime import date, timedelta

from pipeline.ledger import Ledger, State
from pipeline.models import Day, Paper, Subscriber, Topic
from pipeline.planning import covered_days, papers_of, plan, rank_pool
from pipeline.ranking import rank_all

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


def test_the_pool_plans_catch_up_days_and_sent_papers_as_its_rankings_do() -> None:
    """Catch-up days (one missing from the archive), weekly digests, papers sent already and
    arXiv-only papers: what the pool remembers of the days each digest covers changes nothing;
    planning each subscriber with the same rankings, working the days out again, gives the same."""
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

    days = sorted({when for sub in subscribers for when in covered_days(sub, DAY, ledger)})
    rankings = rank_all(papers_of(days, today, archive)[1], subscribers)
    assert plans == [plan(sub, today, ledger, archive, rankings) for sub in subscribers]
    assert {len(covers) for _, covers in plans} >= {1, 2, 4}, "catch-up days were covered"
    assert any(digest.papers for digest, _ in plans)
