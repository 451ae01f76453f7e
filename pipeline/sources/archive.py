"""The local archive of gathered days: one JSON file per day under ``<state>/archive/``.

Written atomically (temporary file + rename), so a crash never leaves half a day behind, and
read back by every command so that a preview shows exactly what the send will use. A file holds
the day's papers (SPEC's paper objects, arXiv's merged in), the upstream items that were skipped,
and the arXiv categories gathered. A file that cannot be read is reported and gathered again.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

from pipeline.files import write_atomic
from pipeline.models import Day, Paper, SkippedItem

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2 added "categories"; a version 1 file reads as a day without arXiv papers


def day_path(state_dir: Path, day: date) -> Path:
    """Where the archive keeps ``day``."""
    return state_dir / "archive" / f"{day.isoformat()}.json"


def load_day(state_dir: Path, day: date) -> Day | None:
    """The archived day, or None when it was never gathered (or its file cannot be read)."""
    path = day_path(state_dir, day)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Day(
            day=date.fromisoformat(data["day"]),
            papers=tuple(Paper.from_json(p) for p in data["papers"]),
            skipped=tuple(SkippedItem(**s) for s in data.get("skipped", ())),
            categories=tuple(data.get("categories", ())),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("archived day %s is unreadable (%s); gathering it again", path, exc)
        return None


def save_day(state_dir: Path, day: Day) -> Path:
    """Write ``day`` atomically and return its path."""
    data = {
        "format": FORMAT_VERSION,
        "day": day.day.isoformat(),
        "papers": [p.to_json() for p in day.papers],
        "skipped": [
            {"source": s.source, "position": s.position, "reason": s.reason} for s in day.skipped
        ],
        "categories": list(day.categories),
    }
    path = day_path(state_dir, day.day)
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    return path
