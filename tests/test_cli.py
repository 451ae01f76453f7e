"""The command line's grammar, its first-step commands, its report, and its clean exits."""

from __future__ import annotations

import email
import email.policy
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import FIRST_DAY, build_parser, main, progress_for
from pipeline.clock import Clock
from pipeline.models import DeliveryResult, DeliveryStatus, slug_of
from pipeline.sources.sample import SAMPLE_DAY
from tests.conftest import (
    REPO,
    SUBSCRIBERS,
    PapersServer,
    SmtpServer,
    fill_disk,
    free_port,
    mount_tmpfs,
    no_sleep,
)
from tests.rawsmtp import raw_smtp_server

DAY = SAMPLE_DAY.isoformat()
COMMANDS = ("run", "fetch", "explain", "preview", "check", "demo", "init", "send-test")
HEAVY = ("numpy", "scipy", "premailer", "lxml", "dkim", "httpx", "aiosmtplib", "jinja2")


def exit_of(argv: list[str]) -> tuple[int | str | None, str]:
    """Run argparse's exits (help, version, usage errors): the SystemExit code."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, ""


# --- grammar -------------------------------------------------------------------------------------


def test_bare_papermail_shows_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No command: the help (with the commands and exit codes) on stderr, exit 2."""
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "send-test" in err
    assert "exit codes" in err


