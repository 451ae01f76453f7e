"""One fixture per real resource: an SMTP server, a Daily Papers server, a clean environment."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pipeline.clock import Clock
from pipeline.sources.sample import SAMPLE_DAY, arxiv_feed, daily_papers_page, sample_items

REPO = Path(__file__).resolve().parent.parent
#: The tests' own subscribers (copies of the examples): tests never read the user's subscribers/,
#: and editing the shipped examples in examples/subscribers/ breaks no test but theirs.
SUBSCRIBERS = Path(__file__).resolve().parent / "fixtures" / "subscribers"


@pytest.fixture(autouse=True)
def _fresh_log_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without root log handlers, so none writes to an earlier test's closed
    capture stream (``papermail``'s CLI installs one on stderr at every call)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Inbox:
    """What the test SMTP server accepted, as parsed messages with their envelope recipients."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    def for_recipient(self, address: str) -> list[EmailMessage]:
        """Every message delivered to ``address``."""
        return [m for rcpts, m in self.messages if address in rcpts]


class RecordingHandler:
    """An aiosmtpd handler that keeps every accepted message."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Accept and record the message."""
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.inbox.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@dataclass
class SmtpServer:
    """A running aiosmtpd server on 127.0.0.1."""

    host: str
    port: int
    inbox: Inbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that records what it accepts."""
    inbox = Inbox()
    controller = Controller(RecordingHandler(inbox), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, inbox)
    finally:
        controller.stop()


@dataclass
class PapersServer:
    """A local HTTP server that answers like the Daily Papers API (``days`` maps date → items)
    and, for a ``search_query`` or an ``id_list``, like the arXiv API (``arxiv_entries``: Atom
    ``<entry>`` texts)."""

    url: str
    days: dict[str, list[Any]]
    requests: list[str] = field(default_factory=list)
    arxiv_url: str = ""
    arxiv_entries: list[str] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answered first


@pytest.fixture
def papers_server(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PapersServer]:
    """Both paper APIs on 127.0.0.1, serving the bundled sample day, with the environment
    pointed at them."""
    state = PapersServer(url="", days={SAMPLE_DAY.isoformat(): sample_items()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            params = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            state.requests.append(self.path)
            if state.faults:
                status, headers = state.faults.pop(0)
                kind, body = "application/json", json.dumps({"error": f"fault {status}"}).encode()
            elif "search_query" in params or "id_list" in params:
                status, headers = 200, {}
                body = arxiv_feed(state.arxiv_entries, params).encode()
                kind = "application/atom+xml; charset=utf-8"
            else:
                status, headers = 200, {}
                body = json.dumps(daily_papers_page(state.days, params)).encode()
                kind = "application/json; charset=utf-8"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers"
    state.arxiv_url = f"http://127.0.0.1:{server.server_address[1]}/api/query"
    monkeypatch.setenv("PAPERMAIL_HF_API_URL", state.url)
    monkeypatch.setenv("PAPERMAIL_ARXIV_API_URL", state.arxiv_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean PAPERMAIL_* environment in a fresh working directory (no .env, nothing upstream).

    Every URL points at loopback, so no test can reach the internet even by mistake.
    """
    for name in list(os.environ):
        if name.startswith("PAPERMAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERMAIL_HF_API_URL", f"http://127.0.0.1:{free_port()}/nothing-here")
    monkeypatch.setenv("PAPERMAIL_ARXIV_API_URL", f"http://127.0.0.1:{free_port()}/nothing-here")
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(SUBSCRIBERS))
    monkeypatch.setenv("PAPERMAIL_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PAPERMAIL_OUTBOX", str(tmp_path / "outbox"))
    # Ranking by keywords: the tests of semantic scoring turn it on with the packaged model.
    monkeypatch.setenv("PAPERMAIL_SEMANTIC", "off")
    return tmp_path


def no_sleep(_seconds: float) -> None:
    """A sleep that returns at once, for retry loops under test."""


@pytest.fixture
def live(
    env: Path, papers_server: PapersServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> SmtpServer:
    """The environment pointed at the local Daily Papers server and the local SMTP server."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
    return smtp_server


FAKE_START = datetime(2026, 1, 2, 6, 15, tzinfo=UTC)


class FakeTime:
    """A clock that only moves when something sleeps; it records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on."""
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        """The injectable clock backed by this fake time."""
        return Clock.waiting_with(
            self.sleep,
            monotonic=lambda: self.now,
            now=lambda: FAKE_START + timedelta(seconds=self.now),
        )


def mount_tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``where`` with ``options`` (``size=1m``, ``ro``), unmounted afterwards; the
    test is skipped where mounting is impossible (not root, no mount permission)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill_disk(directory: Path) -> None:
    """Fill the file system under ``directory`` to the last byte (``directory/filler``)."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):
            with suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
