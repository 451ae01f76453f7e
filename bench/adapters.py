"""Every coupling between the benchmark and papermail's internals, in one place.

The other bench modules speak only in outward contracts (SPEC's subscriber YAML schema as plain
dicts, the Daily Papers API's JSON items) and call the functions here. When a stage's API changes
(ranking grows an index object, rendering splits its steps), repoint the function below and the
rest of the harness keeps working.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from pipeline import app, delivery, engine, ranking, rendering, semantic
from pipeline.clock import Clock
from pipeline.models import (
    Day,
    DeliveryResult,
    DeliveryStatus,
    Digest,
    RenderedEmail,
    Subscriber,
    Topic,
)
from pipeline.settings import DEFAULT_TEMPLATES, Settings
from pipeline.sources.huggingface import parse_items

FROM_ADDRESS = "papermail@example.org"


# --- records -------------------------------------------------------------------------------------


def subscriber_from_profile(profile: dict[str, Any]) -> Subscriber:
    """A ``Subscriber`` from a SPEC-shaped profile dict, without going through YAML."""
    return Subscriber(
        email=profile["email"],
        name=profile.get("name"),
        topics=tuple(
            Topic(t["name"], tuple(t["keywords"]), float(t.get("weight", 1.0)))
            for t in profile.get("topics", ())
        ),
        authors=tuple(profile.get("authors", ())),
        exclude=tuple(profile.get("exclude", ())),
        max_papers=int(profile.get("max_papers", 10)),
        min_upvotes=int(profile.get("min_upvotes", 0)),
        send_empty=bool(profile.get("send_empty", False)),
    )


def day_from_items(items: list[Any], day: date) -> Day:
    """The parsed day, exactly as the Daily Papers source would build it from these API items."""
    return parse_items(items, day)


# --- ranking -------------------------------------------------------------------------------------


def rank(subscriber: Subscriber, day: Day) -> Digest:
    """One subscriber's digest, ranked alone."""
    return ranking.build_digest(subscriber, day.day, day.papers, already_sent=frozenset())


def rank_each(
    subscribers: Sequence[Subscriber], day: Day, meaning: ranking.Meaning | None = None
) -> Iterator[Digest]:
    """Every subscriber's digest as a run makes them: the papers indexed and everyone scored
    together once (``ranking.rank_all``), then each digest picked as it is served."""
    rankings = ranking.rank_all(day.papers, subscribers, meaning)
    for subscriber in subscribers:
        yield rankings.digest(subscriber, day.day)


def embedder(state_dir: Path | None) -> semantic.Vectors:
    """The embedding model (the tests' packaged one, a dev dependency), caching in
    ``state_dir`` (None: in memory)."""
    from tests.embedding import embedder as packaged  # noqa: PLC0415  # the tests' model folder

    return semantic.Vectors(packaged(), state_dir)


def meaning_for(
    vectors: semantic.Vectors, day: Day, subscribers: Sequence[Subscriber]
) -> ranking.Meaning | None:
    """The vectors ranking needs for ``day`` and ``subscribers``, as a run computes them."""
    return semantic.Semantic(vectors, {}).meaning([day], subscribers)


def picked(digest: Digest) -> int:
    """How many papers a digest holds."""
    return len(digest.papers)


# --- rendering -----------------------------------------------------------------------------------


def renderer(templates: Path = DEFAULT_TEMPLATES) -> rendering.Renderer:
    """The renderer the pipeline would build (templates compiled once)."""
    return rendering.Renderer(templates)


def render(r: rendering.Renderer, digest: Digest) -> RenderedEmail:
    """The whole rendering stage for one digest."""
    return r.render(digest)


def message_bytes(rendered: RenderedEmail) -> bytes:
    """The MIME message as it goes on the wire."""
    return delivery.compose(rendered, from_address=FROM_ADDRESS).data


def html_of(rendered: RenderedEmail) -> str:
    """The HTML part of a rendered email."""
    return rendered.html


