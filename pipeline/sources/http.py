"""HTTP GET with timeouts, retries and pacing, shared by the paper sources.

Every request carries a timeout. Connection errors, timeouts, 429 and 5xx are retried with
exponential backoff and jitter; a server that says how long to wait (``Retry-After`` in seconds or
as an HTTP date, or the reset of the ``RateLimit`` header) is obeyed instead. Other 4xx answers are
final. After the last attempt a ``SourceError`` names the URL and the last status.

Redirects are followed by hand, a few at most, and only to the same scheme, host and port as the
request: a source that points elsewhere (an internal address, another service) is refused with a
``SourceError`` naming both URLs, not retried. The client's own redirect policy is not relied on.

The sleep function, both clocks and the jitter are parameters, so tests never wait. The loop is
written out rather than delegated to a retry library: what to wait depends on the response, and
these few lines say so more plainly than a retry library's callbacks would.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from pipeline.clock import Clock
from pipeline.errors import SourceError
from pipeline.text import one_line

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BASE_DELAY = 2.0  # the first backoff; then 4 s, 8 s, … (times a jitter factor in [0.5, 1))
MAX_BACKOFF = 60.0
MAX_SERVER_WAIT = 300.0  # a server asking for a longer pause is treated as unavailable now
DEFAULT_TIMEOUT = 30.0  # for each network step: connect, each read, each write
DEFAULT_DEADLINE = 120.0  # for a whole request, its body included: a dripping server ends here
MAX_BODY = 32 * 1024 * 1024  # bytes of one answer after decompression; a gzip bomb ends here
MAX_REDIRECTS = 5  # same-host redirects followed for one request
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])(?:t|reset)\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(slots=True)
class Fetcher:
    """GETs one source's URLs: timeouts, retries, and at most one request per ``min_interval``."""

    client: httpx.Client
    clock: Clock
    name: str  # "Daily Papers API", "arXiv API": how messages name the source
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    max_bytes: int = MAX_BODY
    max_attempts: int = 5
    min_interval: float = 0.0
    jitter: Callable[[], float] = random.random
    setting: str = ""  # the PAPERMAIL_* variable holding the URL, named when it redirects away
    _last_request: float | None = field(default=None, init=False, repr=False)

    def get(self, url: str, params: Mapping[str, str]) -> httpx.Response:
        """GET ``url`` until it answers 2xx; raise ``SourceError`` for a final answer or give-up."""
        last, status = "no attempt made", None
        for attempt in range(1, self.max_attempts + 1):
            self._wait_turn()
            try:
                response = self._read(url, params)
            except _TooSlow:
                last, status = f"no complete answer within {self.deadline:g} s", None
                delay = self.backoff(attempt)
            except _TooLarge as exc:
                raise SourceError(
                    f"{self.name} at {url} answered more than {self.max_bytes} bytes "
                    f"(after decompression); not read further",
                    url=url,
                    status=exc.status,
                ) from None
            except httpx.UnsupportedProtocol as exc:  # a transport error no retry can mend
                raise SourceError(f"{self.name} at {url}: {_describe(exc)}", url=url) from exc
            except httpx.TransportError as exc:
                if _name_not_resolved(exc):  # retrying will not bring the network back
                    raise SourceError(
                        f"{self.name} at {url}: cannot resolve the host ({_describe(exc)}); "
                        "check the network, or try `papermail demo`, which works offline",
                        url=url,
                    ) from exc
                last, status = _describe(exc), None
                delay = self.backoff(attempt)
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                raise SourceError(f"{self.name} at {url}: {_describe(exc)}", url=url) from exc
            else:
                if response.is_success:
                    return response
                status, last = response.status_code, f"HTTP {response.status_code}"
                if status not in RETRY_STATUSES:
                    raise SourceError(
                        f"{self.name} at {url} refused the request {dict(params)} with "
                        f"HTTP {status} (not retried): {error_message(response)}",
                        url=url,
                        status=status,
                    )
                asked = self._server_delay(response, url)
                delay = self.backoff(attempt) if asked is None else asked
            finally:
                self._last_request = self.clock.monotonic()
            if attempt < self.max_attempts:
                log.warning(
                    "%s at %s: %s; retrying in %.1f s (attempt %d of %d)",
                    self.name,
                    url,
                    last,
                    delay,
                    attempt + 1,
                    self.max_attempts,
                )
                self.clock.sleep(delay)
        raise SourceError(
            f"{self.name} at {url} unavailable after {self.max_attempts} attempts (last: {last})",
            url=url,
            status=status,
        )

    def _read(self, url: str, params: Mapping[str, str]) -> httpx.Response:
        """One GET, its same-host redirects followed, its body read whole (decompressed) within
        ``max_bytes`` and ``deadline``.

        httpx's timeout bounds each network step, so a server sending a byte a second never
        trips it; the deadline is checked as each piece of the body arrives. A piece is at most
        one network read inflated, so a compressed bomb is stopped after one such piece.
        """
        started = self.clock.monotonic()
        current: httpx.URL = httpx.URL(url)
        query: Mapping[str, str] | None = params
        with _Watchdog(self.deadline) as watchdog:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    with self.client.stream(
                        "GET",
                        current,
                        params=query,
                        headers={"Connection": "close"},  # a fresh connection the watchdog sees
                        timeout=self.timeout,
                        follow_redirects=False,
                        extensions={"trace": watchdog.trace},
                    ) as response:
                        if not response.is_redirect:
                            return self._body(response, started)
                        target = response.url.join(response.headers["Location"])
                except httpx.TransportError:
                    if watchdog.fired:
                        raise _TooSlow from None
                    raise
                if not _same_origin(response.url, target):
                    raise self._redirect_error(url, str(response.url), str(target))
                current, query = target, None
        raise self._redirect_error(url, str(current), "")

    def _body(self, response: httpx.Response, started: float) -> httpx.Response:
        """``response`` with its streamed body read whole, within the size and time limits."""
        body = bytearray()
        for piece in response.iter_bytes():
            body += piece
            if len(body) > self.max_bytes:
                raise _TooLarge(response.status_code)
            if self.clock.monotonic() - started > self.deadline:
                raise _TooSlow
        return httpx.Response(
            response.status_code,
            headers=[
                (name, value)
                for name, value in response.headers.multi_items()
                if name.lower() not in _BODY_FRAMING
            ],
            content=bytes(body),
            request=response.request,
        )

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: about 2 s, 4 s, 8 s … capped at a minute."""
        ceiling = min(MAX_BACKOFF, BASE_DELAY * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + self.jitter() / 2)

    def _wait_turn(self) -> None:
        """Keep at least ``min_interval`` between the end of one request and the next."""
        if self.min_interval <= 0 or self._last_request is None:
            return
        wait = self._last_request + self.min_interval - self.clock.monotonic()
        if wait > 0:
            self.clock.sleep(wait)

    def _redirect_error(self, url: str, source: str, target: str) -> SourceError:
        """The refusal to follow a redirect from ``source`` to ``target`` ("": one too many);
        final, not retried: the next attempt would be sent the same way."""
        hint = f": set {self.setting} to it if that is right" if self.setting else ""
        if not target:
            return SourceError(
                f"{self.name} at {url} redirected more than {MAX_REDIRECTS} times "
                f"(last at {snippet(source)}); not followed further",
                url=url,
            )
        return SourceError(
            f"{self.name} at {url} redirected to another host "
            f"({snippet(source)} → {snippet(target)}); not followed{hint}",
            url=url,
        )

    def _server_delay(self, response: httpx.Response, url: str) -> float | None:
        """What the server asked us to wait, if anything; too long a wait means give up now."""
        delay = server_wait(response.headers, self.clock.now())
        if delay is not None and delay > MAX_SERVER_WAIT:
            raise SourceError(
                f"{self.name} at {url} answered HTTP {response.status_code} and asks to wait "
                f"{delay:.0f} s before retrying",
                url=url,
                status=response.status_code,
            )
        return delay


#: Headers that describe the body as it came over the wire, not as it is once read.
_BODY_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class _TooSlow(Exception):
    """The whole answer did not arrive within the fetcher's deadline."""


