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
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, TypeVar

from pipeline import delivery
from pipeline.errors import ExitCode, SettingsError
from pipeline.ledger import Claim, Ledger, LedgerError, State
from pipeline.models import (
    Day,
    DeliveryResult,
    DeliveryStatus,
    Digest,
    RunReport,
    Subscriber,
)
from pipeline.planning import Archive, Meanings, Pool, no_archive, rank_pool, skip_reason
from pipeline.rendering import Renderer
from pipeline.text import one_line

log = logging.getLogger(__name__)
#: Subscribers planned at a time: their new paper cards are compiled in one batch.
PLAN_BATCH = 256


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where and how messages go."""

    transport_factory: Callable[[], delivery.Transport]
    from_address: str
    from_name: str = delivery.NEWSLETTER  # the From header's display name
    unsubscribe_url: str | None = None
    concurrency: int = 4
    retry: delivery.Retry = field(default_factory=delivery.Retry)
    signer: delivery.DkimSigner | None = None
    resend_uncertain: bool = False
    retry_failed: bool = False  # prepare again the digests recorded failed_permanent
    grace: float = 60.0  # once the run stops, how long a reply in flight is awaited (seconds)


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
class Halt:
    """Once set, the run hands out no new message: a signal, a failure of the run's own (AUTH,
    the sender refused, TLS), or a server unreachable after retries. The first reason wins."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    code: ExitCode | None = None  # the exit code the stop means; None: per the results
    _waiter: asyncio.Task[bool] | None = field(default=None, repr=False)

    def stop(self, reason: str, code: ExitCode | None = None) -> None:
        """Stop handing out messages, for ``reason``."""
        if not self.event.is_set():
            self.reason, self.code = reason, code
            self.event.set()
            log.warning("the run stops: %s", reason)

    @property
    def stopped(self) -> bool:
        """Whether the run was told to stop."""
        return self.event.is_set()

    def waiter(self) -> asyncio.Task[bool]:
        """One future for the whole run that is done once the run is told to stop."""
        if self._waiter is None:
            self._waiter = asyncio.ensure_future(self.event.wait())
        return self._waiter

    def close(self) -> None:
        """Cancel the waiter (at the end of the run)."""
        if self._waiter is not None:
            self._waiter.cancel()


