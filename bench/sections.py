"""The six benchmark sections. Each returns rows for the table; heavy work runs in a child process.

1. end to end (papermail vs an aiosmtplib baseline into the same SMTP sink), 2. ranking at scale,
3. rendering steps, 4. peak memory of a large run to the outbox, 5. semantic scoring's costs,
6. ranking quality.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import adapters, data
from bench.servers import Sink, papers_api, smtp_sink

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of the table."""

    section: str
    case: str
    metric: str
    value: float | int | str
    unit: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each section runs."""

    subscribers: int = 2_000
    papers: int = 100
    concurrency: int = 4
    rank_subscribers: tuple[int, ...] = (1_000, 10_000, 100_000)
    rank_papers: tuple[int, ...] = (100, 500)
    rank_budget: float = 15.0
    render_samples: int = 40
    memory_subscribers: int = 20_000
    rounds: int = 5
    profile: Path | None = None
    startup_runs: int = 10


QUICK = Sizes(
    subscribers=60,
    rank_subscribers=(200, 1_000),
    rank_papers=(100, 500),
    rank_budget=0.5,
    render_samples=4,
    memory_subscribers=150,
    rounds=1,
    startup_runs=3,
)


def child(job: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``bench.child JOB`` in a fresh interpreter and return its JSON result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERMAIL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="papermail-bench-cwd-") as cwd:
        done = subprocess.run(
            [sys.executable, "-m", "bench.child", job],
            input=json.dumps(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {job} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _e2e_args(work: Path, sizes: Sizes, subscribers: int, url: str) -> dict[str, Any]:
    path = data.write_subscribers(work / "subscribers.yaml", data.profiles(subscribers))
    return {
        "subscribers_file": str(path),
        "subscribers": subscribers,
        "state_dir": str(work / "state"),
        "outbox": str(work / "outbox"),
        "hf_api_url": url,
        "day": data.BENCH_DAY.isoformat(),
        "concurrency": sizes.concurrency,
    }


@dataclass(frozen=True, slots=True)
class _Round:
    """One round of section 1: papermail's run, then the baseline, into the same sink."""

    run: dict[str, Any]
    base: dict[str, Any]
    received: int  # what the sink counted during each
    base_received: int
    sink_run_cpu: float | None  # the sink's CPU seconds during each
    sink_base_cpu: float | None

    @property
    def ours(self) -> float:
        return float(self.run["sent"] / self.run["seconds"])

    @property
    def streaming(self) -> float:
        """papermail's rate once the start-up is over."""
        return float(self.run["sent"] / (self.run["seconds"] - self.run["startup_seconds"]))

    @property
    def theirs(self) -> float:
        return float(self.base["sent"] / self.base["seconds"])


def end_to_end(sizes: Sizes) -> list[Row]:
    """Section 1: emails per second, papermail and the bare-aiosmtplib baseline, and the ratio.

    Run in ``sizes.rounds`` rounds, each papermail then the baseline, and reported as medians:
    on a shared 2-core machine one pair can be off by a third, and a pair measured back to back
    shares the machine's mood, so the ratio is the median of the rounds' ratios.
    """
    n = sizes.subscribers
    case = f"{n} subscribers, {sizes.papers} papers, concurrency {sizes.concurrency}"
    days = {data.BENCH_DAY.isoformat(): data.day_items(sizes.papers)}
    with papers_api(days) as url, smtp_sink() as sink:
        rounds = [_round(sizes, url, sink, profile=k == 0) for k in range(sizes.rounds)]
    last = rounds[-1]
    ours = statistics.median(r.ours for r in rounds)
    theirs = statistics.median(r.theirs for r in rounds)
    ratios = [r.ours / r.theirs for r in rounds]
    checks = [r.received == r.run["sent"] and r.base_received == r.base["sent"] for r in rounds]
    counted = "sink count matches" if all(checks) else "sink count DIFFERS"
    return [
        Row(
            "end to end",
            case,
            "papermail",
            round(ours, 1),
            "emails/s",
            f"median of {len(rounds)} {_spread([r.ours for r in rounds])}; {last.run['sent']} "
            f"sent, {last.run['nothing_to_send']} had nothing to send; {counted}",
        ),
        Row(
            "end to end",
            case,
            "baseline (aiosmtplib alone)",
            round(theirs, 1),
            "emails/s",
            f"median of {len(rounds)} {_spread([r.theirs for r in rounds])}; pre-built messages "
            f"of {last.base['mean_bytes'] / 1024:.1f} KiB mean; {counted}",
        ),
        Row(
            "end to end",
            case,
            "ratio papermail / baseline",
            round(statistics.median(ratios), 3),
            "",
            f"median of the rounds' ratios {_spread(ratios, 2)}; goal >= 0.8",
        ),
        Row(
            "end to end",
            case,
            "papermail start-up",
            round(statistics.median(r.run["startup_seconds"] for r in rounds), 2),
            "s",
            "loading subscribers, gathering, ranking everyone; then "
            f"{statistics.median(r.streaming for r in rounds):.0f} emails/s while sending",
        ),
        Row(
            "end to end",
            case,
            "peak RSS",
            _mib(max(r.run["max_rss_kb"] for r in rounds)),
            "MiB",
            "papermail process",
        ),
        _cpu_row(case, "papermail", [(r.run, r.sink_run_cpu) for r in rounds]),
        _cpu_row(case, "baseline", [(r.base, r.sink_base_cpu) for r in rounds]),
    ]


