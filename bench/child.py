"""One measurement in a fresh process: ``python -m bench.child JOB`` with JSON arguments on stdin.

A fresh process per measurement keeps peak-memory figures honest (``ru_maxrss`` of this process
only) and keeps one measurement's caches out of the next. The result is one JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench import adapters, data
from bench.baseline import push


def _status_kb(field: str) -> int | None:
    try:
        lines = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def max_rss_kb() -> int:
    """Peak resident set size of this process so far, in KiB.

    Linux's ``VmHWM`` first: ``ru_maxrss`` survives ``execve`` and so can report the parent's
    size at fork time rather than this process's own peak.
    """
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kb() -> int:
    """Resident set size right now, in KiB (the peak where /proc is missing)."""
    return _status_kb("VmRSS") or max_rss_kb()


def end_to_end(args: dict[str, Any]) -> dict[str, Any]:
    """A whole ``papermail run`` for the bench day; RSS sampled as results come in."""
    settings = adapters.settings_for(
        subscribers=Path(args["subscribers_file"]),
        state_dir=Path(args["state_dir"]),
        outbox=Path(args["outbox"]),
        hf_api_url=args["hf_api_url"],
        smtp_port=args.get("smtp_port"),
        concurrency=args["concurrency"],
    )
    every = max(1, args["subscribers"] // 10)
    done = [0]
    samples: list[tuple[int, int]] = []

    def progress() -> None:
        done[0] += 1
        if done[0] % every == 0:
            samples.append((done[0], rss_kb()))

    serving: list[float] = []
    rss_before = max_rss_kb()
    profiler = cProfile.Profile() if args.get("profile") else None
    started, cpu = time.perf_counter(), time.process_time()
    with adapters.quiet_logs():
        if profiler:
            profiler.enable()
        counts = adapters.run_end_to_end(
            settings,
            date.fromisoformat(args["day"]),
            progress,
            serving=lambda: serving.append(time.perf_counter() - started),
        )
        if profiler:
            profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler:
        profiler.dump_stats(args["profile"])
    return {
        "seconds": seconds,
        "startup_seconds": serving[0] if serving else seconds,
        "cpu_seconds": cpu,
        "sent": counts.sent,
        "nothing_to_send": counts.nothing_to_send,
        "failed": counts.failed,
        "rss_before_kb": rss_before,
        "max_rss_kb": max_rss_kb(),
        "rss_samples": samples,
    }


def baseline(args: dict[str, Any]) -> dict[str, Any]:
    """aiosmtplib alone pushing ``count`` real-sized pre-built messages into the sink."""
    day = adapters.day_from_items(data.day_items(args["papers"]), data.BENCH_DAY)
    messages = list(adapters.prebuilt_messages(data.profiles(args["profiles"]), day, limit=50))
    cpu = time.process_time()
    seconds = asyncio.run(
        push("127.0.0.1", args["smtp_port"], messages, args["count"], args["concurrency"])
    )
    cpu = time.process_time() - cpu
    sizes = [len(m) for _, m in messages]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "sent": args["count"],
        "mean_bytes": sum(sizes) / len(sizes),
    }


def rank_cell(args: dict[str, Any]) -> dict[str, Any]:
    """Rank ``subscribers`` x ``papers`` within a time budget; extrapolate when it runs out."""
    day = adapters.day_from_items(data.day_items(args["papers"]), data.BENCH_DAY)
    subscribers = [adapters.subscriber_from_profile(p) for p in data.profiles(args["subscribers"])]
    rss_before = max_rss_kb()
    budget = args["budget"]
    ranked = picked = 0
    first = 0.0  # scoring everyone and picking the first digest: never extrapolated
    started = time.perf_counter()
    for digest in adapters.rank_each(subscribers, day):
        picked += adapters.picked(digest)
        ranked += 1
        if ranked == 1:
            first = time.perf_counter() - started
        if ranked >= 100 and time.perf_counter() - started > budget:  # 100: a fair per-digest
            break
    elapsed = time.perf_counter() - started
    total = len(subscribers)
    per_digest = (elapsed - first) / (ranked - 1) if ranked > 1 else 0.0
    return {
        "seconds": first + per_digest * (total - 1),
        "measured_seconds": elapsed,
        "ranked": ranked,
        "extrapolated": ranked < total,
        "picked_per_subscriber": picked / ranked,
        "rss_before_kb": rss_before,
        "max_rss_kb": max_rss_kb(),
    }


def embed_day(args: dict[str, Any]) -> dict[str, Any]:
    """Embed a day's papers (CPU and wall seconds), then the same day again from the cache."""
    day = adapters.day_from_items(data.day_items(args["papers"]), data.BENCH_DAY)
    state = Path(args["state_dir"])
    vectors = adapters.embedder(state)
    rss_before = max_rss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    vectors.for_days([day])
    first = (time.perf_counter() - started, time.process_time() - cpu)
    again = adapters.embedder(state)  # a new run: only the disk cache is warm
    started = time.perf_counter()
    again.for_days([day])
    return {
        "seconds": first[0],
        "cpu_seconds": first[1],
        "cached_seconds": time.perf_counter() - started,
        "rss_before_kb": rss_before,
        "max_rss_kb": max_rss_kb(),
    }


def embed_topics(args: dict[str, Any]) -> dict[str, Any]:
    """Embed ``count`` distinct topic texts (a first run where no two subscribers share a topic)
    within a time budget, extrapolating when it runs out."""
    vectors = adapters.embedder(None)
    texts = data.distinct_topics(args["count"])
    batch = 256
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    while done < len(texts) and time.perf_counter() - started < args["budget"]:
        vectors.for_queries(texts[done : done + batch])
        done += len(texts[done : done + batch])
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    return {
        "seconds": elapsed * len(texts) / done,
        "cpu_seconds": cpu_used * len(texts) / done,
        "measured": done,
        "extrapolated": done < len(texts),
        "max_rss_kb": max_rss_kb(),
    }


def rank_hybrid(args: dict[str, Any]) -> dict[str, Any]:
    """Rank ``subscribers`` x ``papers`` with the vectors already computed (warm caches), or
    lexically for comparison, in the same way as ``rank_cell``."""
    day = adapters.day_from_items(data.day_items(args["papers"]), data.BENCH_DAY)
    subscribers = [adapters.subscriber_from_profile(p) for p in data.profiles(args["subscribers"])]
    meaning = None
    if args["hybrid"]:
        meaning = adapters.meaning_for(adapters.embedder(None), day, subscribers)
    rss_before = max_rss_kb()
    started = time.perf_counter()
    picked = sum(adapters.picked(d) for d in adapters.rank_each(subscribers, day, meaning))
    return {
        "seconds": time.perf_counter() - started,
        "picked_per_subscriber": picked / len(subscribers),
        "rss_before_kb": rss_before,
        "max_rss_kb": max_rss_kb(),
    }


JOBS = {
    "e2e": end_to_end,
    "baseline": baseline,
    "rank": rank_cell,
    "embed_day": embed_day,
    "embed_topics": embed_topics,
    "rank_hybrid": rank_hybrid,
}


def main() -> None:
    """Run the job named on the command line with the JSON arguments on stdin."""
    job = JOBS[sys.argv[1]]
    result = job(json.loads(sys.stdin.read()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
