"""A real aiosmtpd server on 127.0.0.1 that injects faults, and the data the delivery tests need.

Faults are keyed by recipient and by attempt, so each test states exactly what the server does to
whom. Waits are gates (``threading.Event``), never timers: a "slow" server is one that does not
answer until the test lets it, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from pipeline.models import Day, Paper
from pipeline.sources.archive import save_day
from pipeline.sources.huggingface import parse_items
from pipeline.sources.sample import SAMPLE_DAY, sample_items
from tests.conftest import free_port

#: aiosmtpd's own INFO lines (every command it reads) drown the test output, and its thread may
#: log after a test's captured stderr has closed; its warnings and errors still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)

USERNAME = "papermail-user"
PASSWORD = "pw-Hunter2-do-not-log"  # the test's own secret, checked for leaks


@dataclass
class Faults:
    """What the server does, by recipient; ``*_first`` faults hit only the first attempt."""

    defer_first: set[str] = field(default_factory=set)  # 451 to RCPT
    refuse: set[str] = field(default_factory=set)  # 550 to RCPT, always
    close_421_first: set[str] = field(default_factory=set)  # 421 to RCPT, then hang up
    drop_in_data_first: set[str] = field(default_factory=set)  # hang up instead of answering DATA
    hang_in_rcpt: set[str] = field(default_factory=set)  # never answer RCPT (until released)
    hang_in_data: set[str] = field(default_factory=set)  # never answer the final "."
    accept_before_gate: int | None = None  # after this many, take each message but hold its 250


@dataclass
class FaultyServer:
    """The running server and what it saw."""

    host: str
    port: int
    faults: Faults
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    peers: set[tuple[str, int]] = field(default_factory=set)
    held: list[str] = field(default_factory=list)  # recipients whose DATA waits at the gate
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, address: str) -> int:
        """How many messages ``address`` got."""
        with self.lock:
            return sum(1 for rcpts, _ in self.messages if address in rcpts)

    def for_recipient(self, address: str) -> list[EmailMessage]:
        """The messages ``address`` got."""
        with self.lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        """Poll ``condition`` until it holds (a generous deadline: a hung test, not a slow one)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the SMTP server never reached the expected state")
            time.sleep(0.01)


class FaultyHandler:
    """An aiosmtpd handler that applies ``Faults`` and records what it accepts."""

    def __init__(self, state: FaultyServer) -> None:
        self.state = state

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Accept the sender; remember the connection."""
        with self.state.lock:
            self.state.peers.add(session.peer)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Refuse, defer, hang or hang up as the faults say; else accept."""
        faults = self.state.faults
        with self.state.lock:
            self.state.attempts[address] += 1
            first = self.state.attempts[address] == 1
        if address in faults.hang_in_rcpt:
            await _wait(self.state.gate)
        if address in faults.refuse:
            return "550 5.1.1 no such mailbox"
        if first and address in faults.defer_first:
            return "451 4.3.0 try again later"
        if first and address in faults.close_421_first:
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.3.2 service shutting down"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Hang up, hang, hold at the gate, or accept and record."""
        faults, state = self.state.faults, self.state
        rcpts = list(envelope.rcpt_tos)
        with state.lock:
            first_data = all(state.attempts[r] == 1 for r in rcpts)
        if first_data and set(rcpts) & faults.drop_in_data_first:
            server.transport.close()
            return "451 4.3.0 (never sent: the connection is gone)"
        if set(rcpts) & faults.hang_in_data:
            await _wait(state.gate)
            return "451 4.3.0 too late"
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with state.lock:
            hold = (
                faults.accept_before_gate is not None
                and len(state.messages) >= faults.accept_before_gate
            )
            state.messages.append((rcpts, msg))
            if hold:
                state.held.extend(rcpts)
        if hold:  # the server has the message; the client waits for its 250 at the gate
            await _wait(state.gate)
        return "250 OK queued"


async def _wait(gate: threading.Event) -> None:
    while not gate.is_set():
        await asyncio.sleep(0.01)


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Only the test user with the test password gets in."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass(frozen=True)
class TestCA:
    """A throwaway certificate authority and the server certificate it issued for 127.0.0.1."""

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


def test_ca() -> TestCA:
    """A trustme CA: the server presents its certificate, the client trusts only this CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return TestCA(server_context, client_context)


test_ca.__test__ = False  # type: ignore[attr-defined]  # a factory, not a test
TestCA.__test__ = False  # type: ignore[attr-defined]


@contextmanager
def faulty_server(
    faults: Faults | None = None, *, tls: str = "none", ca: TestCA | None = None, auth: bool = False
) -> Iterator[FaultyServer]:
    """Run the server on 127.0.0.1: ``tls`` is ``none``, ``starttls`` or ``ssl`` (with ``ca``)."""
    state = FaultyServer("127.0.0.1", free_port(), faults or Faults())
    options: dict[str, Any] = {}
    if auth:
        options.update(authenticator=_authenticate, auth_require_tls=tls == "starttls")
    if tls == "starttls" and ca:
        options.update(tls_context=ca.server_context, require_starttls=True)
    if tls == "ssl" and ca:
        options.update(ssl_context=ca.server_context)
    controller = Controller(FaultyHandler(state), hostname=state.host, port=state.port, **options)
    controller.start()
    try:
        yield state
    finally:
        state.gate.set()
        controller.stop()


# --- data ----------------------------------------------------------------------------------------


def sample_day() -> Day:
    """The bundled sample day, parsed as the live source would."""
    return parse_items(sample_items(), SAMPLE_DAY)


def write_subscribers(directory: Path, emails: list[str], **extra: str) -> Path:
    """One YAML file per address; every subscriber gets a digest (``send_empty``)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{key}: {value}\n" for key, value in extra.items())
    for n, email in enumerate(emails):
        (directory / f"s{n:03d}.yaml").write_text(
            f"email: {email}\nname: Reader {n}\n"
            "topics:\n  - name: Learning\n    keywords: [learning, model]\n"
            f"send_empty: true\n{lines}",
            encoding="utf-8",
        )
    return directory


def archive_papers(state_dir: Path, day: date, titles: list[str]) -> list[Paper]:
    """Archive a day of made-up papers with these titles (ids derived from day and position)."""
    papers = [
        Paper(
            id=f"{day:%y%m}.{day.day:02d}{n:03d}",
            title=title,
            abstract=f"An abstract about {title.lower()}.",
            authors=("A. Author",),
            published=day,
            upvotes=10 - n,
            url=f"https://huggingface.co/papers/{day:%y%m}.{day.day:02d}{n:03d}",
            pdf_url=f"https://arxiv.org/pdf/{day:%y%m}.{day.day:02d}{n:03d}",
            source="huggingface",
        )
        for n, title in enumerate(titles)
    ]
    save_day(state_dir, Day(day, tuple(papers)))
    return papers
