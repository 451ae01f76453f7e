"""Ranking quality on labelled sets: papermail against a BM25 and a dense baseline.

A set is papers, subscriber profiles, and every (profile, paper) pair graded 0/1/2 (2: must see,
1: worth a look, 0: not relevant). Each ranker makes each profile's digest and the same code scores
it:

- **nDCG@5**: the digest's first five, gains 2^grade - 1, against the best possible five;
- **P@5**: the share of the first five slots holding a relevant paper (an empty slot is a miss);
- **must-see recall@10**: the share of the profile's grade-2 papers among the digest's first ten
  (profiles without one are left out of the mean);
- **digest precision**: the share of all picks, over every profile, that are relevant.

The rankers: ``papermail`` (hybrid: lexical fused with the embedding model's cosines, ranked as a
run ranks: floor, exclusions, authors, ``max_papers``), ``lexical`` (papermail without the model),
``bm25`` (Okapi BM25, ``rank_bm25``, over the stemmed title and abstract, the query being every
topic's name and keywords; the top ``max_papers`` with a positive score) and ``dense`` (the same
model's cosine, each paper scored by its closest topic; the top ``max_papers``).

Sets: ``tests/quality/`` (the first set: 7 plainly written profiles; no split) and
``tests/quality/blind/`` (profiles as new subscribers write them, split into ``dev`` and
``heldout`` halves; several graders' files, combined per pair by the median, the lower of the two
middle grades when their number is even). ``python -m tests.quality.evaluate`` prints the tables.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import yaml
from rank_bm25 import BM25Okapi

from pipeline import ranking
from pipeline.models import Day, Paper, Subscriber
from pipeline.ranking import Meaning, PaperIndex, Rankings, build_index, stems, topic_query
from pipeline.sources.huggingface import parse_items
from pipeline.sources.sample import SAMPLE_DAY, sample_items
from pipeline.subscribers import load_subscribers
from tests.embedding import vectors

HERE = Path(__file__).resolve().parent
BLIND = HERE / "blind"
K = 5
RECALL_AT = 10
METRICS = ("ndcg@5", "p@5", "must_see_recall@10", "digest_precision")
RANKERS = ("papermail", "lexical", "bm25", "dense")
#: The ranking constants chosen on a dev half (``tests/quality/tune.py``).
TUNED = (
    "SEMANTIC_BLEND",
    "SEMANTIC_FLOOR",
    "LEXICAL_HALF",
    "MIN_RELEVANCE",
    "MIN_LEXICAL",
    "PROXIMITY_FACTOR",
    "BM25_SHARE",
    "BM25_REFERENCE",
    "BM25_KEEP",
)

#: A ranker: the set and one profile → the profile's digest, paper ids best first.
Ranker = Callable[["LabelledSet", Subscriber], list[str]]


@dataclass(frozen=True)
class LabelledSet:
    """Papers, profiles, grades (email → paper id → 0/1/2) and each profile's half."""

    name: str
    papers: tuple[Paper, ...]
    profiles: tuple[Subscriber, ...]
    grades: Mapping[str, Mapping[str, int]]
    halves: Mapping[str, str]  # email → "dev" or "heldout" ("all" when the set is not split)

    def half(self, which: str) -> tuple[Subscriber, ...]:
        """The profiles of one half ("all": every profile)."""
        return tuple(p for p in self.profiles if which == "all" or self.halves[p.email] == which)


# --- loading --------------------------------------------------------------------------------------


def _load_profiles(path: Path) -> tuple[Subscriber, ...]:
    loaded = load_subscribers(path)
    if loaded.problems:
        raise ValueError("; ".join(str(p) for p in loaded.problems))
    return loaded.subscribers


def _read_yaml(path: Path) -> object:
    # BaseLoader: every scalar a string, so an id like 2310.06110 is not read as a float
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


@cache
def first_set() -> LabelledSet:
    """``tests/quality/``: the sample day's papers and ``papers.json``; unlisted pairs are 0."""
    extra = json.loads((HERE / "papers.json").read_text(encoding="utf-8"))
    papers = parse_items(sample_items(), SAMPLE_DAY).papers + tuple(
        Paper.from_json(p) for p in extra
    )
    profiles = _load_profiles(HERE / "profiles.yaml")
    data = _read_yaml(HERE / "labels.yaml")
    assert isinstance(data, dict)
    grades = {email: {str(k): int(v) for k, v in g.items()} for email, g in data.items()}
    return LabelledSet("first", papers, profiles, grades, {p.email: "all" for p in profiles})


