"""Builders of realistic test inputs shared by several test modules: Daily Papers API items (the
recorded live shapes) and rendered-stage records (a paper with every field, a digest of them)."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.models import Digest, Paper, Reason, ReasonKind, ScoredPaper, Subscriber, Topic

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


def live_items() -> list[Any]:
    """The recorded page of live-API shapes."""
    items: list[Any] = json.loads((FIXTURES / "daily_papers_live_shapes.json").read_text("utf-8"))
    return items


def many_items(count: int) -> list[Any]:
    """``count`` distinct papers in the live shape (the first recorded item, renumbered)."""
    template = live_items()[0]
    items = []
    for n in range(count):
        item = copy.deepcopy(template)
        item["paper"]["id"] = f"2601.{10000 + n}"
        item["paper"]["title"] = item["title"] = f"Paper number {n}"
        item["paper"]["upvotes"] = count - n
        items.append(item)
    return items


DAY = date(2026, 1, 1)
SUBSCRIBER = Subscriber(
    email="ada@example.org",
    name="Ada",
    topics=(Topic("Grokking", ("grokking",)),),
    source_file=Path("subscribers/ada.yaml"),
)
REASONS = (
    Reason(ReasonKind.TOPIC, "Grokking & training dynamics", ("grokking", "training dynamics")),
    Reason(ReasonKind.AUTHOR, "Cengiz Pehlevan"),
)


def paper(n: int = 1, **changes: object) -> Paper:
    """A realistic paper: long title, a dozen authors, a long abstract, every link."""
    base = Paper(
        id=f"2601.{n:05d}",
        title=f"Scaling Laws for Neural Operators on Irregular Geometries, Part {n}",
        abstract="We study how neural operators scale with data on irregular meshes. " * 12,
        authors=tuple(f"Author{j} Surname{j}" for j in range(12)),
        published=DAY,
        upvotes=42,
        url=f"https://huggingface.co/papers/2601.{n:05d}",
        pdf_url=f"https://arxiv.org/pdf/2601.{n:05d}",
        source="huggingface",
        ai_summary="Neural operators trained on irregular meshes follow power laws in data and "
        "model size; a simple recipe predicts the loss of larger runs from smaller ones.",
        github_url="https://github.com/example/neural-operator-scaling",
        project_url="https://example.github.io/neural-operator-scaling/",
        num_comments=3,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def digest(*papers: Paper) -> Digest:
    """Ada's digest of ``papers``, best first."""
    return Digest(SUBSCRIBER, DAY, tuple(ScoredPaper(p, 2.0, REASONS) for p in papers))
