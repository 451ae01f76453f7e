"""One day's batch: subscribers + gathered papers → ranked, rendered, delivered digests.

Digests stream through the stages: one task plans, renders and composes them a few ahead of the
network, and ``concurrency`` workers send them, so no run ever holds every rendered email at once.
What each digest covers is ``pipeline.planning``'s. The transport, the clock and the sleep function
are parameters, so tests drive real code without patching.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Protocol

import httpx

from pipeline import delivery, semantic
from pipeline.errors import ExitCode, UsageError, worst_exit_code
from pipeline.ledger import Claim, Ledger, State
from pipeline.lock import run_lock
from pipeline.models import (
    Day,
    DeliveryResult,
    DeliveryStatus,
    Digest,
    RunReport,
    Subscriber,
)
from pipeline.planning import (
    Archive,
    Meanings,
    Pool,
    digest_for,
    no_archive,
    rank_pool,
    skip_reason,
)
from pipeline.rendering import Renderer
from pipeline.settings import Settings
from pipeline.sources import gather_day
from pipeline.sources.archive import load_day, write_atomic
from pipeline.subscribers import SubscriberSet, load_subscribers

log = logging.getLogger(__name__)
#: Subscribers planned at a time: their new paper cards are compiled in one batch.
PLAN_BATCH = 256


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where and how messages go."""

    transport_factory: Callable[[], delivery.Transport]
    from_address: str
    unsubscribe_url: str | None = None
    concurrency: int = 4
    retry: delivery.Retry = field(default_factory=delivery.Retry)
    signer: delivery.DkimSigner | None = None
    resend_uncertain: bool = False


class Progress(Protocol):
    """Told how many subscribers a run serves, then of each result as it comes."""

    def start(self, total: int) -> None:
        """The run is about to serve ``total`` subscribers."""

    def advance(self, result: DeliveryResult) -> None:
        """One subscriber is done."""

    def finish(self) -> None:
        """Every subscriber is done (or the run stopped)."""


class NoProgress:
    """A progress that shows nothing."""

    def start(self, total: int) -> None:
        """Nothing to show."""

    def advance(self, result: DeliveryResult) -> None:
        """Nothing to show."""

    def finish(self) -> None:
        """Nothing to show."""


# --- one day's run -------------------------------------------------------------------------------


@dataclass
class _Breaker:
    """Once the server is unreachable after retries, the run stops knocking (exit 69)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Ready:
    """A digest rendered and composed, waiting for an SMTP connection."""

    outgoing: delivery.Outgoing
    papers: tuple[str, ...]  # ids, for the ledger's claim
    covers: tuple[date, ...]


@dataclass(frozen=True, slots=True)
class _Serving:
    """What serving any one subscriber needs: the run's fixed parts."""

    day: Day
    pool: Pool
    renderer: Renderer
    ledger: Ledger
    how: Delivery
    dry_run: bool
    warnings: list[str]


async def run_day(
    *,
    day: Day,
    subscribers: Sequence[Subscriber],
    renderer: Renderer,
    ledger: Ledger,
    delivery_to: Delivery,
    archive: Archive = no_archive,
    dry_run: bool = False,
    problems: Sequence[str] = (),
    invalid_subscribers: int = 0,
    progress: Progress | None = None,
    meanings: Meanings | None = None,
) -> RunReport:
    """Serve every subscriber for ``day`` and report what happened to each.

    One task (``_Preparer``) plans, renders and composes the digests in order, a few ahead of
    the network; ``concurrency`` workers each own one transport (one persistent SMTP connection)
    and send the next ready digest. All of it runs on one thread: preparing fills the time the
    connections spend waiting for the server, instead of each connection waiting for its own
    preparation, and it steps back whenever a reply may be on its way to a worker.
    """
    results: list[DeliveryResult] = []
    warnings: list[str] = []
    shown = progress or NoProgress()
    serving = _Serving(
        day=day,
        pool=rank_pool(subscribers, day, ledger, archive, meanings),  # everyone scored at once
        renderer=renderer,
        ledger=ledger,
        how=delivery_to,
        dry_run=dry_run,
        warnings=warnings,
    )
    workers = max(1, min(delivery_to.concurrency, len(subscribers)))
    ready: asyncio.Queue[_Ready | None] = asyncio.Queue(maxsize=2 * workers)
    breaker = _Breaker()

    def done(result: DeliveryResult) -> None:
        results.append(result)
        shown.advance(result)

    async def worker() -> None:
        transport = delivery_to.transport_factory()
        try:
            while (prepared := await ready.get()) is not None:
                done(await _deliver(prepared, serving, transport, breaker))
        finally:
            await transport.close()

    shown.start(len(subscribers))
    try:
        await asyncio.gather(
            _Preparer(subscribers, serving, ready, done, workers).prepare_all(),
            *(worker() for _ in range(workers)),
        )
    finally:
        shown.finish()
    order = {s.email: i for i, s in enumerate(subscribers)}
    results.sort(key=lambda r: order[r.email])
    return RunReport(
        day=day.day,
        dry_run=dry_run,
        papers_gathered=len(day.papers),
        results=tuple(results),
        problems=tuple(problems),
        invalid_subscribers=invalid_subscribers,
        skipped_items=day.skipped,
        warnings=tuple(warnings),
    )


