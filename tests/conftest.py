"""One fixture per real resource: an SMTP server, a Daily Papers server, a clean environment."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pipeline.sources.sample import SAMPLE_DAY, sample_items

REPO = Path(__file__).resolve().parent.parent


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
    """A local HTTP server that answers like the Daily Papers API; ``days`` maps date → items."""

    url: str
    days: dict[str, list[Any]]
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def papers_server() -> Iterator[PapersServer]:
    """The Daily Papers API on 127.0.0.1, serving the bundled sample day (pages of ``limit``)."""
    state = PapersServer(url="", days={SAMPLE_DAY.isoformat(): sample_items()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            state.requests.append(self.path)
            items = state.days.get(query.get("date", [""])[0], [])
            limit = int(query.get("limit", ["50"])[0])
            page = int(query.get("p", ["0"])[0])
            body = json.dumps(items[page * limit : (page + 1) * limit]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers"
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
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(REPO / "subscribers"))
    monkeypatch.setenv("PAPERMAIL_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PAPERMAIL_OUTBOX", str(tmp_path / "outbox"))
    return tmp_path


@pytest.fixture(autouse=True)
def _detach_log_handlers() -> Iterator[None]:
    """main() points logging at the test's captured stderr; detach it when the test ends.

    Otherwise the SMTP server's thread, logging "EOF received" a moment later, writes to a closed
    stream and pytest prints "--- Logging error ---".
    """
    yield
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)


def no_sleep(_seconds: float) -> None:
    """A sleep that returns at once, for retry loops under test."""
