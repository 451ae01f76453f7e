"""A small raw SMTP server on 127.0.0.1 for the replies aiosmtpd cannot give.

aiosmtpd always answers the final dot and always accepts the sender; this one, written on asyncio
streams, can refuse MAIL FROM, answer 421 in the middle of a session, hang up after the dot or
never answer it. Faults are keyed by recipient and apply to that recipient's first DATA (or
first RCPT) only, so a rerun meets a healthy server. A message the server read to the final dot
counts as received, whatever it answered: that is what a real server may have kept.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.conftest import free_port

#: What the server does after the final dot of a recipient's first message.
HANG_UP = "hang_up"  # close the connection without a reply (the message was read)
SILENCE = "silence"  # never reply (the client times out)
REFUSE_421 = "421"  # "421 shutting down" and close: not accepted
#: What the server does to a recipient's first RCPT.
RCPT_421 = "rcpt_421"
Say = Callable[[str], Awaitable[None]]


@dataclass
class RawServer:
    """The running server: its faults, and what it read."""

    host: str
    port: int
    faults: dict[str, str] = field(default_factory=dict)  # recipient → HANG_UP, SILENCE, …
    mail_reply: str = "250 2.1.0 sender ok"  # e.g. "553 5.7.1 sender not allowed"
    extensions: tuple[str, ...] = ("8BITMIME",)  # what EHLO offers (e.g. add "AUTH PLAIN")
    auth_reply: str = "235 2.7.0 ok"  # e.g. a 535 that echoes what it was sent
    received: Counter[str] = field(default_factory=Counter)  # messages read to the dot
    accepted: Counter[str] = field(default_factory=Counter)  # answered 250
    seen: Counter[str] = field(default_factory=Counter)  # RCPT commands
    mail_commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _used: set[str] = field(default_factory=set)

    def _first(self, recipient: str, kind: str) -> bool:
        key = f"{recipient}\0{kind}"
        with self.lock:
            if self.faults.get(recipient) != kind or key in self._used:
                return False
            self._used.add(key)
            return True

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One SMTP session, as the faults say."""
        rcpts: list[str] = []

        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            await say("220 raw.test ESMTP")
            while line := await reader.readline():
                if not await self._command(line, rcpts, say, reader):
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    async def _command(
        self, line: bytes, rcpts: list[str], say: Say, reader: asyncio.StreamReader
    ) -> bool:
        """Answer one command; False when the session ends here."""
        verb = line[:4].upper()
        if verb == b"EHLO":
            lines = ["raw.test", *self.extensions]
            await say("\r\n".join([*(f"250-{x}" for x in lines[:-1]), f"250 {lines[-1]}"]))
        elif verb == b"HELO":
            await say("250 hi")
        elif verb == b"AUTH":
            await say(self.auth_reply.replace("{sent}", line.decode().strip()))
        elif verb == b"MAIL":
            with self.lock:
                self.mail_commands += 1
            rcpts.clear()
            await say(self.mail_reply)
        elif verb == b"RCPT":
            rcpt = line.decode().partition(":")[2].strip().strip("<>")
            with self.lock:
                self.seen[rcpt] += 1
            if self._first(rcpt, RCPT_421):
                await say("421 4.3.2 shutting down")
                return False
            rcpts.append(rcpt)
            await say("250 2.1.5 ok")
        elif verb == b"DATA":
            await say("354 go ahead")
            while (body := await reader.readline()) not in (b".\r\n", b""):
                pass
            if not body:
                return False
            with self.lock:
                for rcpt in rcpts:
                    self.received[rcpt] += 1
            return await self._after_dot(rcpts, say, reader)
        elif verb == b"QUIT":
            await say("221 bye")
            return False
        else:  # RSET, NOOP
            await say("250 ok")
        return True

    async def _after_dot(self, rcpts: list[str], say: Say, reader: asyncio.StreamReader) -> bool:
        """Answer the final dot; False when the session ends here."""
        for rcpt in rcpts:
            if self._first(rcpt, HANG_UP):
                return False
            if self._first(rcpt, SILENCE):
                await reader.read()  # until the client gives up and closes
                return False
            if self._first(rcpt, REFUSE_421):
                with self.lock:
                    for r in rcpts:
                        self.received[r] -= 1  # refused: the server did not keep it
                await say("421 4.3.2 shutting down")
                return False
        with self.lock:
            for rcpt in rcpts:
                self.accepted[rcpt] += 1
        await say("250 2.0.0 queued")
        return True


@contextmanager
def raw_smtp_server() -> Iterator[RawServer]:
    """Run a ``RawServer`` on its own event loop in a thread until the block ends."""
    state = RawServer("127.0.0.1", free_port())
    loop = asyncio.new_event_loop()
    started = threading.Event()
    server: list[asyncio.base_events.Server] = []

    async def start() -> None:
        server.append(await asyncio.start_server(state.session, state.host, state.port))
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    started.wait(10)
    try:
        yield state
    finally:

        async def stop() -> None:
            server[0].close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
