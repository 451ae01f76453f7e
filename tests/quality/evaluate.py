"""Ranking quality on a labelled set: nDCG@5 and precision@5 over researchers' profiles.

The set: ``profiles.yaml`` (subscriber files written as researchers write them), the papers of the
bundled sample day plus ``papers.json`` (real arXiv papers, abstracts condensed), and
``labels.yaml`` (every profile x paper pair graded 0/1/2 from the abstract's meaning). Each
profile's digest is ranked exactly as a run would rank it (floor, exclusions, authors, max_papers)
and compared with the grades.

``python -m tests.quality.evaluate`` prints the figures; ``evaluate()`` returns them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import yaml

from pipeline.models import Paper, Subscriber
from pipeline.ranking import rank_all
from pipeline.sources.huggingface import parse_items
from pipeline.sources.sample import SAMPLE_DAY, sample_items
from pipeline.subscribers import load_subscribers

HERE = Path(__file__).resolve().parent
K = 5


def papers() -> tuple[Paper, ...]:
    """The labelled papers: the bundled sample day's and the extra real papers."""
    extra = json.loads((HERE / "papers.json").read_text(encoding="utf-8"))
    return parse_items(sample_items(), SAMPLE_DAY).papers + tuple(Paper.from_json(p) for p in extra)


def profiles() -> tuple[Subscriber, ...]:
    """The researchers' subscriber files (they must validate like any subscriber file)."""
    loaded = load_subscribers(HERE / "profiles.yaml")
    if loaded.problems:
        raise ValueError("; ".join(str(p) for p in loaded.problems))
    return loaded.subscribers


def labels() -> dict[str, dict[str, int]]:
    """Profile e-mail → paper id → grade; unlisted pairs were judged 0."""
    text = (HERE / "labels.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar a string: ids are not floats
    return {email: {str(k): int(v) for k, v in grades.items()} for email, grades in data.items()}


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


def evaluate() -> dict[str, float]:
    """Mean nDCG@5, precision@5 (and nDCG@10, the digests' precision) over the profiles."""
    corpus = papers()
    ids = {p.id for p in corpus}
    grades = labels()
    subscribers = profiles()
    rankings = rank_all(corpus, subscribers)
    out: dict[str, float] = {}
    ndcgs: list[float] = []
    ndcgs10: list[float] = []
    precisions: list[float] = []
    picked_relevant = picked_total = 0
    for sub in subscribers:
        truth = grades[sub.email]
        unknown = set(truth) - ids
        if unknown:
            raise ValueError(f"labels for {sub.email} name unknown papers: {sorted(unknown)}")
        digest = rankings.digest(sub, SAMPLE_DAY)
        ranked = [truth.get(s.paper.id, 0) for s in digest.papers]
        all_grades = [truth.get(pid, 0) for pid in ids]
        ndcgs.append(ndcg_at(ranked, all_grades))
        ndcgs10.append(ndcg_at(ranked, all_grades, 10))
        precisions.append(precision_at(ranked))
        out[f"ndcg@5 {sub.email}"] = ndcgs[-1]
        out[f"precision@5 {sub.email}"] = precisions[-1]
        picked_relevant += sum(1 for g in ranked if g >= 1)
        picked_total += len(ranked)
    out["ndcg@5"] = sum(ndcgs) / len(ndcgs)
    out["precision@5"] = sum(precisions) / len(precisions)
    out["ndcg@10"] = sum(ndcgs10) / len(ndcgs10)
    out["digest_precision"] = picked_relevant / picked_total if picked_total else 0.0
    out["profiles"] = float(len(subscribers))
    out["papers"] = float(len(corpus))
    return out


def main() -> None:
    """Print the figures, the means first."""
    figures = evaluate()
    for key in ("ndcg@5", "precision@5", "ndcg@10", "digest_precision", "profiles", "papers"):
        print(f"{key:<18} {figures[key]:.3f}")
    for key, value in figures.items():
        if " " in key:
            print(f"  {key:<36} {value:.3f}")


if __name__ == "__main__":
    main()
