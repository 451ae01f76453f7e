"""The commands' library functions: what ``papermail run``, ``explain``, ``fetch`` and ``preview``
call (load, select, gather, one day's run through ``pipeline.engine``, the report, the exit code).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import httpx

from pipeline import delivery, semantic
from pipeline.clock import SYSTEM_CLOCK, Clock
from pipeline.engine import Delivery, Halt, Progress, run_day
from pipeline.errors import ExitCode, SourceError, UsageError, worst_exit_code
from pipeline.files import write_atomic
from pipeline.ledger import Ledger
from pipeline.lock import run_lock
from pipeline.models import Day, DeliveryStatus, Digest, RunReport, Subscriber
from pipeline.planning import Archive, digest_for, gather_covered
from pipeline.rendering import Renderer
from pipeline.report import finish_report
from pipeline.retention import prune_reports
from pipeline.settings import Settings, from_address_warning
from pipeline.sources import gather_day, log_skipped
from pipeline.sources.archive import load_day
from pipeline.subscribers import SubscriberSet, load_subscribers

log = logging.getLogger(__name__)


def select(subscriber_set: SubscriberSet, only: Sequence[str]) -> tuple[Subscriber, ...]:
    """The subscribers named by ``--only`` (all when empty); an unknown address is a usage error."""
    if not only:
        return subscriber_set.subscribers
    by_email = {s.email.lower(): s for s in subscriber_set.subscribers}
    missing = [e for e in only if e.lower() not in by_email]
    if missing:
        raise UsageError(f"no valid subscriber with e-mail {', '.join(missing)}")
    return tuple(by_email[e.lower()] for e in dict.fromkeys(only))


def gather(
    settings: Settings,
    day: date,
    *,
    client: httpx.Client,
    clock: Clock = SYSTEM_CLOCK,
    categories: Collection[str] = (),
    refresh: bool = False,
    on_arxiv_failure: Callable[[SourceError], None] | None = None,
) -> Day:
    """The day's papers, from the archive or the sources (arXiv for ``categories``).

    With ``on_arxiv_failure``, an arXiv failure is handed to it and the day comes without the
    arXiv papers (a run serves the subscribers who need none); without, it is raised.
    """
    return gather_day(
        on_arxiv_failure=on_arxiv_failure,
        client=client,
        hf_api_url=settings.hf_api_url,
        arxiv_api_url=settings.arxiv_api_url,
        state_dir=settings.state_dir,
        day=day,
        categories=categories,
        refresh=refresh,
        clock=clock,
        timeout=settings.http_timeout,
    )


def categories_of(subscribers: Iterable[Subscriber]) -> tuple[str, ...]:
    """The union of the subscribers' arXiv categories: one arXiv query serves them all."""
    return tuple(sorted({c for s in subscribers for c in s.categories}))


def subscriber_categories(settings: Settings) -> tuple[str, ...]:
    """``categories_of`` the configured subscribers, or none when there is no subscribers path."""
    if not settings.subscribers.exists():
        return ()
    return categories_of(load_subscribers(settings.subscribers).subscribers)


def run_batch(
    settings: Settings,
    *,
    day: date,
    client: httpx.Client,
    clock: Clock = SYSTEM_CLOCK,
    only: Sequence[str] = (),
    dry_run: bool = False,
    resend_uncertain: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
    transport_factory: Callable[[], delivery.Transport] | None = None,
) -> RunReport:
    """``papermail run``: gather → rank → render → deliver for every selected subscriber.

    A real run holds the state directory's lock throughout, so an overlapping run exits at once
    (``LockedError``, exit 75); a dry run takes no lock and leaves the ledger untouched.
    """
    started = clock.now()
    lock: AbstractContextManager[object] = (
        nullcontext() if dry_run else run_lock(settings.state_dir)
    )
    with lock:
        subscriber_set = load_subscribers(settings.subscribers)
        for problem in subscriber_set.problems:
            log.error("%s", problem)
        subscribers = select(subscriber_set, only)
        if warning := from_address_warning(settings):
            log.warning("%s", warning)
        renderer = Renderer.for_settings(settings)
        signer = delivery.dkim_signer(settings)
        categories = categories_of(subscriber_set.subscribers)
        outages: list[SourceError] = []
        papers = gather(
            settings,
            day,
            client=client,
            clock=clock,
            categories=categories,
            on_arxiv_failure=outages.append,
        )
        log_skipped(papers)
        meaning = semantic.prepare(settings, subscribers, client=client, clock=clock)
        how = Delivery(
            transport_factory=transport_factory or delivery.transport_factory(settings),
            from_address=settings.from_email,
            from_name=settings.from_name or delivery.NEWSLETTER,
            unsubscribe_url=settings.unsubscribe_url,
            concurrency=settings.smtp_concurrency,
            retry=delivery.Retry(
                max_attempts=settings.max_attempts,
                clock=clock,
                limiter=delivery.RateLimiter(settings.smtp_rate, clock=clock),
            ),
            signer=signer,
            resend_uncertain=resend_uncertain,
            retry_failed=retry_failed,
            grace=settings.smtp_timeout,
        )
        path = ledger_path(settings)
        ledger = Ledger(None if dry_run and not path.exists() else path)
        try:
            fetch = partial(gather, settings, client=client, clock=clock, categories=categories)
            earlier = gather_covered(subscribers, day, ledger, fetch, archive_of(settings))
            report = asyncio.run(
                _until_signalled(
                    day=papers,
                    subscribers=subscribers,
                    renderer=renderer,
                    ledger=ledger,
                    delivery_to=how,
                    archive=earlier.archive,
                    dry_run=dry_run,
                    problems=[str(p) for p in subscriber_set.problems],
                    invalid_subscribers=subscriber_set.rejected,
                    progress=progress,
                    arxiv_outage=str(outages[0]) if outages else "",
                    meanings=meaning.meaning if meaning else None,
                )
            )
        finally:
            ledger.close()
        report = finish_report(
            report, settings=settings, started=started, exit_code=exit_code_for(report)
        )
        _keep_report(settings, report)
        return report


