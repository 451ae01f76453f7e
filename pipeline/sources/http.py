"""HTTP GET with timeouts and retries, shared by the paper sources.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter (honouring
``Retry-After``); other 4xx answers are final. The sleep function is a parameter, so tests
never wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from pipeline.errors import SourceError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BASE_DELAY = 1.0
MAX_DELAY = 60.0


def get_json(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, str],
    sleep: Callable[[float], None],
    max_attempts: int,
) -> Any:
    """GET ``url`` and decode JSON, retrying what is transient; raise SourceError otherwise."""
    last = "no attempt made"
    status: int | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            response = client.get(url, params=params)
        except httpx.TransportError as exc:
            last, status = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, None
            delay = backoff(attempt)
        else:
            status = response.status_code
            if response.is_success:
                return _decode(response)
            last = f"HTTP {status}"
            if status not in RETRY_STATUSES:
                raise SourceError(
                    f"{url} answered HTTP {status} for {dict(params)}: {_snippet(response)}",
                    url=url,
                    status=status,
                )
            delay = retry_after(response) or backoff(attempt)
        if attempt < max_attempts:
            sleep(delay)
    raise SourceError(
        f"{url} unavailable after {max_attempts} attempts (last: {last})", url=url, status=status
    )


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 1 s, 2 s, 4 s … capped at a minute."""
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds form), capped; None if absent or odd."""
    value = response.headers.get("Retry-After")
    try:
        return min(MAX_DELAY, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise SourceError(
            f"{response.request.url} answered invalid JSON: {_snippet(response)}",
            url=str(response.request.url),
            status=response.status_code,
        ) from exc


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:200] + ("…" if len(text) > 200 else "")
