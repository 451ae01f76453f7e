"""Sample digests that take every branch of the templates.

The ``Renderer`` renders them when it is built, so a broken template stops the run before anything
is sent, and checks that the stencils give the same bytes as the reference pipeline for them.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

from pipeline.models import Digest, Paper, Reason, ReasonKind, ScoredPaper, Subscriber, Topic
from pipeline.rendering.views import OVERVIEW_FROM

_SAMPLE_SUBSCRIBER = Subscriber(
    email="template-check@example.invalid",
    name="Template <Check> & Co",
    topics=(Topic("Template check", ("check",)),),
    source_file=Path("template-check.yaml"),
)


def sample_paper() -> ScoredPaper:
    """A paper with every optional field set, so the template check takes every branch."""
    paper = Paper(
        id="0000.00000",
        title="A sample title with $O(n^2)$ and <markup> & {{ braces }}",
        abstract="A first sentence. A second sentence.",
        authors=("A. Author", "B. Author", "C. Author", "D. Author"),
        published=date(2026, 1, 1),
        upvotes=2,
        url="https://example.invalid/papers/0000.00000",
        pdf_url="https://example.invalid/pdf/0000.00000",
        source="huggingface",
        ai_summary="A summary.",
        github_url="https://example.invalid/code",
        project_url="https://example.invalid/project",
        num_comments=1,
    )
    reasons = (
        Reason(ReasonKind.TOPIC, "Template check", ("check",)),
        Reason(ReasonKind.AUTHOR, "A. Author"),
    )
    return ScoredPaper(paper, 1.0, reasons)


def sample_digests() -> tuple[Digest, ...]:
    """Digests that take every branch: papers with every field and none, 0 to 2 reasons, and
    a digest long enough for the overview list."""
    full = sample_paper()
    bare = dataclasses.replace(
        full.paper,
        id="0000.00001",
        github_url=None,
        project_url=None,
        upvotes=0,
        num_comments=None,
        ai_summary=None,
        title="Bare <b>&amp;</b>",
    )
    papers = (
        full,
        ScoredPaper(bare, 0.5, ()),
        dataclasses.replace(full, reasons=(Reason(ReasonKind.TOPIC, "No terms <i>"),)),
    )
    plain = dataclasses.replace(_SAMPLE_SUBSCRIBER, name=None, source_file=None)
    many = tuple(  # enough papers for the overview list at the top
        dataclasses.replace(
            papers[n % len(papers)],
            paper=dataclasses.replace(papers[n % len(papers)].paper, id=f"0000.{n:05d}"),
        )
        for n in range(OVERVIEW_FROM)
    )
    return (
        Digest(_SAMPLE_SUBSCRIBER, date(2026, 1, 1), papers),
        Digest(_SAMPLE_SUBSCRIBER, date(2026, 1, 1), ()),
        Digest(plain, date(2026, 1, 2), papers[1:]),
        Digest(_SAMPLE_SUBSCRIBER, date(2026, 1, 1), many),
    )
