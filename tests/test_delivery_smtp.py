"""Delivery against a real aiosmtpd server on 127.0.0.1 that injects faults.

Each test says what the server does to whom, runs ``papermail run``, and asserts what every
recipient received (exactly once, or recorded as failed) and the exit code.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline import app, delivery, engine
from pipeline.cli import main
from pipeline.clock import Clock
from pipeline.settings import load_settings
from pipeline.sources.archive import save_day
from pipeline.sources.sample import SAMPLE_DAY
from tests.conftest import no_sleep
from tests.faults import (
    PASSWORD,
    USERNAME,
    Faults,
    FaultyServer,
    faulty_server,
    sample_day,
    test_ca,
    write_subscribers,
)

DAY = SAMPLE_DAY.isoformat()
READERS = [f"r{n}@example.org" for n in range(6)]


@dataclass
class World:
    """A state directory with the sample day archived and six subscribers, plus recorded sleeps."""

    root: Path
    sleeps: list[float]

    def sleep(self, seconds: float) -> None:
        """Record a backoff wait instead of waiting."""
        self.sleeps.append(seconds)

    def ledger(self) -> dict[str, str]:
        """Each recipient's ledger state for the sample day (none before a run made the ledger)."""
        path = self.root / "var" / "ledger.sqlite3"
        if not path.exists():
            return {}
        with closing(sqlite3.connect(path)) as db:
            try:
                rows = db.execute("SELECT email, state FROM digests WHERE day = ?", (DAY,))
            except sqlite3.OperationalError:  # the run is creating the table right now
                return {}
            return dict(rows.fetchall())

    def report(self) -> dict[str, object]:
        """The newest run report."""
        newest = max((self.root / "var" / "reports").glob(f"{DAY}-*.json"))
        data: dict[str, object] = json.loads(newest.read_text())
        return data


@pytest.fixture
def world(env: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Six subscribers and the archived sample day: runs need no paper source."""
    save_day(env / "var", sample_day())
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(write_subscribers(env / "subs", READERS)))
    monkeypatch.setenv("PAPERMAIL_SMTP_CONCURRENCY", "2")
    return World(env, [])


def use(server: FaultyServer, monkeypatch: pytest.MonkeyPatch, security: str = "none") -> None:
    """Point the settings at ``server``."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", server.host)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(server.port))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", security)


@pytest.fixture
def server(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyServer]:
    """A plain-SMTP fault-injecting server the settings point at (faults set by each test)."""
    with faulty_server() as smtp:
        use(smtp, monkeypatch)
        yield smtp


def papermail(world: World, *args: str, verbose: bool = False) -> int:
    """``papermail run`` for the sample day, with backoff waits recorded, not waited."""
    return main([*(["-v"] if verbose else []), "run", "--date", DAY, *args], sleep=world.sleep)


def each_got(server: FaultyServer, count: int, readers: list[str] = READERS) -> None:
    """Every one of ``readers`` received exactly ``count`` messages."""
    assert {r: server.received(r) for r in readers} == dict.fromkeys(readers, count)


