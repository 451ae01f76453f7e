"""Gathering end to end: `papermail fetch`/`run` against local APIs that behave like the live ones,
with faults, and the archive every command reads."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cli import main
from pipeline.clock import Clock
from pipeline.sources import archive, gather_day, huggingface
from pipeline.sources.http import Fetcher
from pipeline.sources.sample import sources_transport
from tests.builders import live_items, many_items
from tests.conftest import SUBSCRIBERS, PapersServer, SmtpServer

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
DAY = "2026-01-01"
HF_IDS = 250 + 3  # many_items(250) plus the three unique papers of the recorded page


def recorded_entries() -> list[str]:
    """The `<entry>` elements of the recorded arXiv page, as text."""
    text = (FIXTURES / "arxiv_cs_LG_2026-01-01.xml").read_text("utf-8")
    return re.findall(r"<entry>.*?</entry>\s*", text, flags=re.DOTALL)


@pytest.fixture
def live_day(papers_server: PapersServer) -> PapersServer:
    """The local APIs serving a big live-shaped day: 250 papers plus the recorded oddities on
    Daily Papers (duplicates, nulls, LaTeX, entities, four malformed items) and the recorded
    arXiv page (one paper in common with Daily Papers, two more of the day, one of the day
    before)."""
    papers_server.days[DAY] = [*many_items(250), *live_items()]
    papers_server.arxiv_entries = recorded_entries()
    return papers_server


class Sleeps(list[float]):
    """An injectable sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        """Record one wait."""
        self.append(seconds)


def fetch(capsys: pytest.CaptureFixture[str], *args: str, sleep: Sleeps | None = None) -> list[Any]:
    """Run `papermail fetch --date DAY` and return the printed papers."""
    assert main(["fetch", "--date", DAY, *args], sleep=Sleeps() if sleep is None else sleep) == 0
    papers: list[Any] = json.loads(capsys.readouterr().out)
    return papers


def test_fetch_returns_every_paper_exactly_once_and_clean_despite_faults(
    live_day: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """429, 503, then three Daily Papers pages and the arXiv query: every paper once, clean."""
    live_day.faults = [(429, {"Retry-After": "2"}), (503, {})]
    sleeps = Sleeps()
    papers = fetch(capsys, sleep=sleeps)

    ids = [p["id"] for p in papers]
    assert len(ids) == len(set(ids)) == HF_IDS + 2
    assert {"2601.00101", "hep-th/0101001"} <= set(ids)
    assert "2512.30999" not in ids  # first submitted the day before
    for paper in papers:
        assert paper["published"] == DAY
        assert "$" not in paper["title"]
        assert "&amp;" not in paper["title"] + paper["abstract"]
        assert "\n" not in paper["abstract"]
        assert not re.search(r"v\d+$", paper["id"])
    merged = next(p for p in papers if p["id"] == "2601.00077")
    assert merged["source"] == "huggingface"
    assert merged["upvotes"] == 9
    assert merged["categories"] == ["hep-th", "physics.comp-ph"]
    assert sleeps[0] == 2.0  # Retry-After honoured
    assert len(sleeps) >= 2


def test_the_archive_holds_arxiv_papers_and_skipped_items_and_is_reused(
    live_day: PapersServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The archived day has the merged papers, the four skips, the categories; fetch reuses it."""
    first = fetch(capsys)
    requests = len(live_day.requests)
    stored = json.loads((env / "var" / "archive" / f"{DAY}.json").read_text("utf-8"))
    assert stored["categories"] == ["cs.LG", "physics.comp-ph"]
    assert len(stored["papers"]) == len(first)
    assert any(p["source"] == "arxiv" for p in stored["papers"])
    assert [s["position"] for s in stored["skipped"]] == [254, 255, 256, 257]

    assert fetch(capsys) == first
    assert len(live_day.requests) == requests, "the second fetch is served by the archive"
    live_day.days[DAY] = live_items()
    assert len(fetch(capsys, "--refresh")) == 3 + 2
    assert len(live_day.requests) > requests


def test_an_archived_day_without_the_categories_only_adds_arxiv(
    live_day: PapersServer,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A day archived without subscribers gets only the arXiv query later; HF is not asked again."""
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(env / "no-subscribers-yet"))
    assert len(fetch(capsys)) == HF_IDS
    assert not any("search_query" in r for r in live_day.requests)

    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(SUBSCRIBERS))
    before = len(live_day.requests)
    assert len(fetch(capsys)) == HF_IDS + 2
    new = live_day.requests[before:]
    assert new
    assert all("search_query" in r for r in new)


