"""Merging the sources' papers of one day into one list, one paper per bare arXiv id.

A paper both sources know stays the Hugging Face paper (its upvotes, comments, AI summary and
page) and gains arXiv's categories. Papers only arXiv knows follow, in arXiv's order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from pipeline.models import Day, Paper


def merge_days(base: Day, extra: Day, *, categories: Iterable[str] = ()) -> Day:
    """``base`` with ``extra``'s papers merged in, skipped items of both, and ``categories``."""
    papers = {p.id: p for p in base.papers}
    for paper in extra.papers:
        kept = papers.get(paper.id)
        papers[paper.id] = paper if kept is None else with_categories(kept, paper.categories)
    return Day(
        day=base.day,
        papers=tuple(papers.values()),
        skipped=base.skipped + extra.skipped,
        categories=tuple(sorted({*base.categories, *extra.categories, *categories})),
    )


def with_categories(paper: Paper, categories: Iterable[str]) -> Paper:
    """``paper`` with ``categories`` added to its own (order kept, no repeats)."""
    merged = tuple(dict.fromkeys((*paper.categories, *categories)))
    return paper if merged == paper.categories else dataclasses.replace(paper, categories=merged)
