"""The SQLite ledger: states, the papers that may have reached a subscriber, the last served day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipeline.ledger import Claim, Ledger, State

D1, D2, D3, D4 = (date(2026, 1, n) for n in (1, 2, 3, 4))


def test_a_claim_survives_reopening_and_is_overwritten_by_the_outcome(tmp_path: Path) -> None:
    """``sending`` is on disk before the send; the outcome replaces it; addresses fold case."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.claim("Ada@Example.org", D1, "<id@x>", ["2601.00001"])
    ledger.close()
    again = Ledger(tmp_path / "ledger.sqlite3")
    assert again.state("ada@example.org", D1) is State.SENDING
    again.record("ada@example.org", D1, State.FAILED_TRANSIENT, attempts=3, detail="451 later")
    assert again.state("ADA@example.org", D1) is State.FAILED_TRANSIENT
    assert again.detail("ada@example.org", D1) == "451 later"
    assert again.state("ada@example.org", D2) is None
    again.close()


def test_papers_that_may_have_arrived_are_never_offered_again(tmp_path: Path) -> None:
    """Sent, in-flight and uncertain digests' papers count as sent; failed ones' do not."""
    ledger = Ledger(tmp_path / "l.sqlite3")
    outcomes = {D1: State.SENT, D2: State.UNCERTAIN, D3: State.FAILED_PERMANENT}
    for n, (day, state) in enumerate(outcomes.items()):
        ledger.claim("ada@example.org", day, f"<{n}@x>", [f"p{n}"])
        ledger.record("ada@example.org", day, state, attempts=1)
    ledger.claim("ada@example.org", D4, "<4@x>", ["p4"])  # in flight when a run died
    assert ledger.sent_papers("ada@example.org", other_than=D4) == {"p0", "p1"}
    assert ledger.sent_papers("ada@example.org", other_than=D1) == {"p1", "p4"}
    assert ledger.sent_papers("bob@example.org", other_than=D1) == frozenset()


def test_last_covered_day_counts_served_days_even_with_nothing_to_send(tmp_path: Path) -> None:
    """Sent or nothing-to-send days count as served; failed days and later days do not."""
    ledger = Ledger(tmp_path / "l.sqlite3")
    assert ledger.last_covered("ada@example.org", before=D4) is None
    ledger.claim("ada@example.org", D1, "<1@x>", ["p"])
    ledger.record("ada@example.org", D1, State.SENT, attempts=1)
    ledger.record_nothing("ada@example.org", D2)
    ledger.claim("ada@example.org", D3, "<3@x>", ["q"])
    ledger.record("ada@example.org", D3, State.FAILED_TRANSIENT, attempts=5)
    assert ledger.last_covered("ada@example.org", before=D4) == D2
    assert ledger.last_covered("ada@example.org", before=D2) == D1


def test_claims_written_together_are_queued_all_or_none(tmp_path: Path) -> None:
    """``claim_all`` is one transaction: on disk as ``queued`` together, or not at all."""
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)

    def claims_then_failure() -> Iterator[Claim]:
        yield Claim("ada@example.org", D1, "<1@x>", ("p1",))
        raise RuntimeError("the run stopped while claiming")

    with pytest.raises(RuntimeError):
        ledger.claim_all(claims_then_failure())
    assert ledger.state("ada@example.org", D1) is None
    ledger.claim_all(Claim(f"{who}@example.org", D1, f"<{who}@x>", ("p1",)) for who in "abc")
    ledger.close()
    again = Ledger(path)
    assert {again.state(f"{who}@example.org", D1) for who in "abc"} == {State.QUEUED}
    again.sending("b@example.org", D1)
    assert again.state("b@example.org", D1) is State.SENDING
    again.close()


def test_a_queued_digest_never_left_so_a_later_day_catches_it_up(tmp_path: Path) -> None:
    """A run that died with a digest still ``queued`` did not serve that day: its papers are
    offered again and catch-up starts before it; once ``sending``, it may have arrived."""
    ledger = Ledger(tmp_path / "l.sqlite3")
    ledger.claim("ada@example.org", D1, "<1@x>", ["p1"])
    ledger.record("ada@example.org", D1, State.SENT, attempts=1)
    ledger.claim_all([Claim("ada@example.org", D2, "<2@x>", ("p2",))])
    assert ledger.last_covered("ada@example.org", before=D3) == D1
    assert ledger.sent_papers("ada@example.org", other_than=D3) == {"p1"}
    ledger.sending("ada@example.org", D2)
    assert ledger.last_covered("ada@example.org", before=D3) == D2
    assert ledger.sent_papers("ada@example.org", other_than=D3) == {"p1", "p2"}


def test_claiming_again_keeps_an_earlier_attempt_that_may_have_arrived(tmp_path: Path) -> None:
    """A digest ``sending`` when a run died, or ``uncertain``, is claimed again by a rerun: until
    it is handed over it still counts as possibly delivered, not as never attempted."""
    ledger = Ledger(tmp_path / "l.sqlite3")
    ledger.claim("ada@example.org", D1, "<1@x>", ["p1"])  # the run died here
    ledger.claim("bob@example.org", D1, "<2@x>", ["p2"])
    ledger.record("bob@example.org", D1, State.UNCERTAIN, attempts=1)
    ledger.claim("cy@example.org", D1, "<3@x>", ["p3"])
    ledger.record("cy@example.org", D1, State.FAILED_TRANSIENT, attempts=5)
    again = [
        Claim(f"{who}@example.org", D1, f"<{who}@x>", (f"q-{who}",)) for who in ("ada", "bob", "cy")
    ]
    ledger.claim_all(again)
    assert ledger.state("ada@example.org", D1) is State.SENDING
    assert ledger.state("bob@example.org", D1) is State.UNCERTAIN
    assert ledger.state("cy@example.org", D1) is State.QUEUED
    assert ledger.last_covered("ada@example.org", before=D2) == D1
    ledger.sending("bob@example.org", D1)
    assert ledger.state("bob@example.org", D1) is State.SENDING


def test_a_scratch_ledger_writes_no_file(tmp_path: Path) -> None:
    """``Ledger(None)`` (a dry run without a ledger) lives in memory only."""
    ledger = Ledger(None)
    ledger.record_nothing("ada@example.org", D1)
    assert ledger.state("ada@example.org", D1) is State.NOTHING
    ledger.close()
    assert list(tmp_path.iterdir()) == []