@contextmanager
def held_in_data(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    """``papermail run`` in a thread, against a server that holds every DATA until the block ends
    (then the run finishes, and its exit code is in ``Held.exit_code``)."""
    with faulty_server(Faults(accept_before_gate=0)) as server:
        use(server, monkeypatch)
        held = Held(server, [])
        running = threading.Thread(target=lambda: held.exit_code.append(papermail(world)))
        running.start()
        try:
            yield held
        finally:
            server.gate.set()
            running.join(timeout=60)


@dataclass
class Held:
    """A run whose messages the server holds in DATA (``held_in_data``)."""

    server: FaultyServer
    exit_code: list[int]


def test_digests_are_claimed_ahead_as_queued_and_marked_sending_when_handed_over(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With both connections held in DATA, the other four digests are on disk as ``queued``
    (claimed, never sent) and only the two handed over are ``sending``; then each arrives once."""
    with held_in_data(world, monkeypatch) as held:
        held.server.wait_until(lambda: len(held.server.held) == 2 and len(world.ledger()) == 6)
        states = world.ledger()
        assert sorted(states.values()) == ["queued"] * 4 + ["sending"] * 2
        assert {r for r, s in states.items() if s == "sending"} == set(held.server.held)
    assert held.exit_code == [0]
    each_got(held.server, 1)
    assert set(world.ledger().values()) == {"sent"}


def test_planning_in_small_batches_claims_at_most_four_ahead_and_serves_each_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of two, one connection held in DATA: the preparing task waits on the full queue
    with four digests claimed (one in flight, two queued, one waiting for room), across batch
    boundaries; afterwards every digest arrives once."""
    monkeypatch.setattr(engine, "PLAN_BATCH", 2)
    monkeypatch.setenv("PAPERMAIL_SMTP_CONCURRENCY", "1")
    with held_in_data(world, monkeypatch) as held:
        # one in DATA, two in the queue, one composed and waiting for room: four claimed
        held.server.wait_until(lambda: len(held.server.held) == 1 and len(world.ledger()) == 4)
    assert held.exit_code == [0]
    each_got(held.server, 1)
    results = world.report()["results"]
    assert [r["status"] for r in results] == ["sent"] * 6  # type: ignore[attr-defined]


def test_451_on_the_first_attempt_is_retried_after_a_backoff(
    world: World, server: FaultyServer
) -> None:
    """Deferred recipients get their digest on the second attempt; connections are reused."""
    server.faults.defer_first = {READERS[1], READERS[3]}
    assert papermail(world) == 0
    each_got(server, 1)
    assert server.attempts[READERS[1]] == 2
    assert server.attempts[READERS[0]] == 1
    assert len(world.sleeps) == 2
    assert all(1.0 <= s <= 2.0 for s in world.sleeps), "first backoff: 2 s with equal jitter"
    assert len(server.peers) == 2, "one persistent connection per worker, RSET after a 451"
    assert set(world.ledger().values()) == {"sent"}


def test_421_and_a_closed_connection_reconnect_and_deliver(
    world: World, server: FaultyServer
) -> None:
    """A 421 that hangs up is transient: the worker reconnects and delivers once."""
    server.faults.close_421_first = {READERS[2]}
    assert papermail(world) == 0
    each_got(server, 1)
    assert server.attempts[READERS[2]] == 2
    assert len(server.peers) == 3, "two workers, plus one reconnect"


def test_a_connection_dropped_after_the_final_dot_is_uncertain_and_not_resent(
    world: World, server: FaultyServer
) -> None:
    """The server takes the whole message and hangs up instead of answering the final dot: it
    may have the message, so it is uncertain (exit 75) and neither retried nor resent by a
    rerun (issue 12, item 3: it used to be sent 5 times a run)."""
    server.faults.drop_in_data_first = {READERS[0], READERS[5]}
    assert papermail(world) == 75
    assert server.attempts[READERS[0]] == 1
    assert world.ledger()[READERS[0]] == "uncertain"
    assert world.ledger()[READERS[5]] == "uncertain"
    each_got(server, 1, READERS[1:5])
    assert papermail(world) == 75
    assert server.attempts[READERS[0]] == 1, "a rerun does not resend it"


def test_550_is_recorded_not_retried_and_exits_67(
    world: World, server: FaultyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused recipient is tried once, recorded, reported, and not retried by a rerun."""
    server.faults.refuse = {READERS[4]}
    assert papermail(world) == 67
    out = capsys.readouterr().out
    assert "failed permanently           1" in out
    assert f"{READERS[4]}: failed_permanent: refused: 550 5.1.1 no such mailbox" in out
    each_got(server, 1, [r for r in READERS if r != READERS[4]])
    assert server.received(READERS[4]) == 0
    assert server.attempts[READERS[4]] == 1
    assert world.ledger()[READERS[4]] == "failed_permanent"
    assert world.sleeps == []

    assert papermail(world) == 67
    assert server.attempts[READERS[4]] == 1, "a rerun does not knock again"
    assert len(server.messages) == 5
    assert world.report()["summary"] == {  # type: ignore[comparison-overlap]
        "sent": 0,
        "already_sent": 5,
        "nothing_to_send": 0,
        "dry_run": 0,
        "skipped": 0,
        "failed_permanent": 1,
        "failed_transient": 0,
        "uncertain": 0,
        "invalid_subscribers": 0,
        "skipped_upstream_items": 0,
    }


def test_a_timeout_after_data_is_uncertain_and_not_resent(
    world: World, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reply to the final dot: recorded uncertain (exit 75); a rerun does not resend it."""
    monkeypatch.setenv("PAPERMAIL_SMTP_TIMEOUT", "2")
    server.faults.hang_in_data = {READERS[0]}
    assert papermail(world) == 75
    each_got(server, 1, READERS[1:])
    assert server.attempts[READERS[0]] == 1, "not blindly resent"
    assert world.ledger()[READERS[0]] == "uncertain"

    assert papermail(world) == 75
    assert server.attempts[READERS[0]] == 1, "nor by a rerun"

    server.faults.hang_in_data = set()
    assert papermail(world, "--resend-uncertain") == 0
    each_got(server, 1)
    assert world.ledger()[READERS[0]] == "sent"


def test_a_server_slower_than_the_timeout_before_data_is_transient(
    world: World, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reply to RCPT in time: retried, then left for the next run (exit 75), which sends it."""
    monkeypatch.setenv("PAPERMAIL_SMTP_TIMEOUT", "2")
    monkeypatch.setenv("PAPERMAIL_MAX_ATTEMPTS", "2")
    server.faults.hang_in_rcpt = {READERS[3]}
    assert papermail(world) == 75
    assert server.received(READERS[3]) == 0
    assert server.attempts[READERS[3]] == 2
    assert world.ledger()[READERS[3]] == "failed_transient"

    server.faults.hang_in_rcpt = set()
    assert papermail(world) == 0
    each_got(server, 1)


def test_an_unreachable_server_stops_the_run_knocking_and_exits_69(
    world: World, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused after retries: the others are not attempted; the next run sends all."""
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", "1")
    monkeypatch.setenv("PAPERMAIL_MAX_ATTEMPTS", "3")
    assert papermail(world) == 69
    assert len(world.sleeps) <= 2 * 2, "only the first message per worker retried"
    report = world.report()
    details = [r["detail"] for r in report["results"]]  # type: ignore[attr-defined]
    assert sum("not attempted" in d for d in details) >= 4
    use(server, monkeypatch)
    assert papermail(world) == 0
    each_got(server, 1)


def tls_run(world: World, ca_context: object) -> int:
    """``papermail run`` through the library, with the client's trust store injected."""
    settings = load_settings()
    factory = delivery.transport_factory(settings, tls_context=ca_context)  # type: ignore[arg-type]
    with httpx.Client() as client:
        report = app.run_batch(
            settings,
            day=SAMPLE_DAY,
            client=client,
            clock=Clock.waiting_with(no_sleep),
            transport_factory=factory,
        )
    return app.exit_code_for(report)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_auth_over_verified_tls(
    world: World, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    """STARTTLS and implicit TLS with a test CA's certificate, AUTH over it: all delivered once."""
    ca = test_ca()
    with faulty_server(tls=security, ca=ca, auth=True) as smtp:
        use(smtp, monkeypatch, security)
        monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", USERNAME)
        monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", PASSWORD)
        assert tls_run(world, ca.client_context) == 0
        each_got(smtp, 1)


def test_a_certificate_not_trusted_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the test CA in the trust store the certificate fails verification: exit 69 at
    once, without retries (a TLS failure is the run's, not a recipient's)."""
    with faulty_server(tls="ssl", ca=test_ca()) as smtp:
        use(smtp, monkeypatch, "ssl")
        assert papermail(world) == 69
        assert smtp.messages == []
    assert world.sleeps == []
    assert set(world.ledger().values()) == {"failed_transient"}, "the next run sends them"
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err


def test_the_password_never_appears_in_output_report_or_ledger(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Refused AUTH and refused recipients, with -v: the password is nowhere we write."""
    monkeypatch.setattr(logging.getLogger("mail.log"), "disabled", True)  # the test server's own
    monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", USERNAME)
    monkeypatch.setenv("PAPERMAIL_MAX_ATTEMPTS", "2")
    with faulty_server(Faults(refuse={READERS[0]}), auth=True) as smtp:
        use(smtp, monkeypatch)
        monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", "wrong-" + PASSWORD)
        assert papermail(world, verbose=True) == 78, "AUTH refused: the configuration"
        assert world.sleeps == [], "a refused AUTH is not retried"
        monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", PASSWORD)
        assert papermail(world, verbose=True) == 67
        each_got(smtp, 1, READERS[1:])
    captured = capfd.readouterr()
    written = [captured.out, captured.err]
    written += [p.read_text() for p in (world.root / "var" / "reports").glob("*.json")]
    written.append((world.root / "var" / "ledger.sqlite3").read_bytes().decode("latin-1"))
    assert "refused AUTH for papermail-user: 535" in captured.err
    secrets = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode()]
    secrets.append(base64.b64encode(f"\0{USERNAME}\0{PASSWORD}".encode()).decode())
    for text in written:
        for secret in secrets:
            assert secret not in text


def test_the_rate_limit_spaces_messages_across_workers(
    world: World, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAPERMAIL_SMTP_RATE=2 with two workers: six messages take at least 2.5 s of (fake) time."""
    monkeypatch.setenv("PAPERMAIL_SMTP_RATE", "2")
    now = [0.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    settings = load_settings()
    with httpx.Client() as client:
        report = app.run_batch(
            settings,
            day=SAMPLE_DAY,
            client=client,
            clock=Clock.waiting_with(advance, monotonic=lambda: now[0]),
        )
    assert app.exit_code_for(report) == 0
    each_got(server, 1)
    assert now[0] == pytest.approx(2.5)
