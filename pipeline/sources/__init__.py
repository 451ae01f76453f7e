"""Gathering: the paper sources and the archive that makes every command see the same day.

``gather_day`` is the stage's one entry point. It returns the archived day when there is one that
covers the requested arXiv categories (unless ``refresh``); otherwise it fetches what is missing
(the Daily Papers day, then arXiv for the categories not yet gathered), merges, and archives. The
Daily Papers part is archived as soon as it is fetched, so an arXiv outage costs only the arXiv
query on the next run, and the Hugging Face list never changes between preview and send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import date
from pathlib import Path

import httpx

from pipeline.clock import SYSTEM_CLOCK, Clock
from pipeline.errors import SourceError
from pipeline.models import Day
from pipeline.sources import archive, arxiv, huggingface
from pipeline.sources.http import DEFAULT_TIMEOUT, Fetcher
from pipeline.sources.merge import merge_days

log = logging.getLogger(__name__)

LOGGED_SKIPS = 10  # skipped upstream items named one by one in the log; the rest are counted


def gather_day(
    *,
    client: httpx.Client,
    hf_api_url: str,
    state_dir: Path,
    day: date,
    arxiv_api_url: str = "",
    categories: Collection[str] = (),
    refresh: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Clock = SYSTEM_CLOCK,
    on_arxiv_failure: Callable[[SourceError], None] | None = None,
) -> Day:
    """The papers of ``day``: from the archive, or fetched (HF, then arXiv for ``categories``)."""
    wanted = set(arxiv.valid_categories(categories)) if arxiv_api_url else set()
    archived = None if refresh else archive.load_day(state_dir, day)
    if archived is not None and wanted <= set(archived.categories):
        return archived
    if archived is None:
        hf = Fetcher(
            client, clock, "Daily Papers API", timeout=timeout, setting="PAPERMAIL_HF_API_URL"
        )
        base = huggingface.fetch_day(hf, hf_api_url, day)
        archive.save_day(state_dir, base)
    else:
        base = archived
    missing = wanted - set(base.categories)
    if not missing:
        return base
    log.info("querying arXiv for %s on %s", ", ".join(sorted(missing)), day)
    ax = Fetcher(
        client,
        clock,
        "arXiv API",
        timeout=timeout,
        min_interval=arxiv.MIN_INTERVAL,
        setting="PAPERMAIL_ARXIV_API_URL",
    )
    try:
        fetched = arxiv.fetch_day(ax, arxiv_api_url, day, missing)
    except SourceError as exc:
        if on_arxiv_failure is None:
            raise
        log.error("%s; serving the subscribers without categories", exc)
        on_arxiv_failure(exc)
        return base
    gathered = merge_days(base, fetched, categories=missing)
    archive.save_day(state_dir, gathered)
    return gathered


def log_skipped(day: Day, first: int = LOGGED_SKIPS) -> None:
    """Warn about the day's skipped upstream items: the ``first`` few by name, then one line
    counting the rest, so a source sending thousands of bad items cannot flood the log. Every
    reason stays in the day's archive and the run report."""
    for item in day.skipped[:first]:
        log.warning("skipped upstream item %d from %s: %s", item.position, item.source, item.reason)
    if len(day.skipped) > first:
        log.warning(
            "… and %d more skipped upstream items; all of them are in the day's archive and "
            "the run report",
            len(day.skipped) - first,
        )