def test_an_arxiv_error_exits_69_and_keeps_the_daily_papers_archived(
    live_day: PapersServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """arXiv's Error entry: exit 69 with its reason; the next run asks arXiv only."""
    error = (FIXTURES / "arxiv_error.xml").read_text("utf-8")
    live_day.arxiv_entries = re.findall(r"<entry>.*?</entry>\s*", error, flags=re.DOTALL)
    assert main(["fetch", "--date", DAY], sleep=Sleeps()) == 69
    err = capsys.readouterr().err
    assert "rejected the query: malformed query string" in err
    assert "Traceback" not in err

    stored = archive.load_day(env / "var", date.fromisoformat(DAY))
    assert stored is not None
    assert len(stored.papers) == HF_IDS
    assert stored.categories == ()

    live_day.arxiv_entries = recorded_entries()
    before = len(live_day.requests)
    assert len(fetch(capsys)) == HF_IDS + 2
    assert all("search_query" in r for r in live_day.requests[before:])


def test_503_forever_exits_69_naming_the_url_and_status(
    live_day: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Daily Papers API stuck at 503: exit 69 after the retries, URL and last status named."""
    live_day.faults = [(503, {})] * 20
    sleeps = Sleeps()
    assert main(["run", "--date", DAY], sleep=sleeps) == 69
    err = capsys.readouterr().err
    assert f"{live_day.url} unavailable after 5 attempts (last: HTTP 503)" in err
    assert len(sleeps) == 4
    assert "Traceback" not in err


def test_400_for_a_future_date_is_not_retried_and_says_why(
    live_day: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 400 is answered at once with the server's words; no retry, exit 69."""
    live_day.faults = [(400, {})]
    sleeps = Sleeps()
    assert main(["fetch", "--date", "2099-01-01"], sleep=sleeps) == 69
    err = capsys.readouterr().err
    assert "HTTP 400 (not retried): fault 400" in err
    assert "2099-01-01" in err
    assert sleeps == []


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/daily_papers"


def test_a_server_that_never_answers_times_out_and_exits_69(
    env: Path,
    silent_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every request has a timeout: a silent server ends in exit 69 naming the timeout."""
    monkeypatch.setenv("PAPERMAIL_HF_API_URL", silent_server)
    monkeypatch.setenv("PAPERMAIL_HTTP_TIMEOUT", "0.1")
    assert main(["fetch", "--date", DAY], sleep=Sleeps()) == 69
    err = capsys.readouterr().err
    assert "ReadTimeout" in err
    assert silent_server in err


def test_skipped_items_are_counted_in_the_run_report_with_a_warning(
    live_day: PapersServer,
    smtp_server: SmtpServer,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The four malformed items: a warning each on stderr, counted in the summary and report."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
    assert main(["run", "--date", DAY, "--dry-run"], sleep=Sleeps()) == 0
    captured = capsys.readouterr()
    assert captured.err.count("WARNING skipped upstream item") == 4
    assert re.search(r"skipped upstream items\s+4", captured.out)
    assert f"{HF_IDS + 2} papers gathered" in captured.out
    (report_file,) = (env / "var" / "reports").glob(f"{DAY}-*.json")
    report = json.loads(report_file.read_text())
    assert len(report["skipped_items"]) == 4


def test_an_unreadable_archive_is_gathered_again(
    live_day: PapersServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged archive file is reported and replaced by a fresh gathering."""
    path = env / "var" / "archive" / f"{DAY}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{ half a file", encoding="utf-8")
    assert len(fetch(capsys)) == HF_IDS + 2
    assert json.loads(path.read_text("utf-8"))["day"] == DAY


def test_gather_day_with_a_timeout_then_success(tmp_path: Path) -> None:
    """A read timeout on the first page is retried; the day then arrives whole."""
    inner = sources_transport({DAY: many_items(120)})
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return inner.handle_request(request)

    sleeps = Sleeps()
    day = gather_day(
        client=httpx.Client(transport=httpx.MockTransport(handle)),
        hf_api_url="http://127.0.0.1:9/api/daily_papers",
        state_dir=tmp_path,
        day=date.fromisoformat(DAY),
        clock=Clock.waiting_with(sleeps),
    )
    assert len(day.papers) == 120
    assert len(calls) == 3
    assert len(sleeps) == 1


def test_thousands_of_malformed_items_log_ten_lines_and_one_count(
    papers_server: PapersServer,
    smtp_server: SmtpServer,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Twelve pages of malformed items: the first ten are named, one line counts the rest, and
    the archive and the run report keep every reason."""
    malformed: list[Any] = [{"paper": {"title": f"no id {n}"}} for n in range(1_200)]
    papers_server.days[DAY] = [*malformed, *many_items(5)]
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
    assert main(["run", "--date", DAY, "--dry-run"], sleep=Sleeps()) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING skipped upstream item") == 10
    assert err.count("… and 1190 more skipped upstream items") == 1
    archived = archive.load_day(env / "var", date.fromisoformat(DAY))
    assert archived is not None
    assert len(archived.skipped) == 1_200
    (report_file,) = (env / "var" / "reports").glob(f"{DAY}-*.json")
    assert len(json.loads(report_file.read_text())["skipped_items"]) == 1_200


def test_a_page_of_ten_thousand_items_is_cut_to_a_sane_day(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A page answering 10,000 items to ``limit=100`` is not taken whole: the day keeps at most
    ``MAX_ITEMS`` of them, with a warning, and asks no further page."""
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["p"])
        return httpx.Response(200, json=many_items(10_000))

    client = httpx.Client(transport=httpx.MockTransport(handle))
    fetcher = Fetcher(client, Clock.waiting_with(lambda _s: None), "Daily Papers API")
    with caplog.at_level("WARNING"):
        day = huggingface.fetch_day(fetcher, "http://127.0.0.1:9/api", date.fromisoformat(DAY))
    assert len(day.papers) == huggingface.MAX_ITEMS
    assert asked == ["0"]
    assert "answered 10000 items to limit=100" in caplog.text
    assert f"more than {huggingface.MAX_ITEMS} items" in caplog.text