@dataclass(frozen=True, slots=True)
class _Ready:
    """A digest rendered and composed, waiting for an SMTP connection."""

    outgoing: delivery.Outgoing
    papers: tuple[str, ...]  # ids, for the ledger's claim
    covers: tuple[date, ...]
    waiting: tuple[date, ...] = ()  # days the digest would cover but could not be gathered


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
    halt: Halt
    arxiv_outage: str  # why arXiv failed today ("" when it did not)


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
    halt: Halt | None = None,
    arxiv_outage: str = "",
    meanings: Meanings | None = None,
) -> RunReport:
    """Serve every subscriber for ``day`` and report what happened to each.

    All of it runs on one thread: preparing fills the time the connections spend waiting for the
    server, instead of each connection waiting for its own preparation. Whatever goes wrong with
    one digest is that digest's result; once ``halt`` is set (by a signal handler, say) no new
    message leaves, and replies in flight are awaited for ``grace`` seconds at most.
    ``arxiv_outage`` defers the subscribers with arXiv categories (``failed_transient``).
    """
    results: list[DeliveryResult] = []
    warnings: list[str] = []
    shown = progress or NoProgress()
    halt = halt or Halt()
    serving = _Serving(
        day=day,
        pool=rank_pool(subscribers, day, ledger, archive, meanings),  # everyone scored at once
        renderer=renderer,
        ledger=ledger,
        how=delivery_to,
        dry_run=dry_run,
        warnings=warnings,
        halt=halt,
        arxiv_outage=arxiv_outage,
    )
    workers = max(1, min(delivery_to.concurrency, len(subscribers)))
    ready: asyncio.Queue[_Ready | None] = asyncio.Queue(maxsize=2 * workers)

    def done(result: DeliveryResult) -> None:
        results.append(result)
        shown.advance(result)

    async def worker() -> None:
        transport = _transport(serving)
        try:
            while (prepared := await ready.get()) is not None:
                try:
                    if transport is None:  # the run halted: each digest is held back
                        done(_held_back(prepared, serving))
                    else:
                        done(await _deliver(prepared, serving, transport))
                except Exception as exc:  # a bug of ours: the run stops, the queue is drained
                    _halt_for(exc, serving)
                    done(_held_back(prepared, serving, record=False))
        finally:
            if transport is not None:
                await _close(transport, serving)

    shown.start(len(subscribers))
    try:
        await asyncio.gather(
            _prepare(subscribers, serving, ready, done, workers),
            *(worker() for _ in range(workers)),
        )
    finally:
        halt.close()
        shown.finish()
    answered = {r.email for r in results}
    for subscriber in subscribers:  # the preparing task stopped by a failure of its own
        if subscriber.email not in answered:
            results.append(_unless_halted(subscriber, serving) or _unanswered(subscriber, day))
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
        stopped=halt.reason,
        stop_code=int(halt.code or 0),
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
    subscriber with nothing to send is ``done`` at once. A failure of its own (the ledger cannot
    be written, or a bug) halts the run; the subscribers it did not reach are ``run_day``'s.
    """
    try:
        for chunk in _batched(subscribers, PLAN_BATCH):
            planned: list[_Planned] = []
            for subscriber in chunk:
                plan_or_result = _unless_halted(subscriber, run) or _plan_safely(subscriber, run)
                if isinstance(plan_or_result, DeliveryResult):
                    done(plan_or_result)
                else:
                    planned.append(plan_or_result)
            _warm_safely(planned, run)
            for group in _batched(planned, workers):
                composed: list[_Ready] = []
                for one in group:
                    made = _unless_halted(one.digest.subscriber, run) or _compose_safely(one, run)
                    if isinstance(made, DeliveryResult):
                        done(made)
                    else:
                        composed.append(made)
                    await asyncio.sleep(0)  # the replies that came in meanwhile go first
                await _hand_over(composed, run.ledger, ready)
    except Exception as exc:
        _halt_for(exc, run)
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
            Claim(r.outgoing.recipient, r.outgoing.day, r.outgoing.message_id, r.papers, r.covers)
            for r in batch
        )
    for one in batch:
        await ready.put(one)


def _unless_halted(subscriber: Subscriber, run: _Serving) -> DeliveryResult | None:
    """Once the run is halted, a subscriber not prepared yet is not attempted (no ledger row:
    the next run serves them)."""
    if not run.halt.stopped:
        return None
    return DeliveryResult(
        subscriber.email,
        run.day.day,
        DeliveryStatus.FAILED_TRANSIENT,
        detail=f"not attempted: {run.halt.reason}",
        unreachable=run.halt.code is None,
    )


def _transport(run: _Serving) -> delivery.Transport | None:
    """A new transport for a worker; None (and the run halted) if it cannot be made."""
    try:
        return run.how.transport_factory()
    except Exception as exc:
        _halt_for(exc, run)
        return None


async def _close(transport: delivery.Transport, run: _Serving) -> None:
    """Close a worker's transport; once the run halted, within the grace (a connection cut
    short may not answer QUIT). A failure to close is logged: the run's results stand."""
    try:
        if run.halt.stopped:
            with suppress(TimeoutError):
                await asyncio.wait_for(transport.close(), run.how.grace)
        else:
            await transport.close()
    except Exception as exc:
        log.warning("closing a connection failed: %s: %s", type(exc).__name__, exc)


def _halt_for(exc: Exception, run: _Serving) -> None:
    """Halt the run (exit 75) for a failure that is nobody's digest: the ledger cannot be written
    (whatever happens next could not be recorded), or a bug in a worker or the preparing task."""
    if isinstance(exc, LedgerError):
        reason = str(exc)
    else:
        reason = f"unexpected error: {type(exc).__name__}: {one_line(str(exc))[:300]}"
        log.error("the run stops for an unexpected error", exc_info=exc)
    run.halt.stop(reason, ExitCode.TEMP_FAIL)


def _unanswered(subscriber: Subscriber, day: Day) -> DeliveryResult:
    """A subscriber the run never reached although it was not halted (cannot happen: a task that
    fails halts the run), reported rather than left out."""
    return DeliveryResult(
        subscriber.email, day.day, DeliveryStatus.FAILED_TRANSIENT, detail="not attempted"
    )


def _plan_safely(subscriber: Subscriber, run: _Serving) -> DeliveryResult | _Planned:
    """``_plan``, and whatever goes wrong with it that subscriber's permanent failure (a ledger
    that cannot be written is the run's: raised)."""
    try:
        return _plan(subscriber, run)
    except LedgerError:
        raise
    except SettingsError as exc:  # the same for everyone: the run's failure, nobody's digest
        return _stop_for(exc, subscriber, run)
    except Exception as exc:  # one subscriber's problem never stops the others
        return _not_prepared(subscriber.email, exc, run)


def _compose_safely(planned: _Planned, run: _Serving) -> DeliveryResult | _Ready:
    """``_compose``, and whatever goes wrong with it that subscriber's permanent failure."""
    try:
        return _compose(planned, run)
    except LedgerError:
        raise
    except SettingsError as exc:  # the same for everyone: the run's failure, nobody's digest
        return _stop_for(exc, planned.digest.subscriber, run)
    except Exception as exc:  # one subscriber's problem never stops the others
        return _not_prepared(planned.digest.subscriber.email, exc, run, covers=planned.covers)


