"""Real processes: ``python -m pipeline run`` killed with SIGKILL mid-run, and two runs at once.

The SMTP server runs in the test process and holds DATA at a gate, so the test decides when the
run is "halfway" — no timing involved.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pytest

from pipeline.sources.archive import save_day
from pipeline.sources.sample import SAMPLE_DAY
from tests.conftest import fill_disk, free_port, mount_tmpfs
from tests.faults import Faults, FaultyServer, faulty_server, sample_day, write_subscribers

DAY = SAMPLE_DAY.isoformat()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A working directory with the sample day archived (runs need no paper source)."""
    save_day(tmp_path / "var", sample_day())
    return tmp_path


def environment(home: Path, server: FaultyServer, readers: list[str]) -> dict[str, str]:
    """The child's environment: ours without PAPERMAIL_*, pointed at the test's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERMAIL_")}
    env.update(
        PAPERMAIL_SUBSCRIBERS=str(write_subscribers(home / "subs", readers)),
        PAPERMAIL_STATE_DIR=str(home / "var"),
        PAPERMAIL_OUTBOX=str(home / "outbox"),
        PAPERMAIL_HF_API_URL=f"http://127.0.0.1:{free_port()}/nothing-here",
        PAPERMAIL_ARXIV_API_URL=f"http://127.0.0.1:{free_port()}/nothing-here",
        PAPERMAIL_SMTP_HOST=server.host,
        PAPERMAIL_SMTP_PORT=str(server.port),
        PAPERMAIL_SMTP_SECURITY="none",
        PAPERMAIL_SMTP_CONCURRENCY="4",
    )
    return env


def start(home: Path, env: dict[str, str], log: TextIO | None = None) -> subprocess.Popen[str]:
    """Start ``python -m pipeline run`` for the sample day (its stderr into ``log`` when given,
    stdout then discarded; else both piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--date", DAY],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if log is None else subprocess.DEVNULL,
        stderr=subprocess.PIPE if log is None else log,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def ledger_states(home: Path) -> dict[str, str]:
    """Each recipient's ledger state."""
    with sqlite3.connect(home / "var" / "ledger.sqlite3") as db:
        return dict(db.execute("SELECT email, state FROM digests").fetchall())


def test_a_run_killed_halfway_and_rerun_delivers_everyone_repeating_only_in_flight(
    home: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """SIGKILL after 5 of 20 digests with 4 in flight: the rerun sends the rest, each once.

    The 4 in-flight messages reached the server, but the run died before their 250 came back:
    those, and only those, are ``sending`` in the ledger and repeated (SPEC: at most the
    messages in flight at a crash); digests claimed ahead of them are ``queued``, never sent.
    """
    readers = [f"reader{n:02d}@example.org" for n in range(20)]
    with faulty_server(Faults(accept_before_gate=5)) as server:
        env = environment(home, server, readers)
        first = start(home, env)
        processes.append(first)
        server.wait_until(lambda: len(server.held) == 4)
        first.kill()
        assert first.wait(timeout=30) == -9
        in_flight = set(server.held)
        assert len(server.messages) == 9, "5 acknowledged, 4 taken but not acknowledged"
        states = ledger_states(home)
        assert {r for r, s in states.items() if s == "sending"} == in_flight
        assert set(states.values()) <= {"sent", "sending", "queued"}, "queued: claimed, not sent"
        server.gate.set()

        rerun = start(home, env)
        processes.append(rerun)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err

        counts = {r: server.received(r) for r in readers}
    assert all(count >= 1 for count in counts.values()), counts
    assert {r for r, count in counts.items() if count > 1} == in_flight
    assert max(counts.values()) == 2, "an in-flight message is repeated at most once"
    assert set(ledger_states(home).values()) == {"sent"}
    assert "already sent                 5" in out
    assert "sent                        15" in out


def test_two_runs_started_at_once_one_sends_and_the_other_exits_75(
    home: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """Both start together; the one without the lock exits 75 at once; everyone gets one."""
    readers = [f"reader{n}@example.org" for n in range(6)]
    with faulty_server(Faults(accept_before_gate=0)) as server:
        env = environment(home, server, readers)
        both = [start(home, env), start(home, env)]
        processes.extend(both)
        server.wait_until(lambda: any(proc.poll() is not None for proc in both))
        (loser,) = [proc for proc in both if proc.poll() is not None]
        (winner,) = [proc for proc in both if proc is not loser]
        _, loser_err = loser.communicate(timeout=30)
        assert loser.returncode == 75
        assert "another papermail run (pid " in loser_err
        server.gate.set()
        out, err = winner.communicate(timeout=120)
        assert winner.returncode == 0, err
        assert {r: server.received(r) for r in readers} == dict.fromkeys(readers, 1)
    assert "sent                         6" in out


@pytest.mark.parametrize(
    ("sig", "code", "count"), [(signal.SIGTERM, 143, 300), (signal.SIGINT, 130, 30)]
)
def test_a_signal_mid_run_sends_the_replies_in_flight_and_the_rerun_sends_exactly_the_rest(
    home: Path, processes: list[subprocess.Popen[str]], sig: signal.Signals, code: int, count: int
) -> None:
    """SIGTERM (systemd stop, ``timeout``) or SIGINT (Ctrl-C) with 4 messages awaiting their
    reply: no new message is handed out, the 4 replies are awaited and recorded, the report is
    written, exit 143 or 130. The rerun sends exactly the rest: every subscriber once.

    (It used to exit at once without a report; the in-flight messages went out again.)
    """
    readers = [f"reader{n:03d}@example.org" for n in range(count)]
    with faulty_server(Faults(accept_before_gate=20)) as server:
        env = environment(home, server, readers)
        log = home / "first.log"
        with log.open("w") as stderr:
            first = start(home, env, stderr)
        processes.append(first)
        server.wait_until(lambda: len(server.held) == 4)
        first.send_signal(sig)
        server.wait_until(lambda: "the run stops" in log.read_text())  # then the replies come
        server.gate.set()
        assert first.wait(timeout=60) == code, log.read_text()
        assert len(server.messages) == 24, "no message handed out after the signal"
        states = ledger_states(home)
        assert sum(state == "sent" for state in states.values()) == 24
        assert "sending" not in states.values()
        (report,) = (home / "var" / "reports").glob("*.json")
        assert f"stopped by {sig.name}" in report.read_text()

        rerun = start(home, env)
        processes.append(rerun)
        _, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        counts = {r: server.received(r) for r in readers}
    assert counts == dict.fromkeys(readers, 1)
    assert set(ledger_states(home).values()) == {"sent"}


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``where`` (``conftest.mount_tmpfs``)."""
    yield from mount_tmpfs(where, f"size={size}")


def test_a_disk_that_fills_mid_run_halts_75_and_the_rerun_repeats_only_the_in_flight(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """The state directory's file system fills up while 4 messages await their reply: the ledger
    cannot record their outcome, so the run halts (exit 75, the ledger's path and "no space
    left" on stderr, the summary on stdout) instead of hanging, and hands out nothing more.
    Once there is room, the rerun sends everyone; only those 4 in flight arrive twice.

    (It used to hang in epoll: the worker whose ledger write failed died, the preparing task
    waited forever for room in the queue; and the rerun repeated more than the in-flight ones.)
    """
    readers = [f"reader{n:02d}@example.org" for n in range(40)]
    with (
        small_tmpfs(tmp_path / "var", "2m") as state,
        faulty_server(Faults(accept_before_gate=10)) as server,
    ):
        save_day(state, sample_day())
        env = environment(tmp_path, server, readers)
        first = start(tmp_path, env)
        processes.append(first)
        server.wait_until(lambda: len(server.held) == 4)
        fill_disk(state)
        server.gate.set()
        out, err = first.communicate(timeout=120)  # a hang fails here, not the whole suite
        assert first.returncode == 75, err
        assert f"no space left on the device writing {state / 'ledger.sqlite3'}" in err
        assert "stopped early: no space left" in out
        assert "the ledger is unchanged" not in err
        in_flight = set(server.held)
        assert len(server.messages) == 14, "no message handed out after the failure"
        states = ledger_states(tmp_path)
        assert {r for r, s in states.items() if s == "sending"} == in_flight
        assert sum(s == "sent" for s in states.values()) == 10

        (state / "filler").unlink()
        rerun = start(tmp_path, env)
        processes.append(rerun)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        counts = {r: server.received(r) for r in readers}
        assert set(ledger_states(tmp_path).values()) == {"sent"}
    assert [r for r, count in counts.items() if count == 0] == [], "nobody loses the day"
    assert {r for r, count in counts.items() if count > 1} == in_flight
    assert max(counts.values()) == 2


def test_sigterm_while_digests_wait_for_their_rate_slot_leaves_them_for_the_rerun(
    home: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """PAPERMAIL_SMTP_RATE=0.001: one message leaves, three workers wait for their slot (1000 s
    and more). SIGTERM ends those waits at once: the digests are "not attempted" (not uncertain,
    and the run does not wait PAPERMAIL_SMTP_TIMEOUT for them), so the rerun sends them.

    (They used to be recorded uncertain once the grace ran out, so those subscribers lost the
    day.)
    """
    readers = [f"reader{n}@example.org" for n in range(8)]
    with faulty_server(Faults()) as server:
        env = environment(home, server, readers)
        first = start(
            home, {**env, "PAPERMAIL_SMTP_RATE": "0.001", "PAPERMAIL_SMTP_TIMEOUT": "300"}
        )
        processes.append(first)
        server.wait_until(lambda: len(server.messages) == 1)
        server.wait_until(lambda: "sent" in ledger_states(home).values())
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)  # shorter than the 300 s grace
        assert first.returncode == 143, err
        states = ledger_states(home)
        assert "uncertain" not in states.values(), states
        assert "sending" not in states.values(), states
        assert sum(s == "sent" for s in states.values()) == 1
        waited = [r for r, s in states.items() if s == "failed_transient"]
        assert len(waited) >= 3, "the three workers waiting for a slot"
        assert "not attempted: stopped by SIGTERM" in out
        assert "it may have" not in out + err
        assert len(server.messages) == 1

        rerun = start(home, env)
        processes.append(rerun)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        counts = {r: server.received(r) for r in readers}
    assert counts == dict.fromkeys(readers, 1)


def test_sigterm_cuts_a_send_before_data_short_and_awaits_only_the_reply_to_data(
    home: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """SIGTERM while one message waits for the reply to RCPT and another for the reply to its
    DATA: the first is "not attempted" at once (no message without its final dot), without
    waiting for the 300 s grace, while the second is still awaited; its 250 comes, it is sent.
    The rerun sends the first, once."""
    readers = ["rcpt@example.org", "data@example.org"]
    with faulty_server(Faults(accept_before_gate=0, hang_in_rcpt={readers[0]})) as server:
        env = {**environment(home, server, readers), "PAPERMAIL_SMTP_TIMEOUT": "300"}
        log = home / "first.log"
        with log.open("w") as stderr:
            first = start(home, env, stderr)
        processes.append(first)
        server.wait_until(lambda: server.held == [readers[1]] and server.attempts[readers[0]] == 1)
        first.send_signal(signal.SIGTERM)
        server.wait_until(lambda: ledger_states(home).get(readers[0]) == "failed_transient")
        assert server.held == [readers[1]], "the reply to DATA is still awaited"
        server.gate.set()
        assert first.wait(timeout=60) == 143, log.read_text()
        assert ledger_states(home) == {readers[0]: "failed_transient", readers[1]: "sent"}

        rerun = start(home, {**env, "PAPERMAIL_SMTP_TIMEOUT": "30"})
        processes.append(rerun)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        counts = {r: server.received(r) for r in readers}
    assert counts == dict.fromkeys(readers, 1)
