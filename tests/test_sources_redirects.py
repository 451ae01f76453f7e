"""Redirects from a paper source: followed on the same host only, a few times at most.

Real HTTP servers on 127.0.0.1 play the source; a second one on another port plays "another
host" (an internal address a hostile upstream could point papermail at).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from pipeline import semantic
from pipeline.cli import main
from pipeline.errors import SourceError
from pipeline.sources.http import MAX_REDIRECTS, Fetcher
from tests.conftest import FakeTime, no_sleep

DAY = date(2026, 1, 1)


class Server:
    """A local HTTP server answering each path from ``routes``: (status, Location or body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str]] = {}
        self.seen: list[str] = []
        self.base = ""

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base + path


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """The source, and another host (another port of loopback)."""
    started = [_start(Server()), _start(Server())]
    yield started[0][0], started[1][0]
    for _state, server in started:
        server.shutdown()
        server.server_close()


def _start(state: Server) -> tuple[Server, ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(self.path)
            status, text = state.routes.get(self.path.split("?")[0], (404, "not here"))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", text)
                text = ""
            body = text.encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    return state, server


def fetcher(client: httpx.Client) -> Fetcher:
    """A Daily Papers fetcher with fake time, naming its setting."""
    return Fetcher(client, FakeTime().clock(), "Daily Papers API", setting="PAPERMAIL_HF_API_URL")


@pytest.mark.parametrize("follow", [True, False])
def test_a_same_host_redirect_is_followed_whatever_the_client_default(
    servers: tuple[Server, Server], follow: bool
) -> None:
    """A relative or absolute redirect on the same scheme, host and port is followed (with
    its own query), even by a client that would not follow redirects itself."""
    source, _other = servers
    source.routes = {
        "/api": (301, "/v2/api?date=2026-01-01"),
        "/v2/api": (307, source.url("/v3/api?date=2026-01-01")),
        "/v3/api": (200, "[]"),
    }
    with httpx.Client(follow_redirects=follow) as client:
        response = fetcher(client).get(source.url("/api"), {"date": "2026-01-01"})
    assert response.json() == []
    assert [p.split("?")[0] for p in source.seen] == ["/api", "/v2/api", "/v3/api"]
    assert all(p.endswith("?date=2026-01-01") for p in source.seen)


@pytest.mark.parametrize("follow", [True, False])
def test_a_redirect_to_another_host_is_refused_naming_both_urls(
    servers: tuple[Server, Server], follow: bool
) -> None:
    """Another port is another host: nothing is asked there, nothing retried, and the error
    names where the redirect came from and where it led."""
    source, other = servers
    source.routes = {"/api": (302, other.url("/internal/admin"))}
    other.routes = {"/internal/admin": (200, "[]")}
    with httpx.Client(follow_redirects=follow) as client, pytest.raises(SourceError) as caught:
        fetcher(client).get(source.url("/api"), {"date": "2026-01-01"})
    assert str(caught.value) == (
        f"Daily Papers API at {source.url('/api')} redirected to another host "
        f"({source.url('/api?date=2026-01-01')} → {other.url('/internal/admin')}); "
        "not followed: set PAPERMAIL_HF_API_URL to it if that is right"
    )
    assert caught.value.url == source.url("/api")
    assert source.seen == ["/api?date=2026-01-01"]  # not retried
    assert other.seen == []


@pytest.mark.parametrize(
    "location", ["https://127.0.0.1/api", "//localhost/api", "http://[::1]/api"]
)
def test_another_scheme_or_host_name_is_another_host(
    servers: tuple[Server, Server], location: str
) -> None:
    """The same machine under another scheme or name is still not followed."""
    source, _other = servers
    source.routes = {"/api": (308, location)}
    with httpx.Client() as client, pytest.raises(SourceError, match="redirected to another host"):
        fetcher(client).get(source.url("/api"), {})


def test_a_redirect_loop_ends_after_a_few_hops(servers: tuple[Server, Server]) -> None:
    """A source redirecting to itself forever is asked a few times, then refused."""
    source, _other = servers
    source.routes = {"/api": (302, "/api")}
    with httpx.Client() as client, pytest.raises(SourceError) as caught:
        fetcher(client).get(source.url("/api"), {})
    assert f"redirected more than {MAX_REDIRECTS} times" in str(caught.value)
    assert len(source.seen) == MAX_REDIRECTS + 1


def test_fetch_redirected_elsewhere_is_exit_69(
    env: Path,
    servers: tuple[Server, Server],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From the command line: exit 69, and the message names both URLs and the setting."""
    source, other = servers
    source.routes = {"/api/daily_papers": (302, other.url("/metadata"))}
    monkeypatch.setenv("PAPERMAIL_HF_API_URL", source.url("/api/daily_papers"))
    assert main(["fetch", "--date", DAY.isoformat()], sleep=no_sleep) == 69
    err = capsys.readouterr().err
    assert f"at {source.url('/api/daily_papers')} redirected to another host" in err
    assert other.url("/metadata") in err
    assert "set PAPERMAIL_HF_API_URL to it if that is right" in err
    assert other.seen == []


def test_the_model_download_still_follows_the_hub_to_its_cdn(
    tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    """The Hub's file URLs redirect to a CDN on another host: the model download follows them
    (its files are checked by sha256), even with a client that does not follow by default."""
    hub, cdn = servers
    body = b"tokenizer bytes"
    path = f"/{semantic.HUB_REPO}/resolve/{semantic.HUB_REVISION}/tokenizer.json"
    hub.routes = {path: (302, cdn.url("/blobs/abc"))}
    cdn.routes = {"/blobs/abc": (200, body.decode())}
    pinned = {"tokenizer.json": ("tokenizer.json", hashlib.sha256(body).hexdigest())}
    with httpx.Client(follow_redirects=False) as client:
        semantic.download_model(tmp_path, client=client, hub=hub.base, files=pinned)
    assert (tmp_path / "tokenizer.json").read_bytes() == body
    assert cdn.seen == ["/blobs/abc"]