def _stop_for(exc: SettingsError, subscriber: Subscriber, run: _Serving) -> DeliveryResult:
    """Halt the run for a setting that makes every digest fail (exit 78); this subscriber, like
    the rest, is not attempted."""
    run.halt.stop(str(exc), ExitCode.CONFIG)
    result = _unless_halted(subscriber, run)
    assert result is not None  # halted just now
    return result


def _warm_safely(planned: Sequence[_Planned], run: _Serving) -> None:
    """Make the planned digests' paper cards together; if that fails, each digest makes its own
    while it renders (and fails alone, if its cards are the problem)."""
    try:
        run.renderer.warm(p.digest for p in planned)
    except Exception as exc:
        log.warning("paper cards not prepared ahead: %s: %s", type(exc).__name__, exc)


def _not_prepared(
    email: str, exc: Exception, run: _Serving, covers: tuple[date, ...] = ()
) -> DeliveryResult:
    """Record a digest that could not be planned, rendered or composed: a data problem, so
    ``failed_permanent`` with the reason (``--retry-failed`` tries again once it is fixed)."""
    when = run.day.day
    reason = f"cannot prepare the digest: {type(exc).__name__}: {one_line(str(exc))[:300]}"
    log.error("%s: %s", email, reason)
    log.debug("%s: the digest failed", email, exc_info=True)
    if not run.dry_run:
        run.ledger.record_unsent(email, when, State.FAILED_PERMANENT, reason)
    return DeliveryResult(
        email, when, DeliveryStatus.FAILED_PERMANENT, detail=reason, covers=covers
    )


def _settled(
    subscriber: Subscriber,
    day: date,
    ledger: Ledger,
    *,
    resend_uncertain: bool,
    retry_failed: bool = False,
) -> DeliveryResult | None:
    """The result for a subscriber whose digest for ``day`` is decided already, or None."""
    email = subscriber.email
    if reason := skip_reason(subscriber, day):
        return DeliveryResult(email, day, DeliveryStatus.SKIPPED, detail=reason)
    state = ledger.state(email, day)
    if state is State.SENT:
        return DeliveryResult(email, day, DeliveryStatus.ALREADY_SENT)
    if state is State.FAILED_PERMANENT and not retry_failed:
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
    delivery.Outcome.STOPPED: (State.FAILED_TRANSIENT, DeliveryStatus.FAILED_TRANSIENT),
    delivery.Outcome.HALTED: (State.FAILED_TRANSIENT, DeliveryStatus.FAILED_TRANSIENT),
}


@dataclass(frozen=True, slots=True)
class _Planned:
    """A subscriber's digest for the run, not rendered yet."""

    digest: Digest
    covers: tuple[date, ...]


def _plan(subscriber: Subscriber, run: _Serving) -> DeliveryResult | _Planned:
    """The digest one subscriber gets; the result instead when there is nothing to send."""
    email, when = subscriber.email, run.day.day
    how = run.how
    if settled := _settled(
        subscriber,
        when,
        run.ledger,
        resend_uncertain=how.resend_uncertain,
        retry_failed=how.retry_failed,
    ):
        return settled
    if run.arxiv_outage and subscriber.categories:
        detail = f"arXiv unavailable: {run.arxiv_outage}"
        if not run.dry_run:
            run.ledger.record_unsent(email, when, State.FAILED_TRANSIENT, detail)
        return DeliveryResult(
            email, when, DeliveryStatus.FAILED_TRANSIENT, detail=detail, unreachable=True
        )
    digest, covers = run.pool.plan(subscriber, run.ledger)
    if not digest.papers and not subscriber.send_empty:
        if not run.dry_run:
            run.ledger.record_nothing(email, when, covers)
        return DeliveryResult(
            email, when, DeliveryStatus.NOTHING_TO_SEND, covers=covers, waiting=digest.waiting
        )
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
        from_name=run.how.from_name,
        unsubscribe_url=run.how.unsubscribe_url,
        signer=run.how.signer,
    )
    if run.dry_run:
        count = len(papers)
        return DeliveryResult(
            email, when, DeliveryStatus.DRY_RUN, papers=count, covers=covers, waiting=digest.waiting
        )
    return _Ready(outgoing, papers, covers, digest.waiting)