class _Preparer:
    """The task that plans, renders, composes and claims digests ahead of the workers.

    It plans a first batch of ``PLAN_BATCH`` subscribers and makes the paper cards they need in
    one go (``Renderer.warm``), then renders and composes their digests in order and queues them
    for the workers. Whenever the queue is full it plans the next subscribers instead of waiting,
    so the workers never wait for a whole batch to be planned. A subscriber with nothing to send
    is ``done`` at once. Between steps the loop lets the workers answer the server first.

    Digests are claimed in the ledger ``workers`` at a time (one fsync for the group), or at once
    when the workers have nothing left to send.
    """

    def __init__(
        self,
        subscribers: Sequence[Subscriber],
        run: _Serving,
        ready: asyncio.Queue[_Ready | None],
        done: Callable[[DeliveryResult], None],
        workers: int,
    ) -> None:
        self._todo = iter(subscribers)
        self._more = True  # subscribers left to plan
        self._run, self._ready, self._done, self._workers = run, ready, done, workers
        self._upcoming: list[_Planned] = []  # planned, their paper cards not made yet
        self._planned: deque[_Planned] = deque()  # cards made: to render and compose
        self._composed: list[_Ready] = []  # composed, not claimed yet
        self._batch = PLAN_BATCH  # the first batch is planned whole, for its cards

    async def prepare_all(self) -> None:
        """Queue every digest for the workers, then one None per worker: nothing more."""
        try:
            while await self._step():
                await _let_workers_answer()
            await self._hand_over()
        finally:
            for _ in range(self._workers):
                await self._ready.put(None)

    async def _step(self) -> bool:
        """Do the next thing to do; False when every digest is composed."""
        if not self._planned:
            if not self._upcoming:
                await self._plan_batch()
                if not self._upcoming:
                    return False
            self._run.renderer.warm(p.digest for p in self._upcoming)  # their cards, together
            self._planned.extend(self._upcoming)
            self._upcoming.clear()
        elif self._ready.full() and self._more and len(self._upcoming) < PLAN_BATCH:
            self._plan_one()  # the workers have enough to send: plan ahead meanwhile
        else:
            await self._compose_one()
        return True

    async def _plan_batch(self) -> None:
        """Plan subscribers until a batch is ready (nothing is left to compose meanwhile)."""
        while self._more and len(self._upcoming) < self._batch:
            self._plan_one()
            await _let_workers_answer()
        self._batch = self._ready.maxsize  # later, only what keeps the workers busy

    def _plan_one(self) -> None:
        subscriber = next(self._todo, None)
        if subscriber is None:
            self._more = False
            return
        plan_or_result = _plan(subscriber, self._run)
        if isinstance(plan_or_result, DeliveryResult):
            self._done(plan_or_result)
        else:
            self._upcoming.append(plan_or_result)

    async def _compose_one(self) -> None:
        composed = await _compose(self._planned.popleft(), self._run)
        if isinstance(composed, DeliveryResult):
            self._done(composed)
            return
        self._composed.append(composed)
        if len(self._composed) >= self._workers or self._ready.empty():
            await self._hand_over()

    async def _hand_over(self) -> None:
        """Claim the digests composed so far in one synced transaction, then queue them.

        Every message is ``queued`` on disk before it can leave, and a batch shares the fsync; the
        worker that takes one marks it ``sending`` as it hands it to its connection.
        """
        batch, self._composed = self._composed, []
        if batch:
            self._run.ledger.claim_all(
                Claim(r.outgoing.recipient, r.outgoing.day, r.outgoing.message_id, r.papers)
                for r in batch
            )
        for one in batch:
            await self._ready.put(one)