def median_grade(grades: Sequence[int]) -> int:
    """The graders' combined grade: the median (the lower middle one for an even count)."""
    return int(statistics.median_low(grades))


@cache
def blind_set() -> LabelledSet:
    """``tests/quality/blind/``: papers, profiles, split and every grader's file, combined."""
    # Every paper as a Daily Papers paper: a run offers an arXiv-only paper only to subscribers
    # who follow its categories, and these profiles follow none; graders graded every pair and the
    # baselines see every paper, so papermail is measured on every paper too.
    papers = tuple(
        replace(Paper.from_json(p), source="huggingface")
        for p in json.loads((BLIND / "papers.json").read_text("utf-8"))
    )
    profiles = _load_profiles(BLIND / "profiles.yaml")
    split = _read_yaml(BLIND / "split.yaml")
    assert isinstance(split, dict)
    halves = {str(email): half for half, emails in split.items() for email in emails}
    votes: dict[str, dict[str, list[int]]] = {}
    for path in sorted((BLIND / "grades").glob("*.yaml")):
        data = _read_yaml(path)
        assert isinstance(data, dict)
        for email, graded in data.items():
            for pid, grade in graded.items():
                votes.setdefault(email, {}).setdefault(str(pid), []).append(int(grade))
    grades = {e: {p: median_grade(v) for p, v in g.items()} for e, g in votes.items()}
    return LabelledSet("blind", papers, profiles, grades, halves)


# --- metrics --------------------------------------------------------------------------------------


def dcg(grades: Sequence[int]) -> float:
    """Discounted cumulative gain with exponential gains (2^grade - 1)."""
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at(ranked: Sequence[int], all_grades: Sequence[int], k: int = K) -> float:
    """nDCG@k of a ranked list of grades against the best possible ordering of all grades."""
    ideal = dcg(sorted(all_grades, reverse=True)[:k])
    return dcg(ranked[:k]) / ideal if ideal else 0.0


def precision_at(ranked: Sequence[int], k: int = K) -> float:
    """Share of the first k slots holding a relevant (grade >= 1) paper; empty slots are misses."""
    return sum(1 for g in ranked[:k] if g >= 1) / k


def score(labelled: LabelledSet, ranker: Ranker, half: str = "all") -> dict[str, float]:
    """The four metrics of one ranker over one half's profiles (means; digest precision pooled)."""
    ids = [p.id for p in labelled.papers]
    ndcgs: list[float] = []
    precisions: list[float] = []
    recalls: list[float] = []
    relevant = picked = 0
    for profile in labelled.half(half):
        truth = labelled.grades.get(profile.email, {})
        ranked = [truth.get(pid, 0) for pid in ranker(labelled, profile)]
        ndcgs.append(ndcg_at(ranked, [truth.get(pid, 0) for pid in ids]))
        precisions.append(precision_at(ranked))
        must = sum(1 for pid in ids if truth.get(pid, 0) == 2)
        if must:
            recalls.append(sum(1 for g in ranked[:RECALL_AT] if g == 2) / must)
        relevant += sum(1 for g in ranked if g >= 1)
        picked += len(ranked)
    return {
        "ndcg@5": statistics.fmean(ndcgs) if ndcgs else 0.0,
        "p@5": statistics.fmean(precisions) if precisions else 0.0,
        "must_see_recall@10": statistics.fmean(recalls) if recalls else 0.0,
        "digest_precision": relevant / picked if picked else 0.0,
    }


# --- rankers --------------------------------------------------------------------------------------


_DAYS = {"first": date(2000, 1, 1), "blind": date(2000, 1, 2)}  # the sets' cache keys


def meaning_of(labelled: LabelledSet) -> Meaning:
    """Every paper's and topic's vector (the embedding is cached on disk and per process)."""
    return _meaning(labelled.name)


@cache
def _meaning(name: str) -> Meaning:
    labelled = {"first": first_set, "blind": blind_set}[name]()
    embedded = vectors()
    papers = embedded.for_days([Day(_DAYS[name], labelled.papers)])
    queries = embedded.for_queries(topic_query(t) for p in labelled.profiles for t in p.topics)
    return Meaning(papers=papers, queries=queries)


def papermail(labelled: LabelledSet, profile: Subscriber) -> list[str]:
    """The digest a run would send (hybrid ranking)."""
    rankings = _ranked(labelled.name, semantic=True)
    return [s.paper.id for s in rankings.digest(profile, SAMPLE_DAY).papers]