def _round(sizes: Sizes, url: str, sink: Sink, *, profile: bool) -> _Round:
    """papermail's run from a fresh state directory, then the baseline for as many messages."""
    n = sizes.subscribers
    timeout = 120 + n * 0.2
    with tempfile.TemporaryDirectory(prefix="papermail-bench-") as tmp:
        args = _e2e_args(Path(tmp), sizes, n, url)
        args["smtp_port"] = sink.port
        if sizes.profile and profile:
            args["profile"] = str(sizes.profile)
        counted, cpu = sink.accepted(), sink.cpu_seconds()
        run = child("e2e", args, timeout)
        if not run["sent"] or run["failed"]:
            raise RuntimeError(f"the end-to-end run did not deliver cleanly: {run}")
        received, run_cpu = sink.accepted() - counted, _minus(sink.cpu_seconds(), cpu)
    counted, cpu = sink.accepted(), sink.cpu_seconds()
    base = child(
        "baseline",
        {
            "smtp_port": sink.port,
            "count": run["sent"],
            "concurrency": sizes.concurrency,
            "profiles": n,
            "papers": sizes.papers,
        },
        timeout,
    )
    base_cpu = _minus(sink.cpu_seconds(), cpu)
    return _Round(run, base, received, sink.accepted() - counted, run_cpu, base_cpu)


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _spread(values: list[float], digits: int = 0) -> str:
    return f"({min(values):.{digits}f} to {max(values):.{digits}f})" if len(values) > 1 else ""


def _cpu_row(case: str, name: str, measured: list[tuple[dict[str, Any], float | None]]) -> Row:
    """CPU milliseconds per email of the sending process and of the sink, and their busy share
    (medians over the rounds).

    A process busy for about its whole wall time is the bottleneck: the sink, or the sender.
    """
    sender = statistics.median(m["cpu_seconds"] * 1000 / m["sent"] for m, _ in measured)
    busy = statistics.median(m["cpu_seconds"] / m["seconds"] for m, _ in measured)
    note = f"sender busy {busy:.0%} of the wall time"
    sinks = [(m, cpu) for m, cpu in measured if cpu is not None]
    if sinks:
        sink = statistics.median(cpu * 1000 / m["sent"] for m, cpu in sinks)
        sink_busy = statistics.median(cpu / m["seconds"] for m, cpu in sinks)
        note += f"; sink {sink:.2f} ms per email, busy {sink_busy:.0%}"
    return Row("end to end", case, f"CPU per email, {name}", round(sender, 2), "ms", note)


def ranking_scale(sizes: Sizes) -> list[Row]:
    """Section 2: seconds and peak memory to rank every subscriber x paper cell."""
    rows = []
    for papers in sizes.rank_papers:
        for subscribers in sizes.rank_subscribers:
            cell = child(
                "rank",
                {"subscribers": subscribers, "papers": papers, "budget": sizes.rank_budget},
                timeout=120 + sizes.rank_budget * 4 + subscribers / 500,
            )
            note = (
                f"EXTRAPOLATED from {cell['ranked']} subscribers in "
                f"{cell['measured_seconds']:.1f} s (budget {sizes.rank_budget:g} s)"
                if cell["extrapolated"]
                else "measured"
            )
            case = f"{subscribers} subscribers x {papers} papers"
            rows.append(Row("ranking", case, "time", round(cell["seconds"], 2), "s", note))
            rows.append(
                Row(
                    "ranking",
                    case,
                    "peak RSS",
                    _mib(cell["max_rss_kb"]),
                    "MiB",
                    f"{_mib(cell['rss_before_kb'])} MiB with inputs loaded, before ranking; "
                    f"{cell['picked_per_subscriber']:.1f} papers picked per subscriber",
                )
            )
    return rows


