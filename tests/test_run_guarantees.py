"""SPEC's guarantees across runs: catch-up, weekly digests, no paper twice, dry runs, the lock,
and what the operator sees (progress, summary, report)."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.cli import LogProgress, TerminalProgress, main, progress_for
from pipeline.lock import run_lock
from pipeline.models import Day, DeliveryResult, DeliveryStatus
from pipeline.sources.archive import save_day
from tests.conftest import SmtpServer, no_sleep
from tests.faults import archive_papers

D0 = date(2026, 3, 4)  # a Wednesday
ADA = "ada@example.org"


def days_before(n: int) -> date:
    """The day ``n`` days before D0."""
    return D0 - timedelta(days=n)


@pytest.fixture
def state(env: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory, the recording SMTP server, and Ada who follows zebrafish."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(env / "subs"))
    subscribe(env, "")
    return env / "var"


def subscribe(root: Path, extra: str) -> None:
    """(Re)write Ada's subscriber file with ``extra`` YAML lines."""
    subs = root / "subs"
    subs.mkdir(exist_ok=True)
    (subs / "ada.yaml").write_text(
        f"email: {ADA}\ntopics:\n  - name: Fish\n    keywords: [zebrafish]\n"
        f"max_papers: 20\n{extra}",
        encoding="utf-8",
    )


def archive_week(state: Path, first: int, last: int = 0) -> None:
    """Archive the days ``first`` … ``last`` days before D0: one fish paper and one other each."""
    for n in range(first, last - 1, -1):
        day = days_before(n)
        archive_papers(state, day, [f"Zebrafish findings of {day}", f"Unrelated topic of {day}"])


def run_for(day: date, *args: str) -> int:
    """``papermail run`` for ``day``."""
    return main(["run", "--date", day.isoformat(), *args], sleep=no_sleep)


def fish_days(smtp: SmtpServer) -> list[list[str]]:
    """For each message Ada got, the days of the fish papers it lists (sorted)."""
    out = []
    for message in smtp.inbox.for_recipient(ADA):
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        words = text.get_content().split()
        out.append(sorted({w.strip(".,;:()") for w in words if w.startswith("2026-")}))
    return out


def report_for(state: Path, day: date) -> dict[str, object]:
    """The newest report for ``day``."""
    data: dict[str, object] = json.loads(max((state / "reports").glob(f"{day}-*.json")).read_text())
    return data


def covers(state: Path, day: date) -> list[str]:
    """The days Ada's digest for ``day`` covered, as the report says."""
    (result,) = report_for(state, day)["results"]  # type: ignore[misc]
    assert isinstance(result, dict)
    return list(result["covers"])


def test_a_new_subscriber_starts_with_the_day_of_their_first_run(
    state: Path, smtp_server: SmtpServer
) -> None:
    """Earlier archived days are not sent to someone who was not subscribed then."""
    archive_week(state, 6)
    assert run_for(days_before(4)) == 0
    assert fish_days(smtp_server) == [[str(days_before(4))]]


def test_missed_days_are_caught_up_in_the_next_digest(state: Path, smtp_server: SmtpServer) -> None:
    """Served on D-4, nothing ran on D-3..D-1: the D digest carries the best of D-3..D."""
    archive_week(state, 4)
    assert run_for(days_before(4)) == 0
    assert run_for(D0) == 0
    assert fish_days(smtp_server)[1] == [str(days_before(n)) for n in (3, 2, 1, 0)]
    assert covers(state, D0) == [str(days_before(n)) for n in (3, 2, 1, 0)]
    archive_week(state, -1, -1)
    assert run_for(D0 + timedelta(days=1)) == 0
    assert fish_days(smtp_server)[2] == [str(D0 + timedelta(days=1))], "no catch-up needed now"


def test_catch_up_reaches_back_at_most_seven_days_and_waits_for_a_day_not_gathered(
    state: Path, smtp_server: SmtpServer
) -> None:
    """After a 10-day gap, D-6..D are covered; a day neither archived nor gathered (the source
    is down) is left out, reported as waited for, and the run exits 69."""
    archive_week(state, 10, 10)
    assert run_for(days_before(10)) == 0
    archive_week(state, 8)
    (state / "archive" / f"{days_before(2)}.json").unlink()
    assert run_for(D0) == 69
    expected = [str(days_before(n)) for n in (6, 5, 4, 3, 1, 0)]
    assert fish_days(smtp_server)[1] == expected
    assert covers(state, D0) == expected
    (result,) = report_for(state, D0)["results"]  # type: ignore[misc]
    assert result["waiting"] == [str(days_before(2))]


def test_a_day_with_nothing_to_send_counts_as_served(state: Path, smtp_server: SmtpServer) -> None:
    """Nothing matched on D-1: the D digest does not go back over D-1 (or earlier)."""
    archive_week(state, 2, 2)
    archive_papers(state, days_before(1), ["Only unrelated things"])
    archive_week(state, 0, 0)
    assert run_for(days_before(2)) == 0
    assert run_for(days_before(1)) == 0
    assert run_for(D0) == 0
    assert fish_days(smtp_server) == [[str(days_before(2))], [str(D0)]]
    assert covers(state, D0) == [str(D0)]


