"""The whole pipeline through the CLI, against a real SMTP server and a real HTTP server."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.models import slug_of
from tests.conftest import PapersServer, SmtpServer, free_port, no_sleep

DAY = "2026-01-01"
ACTIVE = ("ada@example.org", "grace@example.org")
PAUSED = "alan@example.org"


def explained_titles(email: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The titles ``papermail explain --json`` lists for ``email``."""
    assert main(["explain", email, "--date", DAY, "--json"], sleep=no_sleep) == 0
    return [p["title"] for p in json.loads(capsys.readouterr().out)]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a multipart/alternative message, whitespace folded."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return " ".join(text.get_content().split()), " ".join(html.get_content().split())


def test_run_sends_each_active_subscriber_one_digest_of_their_ranked_papers(
    live: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each active subscriber gets exactly one multipart/alternative digest listing their picks."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    summary = capsys.readouterr().out
    assert "sent                         2" in summary

    for email in ACTIVE:
        (message,) = live.inbox.for_recipient(email)
        titles = explained_titles(email, capsys)
        assert titles, f"{email} should have picks on the sample day"
        text, html = parts(message)
        for title in titles:
            assert title in text
            assert title.replace("&", "&amp;") in html
    assert live.inbox.for_recipient(PAUSED) == []

    ada_text, _ = parts(live.inbox.for_recipient("ada@example.org")[0])
    assert "Grokking as the Transition from Lazy to Rich Training Dynamics" in ada_text
    assert "Followed author — Cengiz Pehlevan" in ada_text


def test_rerun_for_the_same_day_sends_nothing_again(
    live: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run for the same day finds every digest in the ledger and sends nothing."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    capsys.readouterr()
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    assert "already sent                 2" in capsys.readouterr().out
    assert len(live.inbox.messages) == 2


def test_dry_run_sends_nothing_and_leaves_the_ledger(
    live: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run renders everything, sends nothing, and a later real run still sends."""
    assert main(["run", "--date", DAY, "--dry-run"], sleep=no_sleep) == 0
    assert "dry run (not sent)           2" in capsys.readouterr().out
    assert live.inbox.messages == []
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    assert len(live.inbox.messages) == 2


def test_only_serves_the_named_subscriber(live: SmtpServer) -> None:
    """--only limits the run to one subscriber."""
    assert main(["run", "--date", DAY, "--only", "grace@example.org"], sleep=no_sleep) == 0
    assert [rcpts for rcpts, _ in live.inbox.messages] == [["grace@example.org"]]


def test_run_writes_a_json_report(live: SmtpServer, env: Path) -> None:
    """The run report lands in the state directory."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    (report_file,) = (env / "var" / "reports").glob(f"{DAY}-*.json")
    report = json.loads(report_file.read_text())
    assert report["summary"]["sent"] == 2
    assert report["summary"]["skipped"] == 1
    assert {r["email"] for r in report["results"]} == {*ACTIVE, PAUSED}


def test_demo_writes_one_eml_per_active_subscriber(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """papermail demo works offline and leaves one .eml per active sample subscriber."""
    assert main(["demo"], sleep=no_sleep) == 0
    files = sorted(p.name for p in (env / "outbox").glob("*.eml"))
    readers = ("ada@example.org", "grace@example.org")
    assert files == [f"{DAY}-{slug_of(r)}.eml" for r in readers]
    assert files[0].startswith(f"{DAY}-ada_example.org-"), "the address stays readable"
    out = capsys.readouterr().out
    assert all(name in out for name in files)
    assert main(["demo"], sleep=no_sleep) == 0, "the demo can be run again"
    assert "sent                         2" in capsys.readouterr().out, "and sends again"
    assert not (env / "var" / "ledger.sqlite3").exists(), "the real ledger is untouched"


def test_preview_writes_html_text_and_index(env: Path, papers_server: PapersServer) -> None:
    """preview renders every subscriber to HTML and text plus an index, sending nothing."""
    assert main(["preview", "--date", DAY, "--out", "pv"], sleep=no_sleep) == 0
    names = sorted(p.name for p in (env / "pv").iterdir())
    assert names == sorted(
        ["index.html"]
        + [f"{slug_of(e)}.{ext}" for e in (*ACTIVE, PAUSED) for ext in ("html", "txt")]
    )
    index = (env / "pv" / "index.html").read_text()
    assert "ada@example.org" in index
    assert not (env / "outbox").exists()


def test_fetch_prints_the_day_as_paper_objects(
    env: Path,
    papers_server: PapersServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """fetch prints SPEC's paper objects and archives the day, so a second fetch needs no server."""
    assert main(["fetch", "--date", DAY], sleep=no_sleep) == 0
    papers = json.loads(capsys.readouterr().out)
    assert len(papers) == 28
    first = papers[0]
    assert {
        "id",
        "title",
        "abstract",
        "authors",
        "published",
        "upvotes",
        "url",
        "pdf_url",
        "source",
    } <= set(first)
    assert (env / "var" / "archive" / f"{DAY}.json").exists()
    requests = len(papers_server.requests)
    assert main(["fetch", "--date", DAY], sleep=no_sleep) == 0
    assert len(papers_server.requests) == requests


def test_unreachable_api_is_one_line_and_exit_69(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An API nobody answers gives one clear line naming the URL, and exit 69."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 69
    err = capsys.readouterr().err
    assert "nothing-here unavailable after" in err
    assert "Traceback" not in err


def test_unreachable_smtp_server_exits_69(
    env: Path,
    papers_server: PapersServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An SMTP host that refuses connections: each digest fails after retries, exit 69."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("PAPERMAIL_MAX_ATTEMPTS", "2")
    assert main(["run", "--date", DAY], sleep=no_sleep) == 69
    captured = capsys.readouterr()
    assert "failed transiently           2" in captured.out
    assert "cannot connect to SMTP server 127.0.0.1" in captured.err
    assert "Traceback" not in captured.err


def test_invalid_setting_names_the_variable_and_exits_78(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad PAPERMAIL_* value: one line naming the variable, exit 78, no secret echoed."""
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", "not-a-port")
    monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", "hunter2-secret")
    assert main(["run"], sleep=no_sleep) == 78
    err = capsys.readouterr().err
    assert "PAPERMAIL_SMTP_PORT" in err
    assert "hunter2-secret" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_subscribers_directory_exits_78(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subscribers path that does not exist is a settings error with a clear line."""
    assert main(["run", "--subscribers", "no/such/dir"], sleep=no_sleep) == 78
    assert "subscribers path not found: no/such/dir" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Every SPEC command answers --help."""
    for command in ("run", "fetch", "explain", "preview", "check", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"papermail {command}" in capsys.readouterr().out


def test_a_run_warns_at_its_start_about_a_from_address_at_localhost(
    live: SmtpServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a real SMTP host, the default From (papermail@localhost) is a warning on stderr;
    an address at a real domain is not."""
    assert main(["run", "--date", DAY, "--dry-run"], sleep=no_sleep) == 0
    assert "PAPERMAIL_FROM_ADDRESS is papermail@localhost" in capsys.readouterr().err
    monkeypatch.setenv("PAPERMAIL_FROM_ADDRESS", "papers@example.org")
    assert main(["run", "--date", DAY, "--dry-run"], sleep=no_sleep) == 0
    assert "PAPERMAIL_FROM_ADDRESS" not in capsys.readouterr().err
