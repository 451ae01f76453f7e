"""Gathering: the paper sources and the archive that makes every command see the same day.

``gather_day`` is the stage's one entry point: it returns the archived day when there is one (unless
``refresh``), otherwise fetches it from the sources and archives it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx

from pipeline.models import Day
from pipeline.sources import archive, huggingface


def gather_day(
    *,
    client: httpx.Client,
    hf_api_url: str,
    state_dir: Path,
    day: date,
    refresh: bool = False,
    sleep: Callable[[float], None],
) -> Day:
    """The papers of ``day``: from the archive, or fetched and archived."""
    if not refresh:
        archived = archive.load_day(state_dir, day)
        if archived is not None:
            return archived
    gathered = huggingface.fetch_day(client, hf_api_url, day, sleep=sleep)
    archive.save_day(state_dir, gathered)
    return gathered