def rendering_steps(sizes: Sizes) -> list[Row]:
    """Section 3: median ms per email for each rendering step, and HTML sizes."""
    day = adapters.day_from_items(data.day_items(sizes.papers), data.BENCH_DAY)
    r = adapters.renderer()
    digests = [
        d
        for p in data.profiles(sizes.render_samples * 3)
        if adapters.picked(d := adapters.rank(adapters.subscriber_from_profile(p), day))
    ][: sizes.render_samples]
    adapters.render_steps(r, digests[0])  # warm caches (cssutils, MJML) outside the timing
    steps = [adapters.render_steps(r, d) for d in digests]
    mean_papers = statistics.mean(adapters.picked(d) for d in digests)
    case = f"{len(steps)} digests, {mean_papers:.1f} papers mean"
    rows = [
        Row(
            "rendering",
            case,
            name,
            round(statistics.median(getattr(s, name) for s in steps) * 1e3, 2),
            "ms/email (median)",
            note,
        )
        for name, note in (
            ("jinja", "HTML and text templates"),
            ("mjml", "mjml-python compile"),
            ("premailer", "CSS inlining"),
            ("mime", "delivery.compose: headers and quoted-printable parts to wire bytes"),
        )
    ]
    total = statistics.median(s.jinja + s.mjml + s.premailer + s.mime for s in steps)
    rows.append(Row("rendering", case, "all steps", round(total * 1e3, 2), "ms/email (median)"))
    for size in (10, 30):
        digest = adapters.rank(adapters.subscriber_from_profile(data.broad_profile(size)), day)
        html = adapters.html_of(adapters.render(r, digest))
        rows.append(
            Row(
                "rendering",
                f"{adapters.picked(digest)}-paper digest",
                "HTML size",
                round(len(html.encode()) / 1024, 1),
                "KiB",
            )
        )
    return rows


def memory(sizes: Sizes) -> list[Row]:
    """Section 4: peak RSS of a large end-to-end run delivered to the outbox."""
    n = sizes.memory_subscribers
    days = {data.BENCH_DAY.isoformat(): data.day_items(sizes.papers)}
    with tempfile.TemporaryDirectory(prefix="papermail-bench-") as tmp, papers_api(days) as url:
        run = child("e2e", _e2e_args(Path(tmp), sizes, n, url), timeout=300 + n * 0.1)
    samples = run["rss_samples"]
    growth = (
        f"RSS {_mib(samples[0][1])} MiB after {samples[0][0]} results, "
        f"{_mib(samples[-1][1])} MiB after {samples[-1][0]}"
        if samples
        else ""
    )
    case = f"{n} subscribers to the outbox"
    return [
        Row("memory", case, "peak RSS", _mib(run["max_rss_kb"]), "MiB", growth),
        Row(
            "memory", case, "RSS before the run", _mib(run["rss_before_kb"]), "MiB", "imports done"
        ),
        Row(
            "memory",
            case,
            "throughput",
            round(run["sent"] / run["seconds"], 1),
            "emails/s",
            f"{run['sent']} written in {run['seconds']:.1f} s",
        ),
    ]


