"""The retrying GET: timeouts, backoff, Retry-After, RateLimit, final 4xx, pacing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import httpcore
import httpx
import pytest

from pipeline.errors import SourceError
from pipeline.sources.http import MAX_SERVER_WAIT, Fetcher, server_wait
from tests.conftest import FAKE_START, FakeTime

URL = "http://127.0.0.1:9/api/daily_papers"


Answer = httpx.Response | Exception


def scripted(answers: list[Answer]) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose far end gives ``answers`` in order (an exception is raised as if by
    the network), then 200 ``[]`` forever; plus the list of requests it saw."""
    seen: list[httpx.Request] = []
    queue: Iterator[Answer] = iter(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(queue, httpx.Response(200, json=[]))
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def fetcher(
    client: httpx.Client, time: FakeTime, *, max_attempts: int = 5, **kwargs: float
) -> Fetcher:
    """A Fetcher with fake time and no randomness (jitter factor fixed at 0.75)."""
    return Fetcher(
        client,
        time.clock(),
        "Daily Papers API",
        max_attempts=max_attempts,
        jitter=lambda: 0.5,
        timeout=kwargs.get("timeout", 30.0),
        min_interval=kwargs.get("min_interval", 0.0),
    )


def test_429_then_success_waits_as_retry_after_says() -> None:
    """A 429 with Retry-After: 7 is retried after exactly 7 s, then the page arrives."""
    client, seen = scripted(
        [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=[1])]
    )
    time = FakeTime()
    assert fetcher(client, time).get(URL, {"date": "2026-01-01"}).json() == [1]
    assert time.sleeps == [7.0]
    assert len(seen) == 2


def test_503_then_success_backs_off_exponentially() -> None:
    """Two 503s are retried after growing waits (2 s then 4 s, times the jitter factor)."""
    client, _ = scripted([httpx.Response(503), httpx.Response(503), httpx.Response(200, json=[])])
    time = FakeTime()
    assert fetcher(client, time).get(URL, {}).status_code == 200
    assert time.sleeps == [1.5, 3.0]


def test_503_forever_raises_source_error_with_url_and_last_status() -> None:
    """A source that stays at 503 ends in SourceError naming the URL and HTTP 503."""
    client, seen = scripted([httpx.Response(503)] * 10)
    time = FakeTime()
    with pytest.raises(SourceError) as info:
        fetcher(client, time, max_attempts=4).get(URL, {})
    assert info.value.url == URL
    assert info.value.status == 503
    assert "unavailable after 4 attempts (last: HTTP 503)" in str(info.value)
    assert URL in str(info.value)
    assert len(seen) == 4
    assert len(time.sleeps) == 3


