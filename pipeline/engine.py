"""The engine: one day's digests, planned, rendered, composed and sent by a few async workers.

One task (``_prepare``) plans, renders, composes and claims digests a few ahead of the network, and
``concurrency`` workers each own one transport (one persistent SMTP connection) and send the next
ready digest, so no run ever holds every rendered email at once. What each digest covers is
``pipeline.planning``'s; the commands around a run (loading, gathering, the report) are
``pipeline.app``'s. The transport, the clock and the sleep function are parameters, so tests
drive real code without patching.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, TypeVar

from pipeline import delivery
from pipeline.ledger import Claim, Ledger, State
from pipeline.models import (
    Day,
    DeliveryResult,
    DeliveryStatus,
    Digest,
    RunReport,
    Subscriber,
)
from pipeline.planning import Archive, Pool, no_archive, rank_pool, skip_reason
from pipeline.rendering import Renderer

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
) -> RunReport:
    """Serve every subscriber for ``day`` and report what happened to each.

    All of it runs on one thread: preparing fills the time the connections spend waiting for the
    server, instead of each connection waiting for its own preparation.
    """
    results: list[DeliveryResult] = []
    warnings: list[str] = []
    shown = progress or NoProgress()
    serving = _Serving(
        day=day,
        pool=rank_pool(subscribers, day, ledger, archive),  # every subscriber scored at once
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
            _prepare(subscribers, serving, ready, done, workers),
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


_T = TypeVar("_T")


def _batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _prepare(
    subscribers: Sequence[Subscriber],
    run: _Serving,
    ready: asyncio.Queue[_Ready | None],
    done: Callable[[DeliveryResult], None],
    workers: int,
) -> None:
    """Plan, render, compose and claim every digest in order, queue them, then one None a worker.

    Subscribers are planned ``PLAN_BATCH`` at a time, so their new paper cards are made in one go
    (``Renderer.warm``). Digests are composed ``workers`` at a time and claimed together (one
    fsync for the group: every message is ``queued`` on disk before it can leave); the queue holds
    two groups, so preparing waits while the workers have enough to send, and a connection has at
    most four digests claimed: one in flight, two queued, one composed and waiting for room. A
    subscriber with nothing to send is ``done`` at once.
    """
    try:
        for chunk in _batched(subscribers, PLAN_BATCH):
            planned: list[_Planned] = []
            for subscriber in chunk:
                plan_or_result = _plan(subscriber, run)
                if isinstance(plan_or_result, DeliveryResult):
                    done(plan_or_result)
                else:
                    planned.append(plan_or_result)
            run.renderer.warm(p.digest for p in planned)
            for group in _batched(planned, workers):
                composed: list[_Ready] = []
                for one in group:
                    made = _compose(one, run)
                    if isinstance(made, DeliveryResult):
                        done(made)
                    else:
                        composed.append(made)
                    await asyncio.sleep(0)  # the replies that came in meanwhile go first
                await _hand_over(composed, run.ledger, ready)
    finally:
        for _ in range(workers):
            await ready.put(None)


async def _hand_over(
    batch: list[_Ready], ledger: Ledger, ready: asyncio.Queue[_Ready | None]
) -> None:
    """Claim these digests in one synced transaction, then queue them for the workers.

    The worker that takes one marks it ``sending`` as it hands it to its connection.
    """
    if batch:
        ledger.claim_all(
            Claim(r.outgoing.recipient, r.outgoing.day, r.outgoing.message_id, r.papers)
            for r in batch
        )
    for one in batch:
        await ready.put(one)


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


def _compose(planned: _Planned, run: _Serving) -> DeliveryResult | _Ready:
    """Render and compose a planned digest (the result instead, in a dry run)."""
    digest, covers = planned.digest, planned.covers
    email, when = digest.subscriber.email, digest.day
    rendered = run.renderer.render(digest)
    if rendered.trimmed:
        log.warning("%s: %s", email, rendered.trimmed)
        run.warnings.append(f"{email}: {rendered.trimmed}")
    papers = tuple(s.paper.id for s in rendered.digest.papers)
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
