"""Choose the fusion's constants on the blind set's dev half (never on the held-out half).

``python -m tests.quality.tune`` scores every combination of the grid below on the dev profiles
and prints the best ones by the objective: the mean of nDCG@5 and must-see recall@10, with the
digests' precision as a small third term (so that the floor does not pad digests with noise).
The chosen values are then written into ``pipeline/ranking.py`` by hand, and only then is the
held-out half scored (``python -m tests.quality.evaluate``).
"""

from __future__ import annotations

import itertools
import sys

from pipeline import ranking
from tests.quality.evaluate import blind_set, first_set, lexical, papermail, score

GRID = {
    "BM25_SHARE": (0.5, 0.7, 0.85),
    "BM25_REFERENCE": (0.0, 5.0, 10.0, 15.0, 20.0),
    "SEMANTIC_BLEND": (0.1, 0.2, 0.3),
    "SEMANTIC_FLOOR": (0.2, 0.3),
    "LEXICAL_HALF": (2.0, 4.0),
    "MIN_RELEVANCE": (0.1, 0.15, 0.2, 0.25, 0.3),
}
LEXICAL_GRID = {
    "BM25_SHARE": (0.5, 0.7, 0.85),
    "LEXICAL_HALF": (2.0, 4.0),
    "MIN_LEXICAL": (0.1, 0.15, 0.2, 0.25, 0.3),
}


def objective(figures: dict[str, float]) -> float:
    """What the grid search maximises."""
    return (
        figures["ndcg@5"] + figures["must_see_recall@10"] + 0.25 * figures["digest_precision"]
    ) / 2.25


def search(grid: dict[str, tuple[float, ...]], *, semantic: bool) -> list[tuple[float, dict]]:
    """Every combination's dev figures, best first."""
    labelled = blind_set() if "--first" not in sys.argv else first_set()
    half = "dev" if "--first" not in sys.argv else "all"
    results = []
    for values in itertools.product(*grid.values()):
        chosen = dict(zip(grid, values, strict=True))
        for name, value in chosen.items():
            setattr(ranking, name, value)
        figures = score(labelled, papermail if semantic else lexical, half)
        results.append((objective(figures), {**chosen, **figures}))
    results.sort(key=lambda r: -r[0])
    return results


def main() -> None:
    """Print the ten best combinations, hybrid then lexical alone."""
    saved = {name: getattr(ranking, name) for name in {*GRID, *LEXICAL_GRID}}
    try:
        for title, grid, semantic in (
            ("hybrid", GRID, True),
            ("lexical", LEXICAL_GRID, False),
        ):
            print(title)
            for value, row in search(grid, semantic=semantic)[:10]:
                cells = " ".join(f"{k}={v:.3g}" for k, v in row.items())
                print(f"  {value:.4f}  {cells}")
    finally:
        for name, value in saved.items():
            setattr(ranking, name, value)


if __name__ == "__main__":
    main()