def lexical(labelled: LabelledSet, profile: Subscriber) -> list[str]:
    """The digest without the embedding model."""
    rankings = _ranked(labelled.name, semantic=False)
    return [s.paper.id for s in rankings.digest(profile, SAMPLE_DAY).papers]


def _rankings(name: str, *, semantic: bool) -> Rankings:
    labelled = {"first": first_set, "blind": blind_set}[name]()
    meaning = meaning_of(labelled) if semantic else None
    return _index(name).rank(labelled.profiles, meaning)


_RANKED: dict[tuple[str, bool, tuple[float, ...]], Rankings] = {}


def _ranked(name: str, *, semantic: bool) -> Rankings:
    """Every profile ranked once per set, mode and value of the tuned constants."""
    key = (name, semantic, tuple(getattr(ranking, c) for c in TUNED))
    if key not in _RANKED:
        _RANKED.clear()
        _RANKED[key] = _rankings(name, semantic=semantic)
    return _RANKED[key]


_INDEXES: dict[tuple[str, tuple[float, ...]], PaperIndex] = {}


def _index(name: str) -> PaperIndex:
    """The set's papers indexed once per value of the constants its phrase scores depend on
    (ranking them again is cheap: the tuning grid does)."""
    key = (name, (ranking.PROXIMITY_FACTOR,))
    if key not in _INDEXES:
        _INDEXES[key] = build_index({"first": first_set, "blind": blind_set}[name]().papers)
    return _INDEXES[key]


@cache
def _bm25(name: str) -> BM25Okapi:
    labelled = {"first": first_set, "blind": blind_set}[name]()
    return BM25Okapi([list(stems(f"{p.title} {p.abstract}")) for p in labelled.papers])


def bm25(labelled: LabelledSet, profile: Subscriber) -> list[str]:
    """Okapi BM25 over the stemmed title and abstract; the query: every topic's name and words."""
    query = list(stems(" ".join(topic_query(t) for t in profile.topics)))
    scores = _bm25(labelled.name).get_scores(query)
    return _top(labelled, scores, profile.max_papers, minimum=1e-9)


def dense(labelled: LabelledSet, profile: Subscriber) -> list[str]:
    """Each paper's cosine with the closest of the profile's topics; the top ``max_papers``."""
    meaning = meaning_of(labelled)
    matrix = np.array([meaning.papers[p.id] for p in labelled.papers])
    queries = np.array([meaning.queries[topic_query(t)] for t in profile.topics])
    scores = (matrix @ queries.T).max(axis=1)
    return _top(labelled, scores, profile.max_papers, minimum=-1.0)


def _top(labelled: LabelledSet, scores: object, limit: int, *, minimum: float) -> list[str]:
    values = np.asarray(scores, dtype=np.float64)
    order = sorted(range(len(values)), key=lambda i: (-values[i], labelled.papers[i].id))
    return [labelled.papers[i].id for i in order[:limit] if values[i] >= minimum]


RANKER_FUNCTIONS: dict[str, Ranker] = {
    "papermail": papermail,
    "lexical": lexical,
    "bm25": bm25,
    "dense": dense,
}


def evaluate(labelled: LabelledSet | None = None, half: str = "all") -> dict[str, float]:
    """papermail's four metrics on one half of a set (the first set by default)."""
    return score(labelled or first_set(), papermail, half)


def table(labelled: LabelledSet, halves: Sequence[str]) -> list[str]:
    """A Markdown table: every ranker's metrics on each half."""
    lines = [
        "| half | ranker | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for half in halves:
        for name in RANKERS:
            figures = score(labelled, RANKER_FUNCTIONS[name], half)
            cells = " | ".join(f"{figures[m]:.3f}" for m in METRICS)
            lines.append(f"| {half} ({len(labelled.half(half))}) | {name} | {cells} |")
    return lines


def main() -> None:
    """Print the tables of both sets (the blind one when its grades are there)."""
    print(f"first set ({len(first_set().profiles)} profiles x {len(first_set().papers)} papers)")
    print("\n".join(table(first_set(), ["all"])))
    if (BLIND / "grades").is_dir():
        blind = blind_set()
        print(f"\nblind set ({len(blind.profiles)} profiles x {len(blind.papers)} papers)")
        print("\n".join(table(blind, ["dev", "heldout"])))


if __name__ == "__main__":
    main()