def test_a_weekly_subscriber_gets_the_best_of_the_last_seven_days(
    state: Path, smtp_server: SmtpServer
) -> None:
    """On their weekday a weekly digest draws on D-6..D; on other days they are skipped."""
    subscribe(state.parent, "frequency: weekly\nweekday: wednesday\n")
    archive_week(state, 8)
    assert run_for(days_before(1)) == 0
    assert smtp_server.inbox.messages == []
    assert run_for(D0) == 0
    assert fish_days(smtp_server) == [[str(days_before(n)) for n in range(6, -1, -1)]]


def test_a_paper_is_never_sent_twice(state: Path, smtp_server: SmtpServer) -> None:
    """A paper listed again on a later day (and caught up) reaches the subscriber only once."""
    repeated, _ = archive_papers(state, days_before(1), ["Zebrafish again and again", "Other"])
    (news,) = archive_papers(state, D0, ["Zebrafish news"])
    save_day(state, Day(D0, (repeated, news)))
    assert run_for(days_before(1)) == 0
    assert run_for(D0) == 0
    titles = [m["Subject"] for m in smtp_server.inbox.for_recipient(ADA)]
    assert len(titles) == 2
    second = smtp_server.inbox.for_recipient(ADA)[1].get_body(preferencelist=("plain",))
    assert second is not None
    assert "Zebrafish again and again" not in second.get_content()
    assert "Zebrafish news" in second.get_content()


def ledger_rows(state: Path) -> list[tuple[object, ...]]:
    """Every row of the ledger."""
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        return db.execute("SELECT * FROM digests ORDER BY email, day").fetchall()


def test_dry_run_renders_reports_and_leaves_the_ledger_alone(
    state: Path, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ledger is created, an existing one is unchanged, nothing is sent; a report is written."""
    archive_week(state, 1)
    assert run_for(D0, "--dry-run") == 0
    assert "dry run (not sent)           1" in capsys.readouterr().out
    assert not (state / "ledger.sqlite3").exists()
    assert smtp_server.inbox.messages == []
    assert report_for(state, D0)["dry_run"] is True

    assert run_for(days_before(1)) == 0
    before = ledger_rows(state)
    assert run_for(D0, "--dry-run") == 0
    assert ledger_rows(state) == before
    assert len(smtp_server.inbox.messages) == 1


def test_a_second_run_while_one_holds_the_lock_exits_75_at_once(
    state: Path, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock is held: the run says so in one line, sends nothing, exits 75; later it runs."""
    archive_week(state, 0)
    with run_lock(state):
        assert run_for(D0) == 75
        assert run_for(D0, "--dry-run") == 0, "a dry run sends nothing and needs no lock"
    err = capsys.readouterr().err
    assert "another papermail run (pid " in err
    assert "this run exits without sending anything" in err
    assert smtp_server.inbox.messages == []
    assert run_for(D0) == 0
    assert len(smtp_server.inbox.messages) == 1


def test_an_unusable_state_directory_is_a_settings_error(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state directory that cannot hold the lock: one line naming the variable, exit 78."""
    (env / "not-a-dir").write_text("", encoding="utf-8")
    monkeypatch.setenv("PAPERMAIL_STATE_DIR", str(env / "not-a-dir"))
    assert run_for(D0) == 78
    assert "PAPERMAIL_STATE_DIR: cannot use" in capsys.readouterr().err


# --- what the operator sees ----------------------------------------------------------------------


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        """It is one, for the test."""
        return True


def test_progress_is_a_bar_on_a_terminal_and_log_lines_elsewhere() -> None:
    """On a TTY the bar redraws in place and counts failures; a pipe gets log lines."""
    assert isinstance(progress_for(io.StringIO()), LogProgress)
    terminal = Terminal()
    bar = progress_for(terminal)
    assert isinstance(bar, TerminalProgress)
    bar.start(4)
    bar.advance(DeliveryResult(ADA, D0, DeliveryStatus.SENT))
    bar.advance(DeliveryResult("b@example.org", D0, DeliveryStatus.FAILED_TRANSIENT))
    logging.getLogger("papermail").warning("a warning meanwhile")
    bar.finish()
    shown = terminal.getvalue()
    assert f"sending [{'-' * 30}] 0/4" in shown
    assert f"sending [{'#' * 15}{'-' * 15}] 2/4, 1 failed" in shown
    assert shown.endswith("\n")


def test_summary_table_and_report_agree(
    state: Path, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary lists the rows that happened (no zero counters), and the JSON report has the
    same numbers."""
    archive_week(state, 0)
    (state.parent / "subs" / "bad.yaml").write_text("email: not-an-address\n", encoding="utf-8")
    assert run_for(D0) == 65
    out = capsys.readouterr().out
    for row in ("sent                         1", "invalid subscribers          1"):
        assert row in out
    for absent in ("already sent", "nothing to send", "failed", "uncertain", "skipped upstream"):
        assert absent not in out
    summary = report_for(state, D0)["summary"]
    assert isinstance(summary, dict)
    assert summary["sent"] == 1
    assert summary["invalid_subscribers"] == 1
