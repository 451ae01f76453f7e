"""What a scheduled run relies on: stamped log lines, pruned reports, a cron line that works on a
fresh checkout, and deploy files that say what the docs say."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from pipeline import logs
from pipeline.cli import main
from pipeline.retention import prune_reports, written_at
from pipeline.settings import load_settings
from tests.conftest import REPO, PapersServer, no_sleep

NOW = datetime(2026, 6, 1, 6, 15, tzinfo=UTC)


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Yes."""
        return True


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("papermail", logging.INFO, __file__, 1, message, None, None)
    record.created = 1_767_334_503.25  # 2026-01-02 06:15:03.25 UTC
    return record


def test_log_lines_off_a_terminal_carry_an_iso_8601_utc_time() -> None:
    """Under cron (stderr is a file or pipe) each line starts with the UTC time, whatever TZ."""
    line = logs.formatter_for(io.StringIO()).format(_record("serving 2 subscriber(s)"))
    assert line == "2026-01-02T06:15:03Z INFO serving 2 subscriber(s)"


def test_log_lines_on_a_terminal_stay_short() -> None:
    """At a terminal the person watching knows the time: no stamp."""
    line = logs.formatter_for(_Terminal()).format(_record("hello"))
    assert line == "INFO hello"


def test_the_cli_stamps_its_log_lines_when_stderr_is_not_a_terminal(
    env: Path, papers_server: PapersServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real command's log on a captured (non-terminal) stderr: every line stamped."""
    assert main(["run", "--date", "2026-01-01", "--dry-run"], sleep=no_sleep) == 0
    lines = capsys.readouterr().err.splitlines()
    stamp = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (DEBUG|INFO|WARNING|ERROR) ")
    assert any(stamp.match(line) for line in lines), lines
    unstamped = re.compile(r"(DEBUG|INFO|WARNING|ERROR) ")
    assert not any(unstamped.match(line) for line in lines), lines


def _report(directory: Path, written: str, day: str = "2026-01-01") -> Path:
    path = directory / f"{day}-{written}.json"
    path.write_text("{}\n")
    return path


def test_reports_older_than_the_setting_are_removed_and_others_kept(tmp_path: Path) -> None:
    """Age comes from the time in the name; unrelated files and fresh reports stay."""
    old = _report(tmp_path, "20260201T061500Z")
    edge = _report(tmp_path, "20260303T061500Z")  # exactly 90 days before NOW: kept
    fresh = _report(tmp_path, "20260531T061500Z", day="2026-05-30")
    mine = tmp_path / "notes.json"
    mine.write_text("keep me\n")
    odd = tmp_path / "2026-01-01-20261399T999999Z.json"  # a report-like name that is no time
    odd.write_text("{}\n")
    assert prune_reports(tmp_path, keep_days=90, now=NOW) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (edge, fresh, mine, odd)
    )
    assert prune_reports(tmp_path, keep_days=1, now=NOW) == [edge]


def test_a_missing_reports_folder_prunes_nothing(tmp_path: Path) -> None:
    """Before the first run there is nothing to prune, and no error."""
    assert prune_reports(tmp_path / "reports", keep_days=90, now=NOW) == []


def test_written_at_reads_the_name() -> None:
    """The time papermail wrote into the report's name, in UTC."""
    assert written_at(Path("2026-01-01-20260102T061503Z.json")) == datetime(
        2026, 1, 2, 6, 15, 3, tzinfo=UTC
    )
    assert written_at(Path("ledger.sqlite3")) is None