@dataclass(frozen=True, slots=True)
class StepTimes:
    """Seconds spent in each rendering step for one email, and the HTML it produced."""

    jinja: float
    mjml: float
    premailer: float
    mime: float
    html: str


def render_steps(r: rendering.Renderer, digest: Digest) -> StepTimes:
    """Time the Jinja fill, MJML compile, premailer inline and MIME build of one email apart.

    The renderer compiles and inlines each paper's card once per run and assembles emails from
    those stencils, so: MJML is ``Renderer.prepare`` (this digest's cards not seen before, in one
    document) and premailer ``Renderer.store`` (their CSS inlined), both zero once every paper
    has been seen; Jinja is ``Renderer.assemble`` (values escaped into the stencils, and the text
    part); then ``delivery.compose`` (the wire bytes). This is what ``Renderer.render``
    runs for a digest that fits; the harness test checks the HTML matches ``render``'s.
    """
    t0 = time.perf_counter()
    pending = r.prepare(digest)
    t1 = time.perf_counter()
    r.store(pending)
    t2 = time.perf_counter()
    rendered = r.assemble(digest)
    t3 = time.perf_counter()
    message_bytes(rendered)
    t4 = time.perf_counter()
    return StepTimes(t3 - t2, t1 - t0, t2 - t1, t4 - t3, rendered.html)


# --- end to end ----------------------------------------------------------------------------------


def settings_for(
    *,
    subscribers: Path,
    state_dir: Path,
    outbox: Path,
    hf_api_url: str,
    smtp_port: int | None,
    concurrency: int,
) -> Settings:
    """Settings for a benchmark run; every URL and host is on 127.0.0.1."""
    smtp: dict[str, Any] = {}  # SMTP settings only with a host (else they are a settings error)
    if smtp_port:
        smtp = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none"}
    return Settings(
        hf_api_url=hf_api_url,
        arxiv_api_url="http://127.0.0.1:9/unused",
        subscribers=subscribers,
        state_dir=state_dir,
        outbox=outbox,
        from_address=FROM_ADDRESS,
        smtp_concurrency=concurrency,
        max_attempts=1,
        **smtp,
        semantic=False,  # the end-to-end figures compare sending; semantic has its own section
    )


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What an end-to-end run did."""

    sent: int
    nothing_to_send: int
    failed: int


def run_end_to_end(
    settings: Settings,
    day: date,
    progress: Callable[[], None] = lambda: None,
    serving: Callable[[], None] = lambda: None,
) -> RunCounts:
    """``papermail run`` for ``day`` through the library seam ``app.run_batch``: ``serving`` is
    called when the start-up (subscribers loaded, papers gathered, everyone ranked) is over,
    ``progress`` once per subscriber served."""

    class Counting(engine.NoProgress):
        def start(self, total: int) -> None:
            serving()

        def advance(self, result: DeliveryResult) -> None:
            progress()

    with httpx.Client(timeout=30) as client:
        report = app.run_batch(
            settings,
            day=day,
            client=client,
            clock=Clock.waiting_with(lambda _s: None),
            progress=Counting(),
        )
    failed = report.count(DeliveryStatus.FAILED_TRANSIENT) + report.count(
        DeliveryStatus.FAILED_PERMANENT
    )
    return RunCounts(
        sent=report.count(DeliveryStatus.SENT),
        nothing_to_send=report.count(DeliveryStatus.NOTHING_TO_SEND),
        failed=failed,
    )


def prebuilt_messages(
    profiles: Sequence[dict[str, Any]], day: Day, limit: int
) -> Iterator[tuple[str, bytes]]:
    """(recipient, wire bytes) of up to ``limit`` real digests of these profiles (the baseline)."""
    r = renderer()
    made = 0
    for profile in profiles:
        if made >= limit:
            return
        digest = rank(subscriber_from_profile(profile), day)
        if picked(digest):
            made += 1
            yield profile["email"], message_bytes(render(r, digest))


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence papermail's per-subscriber INFO lines while measuring."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