async def _deliver(ready: _Ready, run: _Serving, transport: delivery.Transport) -> DeliveryResult:
    """Mark the claimed digest ``sending``, send it, and record what became of it.

    The message is handed to the transport only once its ``sending`` mark is written: if that
    write fails, the run halts and the digest stays ``queued`` (the next run sends it). If the
    outcome cannot be recorded, the run halts and the row stays ``sending``: the next run sends
    that message again (the only kind of message that can repeat), and the log says so.
    """
    outgoing, count, covers = ready.outgoing, len(ready.papers), ready.covers
    email, when = outgoing.recipient, outgoing.day
    if run.halt.stopped:
        return _held_back(ready, run)
    try:
        run.ledger.sending(email, when)
    except LedgerError as exc:
        _halt_for(exc, run)
        return _held_back(ready, run, record=False)
    outcome = await _attempt(outgoing, run, transport)
    state, status = _OUTCOMES[outcome.outcome]
    detail = outcome.detail
    if outcome.outcome is delivery.Outcome.HALTED:
        detail = f"{detail.replace('not sent', 'not attempted', 1)}: {run.halt.reason}"
    try:
        run.ledger.record(email, when, state, attempts=outcome.attempts, detail=detail)
    except LedgerError as exc:
        _halt_for(exc, run)
        detail = _unrecorded(detail or status.value, outcome.outcome, outgoing.message_id)
        log.warning("%s: %s", email, detail)
    if outcome.outcome is delivery.Outcome.STOPPED and not run.halt.stopped:
        code = ExitCode.CONFIG if outcome.configuration else ExitCode.UNAVAILABLE
        run.halt.stop(outcome.detail, code)
    if outcome.unreachable:
        run.halt.stop(outcome.detail)
    if status is not DeliveryStatus.SENT:
        log.warning("delivery to %s %s: %s", email, status.value, detail)
    return DeliveryResult(
        email,
        when,
        status,
        papers=count,
        detail=detail,
        unreachable=outcome.unreachable,
        attempts=outcome.attempts,
        covers=covers,
        waiting=ready.waiting,
    )


def _unrecorded(detail: str, outcome: delivery.Outcome, message_id: str) -> str:
    """What became of a digest whose outcome the ledger could not record (its row stays
    ``sending``, so the next run sends it)."""
    unrecorded = f"{detail}; not recorded (the ledger cannot be written): the next run sends"
    if outcome in (delivery.Outcome.SENT, delivery.Outcome.UNCERTAIN):
        return f"{unrecorded} {message_id} again"
    return f"{unrecorded} it"


def _unreachable(run: _Serving) -> bool:
    """Whether the halt means the server could not be reached (exit 69)."""
    return run.halt.stopped and run.halt.code is None


def _held_back(ready: _Ready, run: _Serving, *, record: bool = True) -> DeliveryResult:
    """A claimed digest not handed over because the run halted: ``failed_transient`` ("not
    attempted"), so the next run sends it. If that cannot be recorded, the row stays ``queued``,
    which the next run treats the same."""
    outgoing = ready.outgoing
    email, when = outgoing.recipient, outgoing.day
    detail = f"not attempted: {run.halt.reason}"
    if record:
        try:
            run.ledger.record(email, when, State.FAILED_TRANSIENT, attempts=0, detail=detail)
        except LedgerError as exc:
            _halt_for(exc, run)  # halted already: the first reason stands
    return DeliveryResult(
        email,
        when,
        DeliveryStatus.FAILED_TRANSIENT,
        papers=len(ready.papers),
        detail=detail,
        unreachable=_unreachable(run),
        covers=ready.covers,
        waiting=ready.waiting,
    )


async def _attempt(
    outgoing: delivery.Outgoing, run: _Serving, transport: delivery.Transport
) -> delivery.Attempted:
    """``send_with_retries``, waited for until the run halts and then ``grace`` seconds more.

    Once the run halts, a send that has not begun its DATA step (waiting for a rate slot or a
    backoff, connecting, MAIL, RCPT) is cut short at once: not sent (``HALTED``). A send in DATA
    is awaited for ``grace`` seconds; cut short then, or failing in a way nobody classified, it
    may have reached the server: uncertain, never sent again by itself.
    """
    halt = run.halt
    sending = asyncio.ensure_future(
        delivery.send_with_retries(transport, outgoing, run.how.retry, halt.event)
    )
    await asyncio.wait({sending, halt.waiter()}, return_when=asyncio.FIRST_COMPLETED)
    if not sending.done() and not transport.in_data:
        await _cancelled(sending)
        return delivery.Attempted(delivery.Outcome.HALTED, 0, detail="not sent")
    if not sending.done():
        await asyncio.wait({sending}, timeout=run.how.grace)
    if not sending.done():
        await _cancelled(sending)
        detail = (
            f"the run stopped while waiting for the server's reply to the message; the server "
            f"may have accepted {outgoing.message_id}"
        )
        return delivery.Attempted(delivery.Outcome.UNCERTAIN, 1, detail=detail)
    if (failure := sending.exception()) is not None:
        detail = f"unexpected failure while sending: {type(failure).__name__}: {failure}"
        return delivery.Attempted(delivery.Outcome.UNCERTAIN, 1, detail=one_line(detail))
    return sending.result()


async def _cancelled(task: asyncio.Future[delivery.Attempted]) -> None:
    """Cancel ``task`` and wait until it has ended."""
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
