"""One day's batch: subscribers + gathered papers → ranked, rendered, delivered digests.

Digests stream through the stages: ``concurrency`` workers each take the next subscriber, rank,
render and send, so no run ever holds every rendered email at once. The transport, the clock and the
sleep function are parameters, so tests drive real code without patching.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from pipeline import delivery, ranking
from pipeline.errors import ExitCode, UsageError, worst_exit_code
from pipeline.ledger import Ledger, State
from pipeline.models import Day, DeliveryResult, DeliveryStatus, Digest, RunReport, Subscriber
from pipeline.rendering import Renderer
from pipeline.settings import Settings
from pipeline.sources import gather_day
from pipeline.sources.archive import write_atomic
from pipeline.subscribers import SubscriberSet, load_subscribers

log = logging.getLogger(__name__)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where and how messages go."""

    transport_factory: Callable[[], delivery.Transport]
    from_address: str
    unsubscribe_url: str | None = None
    concurrency: int = 4
    max_attempts: int = 5
    sleep: delivery.Sleep = field(default=asyncio.sleep)


def digest_for(
    subscriber: Subscriber,
    day: Day,
    ledger: Ledger | None,
    rankings: ranking.Rankings | None = None,
) -> Digest:
    """The digest ``subscriber`` would get for ``day``, leaving out papers already sent to them.

    ``rankings`` holds the run's scores for every subscriber (``ranking.rank_all``, once a run);
    without it the day's papers are ranked for this subscriber alone.
    """
    sent = ledger.sent_papers(subscriber.email, other_than=day.day) if ledger else frozenset()
    if rankings is None:
        rankings = ranking.rank_all(day.papers, [subscriber])
    return rankings.digest(subscriber, day.day, already_sent=sent)


def skip_reason(subscriber: Subscriber, day: date) -> str | None:
    """Why ``subscriber`` gets nothing on ``day`` regardless of papers, or None."""
    if subscriber.paused:
        return "paused"
    if subscriber.frequency == "weekly" and WEEKDAYS[day.weekday()] != subscriber.weekday:
        return f"weekly digest, sent on {subscriber.weekday}s"
    return None


async def run_day(
    *,
    day: Day,
    subscribers: Sequence[Subscriber],
    renderer: Renderer,
    ledger: Ledger,
    delivery_to: Delivery,
    dry_run: bool = False,
    problems: Sequence[str] = (),
    progress: Callable[[DeliveryResult], None] = lambda _result: None,
) -> RunReport:
    """Serve every subscriber for ``day`` and report what happened to each."""
    queue: asyncio.Queue[Subscriber] = asyncio.Queue()
    for subscriber in subscribers:
        queue.put_nowait(subscriber)
    results: list[DeliveryResult] = []
    rankings = ranking.rank_all(day.papers, subscribers)  # every subscriber scored at once
    warnings: list[str] = []

    async def worker() -> None:
        transport = delivery_to.transport_factory()
        try:
            while not queue.empty():
                subscriber = queue.get_nowait()
                result = await _serve(
                    subscriber,
                    day=day,
                    rankings=rankings,
                    renderer=renderer,
                    ledger=ledger,
                    how=delivery_to,
                    transport=transport,
                    dry_run=dry_run,
                    warnings=warnings,
                )
                results.append(result)
                progress(result)
        finally:
            await transport.close()

    workers = max(1, min(delivery_to.concurrency, len(subscribers)))
    await asyncio.gather(*(worker() for _ in range(workers)))
    order = {s.email: i for i, s in enumerate(subscribers)}
    results.sort(key=lambda r: order[r.email])
    return RunReport(
        day=day.day,
        dry_run=dry_run,
        papers_gathered=len(day.papers),
        results=tuple(results),
        problems=tuple(problems),
        skipped_items=day.skipped,
        warnings=tuple(warnings),
    )


def _settled(subscriber: Subscriber, day: date, ledger: Ledger) -> DeliveryResult | None:
    """The result for a subscriber who gets nothing today whatever the papers, or None."""
    if reason := skip_reason(subscriber, day):
        return DeliveryResult(subscriber.email, day, DeliveryStatus.SKIPPED, detail=reason)
    state = ledger.state(subscriber.email, day)
    if state is State.SENT:
        return DeliveryResult(subscriber.email, day, DeliveryStatus.ALREADY_SENT)
    if state is State.FAILED_PERMANENT:
        detail = "refused permanently on an earlier run; not retried"
        return DeliveryResult(subscriber.email, day, DeliveryStatus.SKIPPED, detail=detail)
    return None