def _keep_report(settings: Settings, report: RunReport) -> None:
    """Write the report and prune old ones; if the disk is full (a run halted for that, say),
    log why and go on: the summary still reaches the operator."""
    try:
        log.info("run report: %s", write_report(settings.state_dir, report))
        prune_reports(settings.state_dir / "reports", keep_days=settings.report_days)
    except OSError as exc:
        log.error("cannot write the run report under %s: %s", settings.state_dir, exc)


async def _until_signalled(**serve: Any) -> RunReport:
    """``run_day``, halted by SIGINT or SIGTERM: no new message leaves, the replies in flight are
    awaited (``Delivery.grace``), and the report says so (exit 130 or 143)."""
    halt = Halt()
    loop = asyncio.get_running_loop()
    stops = {signal.SIGINT: ExitCode.INTERRUPTED, signal.SIGTERM: ExitCode.TERMINATED}
    handled = threading.current_thread() is threading.main_thread()  # signals reach only it
    for sig, code in stops.items() if handled else ():
        loop.add_signal_handler(sig, halt.stop, f"stopped by {sig.name}", code)
    try:
        return await run_day(**serve, halt=halt)
    finally:
        for sig in stops if handled else ():
            loop.remove_signal_handler(sig)


def explain(
    settings: Settings,
    email: str,
    *,
    day: date,
    client: httpx.Client,
    clock: Clock = SYSTEM_CLOCK,
) -> Digest:
    """``papermail explain``: the digest one subscriber would get; changes nothing."""
    subscriber_set = load_subscribers(settings.subscribers)
    (subscriber,) = select(subscriber_set, [email])
    categories = categories_of(subscriber_set.subscribers)
    papers = gather(settings, day, client=client, clock=clock, categories=categories)
    path = ledger_path(settings)
    ledger = Ledger(path) if path.exists() else None
    try:
        fetch = partial(gather, settings, client=client, clock=clock, categories=categories)
        earlier = gather_covered([subscriber], day, ledger, fetch, archive_of(settings))
        meaning = semantic.prepare(settings, [subscriber], client=client, clock=clock)
        return digest_for(
            subscriber,
            papers,
            ledger,
            archive=earlier.archive,
            meanings=meaning.meaning if meaning else None,
        )
    finally:
        if ledger:
            ledger.close()


def archive_of(settings: Settings) -> Archive:
    """The archived days, each read from disk at most once per run."""
    return cache(partial(load_day, settings.state_dir))


def ledger_path(settings: Settings) -> Path:
    """Where the delivery ledger lives."""
    return settings.state_dir / "ledger.sqlite3"


def write_report(state_dir: Path, report: RunReport) -> Path:
    """Write the run report as JSON under ``<state>/reports/`` and return its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = state_dir / "reports" / f"{report.day.isoformat()}-{stamp}.json"
    write_atomic(path, json.dumps(report.to_json(), indent=2) + "\n")
    return path


def exit_code_for(report: RunReport) -> ExitCode:
    """SPEC's exit code for what a run did (the first of 130, 143, 78, 69, 75, 67, 65 that
    applies: a stop by a signal or by a setting wins).

    An uncertain digest counts as 75: the operator should look (the next run does not resend it).
    """
    codes = {ExitCode.OK}
    for result in report.results:
        if result.unreachable:
            codes.add(ExitCode.UNAVAILABLE)
        elif result.status in (DeliveryStatus.FAILED_TRANSIENT, DeliveryStatus.UNCERTAIN):
            codes.add(ExitCode.TEMP_FAIL)
        elif result.status is DeliveryStatus.FAILED_PERMANENT:
            codes.add(ExitCode.NO_USER)
    if report.problems:
        codes.add(ExitCode.DATA_ERR)
    if report.missing_days:  # a source stayed down for a day some digest covers
        codes.add(ExitCode.UNAVAILABLE)
    if report.stop_code:
        codes.add(ExitCode(report.stop_code))
    return worst_exit_code(codes)