#: Loop turns a server's reply takes to reach the worker waiting for it: the socket's callback
#: sets aiosmtplib's response future, ``asyncio.wait_for`` passes it on to its own waiter, and
#: the worker's task resumes; one more for a reply that comes in during the first.
_REPLY_TURNS = 4


async def _let_workers_answer() -> None:
    """Step back for as many loop turns as a reply needs to reach its worker.

    The preparing task is always ready to run, so a single ``sleep(0)`` lets it run a whole step
    (a render, say) in every one of those turns: each reply waited up to three steps before its
    worker wrote the next command, and the server sat idle. Now the workers answer first.
    """
    for _ in range(_REPLY_TURNS):
        await asyncio.sleep(0)


def _settled(
    subscriber: Subscriber, day: date, ledger: Ledger, *, resend_uncertain: bool
) -> DeliveryResult | None:
    """The result for a subscriber whose digest for ``day`` is decided already, or None."""
    email = subscriber.email
    if reason := skip_reason(subscriber, day):
        return DeliveryResult(email, day, DeliveryStatus.SKIPPED, detail=reason)
    state = ledger.state(email, day)
    if state is State.SENT:
        return DeliveryResult(email, day, DeliveryStatus.ALREADY_SENT)
    if state is State.FAILED_PERMANENT:
        detail = f"refused on an earlier run, not retried: {ledger.detail(email, day)}"
        return DeliveryResult(email, day, DeliveryStatus.FAILED_PERMANENT, detail=detail)
    if state is State.UNCERTAIN and not resend_uncertain:
        detail = (
            f"uncertain since an earlier run, not resent: {ledger.detail(email, day)} "
            "(check the server's log; --resend-uncertain sends it again)"
        )
        return DeliveryResult(email, day, DeliveryStatus.UNCERTAIN, detail=detail)
    return None


_OUTCOMES = {
    delivery.Outcome.SENT: (State.SENT, DeliveryStatus.SENT),
    delivery.Outcome.PERMANENT: (State.FAILED_PERMANENT, DeliveryStatus.FAILED_PERMANENT),
    delivery.Outcome.TRANSIENT: (State.FAILED_TRANSIENT, DeliveryStatus.FAILED_TRANSIENT),
    delivery.Outcome.UNCERTAIN: (State.UNCERTAIN, DeliveryStatus.UNCERTAIN),
}


@dataclass(frozen=True, slots=True)
class _Planned:
    """A subscriber's digest for the run, not rendered yet."""

    digest: Digest
    covers: tuple[date, ...]


def _plan(subscriber: Subscriber, run: _Serving) -> DeliveryResult | _Planned:
    """The digest one subscriber gets; the result instead when there is nothing to send."""
    email, when = subscriber.email, run.day.day
    resend = run.how.resend_uncertain
    if settled := _settled(subscriber, when, run.ledger, resend_uncertain=resend):
        return settled
    digest, covers = run.pool.plan(subscriber, run.ledger)
    if not digest.papers and not subscriber.send_empty:
        if not run.dry_run:
            run.ledger.record_nothing(email, when)
        return DeliveryResult(email, when, DeliveryStatus.NOTHING_TO_SEND, covers=covers)
    return _Planned(digest, covers)


async def _compose(planned: _Planned, run: _Serving) -> DeliveryResult | _Ready:
    """Render and compose a planned digest (the result instead, in a dry run)."""
    digest, covers = planned.digest, planned.covers
    email, when = digest.subscriber.email, digest.day
    rendered = run.renderer.render(digest)
    if rendered.trimmed:
        log.warning("%s: %s", email, rendered.trimmed)
        run.warnings.append(f"{email}: {rendered.trimmed}")
    papers = tuple(s.paper.id for s in rendered.digest.papers)
    await _let_workers_answer()  # to the replies that came in while rendering
    outgoing = delivery.compose(
        rendered,
        from_address=run.how.from_address,
        unsubscribe_url=run.how.unsubscribe_url,
        signer=run.how.signer,
    )
    if run.dry_run:
        count = len(papers)
        return DeliveryResult(email, when, DeliveryStatus.DRY_RUN, papers=count, covers=covers)
    return _Ready(outgoing, papers, covers)


