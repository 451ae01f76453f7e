"""How long ranking takes at scale: ``python -m tests.quality.scale [SUBSCRIBERS] [PAPERS]``.

Papers are the labelled set's real papers repeated under new ids up to PAPERS; subscribers get
2-4 topics of 2-5 keywords drawn from a pool of real keywords and of word pairs taken from the
papers' titles (so the pool has thousands of distinct phrases), some followed authors and
exclusions. Prints the time to index, to score everyone together, and to pick every digest.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace
from datetime import date

from pipeline.models import Subscriber, Topic
from pipeline.ranking import build_index
from tests.quality.evaluate import papers, profiles

DAY = date(2026, 1, 1)


def synthetic(subscribers: int, paper_count: int, seed: int = 1) -> tuple[list, list[Subscriber]]:  # type: ignore[type-arg]
    """Real-shaped papers and subscribers for the measurement."""
    rng = random.Random(seed)
    base = papers()
    corpus = [
        replace(base[i % len(base)], id=f"2601.{i:05d}", upvotes=rng.randrange(60))
        for i in range(paper_count)
    ]
    pool = sorted({k for s in profiles() for t in s.topics for k in t.keywords})
    for p in base:
        words = p.title.split()
        pool.extend(" ".join(words[i : i + 2]) for i in range(len(words) - 1))
    authors = sorted({a for p in base for a in p.authors})
    people = [
        Subscriber(
            email=f"s{i}@example.org",
            topics=tuple(
                Topic(f"T{t}", tuple(rng.sample(pool, rng.randint(2, 5))), rng.choice([0.5, 1, 2]))
                for t in range(rng.randint(2, 4))
            ),
            authors=tuple(rng.sample(authors, rng.randint(0, 2))),
            exclude=tuple(rng.sample(pool, 1)) if i % 5 == 0 else (),
            max_papers=rng.choice([5, 10, 20]),
        )
        for i in range(subscribers)
    ]
    return corpus, people


def main() -> None:
    """Measure and print."""
    subscribers = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    paper_count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    corpus, people = synthetic(subscribers, paper_count)
    started = time.perf_counter()
    index = build_index(corpus)
    indexed = time.perf_counter()
    rankings = index.rank(people)
    ranked = time.perf_counter()
    picked = sum(len(rankings.digest(s, DAY).papers) for s in people)
    done = time.perf_counter()
    print(f"{subscribers} subscribers x {paper_count} papers")
    print(f"  index            {indexed - started:6.2f} s")
    print(f"  score everyone   {ranked - indexed:6.2f} s")
    print(f"  pick digests     {done - ranked:6.2f} s  ({picked} picks with reasons)")
    print(f"  total            {done - started:6.2f} s")


if __name__ == "__main__":
    main()