def test_a_run_prunes_old_reports_as_it_writes_its_own(
    env: Path, papers_server: PapersServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PAPERMAIL_REPORT_DAYS`` applies at the end of every run."""
    reports = env / "var" / "reports"
    reports.mkdir(parents=True)
    ancient = _report(reports, "20000101T000000Z")
    monkeypatch.setenv("PAPERMAIL_REPORT_DAYS", "30")
    assert main(["run", "--date", "2026-01-01", "--dry-run"], sleep=no_sleep) == 0
    assert not ancient.exists()
    assert len(list(reports.glob("2026-01-01-*.json"))) == 1


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_report_days_must_be_a_positive_whole_number(
    env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A bad value stops the command with exit 78, naming the variable."""
    monkeypatch.setenv("PAPERMAIL_REPORT_DAYS", value)
    assert main(["check"]) == 78


def test_report_days_defaults_to_90(env: Path) -> None:
    """SPEC's default."""
    assert load_settings().report_days == 90


def _cron_command(home: Path) -> str:
    """The command of deploy/papermail.cron's job, pointed at ``home`` instead of /srv/papermail."""
    lines = [
        line
        for line in (REPO / "deploy" / "papermail.cron").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "CRON_TZ=UTC"
    fields = lines[1].split(maxsplit=5)
    assert fields[:5] == ["15", "6", "*", "*", "*"]
    return fields[5].replace("/srv/papermail", str(home))


def _fresh_checkout(tmp_path: Path) -> Path:
    """A folder with papermail's venv entry point in .venv/bin and nothing else (no var/)."""
    home = tmp_path / "papermail"
    (home / ".venv" / "bin").mkdir(parents=True)
    script = shutil.which("papermail", path=str(Path(sys.executable).parent))
    assert script, "papermail's console script beside the test's python"
    (home / ".venv" / "bin" / "papermail").symlink_to(script)
    return home


def _cron(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, check=False
    )


def test_the_cron_line_works_on_a_fresh_checkout(
    env: Path, papers_server: PapersServer, tmp_path: Path
) -> None:
    """No var/ yet: the job creates it, logs there with UTC stamps and prints nothing (no mail);
    when the run fails, the log's tail is printed, so cron mails it."""
    home = _fresh_checkout(tmp_path)
    command = _cron_command(home)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERMAIL_")}
    child_env |= {
        "PAPERMAIL_HF_API_URL": os.environ["PAPERMAIL_HF_API_URL"],
        "PAPERMAIL_ARXIV_API_URL": os.environ["PAPERMAIL_ARXIV_API_URL"],
        "PAPERMAIL_SUBSCRIBERS": os.environ["PAPERMAIL_SUBSCRIBERS"],
    }
    ok = _cron(command.replace("papermail run", "papermail run --date 2026-01-01"), child_env)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    log = (home / "var" / "cron.log").read_text()
    assert re.search(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z INFO ", log, re.MULTILINE), log
    assert len(list((home / "outbox").glob("*.eml"))) == 2

    failed = _cron(command, child_env | {"PAPERMAIL_SMTP_PORT": "many"})
    assert failed.returncode == 0, "the tail was printed"
    assert "PAPERMAIL_SMTP_PORT" in failed.stdout


def _unit(name: str) -> dict[str, list[str]]:
    """A systemd unit's settings, each name with every value it is given."""
    settings: dict[str, list[str]] = {}
    for line in (REPO / "deploy" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_the_service_is_sandboxed_and_writes_only_its_state() -> None:
    """The hardening docs/deploy.md describes, with the state (and outbox) the one writable path."""
    unit = _unit("papermail.service")
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "true",
        "PrivateTmp": "true",
        "ProtectHome": "true",
        "PrivateDevices": "true",
        "CapabilityBoundingSet": "",
        "StateDirectory": "papermail",
    }.items():
        assert unit[key] == [value], key
    assert unit["ReadWritePaths"] == ["/var/lib/papermail"]
    environment = dict(v.split("=", 1) for v in unit["Environment"])
    assert environment["PAPERMAIL_STATE_DIR"] == "/var/lib/papermail"
    assert environment["PAPERMAIL_OUTBOX"].startswith("/var/lib/papermail/")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_rates_the_service_ok() -> None:
    """systemd-analyze security's exposure (0 safe … 10 unsafe) stays below 2."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "papermail.service"],
        cwd=REPO / "deploy",
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for papermail.service: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) < 2.0


def test_the_actions_workflow_keeps_state_per_attempt_and_secrets_out_of_the_repository() -> None:
    """The issue's points: run_attempt in the cache key, a read-only token, subscribers from a
    secret, only this run's report uploaded, a pip cache."""
    workflow = yaml.safe_load((REPO / "deploy" / "github-actions-papermail.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["run"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    for cache in ("actions/cache/restore", "actions/cache/save"):
        assert "${{ github.run_attempt }}" in uses[cache]["with"]["key"]
    assert uses["actions/setup-python"]["with"]["cache"] == "pip"
    assert "var/reports" not in uses["actions/upload-artifact"]["with"]["path"]
    (run,) = [s for s in steps if s.get("name") == "papermail run"]
    assert run["env"]["PAPERMAIL_SUBSCRIBERS"].startswith("${{ runner.temp }}")
    assert any("secrets.PAPERMAIL_SUBSCRIBERS_YAML" in str(s.get("env")) for s in steps)
