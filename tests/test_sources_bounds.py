"""Bounded input from the paper sources: size, time, depth, counts and text lengths.

A hostile or broken upstream gets a clear error at the right level: a source that cannot be
read whole is exit 69 naming its URL; one odd value is "unknown" or cut, never a crash."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from pipeline.cli import main
from pipeline.errors import SourceError
from pipeline.models import MAX_COUNT, Day
from pipeline.ranking import build_digest
from pipeline.sources import archive, huggingface
from pipeline.sources.http import MAX_BODY, Fetcher
from pipeline.sources.text import LONG_TEXT, TITLE_TEXT, clean_title
from pipeline.subscribers import load_subscribers
from tests.builders import live_items, paper
from tests.conftest import FakeTime, no_sleep
from tests.test_subscribers import write

DAY = date(2026, 1, 1)
URL = "http://127.0.0.1:9/api/daily_papers"


class Fixed:
    """A real HTTP server on 127.0.0.1 that answers every GET with one body and headers."""

    def __init__(self) -> None:
        self.body = b"[]"
        self.headers: dict[str, str] = {}
        self.url = ""


@pytest.fixture
def fixed_server(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fixed]:
    """The Daily Papers API URL pointed at a server whose answer the test sets."""
    state = Fixed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *_args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers"
    monkeypatch.setenv("PAPERMAIL_HF_API_URL", state.url)
    yield state
    server.shutdown()
    server.server_close()


def gzip_bomb(inflated: int) -> bytes:
    """``inflated`` zero bytes, gzipped (about a thousandth of the size)."""
    out = gzip.compress(b"", mtime=0)[:10]  # the gzip header
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    body = b"".join(deflate.compress(block) for _ in range(inflated >> 20)) + deflate.flush()
    trailer = (zlib.crc32(bytes(inflated)) & 0xFFFFFFFF).to_bytes(4, "little")
    return out + body + trailer + (inflated & 0xFFFFFFFF).to_bytes(4, "little")


def test_a_gzip_bomb_is_exit_69_naming_the_url(
    fixed_server: Fixed, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small answer that inflates past the size limit is not read further: exit 69, the URL."""
    fixed_server.body = gzip_bomb(MAX_BODY + (4 << 20))
    fixed_server.headers = {"Content-Encoding": "gzip"}
    assert len(fixed_server.body) < MAX_BODY // 100
    assert main(["fetch", "--date", DAY.isoformat()], sleep=no_sleep) == 69
    err = capsys.readouterr().err
    assert f"at {fixed_server.url} answered more than {MAX_BODY} bytes" in err


def test_json_nested_200000_deep_is_exit_69_naming_the_url(
    fixed_server: Fixed, capsys: pytest.CaptureFixture[str]
) -> None:
    """200,000 nested `[` is the source misbehaving (69), not an unexpected error (1)."""
    fixed_server.body = b"[" * 200_000 + b"]" * 200_000
    assert main(["fetch", "--date", DAY.isoformat()], sleep=no_sleep) == 69
    err = capsys.readouterr().err
    assert f"Daily Papers API at {fixed_server.url} answered JSON nested too deep" in err


def test_a_source_dripping_a_byte_a_second_hits_the_deadline() -> None:
    """The timeout bounds each read; the deadline bounds the whole answer: a server sending one
    byte a second forever ends in a SourceError after the retries."""
    time = FakeTime()

    def drip() -> Iterator[bytes]:
        while True:
            time.now += 1.0  # a second passes between bytes
            yield b" "

    client = httpx.Client(
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, content=drip()))
    )
    fetcher = Fetcher(client, time.clock(), "Daily Papers API", max_attempts=2, deadline=60)
    with pytest.raises(SourceError) as caught:
        fetcher.get(URL, {})
    assert str(caught.value) == (
        f"Daily Papers API at {URL} unavailable after 2 attempts "
        "(last: no complete answer within 60 s)"
    )
    assert time.now < 2 * 62 + 10  # two attempts of about a minute each, and one backoff


def test_an_answer_just_under_the_limit_is_read_whole() -> None:
    """The limit counts decompressed bytes: what fits is returned as the server sent it."""
    body = json.dumps([{"x": "y" * 1000}] * 50).encode()
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda _r: httpx.Response(
                200,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
                content=gzip.compress(body),
            )
        )
    )
    fetcher = Fetcher(client, FakeTime().clock(), "Daily Papers API", max_bytes=len(body))
    assert fetcher.get(URL, {}).json() == json.loads(body)
    small = Fetcher(client, FakeTime().clock(), "Daily Papers API", max_bytes=len(body) - 1)
    with pytest.raises(SourceError, match="answered more than"):
        small.get(URL, {})


