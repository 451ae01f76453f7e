"""Builders of realistic test inputs shared by several test modules: Daily Papers API items (the
recorded live shapes), rendered-stage records (a paper with every field, a digest of them), a
bare paper for ranking, and the whole-text reference of acronym definitions."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import ranking
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


def plain_paper(pid: str, title: str, abstract: str = "A study.", **changes: object) -> Paper:
    """A paper with only the fields ranking and embedding read (one author, no extras)."""
    base = Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=("A. Nobody",),
        published=DAY,
        upvotes=0,
        url=f"https://example.org/{pid}",
        pdf_url=f"https://example.org/{pid}.pdf",
        source="huggingface",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


#: The definition pattern as one regex over the whole text (it backtracks over every word, which
#: ``ranking.definitions`` avoids by looking back from each "(ACRONYM)" only).
_WHOLE_TEXT_DEFINITION = re.compile(
    r"((?:[\w-]+\s+){1,8})\(\s*([A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9]*)\s*\)"
)


def whole_text_definitions(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """A reference for ``ranking.definitions``: the acronyms a text defines, found by the
    whole-text regex (the code before c24db15)."""
    found = []
    for match in _WHOLE_TEXT_DEFINITION.finditer(text):
        words, short = re.split(r"[\s-]+", match.group(1).strip()), match.group(2)
        letters = [c.lower() for c in short.rstrip("s") if c.isupper()]
        picked: list[int] = []
        for i in range(len(words) - 1, -1, -1):
            if len(picked) == len(letters):
                break
            if ranking.fold(words[i]) in ranking.STOPWORDS and picked:
                continue
            picked.append(i)
        if len(picked) != len(letters):
            continue
        if [ranking.fold(words[i])[:1] for i in reversed(picked)] != letters:
            continue
        long_form = ranking.stems(" ".join(words[picked[-1] :]))
        single = ranking.stems(short)
        term = ranking.acronym(short) or (single[0] if len(single) == 1 else None)
        if term and long_form:
            found.append((term, long_form))
    return found