def semantic_costs(sizes: Sizes) -> list[Row]:
    """Section 5: embedding a day, a first run's distinct topics, and ranking with vectors
    against ranking lexically (the largest ranking cell, vectors already computed)."""
    papers = min(sizes.papers, max(sizes.rank_papers))
    with tempfile.TemporaryDirectory(prefix="papermail-bench-state-") as state:
        day = child("embed_day", {"papers": papers, "state_dir": state}, timeout=600)
    rows = [
        Row(
            "semantic",
            f"{papers} papers",
            "embedding CPU",
            round(day["cpu_seconds"], 2),
            "s",
            f"{day['seconds']:.1f} s wall; the day again from the cache {day['cached_seconds']:.2f}"
            f" s; peak RSS {_mib(day['max_rss_kb'])} MiB ({_mib(day['rss_before_kb'])} with the "
            "model loaded)",
        )
    ]
    count = max(sizes.rank_subscribers)
    topics = child(
        "embed_topics",
        {"count": count, "budget": sizes.rank_budget},
        timeout=600 + sizes.rank_budget * 2,
    )
    how = f"extrapolated from {topics['measured']}" if topics["extrapolated"] else "measured"
    rows.append(
        Row(
            "semantic",
            f"{count} distinct topics",
            "first-run embedding",
            round(topics["seconds"], 1),
            "s",
            f"{how}; {topics['cpu_seconds']:.1f} CPU s; a later run reads them from the cache",
        )
    )
    subscribers, width = max(sizes.rank_subscribers), max(sizes.rank_papers)
    case = f"{subscribers} subscribers x {width} papers"
    cells = {}
    for hybrid in (False, True):
        args = {"subscribers": subscribers, "papers": width, "hybrid": hybrid}
        cells[hybrid] = child("rank_hybrid", args, timeout=900)
    for hybrid, cell in cells.items():
        rows.append(
            Row(
                "semantic",
                case,
                "rank, hybrid" if hybrid else "rank, lexical",
                round(cell["seconds"], 2),
                "s",
                f"peak RSS {_mib(cell['max_rss_kb'])} MiB; "
                f"{cell['picked_per_subscriber']:.1f} papers picked per subscriber",
            )
        )
    ratio = cells[True]["seconds"] / cells[False]["seconds"]
    rows.append(
        Row(
            "semantic",
            case,
            "hybrid / lexical",
            round(ratio, 2),
            "",
            "the goal (<= 2) is against the lexical code of before issue 13: docs/ranking.md",
        )
    )
    return rows


def quality(_sizes: Sizes) -> list[Row]:
    """Section 5: nDCG@5 and precision@5 on the ranking issue's labelled set, when present."""
    try:
        module = importlib.import_module("tests.quality.evaluate")
    except ModuleNotFoundError as exc:
        if exc.name not in {"tests", "tests.quality", "tests.quality.evaluate"}:
            raise
        return [
            Row(
                "quality",
                "labelled set",
                "nDCG@5, precision@5",
                "n/a (labelled set not present)",
                note="looked for tests/quality/evaluate.py",
            )
        ]
    evaluate: Callable[[], dict[str, float]] = module.evaluate
    scores = evaluate()
    return [
        Row("quality", "labelled set", name, round(value, 4))
        for name, value in scores.items()
        if isinstance(value, int | float)
    ]


STARTUP_CASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("python -c pass (the floor)", ("-c", "pass")),
    ("papermail --help", ("-m", "pipeline", "--help")),
    ("papermail --version", ("-m", "pipeline", "--version")),
    ("papermail check", ("-m", "pipeline", "check")),
)


def _startup_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERMAIL_")}
    env["PAPERMAIL_SUBSCRIBERS"] = str(REPO / "examples" / "subscribers")
    return env


def _startup_once(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, check=True, timeout=120
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def startup(sizes: Sizes) -> list[Row]:
    """Section 6: how long the quick commands take from exec to exit.

    Each case runs ``python -m pipeline ARGS`` in a fresh process, from an empty folder with a
    clean ``PAPERMAIL_*`` environment (the example subscribers for ``check``): the median wall
    time beside the CPU time (user + system, less disturbed by other load on the machine), and
    ``python -c pass`` as the floor no command can beat.
    """
    rows = []
    env = _startup_environment()
    with tempfile.TemporaryDirectory(prefix="papermail-bench-") as tmp:
        for case, args in STARTUP_CASES:
            _startup_once(args, Path(tmp), env)  # warm the file cache, as a second call would
            runs = [_startup_once(args, Path(tmp), env) for _ in range(sizes.startup_runs)]
            walls = [w for w, _ in runs]
            cpus = [c for _, c in runs]
            spread = f"{len(runs)} runs, wall min {min(walls) * 1000:.0f} ms"
            rows.append(
                Row("startup", case, "wall", round(statistics.median(walls) * 1000), "ms", spread)
            )
            rows.append(Row("startup", case, "cpu", round(statistics.median(cpus) * 1000), "ms"))
    return rows


SECTIONS: dict[str, Callable[[Sizes], list[Row]]] = {
    "e2e": end_to_end,
    "ranking": ranking_scale,
    "rendering": rendering_steps,
    "memory": memory,
    "semantic": semantic_costs,
    "quality": quality,
    "startup": startup,
}