async def _serve(
    subscriber: Subscriber,
    *,
    day: Day,
    rankings: ranking.Rankings,
    renderer: Renderer,
    ledger: Ledger,
    how: Delivery,
    transport: delivery.Transport,
    dry_run: bool,
    warnings: list[str],
) -> DeliveryResult:
    email, when = subscriber.email, day.day
    if settled := _settled(subscriber, when, ledger):
        return settled
    digest = digest_for(subscriber, day, ledger, rankings)
    count = len(digest.papers)
    if not digest.papers and not subscriber.send_empty:
        return DeliveryResult(email, when, DeliveryStatus.NOTHING_TO_SEND)
    rendered = renderer.render(digest)
    if rendered.trimmed:
        log.warning("%s: %s", email, rendered.trimmed)
        warnings.append(f"{email}: {rendered.trimmed}")
        digest, count = rendered.digest, len(rendered.digest.papers)
    message = delivery.build_message(
        rendered, from_address=how.from_address, unsubscribe_url=how.unsubscribe_url
    )
    if dry_run:
        return DeliveryResult(email, when, DeliveryStatus.DRY_RUN, papers=count)
    ledger.claim(email, when, str(message["Message-ID"]), (s.paper.id for s in digest.papers))
    outcome = await delivery.send_with_retries(
        transport, message, email, max_attempts=how.max_attempts, sleep=how.sleep
    )
    if outcome.ok:
        ledger.record(email, when, State.SENT, attempts=outcome.attempts)
        return DeliveryResult(email, when, DeliveryStatus.SENT, papers=count)
    state = State.FAILED_PERMANENT if outcome.permanent else State.FAILED_TRANSIENT
    ledger.record(email, when, state, attempts=outcome.attempts, detail=outcome.detail)
    log.warning("delivery to %s failed: %s", email, outcome.detail)
    status = (
        DeliveryStatus.FAILED_PERMANENT if outcome.permanent else DeliveryStatus.FAILED_TRANSIENT
    )
    return DeliveryResult(
        email, when, status, papers=count, detail=outcome.detail, unreachable=outcome.unreachable
    )


# --- the commands' library functions -------------------------------------------------------------


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
    sleep: Callable[[float], None],
    categories: Collection[str] = (),
    refresh: bool = False,
) -> Day:
    """The day's papers, from the archive or the sources (arXiv for ``categories``)."""
    return gather_day(
        client=client,
        hf_api_url=settings.hf_api_url,
        arxiv_api_url=settings.arxiv_api_url,
        state_dir=settings.state_dir,
        day=day,
        categories=categories,
        refresh=refresh,
        sleep=sleep,
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
    sleep: Callable[[float], None],
    only: Sequence[str] = (),
    dry_run: bool = False,
    progress: Callable[[DeliveryResult], None] = lambda _result: None,
    transport_factory: Callable[[], delivery.Transport] | None = None,
    async_sleep: delivery.Sleep = asyncio.sleep,
) -> RunReport:
    """``papermail run``: gather → rank → render → deliver for every selected subscriber."""
    subscriber_set = load_subscribers(settings.subscribers)
    for problem in subscriber_set.problems:
        log.error("%s", problem)
    subscribers = select(subscriber_set, only)
    renderer = Renderer(settings.templates, unsubscribe_url=settings.unsubscribe_url)
    categories = categories_of(subscriber_set.subscribers)
    papers = gather(settings, day, client=client, sleep=sleep, categories=categories)
    for item in papers.skipped:
        log.warning("skipped upstream item %d from %s: %s", item.position, item.source, item.reason)
    ledger = Ledger(ledger_path(settings))
    try:
        report = asyncio.run(
            run_day(
                day=papers,
                subscribers=subscribers,
                renderer=renderer,
                ledger=ledger,
                delivery_to=Delivery(
                    transport_factory=transport_factory or delivery.transport_factory(settings),
                    from_address=settings.from_address,
                    unsubscribe_url=settings.unsubscribe_url,
                    concurrency=settings.smtp_concurrency,
                    max_attempts=settings.max_attempts,
                    sleep=async_sleep,
                ),
                dry_run=dry_run,
                problems=[str(p) for p in subscriber_set.problems],
                progress=progress,
            )
        )
    finally:
        ledger.close()
    write_report(settings.state_dir, report)
    return report


def explain(
    settings: Settings,
    email: str,
    *,
    day: date,
    client: httpx.Client,
    sleep: Callable[[float], None],
) -> Digest:
    """``papermail explain``: the digest one subscriber would get; changes nothing."""
    subscriber_set = load_subscribers(settings.subscribers)
    (subscriber,) = select(subscriber_set, [email])
    categories = categories_of(subscriber_set.subscribers)
    papers = gather(settings, day, client=client, sleep=sleep, categories=categories)
    path = ledger_path(settings)
    ledger = Ledger(path) if path.exists() else None
    try:
        return digest_for(subscriber, papers, ledger)
    finally:
        if ledger:
            ledger.close()


def ledger_path(settings: Settings) -> Path:
    """Where the delivery ledger lives."""
    return settings.state_dir / "ledger.sqlite3"


def write_report(state_dir: Path, report: RunReport) -> Path:
    """Write the run report as JSON under ``<state>/reports/`` and return its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = state_dir / "reports" / f"{report.day.isoformat()}-{stamp}.json"
    write_atomic(path, json.dumps(report.to_json(), indent=2) + "\n")
    return path


def exit_code_for(report: RunReport) -> int:
    """SPEC's exit code for what a run did (the first of 69, 75, 67, 65 that applies)."""
    codes = {ExitCode.OK}
    for result in report.results:
        if result.unreachable:
            codes.add(ExitCode.UNAVAILABLE)
        elif result.status is DeliveryStatus.FAILED_TRANSIENT:
            codes.add(ExitCode.TEMP_FAIL)
        elif result.status is DeliveryStatus.FAILED_PERMANENT:
            codes.add(ExitCode.NO_USER)
    if report.problems:
        codes.add(ExitCode.DATA_ERR)
    return worst_exit_code(codes)