async def _deliver(
    ready: _Ready, run: _Serving, transport: delivery.Transport, breaker: _Breaker
) -> DeliveryResult:
    """Mark the claimed digest ``sending``, send it, and record what became of it."""
    outgoing, count, covers = ready.outgoing, len(ready.papers), ready.covers
    email, when = outgoing.recipient, outgoing.day
    if breaker.reason:
        detail = f"not attempted: {breaker.reason}"
        run.ledger.record(email, when, State.FAILED_TRANSIENT, attempts=0, detail=detail)
        return DeliveryResult(
            email,
            when,
            DeliveryStatus.FAILED_TRANSIENT,
            papers=count,
            detail=detail,
            unreachable=True,
            covers=covers,
        )
    run.ledger.sending(email, when)
    outcome = await delivery.send_with_retries(transport, outgoing, run.how.retry)
    state, status = _OUTCOMES[outcome.outcome]
    run.ledger.record(email, when, state, attempts=outcome.attempts, detail=outcome.detail)
    if outcome.unreachable:
        breaker.reason = breaker.reason or outcome.detail
    if status is not DeliveryStatus.SENT:
        log.warning("delivery to %s %s: %s", email, status.value, outcome.detail)
    return DeliveryResult(
        email,
        when,
        status,
        papers=count,
        detail=outcome.detail,
        unreachable=outcome.unreachable,
        attempts=outcome.attempts,
        covers=covers,
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
    resend_uncertain: bool = False,
    progress: Progress | None = None,
    transport_factory: Callable[[], delivery.Transport] | None = None,
    async_sleep: delivery.Sleep = asyncio.sleep,
    clock: delivery.Clock = time.monotonic,
) -> RunReport:
    """``papermail run``: gather → rank → render → deliver for every selected subscriber.

    A real run holds the state directory's lock throughout, so an overlapping run exits at once
    (``LockedError``, exit 75); a dry run takes no lock and leaves the ledger untouched.
    """
    lock: AbstractContextManager[object] = (
        nullcontext() if dry_run else run_lock(settings.state_dir)
    )
    with lock:
        subscriber_set = load_subscribers(settings.subscribers)
        for problem in subscriber_set.problems:
            log.error("%s", problem)
        subscribers = select(subscriber_set, only)
        renderer = Renderer(settings.templates, unsubscribe_url=settings.unsubscribe_url)
        signer = delivery.dkim_signer(settings)
        categories = categories_of(subscriber_set.subscribers)
        papers = gather(settings, day, client=client, sleep=sleep, categories=categories)
        for item in papers.skipped:
            log.warning(
                "skipped upstream item %d from %s: %s", item.position, item.source, item.reason
            )
        meaning = semantic.prepare(settings, subscribers, client=client, sleep=sleep)
        how = Delivery(
            transport_factory=transport_factory or delivery.transport_factory(settings),
            from_address=settings.from_address,
            unsubscribe_url=settings.unsubscribe_url,
            concurrency=settings.smtp_concurrency,
            retry=delivery.Retry(
                max_attempts=settings.max_attempts,
                sleep=async_sleep,
                limiter=delivery.RateLimiter(settings.smtp_rate, clock=clock, sleep=async_sleep),
            ),
            signer=signer,
            resend_uncertain=resend_uncertain,
        )
        path = ledger_path(settings)
        ledger = Ledger(None if dry_run and not path.exists() else path)
        try:
            report = asyncio.run(
                run_day(
                    day=papers,
                    subscribers=subscribers,
                    renderer=renderer,
                    ledger=ledger,
                    delivery_to=how,
                    archive=archive_of(settings),
                    dry_run=dry_run,
                    problems=[str(p) for p in subscriber_set.problems],
                    invalid_subscribers=subscriber_set.rejected,
                    progress=progress,
                    meanings=meaning.meaning if meaning else None,
                )
            )
        finally:
            ledger.close()
        log.info("run report: %s", write_report(settings.state_dir, report))
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
    meaning = semantic.prepare(settings, [subscriber], client=client, sleep=sleep)
    try:
        return digest_for(
            subscriber,
            papers,
            ledger,
            archive=archive_of(settings),
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


def exit_code_for(report: RunReport) -> int:
    """SPEC's exit code for what a run did (the first of 69, 75, 67, 65 that applies).

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
    return worst_exit_code(codes)
