"""``python -m bench``: run the sections, print one table, write the same as JSON.

Every network peer is on 127.0.0.1 and every process the benchmark starts is stopped before it
returns. Results go to ``bench/results/<UTC timestamp>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.sections import QUICK, REPO, SECTIONS, Row, Sizes


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part)


def build_parser() -> argparse.ArgumentParser:
    """Options: which sections, and how big each runs."""
    d = Sizes()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="shrink every size (under a minute)")
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(SECTIONS),
        default=[],
        help="run only this section (repeatable)",
    )
    p.add_argument("--subscribers", type=int, help=f"end-to-end subscribers ({d.subscribers})")
    p.add_argument("--papers", type=int, help=f"papers in the day ({d.papers})")
    p.add_argument("--concurrency", type=int, help=f"SMTP connections ({d.concurrency})")
    p.add_argument(
        "--rank-subscribers",
        type=_ints,
        metavar="N,N,..",
        help="ranking cells' subscriber counts (1000,10000,100000)",
    )
    p.add_argument(
        "--rank-papers", type=_ints, metavar="N,N,..", help="ranking cells' paper counts (100,500)"
    )
    p.add_argument(
        "--rank-budget",
        type=float,
        metavar="SECONDS",
        help=f"time budget per ranking cell before extrapolating ({d.rank_budget:g})",
    )
    p.add_argument("--render-samples", type=int, help=f"digests timed ({d.render_samples})")
    p.add_argument(
        "--memory-subscribers",
        type=int,
        help=f"subscribers of the memory run ({d.memory_subscribers})",
    )
    p.add_argument(
        "--rounds", type=int, help=f"end-to-end rounds, reported as medians ({d.rounds})"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the end-to-end run; stats go beside the JSON result",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results",
        help="results directory (bench/results/)",
    )
    return p


def sizes_from(args: argparse.Namespace, stamp: str) -> Sizes:
    """The defaults (or the quick sizes), overridden by any option given."""
    base = QUICK if args.quick else Sizes()
    fields = {f.name for f in dataclasses.fields(Sizes)} - {"profile"}
    changes = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.profile:
        changes["profile"] = args.out / f"{stamp}-e2e.prof"
    return dataclasses.replace(base, **changes)


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table."""
    header = ("section", "case", "metric", "value", "unit", "note")
    cells = [header] + [
        (
            r.section,
            r.case,
            r.metric,
            f"{r.value:,}" if not isinstance(r.value, str) else r.value,
            r.unit,
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = []
    for c in cells:
        aligned = [c[i].rjust(widths[i]) if i == 3 else c[i].ljust(widths[i]) for i in range(5)]
        lines.append("  ".join([*aligned, c[5]]).rstrip())
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the benchmark; print the table; return the path of the JSON result."""
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    sizes = sizes_from(args, stamp)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    for name in args.only or list(SECTIONS):
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        rows.extend(SECTIONS[name](sizes))
        timings[name] = round(time.perf_counter() - t0, 1)
    print(format_table(rows))
    result = {
        "started": started.isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "sizes": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(sizes).items()
        },
        "section_seconds": timings,
        "rows": [dataclasses.asdict(r) for r in rows],
    }
    path: Path = args.out / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {path}", file=sys.stderr)
    if sizes.profile:
        print(f"profile of the end-to-end run: {sizes.profile}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
