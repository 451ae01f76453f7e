"""The benchmark harness measures what it claims: every section runs and its counts add up.

Sizes are tiny and no test looks at a time; the figures themselves come from ``make bench``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import adapters, data
from bench.__main__ import main
from pipeline.subscribers import load_subscribers

TINY = [
    "--quick",
    "--subscribers", "6",
    "--rank-subscribers", "20,40",
    "--rank-papers", "20",
    "--rank-budget", "0.05",
    "--render-samples", "2",
    "--memory-subscribers", "8",
]  # fmt: skip


def test_every_section_runs_and_counts_add_up(tmp_path: Path) -> None:
    """A tiny run fills every section, the sink receives every message, and JSON is written."""
    path = main([*TINY, "--out", str(tmp_path)])
    result = json.loads(path.read_text(encoding="utf-8"))
    rows = result["rows"]
    assert {r["section"] for r in rows} == {
        "end to end",
        "ranking",
        "rendering",
        "memory",
        "semantic",
        "quality",
        "startup",
    }
    e2e = {r["metric"]: r for r in rows if r["section"] == "end to end"}
    assert "sink count matches" in e2e["papermail"]["note"]
    assert "sink count matches" in e2e["baseline (aiosmtplib alone)"]["note"]
    assert e2e["ratio papermail / baseline"]["value"] > 0
    cells = [r for r in rows if r["section"] == "ranking" and r["metric"] == "time"]
    assert [r["case"] for r in cells] == [
        "20 subscribers x 20 papers",
        "40 subscribers x 20 papers",
    ]
    steps = {r["metric"] for r in rows if r["section"] == "rendering"}
    assert {"jinja", "mjml", "premailer", "mime", "HTML size"} <= steps
    startup = {(r["case"], r["metric"]) for r in rows if r["section"] == "startup"}
    assert ("papermail check", "wall") in startup
    assert ("papermail --help", "cpu") in startup
    semantic = {r["metric"]: r for r in rows if r["section"] == "semantic"}
    assert semantic["embedding CPU"]["value"] > 0
    assert semantic["hybrid / lexical"]["value"] > 0
    memory = {r["metric"]: r for r in rows if r["section"] == "memory"}
    assert memory["peak RSS"]["value"] > 0


def test_render_steps_mirror_the_renderer() -> None:
    """The step-by-step mirror produces exactly the HTML that ``Renderer.render`` does."""
    day = adapters.day_from_items(data.day_items(30), data.BENCH_DAY)
    digest = adapters.rank(adapters.subscriber_from_profile(data.broad_profile(10)), day)
    renderer = adapters.renderer()
    steps = adapters.render_steps(renderer, digest)
    assert adapters.picked(digest) == 10
    assert steps.html == adapters.html_of(adapters.render(renderer, digest))


def test_synthetic_inputs_are_valid_and_deterministic(tmp_path: Path) -> None:
    """Generated profiles pass papermail's own validation; the day has unique, parseable papers."""
    profiles = data.profiles(50)
    assert profiles == data.profiles(50)
    loaded = load_subscribers(data.write_subscribers(tmp_path / "subs.yaml", profiles))
    assert not loaded.problems
    assert len(loaded.subscribers) == 50
    day = adapters.day_from_items(data.day_items(100), data.BENCH_DAY)
    assert len(day.papers) == 100
    assert not day.skipped