@pytest.mark.parametrize("argv", [["-V"], ["--version"], ["check", "-V"], ["run", "--version"]])
def test_version_before_or_after_the_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """-V/--version answers wherever it stands."""
    assert exit_of(argv)[0] == 0
    assert capsys.readouterr().out.startswith("papermail ")


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [(["check"], False), (["check", "-v"], True), (["-v", "check"], True)],
)
def test_verbose_before_or_after_the_command(
    env: Path, argv: list[str], verbose: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``papermail check -v`` is ``papermail -v check``: debug logging either way."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # restored for the tests after this one
    assert main(argv) == 0
    assert (logging.getLogger().level == logging.DEBUG) is verbose


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_lists_exit_codes_and_describes_its_arguments(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command's --help has the exit codes and a description for every argument."""
    assert exit_of([command, "--help"])[0] == 0
    out = capsys.readouterr().out
    assert "78  invalid settings" in out
    assert "-v, --verbose" in out
    if command not in ("check", "init", "demo"):
        assert "(default:" in out
    if command == "explain":
        assert "the subscriber's address, as in their subscriber file" in out


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1900-01-01", "2026-13-01"])
def test_absurd_dates_are_usage_errors(day: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Dates no source can have are refused by the parser (exit 2), never an OverflowError."""
    assert exit_of(["run", "--date", day])[0] == 2
    assert "--date" in capsys.readouterr().err


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30) | st.dates().map(date.isoformat))
def test_any_date_text_is_a_date_in_range_or_a_usage_error(text: str) -> None:
    """Whatever follows --date: a day in the accepted range, or argparse's exit 2."""
    parser = build_parser(Clock(now=lambda: datetime(2026, 11, 30, tzinfo=UTC)))
    outcome: date | int | str | None
    try:
        outcome = parser.parse_args(["fetch", f"--date={text}"]).date
    except SystemExit as exc:
        outcome = exc.code
    if isinstance(outcome, date):
        assert FIRST_DAY <= outcome <= date(2126, 12, 31)
    else:
        assert outcome == 2


def test_check_path_and_subscribers_option_agree(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check PATH`` is an alias of ``check --subscribers PATH``."""
    (env / "subs").mkdir()
    (env / "subs" / "bad.yaml").write_text("email: nope\n", encoding="utf-8")
    assert main(["check", str(env / "subs")]) == 65
    positional = capsys.readouterr().out
    assert main(["check", "--subscribers", str(env / "subs")]) == 65
    assert capsys.readouterr().out == positional


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--only", "nobody@example.org"],
        ["run", "--dry-run", "--only", "nobody@example.org"],
        ["preview", "--subscriber", "nobody@example.org"],
        ["preview", "--only", "ada@example.org", "--only", "nobody@example.org"],
        ["explain", "nobody@example.org"],
        ["send-test", "me@example.org", "--only", "nobody@example.org"],
    ],
)
def test_unknown_subscribers_are_refused_before_any_gathering(
    argv: list[str], papers_server: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown ``--only`` (or EMAIL) is exit 2 at once: the paper sources are not asked."""
    assert main([*argv, "--date", DAY], sleep=no_sleep) == 2
    assert "nobody@example.org" in capsys.readouterr().err
    assert papers_server.requests == []


def test_preview_takes_only_repeated(
    env: Path, papers_server: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--only`` repeats in preview too; ``--subscriber`` is its alias."""
    out_dir = env / "pv"
    argv = ["preview", "--date", DAY, "--out", str(out_dir)]
    assert main([*argv, "--only", "ada@example.org", "--subscriber", "grace@example.org"]) == 0
    rendered = sorted(p.name for p in out_dir.glob("*.html") if p.name != "index.html")
    assert len(rendered) == 2
    assert any("ada" in name for name in rendered)
    assert any("grace" in name for name in rendered)


# --- init ----------------------------------------------------------------------------------------


def test_init_writes_a_commented_subscriber_file_that_check_accepts(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new file is in the subscribers directory, commented, and valid as written."""
    subs = env / "subs"
    subs.mkdir()
    assert main(["init", "new@lab.example.org", "--subscribers", str(subs)]) == 0
    (written,) = subs.glob("*.yaml")
    assert capsys.readouterr().out.strip() == str(written)
    text = written.read_text(encoding="utf-8")
    assert '"new@lab.example.org"' in text
    assert "# authors:" in text
    assert main(["check", "--subscribers", str(subs)]) == 0
    assert "1 valid subscriber(s)" in capsys.readouterr().err


def test_init_refuses_a_subscribers_folder_that_does_not_exist(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --subscribers was made silently, tree and all: refused (78) like any command;
    only the default subscribers/ is created."""
    assert main(["init", "new@example.org", "--subscribers", str(env / "no" / "dir")]) == 78
    assert "subscribers folder not found" in capsys.readouterr().err
    assert not (env / "no").exists()


def test_init_creates_the_default_subscribers_folder(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a setting, init makes subscribers/ and writes <address>-<hash>.yaml into it."""
    monkeypatch.delenv("PAPERMAIL_SUBSCRIBERS")
    assert main(["init", "new@example.org"]) == 0
    (written,) = (env / "subscribers").glob("*.yaml")
    assert written.name == f"{slug_of('new@example.org')}.yaml"
    assert written.name.startswith("new_example.org-")


def test_init_never_overwrites(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second init for the address, or a file already there, is refused and left unchanged."""
    subs = env / "subs"
    subs.mkdir()
    assert main(["init", "new@example.org", "--subscribers", str(subs)]) == 0
    (written,) = subs.glob("*.yaml")
    before = written.read_text(encoding="utf-8")
    assert main(["init", "NEW@example.org", "--subscribers", str(subs)]) == 2
    assert "already has a subscriber file" in capsys.readouterr().err
    written.write_text("# my own notes, not yet a subscriber\n", encoding="utf-8")
    assert main(["init", "new@example.org", "--subscribers", str(subs)]) == 2
    assert "exists; not overwritten" in capsys.readouterr().err
    assert written.read_text(encoding="utf-8") != before
    assert written.read_text(encoding="utf-8").startswith("# my own notes")


def test_init_refuses_an_invalid_address(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An address ``check`` would refuse is refused before any file is written."""
    subs = env / "subs"
    assert main(["init", "not-an-address", "--subscribers", str(subs)]) == 2
    assert not subs.exists() or not list(subs.iterdir())


# --- send-test -----------------------------------------------------------------------------------


def test_send_test_sends_the_sample_digest_and_prints_the_reply(
    live: SmtpServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --only: the sample day's digest to ADDRESS over SMTP, the reply shown, no ledger."""
    assert main(["send-test", "me@example.org"], sleep=no_sleep) == 0
    out = capsys.readouterr().out
    assert "250 OK" in out
    (message,) = live.inbox.for_recipient("me@example.org")
    assert message["Message-ID"] in out
    assert "me@example.org" in message["To"]
    assert len(live.inbox.messages) == 1
    assert not (env / "var" / "ledger.sqlite3").exists()


def test_send_test_renders_that_subscribers_digest(
    live: SmtpServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --only: that subscriber's real digest for --date goes to ADDRESS, not to them."""
    argv = ["send-test", "me@example.org", "--only", "ada@example.org", "--date", DAY]
    assert main(argv, sleep=no_sleep) == 0
    (message,) = live.inbox.for_recipient("me@example.org")
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Grokking" in body.get_content()
    assert live.inbox.for_recipient("ada@example.org") == []
    assert not (env / "var" / "ledger.sqlite3").exists()
    assert "ada@example.org's digest for 2026-01-01" in capsys.readouterr().out


def test_send_test_in_outbox_mode_says_where_it_went(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an SMTP host the test digest is an .eml file, and the reply says why."""
    assert main(["send-test", "me@example.org"], sleep=no_sleep) == 0
    out = capsys.readouterr().out
    assert "PAPERMAIL_SMTP_HOST is not set" in out
    assert len(list((env / "outbox").glob("*.eml"))) == 1


def test_send_test_to_an_unreachable_server_exits_69(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that cannot be reached is a clear error, not a traceback."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
    assert main(["send-test", "me@example.org"], sleep=no_sleep) == 69
    assert "cannot connect" in capsys.readouterr().err


# --- report and outbox mode ----------------------------------------------------------------------


def newest_report(state: Path) -> dict[str, object]:
    """The newest run report in ``state``."""
    data: dict[str, object] = json.loads(max((state / "reports").glob("*.json")).read_text())
    return data


def test_the_report_says_when_how_long_which_version_where_and_message_ids(
    live: SmtpServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Start, end, duration, exit code, version, transport and each digest's Message-ID."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    report = newest_report(env / "var")
    assert isinstance(report["started"], str)
    assert isinstance(report["finished"], str)
    assert report["started"] <= report["finished"]
    assert isinstance(report["duration_s"], float)
    assert report["exit_code"] == 0
    assert report["version"] == "0.1.0"
    assert report["transport"] == f"smtp://127.0.0.1:{live.port} (none)"
    assert report["outbox"] is False
    results = report["results"]
    assert isinstance(results, list)
    for result in results:
        if result["status"] == "sent":
            (message,) = live.inbox.for_recipient(result["email"])
            assert result["message_id"] == message["Message-ID"]
        else:
            assert result["message_id"] is None
    out = capsys.readouterr().out
    assert f"mail: smtp://127.0.0.1:{live.port}" in out
    assert "exit code 0" in out


def test_outbox_mode_says_so_in_summary_report_and_progress(
    env: Path, papers_server: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files are not mail: every place that reports the run says where they went and why."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    captured = capsys.readouterr()
    note = f"written to {env / 'outbox'}/ — PAPERMAIL_SMTP_HOST is not set"
    assert note in captured.out
    assert note in captured.err  # the progress line
    report = newest_report(env / "var")
    assert report["outbox"] is True
    assert report["transport"] == f"outbox {env / 'outbox'}/"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        """It is one, for the test."""
        return True


def test_the_progress_bar_says_outbox_mode() -> None:
    """On a terminal too, the progress line says mail goes to files, and why."""
    terminal = Terminal()
    note = "written to outbox/ — PAPERMAIL_SMTP_HOST is not set"
    bar = progress_for(terminal, outbox_note=note)
    bar.start(1)
    bar.advance(DeliveryResult("ada@example.org", SAMPLE_DAY, DeliveryStatus.SENT))
    bar.finish()
    assert f"1/1 — {note}" in terminal.getvalue()


def test_the_demo_says_its_files_are_not_mail(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo writes files even with an SMTP host set, and says so truthfully."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(free_port()))
    assert main(["demo"], sleep=no_sleep) == 0
    out = capsys.readouterr().out
    assert f"written to {env / 'outbox'}/ — the demo never sends mail" in out
    assert "PAPERMAIL_SMTP_HOST is not set" not in out


def test_the_summary_shows_what_happened_not_zero_counters(
    live: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows that are zero are left out."""
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    out = capsys.readouterr().out
    assert "sent                         2" in out
    assert "skipped                      1" in out
    for absent in ("failed", "uncertain", "already sent", "nothing to send", "invalid"):
        assert absent not in out


# --- clean exits ---------------------------------------------------------------------------------


@pytest.fixture
def readonly_state(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PAPERMAIL_STATE_DIR on a read-only file system (mounting needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    state = env / "ro-state"
    yield from mount_tmpfs(state, "ro,size=64k")


@pytest.mark.parametrize("argv", [["run"], ["run", "--dry-run"], ["fetch"]])
def test_a_read_only_state_dir_exits_78_with_the_path(
    readonly_state: Path,
    papers_server: PapersServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """A state directory that cannot be written is a configuration error naming the path."""
    monkeypatch.setenv("PAPERMAIL_STATE_DIR", str(readonly_state))
    assert main([*argv, "--date", DAY], sleep=no_sleep) == 78
    err = capsys.readouterr().err
    assert str(readonly_state) in err
    assert "read-only file system" in err.lower()
    assert "unexpected" not in err


@pytest.fixture
def small_state(env: Path) -> Iterator[Path]:
    """PAPERMAIL_STATE_DIR on a tmpfs of 1 MiB, to be filled up by the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    yield from mount_tmpfs(env / "small-state", "size=1m")


def test_a_full_disk_exits_75_with_the_path_and_the_ledger_intact(
    small_state: Path,
    live: SmtpServer,
    papers_server: PapersServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ENOSPC from the real file system: exit 75 naming where, and the ledger still reads."""
    monkeypatch.setenv("PAPERMAIL_STATE_DIR", str(small_state))
    ledger = small_state / "ledger.sqlite3"
    assert main(["run", "--date", DAY, "--only", "ada@example.org"], sleep=no_sleep) == 0
    rows_before = sqlite3.connect(ledger).execute("select count(*) from digests").fetchone()
    fill_disk(small_state)
    capsys.readouterr()
    assert main(["run", "--date", DAY], sleep=no_sleep) == 75
    err = capsys.readouterr().err
    assert "no space left" in err, err
    assert str(small_state) in err
    assert "unexpected" not in err
    (small_state / "filler").unlink()  # opening a WAL ledger needs room for its index file
    with sqlite3.connect(ledger) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
        assert db.execute("select count(*) from digests").fetchone() == rows_before
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0, "once there is room again"
    assert len(live.inbox.for_recipient("ada@example.org")) == 1
    assert len(live.inbox.for_recipient("grace@example.org")) == 1


def test_a_full_disk_while_archiving_exits_75_with_the_path(
    small_state: Path,
    papers_server: PapersServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``fetch`` on a full disk: exit 75 naming the state directory, not an unexpected error."""
    monkeypatch.setenv("PAPERMAIL_STATE_DIR", str(small_state))
    fill_disk(small_state)
    assert main(["fetch", "--date", DAY], sleep=no_sleep) == 75
    err = capsys.readouterr().err
    assert "no space left" in err
    assert str(small_state) in err
    assert "unexpected" not in err


def test_a_closed_pipe_exits_quietly(papers_server: PapersServer, env: Path) -> None:
    """``papermail fetch | head``: the reader left; no BrokenPipeError, no traceback."""
    with subprocess.Popen(
        [sys.executable, "-m", "pipeline", "fetch", "--date", DAY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # before it writes anything: every write meets a closed pipe
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0
    assert "BrokenPipe" not in err
    assert "Traceback" not in err


def test_a_closed_pipe_keeps_the_runs_exit_code(papers_server: PapersServer, env: Path) -> None:
    """``papermail run | head``: the summary's reader left, the run's exit code (65) remains."""
    subs = env / "subs"
    subs.mkdir()
    (subs / "ada.yaml").write_bytes((SUBSCRIBERS / "ada.yaml").read_bytes())
    (subs / "bad.yaml").write_text("email: not-an-address\n", encoding="utf-8")
    with subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--date", DAY, "--subscribers", str(subs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 65
    assert "BrokenPipe" not in err
    assert "Traceback" not in err


# --- start-up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["check"]])
def test_quick_commands_import_no_heavy_library(env: Path, argv: list[str]) -> None:
    """--help, --version and check import none of numpy, scipy, premailer, lxml, dkim, httpx…"""
    probe = (
        "import sys\n"
        "from pipeline.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=env, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert REPO.exists()


def test_a_display_name_in_the_from_setting_is_the_from_headers_name(
    papers_server: PapersServer, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PAPERMAIL_FROM_ADDRESS="Lab News <news@lab.example.org>"``: the messages come from
    "Lab News" at that address (the default name, "papermail", only without one)."""
    monkeypatch.setenv("PAPERMAIL_FROM_ADDRESS", "Lab News <news@lab.example.org>")
    assert main(["run", "--date", DAY], sleep=no_sleep) == 0
    emails = sorted((env / "outbox").glob("*.eml"))
    assert emails
    for eml in emails:
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert message["From"] == "Lab News <news@lab.example.org>"


@pytest.mark.parametrize("address", ["<me@example.org>", "Me <me@example.org>", "me@"])
def test_send_test_takes_a_bare_address(
    env: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    """A name or angle brackets in ADDRESS was a HeaderParseError or ValueError (exit 1)."""
    assert main(["send-test", address], sleep=no_sleep) == 2
    err = capsys.readouterr().err
    assert "ADDRESS" in err
    assert "unexpected" not in err
    assert not (env / "outbox").exists() or not list((env / "outbox").iterdir())


def test_send_test_to_a_server_refusing_auth_exits_78(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """AUTH refused is the setup's fault, as in a run: 78 and one line, not RunFailure (exit 1)."""
    with raw_smtp_server() as server:
        server.extensions = ("AUTH PLAIN",)
        server.auth_reply = "535 5.7.8 bad credentials"
        monkeypatch.setenv("PAPERMAIL_SMTP_HOST", server.host)
        monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(server.port))
        monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
        monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", "lab")
        monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", "Sekr1t-Zebra-77")
        assert main(["send-test", "me@example.org"], sleep=no_sleep) == 78
    err = capsys.readouterr().err
    assert err.startswith("papermail: error: send-test to me@example.org: ")
    assert err.count("\n") == 1
    assert "Sekr1t-Zebra-77" not in err


@pytest.mark.parametrize("command", [["demo"], ["send-test", "me@example.org"], ["run"]])
def test_an_outbox_that_cannot_be_made_exits_78_with_the_path(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """An outbox folder that cannot be created is the setting's fault: 78 before anything is
    sent (it was five attempts per subscriber, then 69)."""
    (env / "afile").write_text("x", encoding="utf-8")
    monkeypatch.setenv("PAPERMAIL_OUTBOX", str(env / "afile" / "outbox"))
    assert main([*command, "--date", DAY] if command == ["run"] else command, sleep=no_sleep) == 78
    err = capsys.readouterr().err
    assert f"PAPERMAIL_OUTBOX: cannot create or write {env / 'afile' / 'outbox'}" in err
    assert not (env / "var" / "ledger.sqlite3").exists()


def test_check_refuses_a_path_given_twice(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check --subscribers A B` silently checked B: giving both is a usage error."""
    assert main(["check", "--subscribers", str(env), str(env / "other")]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["x" * 5000, "sub\nscribers"])
def test_an_unusable_subscribers_option_is_a_usage_error(
    env: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """Too long a path (ENAMETOOLONG was exit 1) or a line break on the command line: exit 2."""
    with pytest.raises(SystemExit) as stop:
        main(["check", "--subscribers", value])
    assert stop.value.code == 2
    assert "--subscribers" in capsys.readouterr().err