class _Watchdog:
    """Shuts a request's connection down once ``seconds`` of real time have passed.

    httpx's timeouts bound each network step, so a server dripping its *headers* a byte at a
    time would hold a request for as long as it likes; the body's deadline check cannot run
    before the headers are complete. The watchdog learns the request's socket from httpx's
    documented ``trace`` extension (the stream returned when the connection is opened, and again
    when TLS starts) and, at the deadline, shuts it down from a timer thread: the blocked read
    returns, httpx raises a transport error, and ``fired`` says why.
    """

    _EVENTS = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpx's trace hook: remember the socket of each connection this request opens."""
        stream = info.get("return_value") if event in self._EVENTS else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socket = sock
                if self.fired:
                    _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._socket is not None:
                _shut(self._socket)


def _shut(sock: socket.socket) -> None:
    """End both directions of ``sock`` (a read blocked on it returns); closed already is fine."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """Whether two URLs have the same scheme, host and port (the scheme's default if unsaid)."""
    defaults = {"http": 80, "https": 443}
    return (a.scheme, a.host, a.port or defaults.get(a.scheme)) == (
        b.scheme,
        b.host,
        b.port or defaults.get(b.scheme),
    )


class _TooLarge(Exception):
    """The answer grew past the fetcher's size limit (args: the HTTP status)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def server_wait(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or the ``RateLimit`` reset."""
    retry_after = _retry_after(headers.get("Retry-After", "").strip(), now)
    return retry_after if retry_after is not None else _ratelimit_reset(headers)


def _retry_after(value: str, now: datetime) -> float | None:
    if _NUMBER.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _ratelimit_reset(headers: httpx.Headers) -> float | None:
    """``RateLimit: "api";r=0;t=55`` (IETF draft, as the Hub sends it), or ``RateLimit-Reset``."""
    if match := _RATELIMIT_RESET.search(headers.get("RateLimit", "")):
        return float(match.group(1))
    value = headers.get("RateLimit-Reset", "").strip()
    return float(value) if _NUMBER.fullmatch(value) else None


def error_message(response: httpx.Response) -> str:
    """The server's own words about a refusal: a JSON ``error`` field, or the start of the body."""
    try:
        data: Any = response.json()
    except (ValueError, RecursionError):
        data = None
    text = data.get("error") if isinstance(data, dict) else None
    return snippet(str(text) if text else response.text)


def snippet(text: str, limit: int = 200) -> str:
    """Upstream text made safe for a one-line message: printable, collapsed, and short."""
    flat = one_line(text)
    return flat[:limit] + ("…" if len(flat) > limit else "") if flat else "(empty body)"


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _name_not_resolved(exc: BaseException) -> bool:
    """Whether a transport error comes from a failed DNS lookup (``socket.gaierror``)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, socket.gaierror):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
