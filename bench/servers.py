"""The far ends of the network, on 127.0.0.1 only: a Daily Papers API and an SMTP sink.

The sink runs aiosmtpd in a separate process (so its CPU does not compete with the measured
process for the GIL) and only counts what it accepts. Both are context managers that always stop
what they started.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

HOST = "127.0.0.1"


@contextmanager
def papers_api(days: dict[str, list[Any]]) -> Iterator[str]:
    """Serve ``days`` (date → API items) like the Daily Papers API; yields the endpoint URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            items = days.get(query.get("date", [""])[0], [])
            limit = int(query.get("limit", ["50"])[0])
            page = int(query.get("p", ["0"])[0])
            body = json.dumps(items[page * limit : (page + 1) * limit]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the benchmark output quiet."""

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/api/daily_papers"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class _Counter:
    """An aiosmtpd handler that accepts every message and counts it."""

    def __init__(self, count: Any) -> None:
        self.count = count

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and count; the content is dropped."""
        with self.count.get_lock():
            self.count.value += 1
        return "250 OK"


def _serve_sink(
    port: int,
    count: Any,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - only the sink process needs it

    controller = Controller(_Counter(count), hostname=HOST, port=port, data_size_limit=0)
    controller.start()
    try:
        ready.set()
        stop.wait()
    finally:
        controller.stop()


@dataclass
class Sink:
    """A running SMTP sink: where it listens and how many messages it has accepted."""

    port: int
    _count: Any
    pid: int | None = None

    def accepted(self) -> int:
        """Messages accepted so far."""
        value: int = self._count.value
        return value

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the sink process has used so far; None where /proc is missing.

        It tells whether a measurement was bound by the sink (about a core's worth of CPU over the
        wall time) or by the sender.
        """
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text(encoding="ascii")
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def smtp_sink(startup_timeout: float = 20.0) -> Iterator[Sink]:
    """An aiosmtpd server in its own process on 127.0.0.1 that accepts and counts."""
    ctx = multiprocessing.get_context("spawn")
    count = ctx.Value("q", 0)
    ready, stop = ctx.Event(), ctx.Event()
    port = _free_port()
    process = ctx.Process(target=_serve_sink, args=(port, count, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(startup_timeout):
            raise RuntimeError("the SMTP sink did not start")
        yield Sink(port, count, process.pid)
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)
