"""The baseline: aiosmtplib alone pushing pre-built messages, with papermail's concurrency.

Each of ``concurrency`` tasks holds one persistent connection and sends the next pre-built
message (already flattened to bytes) until all are sent. Nothing is ranked or rendered, so this is
what the network and the sink allow; papermail's rate divided by this one is the overhead ratio.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import aiosmtplib

SENDER = "papermail@example.org"


async def push(
    host: str, port: int, messages: Sequence[tuple[str, bytes]], count: int, concurrency: int
) -> float:
    """Send ``count`` messages (cycling through ``messages``); return the seconds it took."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for i, (recipient, data) in zip(range(count), itertools.cycle(messages), strict=False):
        queue.put_nowait((f"{i}.{recipient}", data))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=30)
        await client.connect()
        try:
            while not queue.empty():
                recipient, data = queue.get_nowait()
                await client.sendmail(SENDER, [recipient], data)
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return time.perf_counter() - started