@pytest.mark.parametrize("count", [1e30, 2**63, "1e30", -1, float("nan"), MAX_COUNT + 1])
def test_a_count_out_of_range_is_unknown(count: object) -> None:
    """Upvotes and comments beyond any real count are "unknown" (0 upvotes, no comment count),
    and the day ranks without overflowing."""
    item = live_items()[0]
    item["paper"]["upvotes"] = count
    item["numComments"] = count
    (parsed,) = huggingface.parse_items([item], DAY).papers
    assert (parsed.upvotes, parsed.num_comments) == (0, None)


def test_an_archived_day_with_an_absurd_count_still_ranks(tmp_path: Path) -> None:
    """A day archived before counts were bounded reads back with the count as unknown."""
    archive.save_day(tmp_path, Day(DAY, (paper(1, upvotes=10**30, num_comments=10**30),)))
    assert (
        '"upvotes": 1000000000000000000000000000000' in archive.day_path(tmp_path, DAY).read_text()
    )
    loaded = archive.load_day(tmp_path, DAY)
    assert loaded is not None
    (read,) = loaded.papers
    assert (read.upvotes, read.num_comments) == (0, None)
    subscriber_file = write(tmp_path, "s.yaml", "email: a@example.org\nauthors: [Nobody]\n")
    (subscriber,) = load_subscribers(subscriber_file).subscribers
    build_digest(subscriber, DAY, loaded.papers)  # no OverflowError


def test_a_100_mb_title_is_cut_not_archived_whole() -> None:
    """Text fields have caps: a 100 MB title becomes its first characters and "…"."""
    item = live_items()[0]
    item["paper"]["title"] = "Attention " * 10_000_000
    item["paper"]["summary"] = "word " * 1_000_000
    (parsed,) = huggingface.parse_items([item], DAY).papers
    assert len(parsed.title) == TITLE_TEXT
    assert parsed.title.startswith("Attention Attention")
    assert parsed.title.endswith("…")
    assert len(parsed.abstract) == LONG_TEXT


def test_a_list_title_or_mapping_authors_are_missing_not_python_text() -> None:
    """A list where the title should be skips the paper (no title); a mapping as an author's
    name is no author; neither becomes text like "['list', 'title']"."""
    listed, named = live_items()[0], live_items()[1]
    listed["paper"]["title"] = ["list", "title"]
    listed.pop("title", None)
    named["paper"]["authors"] = [{"name": {"first": "Ada"}}, {"name": "Grace Hopper"}]
    day = huggingface.parse_items([listed, named], DAY)
    assert [s.reason for s in day.skipped] == [f"paper {listed['paper']['id']} has no title"]
    (kept,) = day.papers
    assert kept.authors == ("Grace Hopper",)


def test_latex_nested_300_deep_is_kept_as_written_and_the_day_goes_on() -> None:
    """`$` and 300 `{` in a title: that title as written; the other papers as usual."""
    deep, plain = live_items()[0], live_items()[1]
    deep["paper"]["title"] = "Deep $" + "{" * 300 + "x"
    day = huggingface.parse_items([deep, plain], DAY)
    assert [p.title for p in day.papers] == ["Deep $" + "{" * 300 + "x", day.papers[1].title]
    assert day.papers[1].title
    assert clean_title("$" + "{" * 300 + "}" * 300 + "$") == "$" + "{" * 300 + "}" * 300 + "$"


@pytest.fixture
def header_dripper() -> Iterator[str]:
    """A local server that answers a status line and then drips a header a byte at a time,
    forever (each byte well within any per-read timeout); its URL."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            while not stop.wait(0.05):
                try:
                    self.wfile.write(b"a")
                    self.wfile.flush()
                except OSError:  # the client hung up
                    return

        def log_message(self, *_args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers"
    stop.set()
    server.shutdown()
    server.server_close()


def test_a_source_dripping_its_headers_hits_the_deadline(header_dripper: str) -> None:
    """The deadline bounds the headers too: a server that never finishes its header lines
    (each byte arriving well within the per-read timeout) ends in a SourceError."""
    with httpx.Client() as client:
        fetcher = Fetcher(
            client, FakeTime().clock(), "Daily Papers API", max_attempts=1, deadline=0.5
        )
        with pytest.raises(SourceError) as caught:
            fetcher.get(header_dripper, {})
    assert str(caught.value) == (
        f"Daily Papers API at {header_dripper} unavailable after 1 attempts "
        "(last: no complete answer within 0.5 s)"
    )
