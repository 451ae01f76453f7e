"""First steps: ``papermail init`` (a commented subscriber file) and ``papermail send-test``
(one real digest to one address, through the configured transport, with no ledger).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

from pipeline import app, delivery
from pipeline.clock import Clock
from pipeline.delivery.transport import (
    OutboxTransport,
    PermanentFailure,
    RunFailure,
    TransientFailure,
    UncertainDelivery,
    send_once,
    smtp_config,
)
from pipeline.errors import DeliveryError, SettingsError, UsageError
from pipeline.models import Digest, Subscriber, Topic, slug_of
from pipeline.planning import digest_for
from pipeline.rendering import Renderer
from pipeline.report import transport_of
from pipeline.settings import Settings, from_address_parts
from pipeline.sources.sample import SAMPLE_DAY, sample_client
from pipeline.subscribers import load_subscribers

SUBSCRIBER_TEMPLATE = """\
# papermail subscriber file. `papermail check` validates it; `papermail explain {bare}`
# shows what it picks for a day. Every key but email is optional (topics or authors: one at least).
email: {email}
# name: Your Name                     # shown in the greeting
topics:                               # what you care about
  - name: Language models             # a label shown in the email
    keywords: ["language model", LLM, "in-context learning"]   # words or phrases
    # weight: 1.0                     # relative importance
# authors: ["Cengiz Pehlevan"]        # papers by these people are always included
# categories: [cs.LG]                 # also consider new arXiv papers in these categories
# exclude: [medical]                  # drop papers matching any of these
# max_papers: 10
# min_upvotes: 0
# send_empty: false                   # send a short "nothing matched today" email
# frequency: daily                    # or weekly, with weekday: monday
# paused: false                       # keep the file, send nothing
"""

#: The subscribers folder ``init`` may create (the setting's default, relative to the current one).
DEFAULT_SUBSCRIBERS: Path = Settings.model_fields["subscribers"].default

#: What ``send-test`` renders without ``--only``: broad topics that match the bundled sample day.
SAMPLE_PROFILE = Subscriber(
    email="sample@example.org",
    name="papermail test",
    topics=(
        Topic("Language models", ("language model", "LLM", "reasoning")),
        Topic("Training dynamics", ("grokking", "training dynamics", "generalization")),
        Topic("Diffusion", ("diffusion",)),
    ),
    max_papers=5,
)


def init_subscriber(subscribers: Path, email: str) -> Path:
    """Write a commented subscriber file for ``email`` into the subscribers directory.

    Never overwrites; refuses an address that is invalid or already has a subscriber. Only the
    default ``subscribers/`` is created: another folder that does not exist is a settings error
    (78, as for every command), not a silently made tree at a mistyped path.
    """
    if subscribers.is_file():
        raise UsageError(f"{subscribers} is a file; init writes into a subscribers directory")
    text = SUBSCRIBER_TEMPLATE.format(email=json.dumps(email), bare=email)
    with tempfile.TemporaryDirectory() as scratch:  # validated exactly as `check` will
        trial = Path(scratch) / "new.yaml"
        trial.write_text(text, encoding="utf-8")
        problems = load_subscribers(trial).problems
    if problems:
        raise UsageError("; ".join(p.message for p in problems))
    if not subscribers.exists() and subscribers != DEFAULT_SUBSCRIBERS:
        raise SettingsError(
            f"subscribers folder not found: {subscribers} (create it first; init makes only "
            f"the default {DEFAULT_SUBSCRIBERS}/)"
        )
    if subscribers.is_dir():
        for existing in load_subscribers(subscribers).subscribers:
            if existing.email.lower() == email.lower():
                raise UsageError(f"{email} already has a subscriber file: {existing.source_file}")
    subscribers.mkdir(parents=True, exist_ok=True)
    path = subscribers / f"{slug_of(email)}.yaml"
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise UsageError(f"{path} exists; not overwritten") from None
    return path


@dataclass(frozen=True, slots=True)
class SentTest:
    """What ``send-test`` did: the message, where it went, and the server's answer."""

    message_id: str
    transport: str
    reply: str
    papers: int
    what: str  # whose digest for which day


def send_test(
    settings: Settings,
    address: str,
    *,
    only: str | None,
    day: date,
    client: httpx.Client,
    clock: Clock,
) -> SentTest:
    """Render one real digest and send it to ``address``; the ledger is neither read nor written."""
    _check_address(address)
    digest, what = (
        _subscriber_digest(settings, only, day, client, clock) if only else _sample(settings)
    )
    digest = dataclasses.replace(
        digest, subscriber=dataclasses.replace(digest.subscriber, email=address)
    )
    rendered = Renderer.for_settings(settings).render(digest)
    outgoing = delivery.compose(
        rendered,
        from_address=settings.from_email,
        from_name=settings.from_name or delivery.NEWSLETTER,
        unsubscribe_url=settings.unsubscribe_url,
        signer=delivery.dkim_signer(settings),
    )
    reply = asyncio.run(_send(settings, outgoing))
    papers = len(rendered.digest.papers)
    return SentTest(outgoing.message_id, transport_of(settings), reply, papers, what)


def _check_address(address: str) -> None:
    """A bare address (``me@example.org``): a display name or ``<>`` would reach the envelope."""
    try:
        name, bare = from_address_parts(address)
    except ValueError as exc:
        raise UsageError(f"ADDRESS {address!r}: {exc}") from None
    if name or bare != address:
        raise UsageError(
            f"ADDRESS {address!r}: give the bare address, e.g. {bare}, without a name or '<>'"
        )


def _subscriber_digest(
    settings: Settings,
    email: str,
    day: date,
    client: httpx.Client,
    clock: Clock,
) -> tuple[Digest, str]:
    subscriber_set = load_subscribers(settings.subscribers)
    (subscriber,) = app.select(subscriber_set, [email])  # unknown: refused before gathering
    categories = app.categories_of(subscriber_set.subscribers)
    papers = app.gather(settings, day, client=client, clock=clock, categories=categories)
    digest = digest_for(subscriber, papers, None, archive=app.archive_of(settings))
    return digest, f"{subscriber.email}'s digest for {day.isoformat()}"


def _sample(settings: Settings) -> tuple[Digest, str]:
    """The sample profile's digest of the bundled sample day, gathered offline into scratch."""
    with tempfile.TemporaryDirectory() as scratch, sample_client() as client:
        scratch_settings = settings.model_copy(update={"state_dir": Path(scratch)})
        papers = app.gather(
            scratch_settings, SAMPLE_DAY, client=client, clock=Clock.waiting_with(lambda _s: None)
        )
    digest = digest_for(SAMPLE_PROFILE, papers, None)
    return digest, f"the sample profile's digest for the sample day {SAMPLE_DAY.isoformat()}"


async def _send(settings: Settings, outgoing: delivery.Outgoing) -> str:
    """One delivery attempt through the configured transport; its reply, or a clear error."""
    if not settings.smtp_host:
        outbox = OutboxTransport(settings.outbox)
        await outbox.send(outgoing)
        return f"written to {outbox.path_for(outgoing)} (PAPERMAIL_SMTP_HOST is not set)"
    try:
        return await send_once(smtp_config(settings), outgoing)
    except (TransientFailure, PermanentFailure, UncertainDelivery) as exc:
        raise DeliveryError(f"send-test to {outgoing.recipient}: {exc}") from None
    except RunFailure as exc:  # as a run: a setting's fault (AUTH refused) is 78, else 69
        error = SettingsError if exc.configuration else DeliveryError
        raise error(f"send-test to {outgoing.recipient}: {exc}") from None
