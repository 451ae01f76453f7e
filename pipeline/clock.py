"""Time as papermail sees it, in one injectable record: what date it is, how long since, and how
to wait (blocking, for the HTTP sources; async, for delivery's backoff and rate limit).

Every part that waits or reads the time takes a ``Clock``; tests pass one that never waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Clock:
    """The date, a monotonic clock, and the two ways to wait; the system's by default."""

    now: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Sleep = time.sleep
    async_sleep: AsyncSleep = asyncio.sleep

    @classmethod
    def waiting_with(
        cls,
        sleep: Sleep,
        *,
        now: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Clock:
        """A clock whose every wait, blocking or async, is ``sleep`` (tests: record, return)."""

        async def wait(seconds: float) -> None:
            sleep(seconds)

        return cls(now=now, monotonic=monotonic, sleep=sleep, async_sleep=wait)


SYSTEM_CLOCK = Clock()
