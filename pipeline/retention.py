"""Old run reports are removed, so a daily job does not fill the state directory over the years.

A report is ``<day>-<UTC time written>.json`` (see ``run.write_report``); its age is read from
that time in its name, which survives copies and cache restores that reset file times. Files
named otherwise are never touched.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_REPORT_DAYS = 90
_NAME = re.compile(r"\d{4}-\d{2}-\d{2}-(\d{8}T\d{6}Z)\.json")


def written_at(path: Path) -> datetime | None:
    """When a report was written, from its name; None for a file that is not a run report."""
    match = _NAME.fullmatch(path.name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def prune_reports(directory: Path, *, keep_days: int, now: datetime | None = None) -> list[Path]:
    """Remove the run reports in ``directory`` written more than ``keep_days`` days before
    ``now`` (default: the current time) and return their paths. A report that cannot be
    removed is logged and left, never an error: pruning must not fail a run."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    removed: list[Path] = []
    for path in sorted(directory.glob("*.json")):
        when = written_at(path)
        if when is None or when >= cutoff:
            continue
        try:
            path.unlink()
        except OSError as exc:
            log.warning("could not remove the old run report %s: %s", path, exc.strerror)
            continue
        removed.append(path)
    if removed:
        log.info("removed %d run report(s) older than %d days", len(removed), keep_days)
    return removed