def test_backoff_is_capped_and_jittered() -> None:
    """Backoff grows 2, 4, 8 … but never past a minute; jitter spreads it over [half, full]."""
    client, _ = scripted([])
    low = Fetcher(client, FakeTime().clock(), "x", jitter=lambda: 0.0)
    high = Fetcher(client, FakeTime().clock(), "x", jitter=lambda: 0.999999)
    assert [low.backoff(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert high.backoff(1) == pytest.approx(2.0)
    assert high.backoff(20) == pytest.approx(60.0)


def test_timeout_then_success_is_retried() -> None:
    """A read timeout is a transient fault: retried after backoff."""
    client, _ = scripted([httpx.ReadTimeout("timed out"), httpx.Response(200, json=[])])
    time = FakeTime()
    assert fetcher(client, time).get(URL, {}).status_code == 200
    assert time.sleeps == [1.5]


def test_connection_errors_forever_name_the_error() -> None:
    """Refused connections on every attempt: SourceError with no status and the error's name."""
    client, _ = scripted([httpx.ConnectError("connection refused")] * 5)
    with pytest.raises(SourceError) as info:
        fetcher(client, FakeTime(), max_attempts=3).get(URL, {})
    assert info.value.status is None
    assert "ConnectError: connection refused" in str(info.value)


def test_every_request_carries_a_timeout() -> None:
    """The fetcher sets its timeout on each request, whatever the client's default."""
    client, seen = scripted([httpx.Response(200, json=[])])
    fetcher(client, FakeTime(), timeout=12.5).get(URL, {})
    assert seen[0].extensions["timeout"] == {
        "connect": 12.5,
        "read": 12.5,
        "write": 12.5,
        "pool": 12.5,
    }


def test_400_is_final_and_says_what_the_server_said() -> None:
    """A 400 (a future date, say) is not retried; the message quotes the server's error."""
    body = {"error": "Date must not be in the future"}
    client, seen = scripted([httpx.Response(400, json=body)])
    time = FakeTime()
    with pytest.raises(SourceError) as info:
        fetcher(client, time).get(URL, {"date": "2099-01-01"})
    message = str(info.value)
    assert "HTTP 400 (not retried)" in message
    assert "Date must not be in the future" in message
    assert "2099-01-01" in message
    assert info.value.status == 400
    assert len(seen) == 1
    assert time.sleeps == []


def test_retry_after_as_http_date() -> None:
    """Retry-After as an HTTP date means: wait until then, measured by the injected clock."""
    when = (FAKE_START + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    client, _ = scripted(
        [httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json=[])]
    )
    time = FakeTime()
    fetcher(client, time).get(URL, {})
    assert time.sleeps == [30.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'},
            55.0,
        ),
        ({"RateLimit": "limit=100, remaining=0, reset=12"}, 12.0),
        ({"RateLimit-Reset": "9"}, 9.0),
        ({"Retry-After": "3", "RateLimit": '"api";r=0;t=55'}, 3.0),
        ({"Retry-After": "Wed, 01 Jan 2020 00:00:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
        ({}, None),
    ],
)
def test_server_wait_reads_retry_after_and_ratelimit(
    headers: dict[str, str], expected: float | None
) -> None:
    """Retry-After wins; else the RateLimit reset (both draft forms); nonsense means no hint."""
    assert server_wait(httpx.Headers(headers), FAKE_START) == expected


def test_429_honours_the_ratelimit_reset() -> None:
    """The Hub's 429 carries `RateLimit: "api";r=0;t=55`: the retry waits 55 s."""
    limited = httpx.Response(429, headers={"RateLimit": '"api";r=0;t=55'})
    client, _ = scripted([limited, httpx.Response(200, json=[])])
    time = FakeTime()
    fetcher(client, time).get(URL, {})
    assert time.sleeps == [55.0]


def test_a_wait_longer_than_the_budget_gives_up_at_once() -> None:
    """A server asking for an hour's pause is unavailable now: no sleeping, one clear error."""
    client, seen = scripted([httpx.Response(429, headers={"Retry-After": "3600"})])
    time = FakeTime()
    with pytest.raises(SourceError, match="asks to wait 3600 s") as info:
        fetcher(client, time).get(URL, {})
    assert info.value.status == 429
    assert time.sleeps == []
    assert len(seen) == 1
    assert MAX_SERVER_WAIT < 3600


def test_min_interval_paces_requests_from_the_end_of_the_last_one() -> None:
    """With a 3 s interval, back-to-back requests wait the rest of the 3 s; the first does not."""
    client, _ = scripted([])
    time = FakeTime()
    paced = fetcher(client, time, min_interval=3.0)
    paced.get(URL, {})
    paced.get(URL, {})
    time.now += 1.0  # one second of work between requests
    paced.get(URL, {})
    assert time.sleeps == [3.0, 2.0]


def test_pacing_also_applies_to_retries() -> None:
    """A retry never comes sooner than the interval, even when backoff is shorter."""
    client, _ = scripted([httpx.Response(503), httpx.Response(200, json=[])])
    time = FakeTime()
    fetcher(client, time, min_interval=3.0).get(URL, {})
    assert sum(time.sleeps) == pytest.approx(3.0)


def test_error_messages_are_one_printable_line() -> None:
    """Upstream text in an error is flattened and stripped of control characters."""
    client, _ = scripted([httpx.Response(404, text="Not\x1b[31m found\n<html>\n</html>")])
    with pytest.raises(SourceError) as info:
        fetcher(client, FakeTime()).get(URL, {})
    message = str(info.value)
    assert "\n" not in message
    assert "\x1b" not in message
    assert "found <html> </html>" in message


def test_invalid_url_is_not_retried() -> None:
    """A URL scheme httpx cannot use fails at once with SourceError, without waiting."""
    time = FakeTime()
    with httpx.Client() as client, pytest.raises(SourceError) as info:
        Fetcher(client, time.clock(), "Daily Papers API").get("nope://x", {})
    assert "nope://x" in str(info.value)
    assert time.sleeps == []


def dns_failure() -> httpx.ConnectError:
    """What httpx raises when the host name does not resolve: a ConnectError whose cause is
    httpcore's, whose cause is ``socket.gaierror`` (the chain as httpx builds it)."""
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    try:
        try:
            raise gai
        except socket.gaierror as exc:
            raise httpcore.ConnectError(str(exc)) from exc
    except httpcore.ConnectError as exc:
        error = httpx.ConnectError(str(exc))
        error.__cause__ = exc
        return error


def test_a_failed_dns_lookup_fails_at_once_with_a_hint() -> None:
    """No 30 s of retries when the name does not resolve: one attempt, and `papermail demo`."""
    client, seen = scripted([dns_failure()])
    time = FakeTime()
    with pytest.raises(SourceError) as error:
        fetcher(client, time).get(URL, {})
    assert len(seen) == 1
    assert time.sleeps == []
    assert "cannot resolve the host" in str(error.value)
    assert "papermail demo" in str(error.value)


def test_a_refused_connection_is_still_retried() -> None:
    """Only the DNS failure is final; a refused connection is retried as before."""
    client, seen = scripted([httpx.ConnectError("Connection refused")])
    time = FakeTime()
    fetcher(client, time).get(URL, {})
    assert len(seen) == 2
    assert len(time.sleeps) == 1
