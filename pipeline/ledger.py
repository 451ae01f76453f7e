"""The delivery ledger: which digest went to whom, with which papers, in which state (SQLite).

One row per (subscriber, day). A row is claimed as ``sending`` *before* the message leaves, and set
to its final state after, so a crash leaves at most the in-flight messages to be repeated. The
papers of every delivered digest are kept so a subscriber never gets the same paper twice.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    email       TEXT NOT NULL,
    day         TEXT NOT NULL,
    state       TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    papers      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    detail      TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (email, day)
);
"""


class State(enum.StrEnum):
    """A digest's state in the ledger."""

    SENDING = "sending"  # claimed; in flight (or in flight when a run crashed)
    SENT = "sent"
    FAILED_TRANSIENT = "failed_transient"  # the next run retries it
    FAILED_PERMANENT = "failed_permanent"  # recorded, never retried


class Ledger:
    """The SQLite ledger under the state directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def state(self, email: str, day: date) -> State | None:
        """The digest's state, or None when it was never attempted."""
        row = self._db.execute(
            "SELECT state FROM digests WHERE email = ? AND day = ?",
            (email.lower(), day.isoformat()),
        ).fetchone()
        return State(row[0]) if row else None

    def sent_papers(self, email: str, *, other_than: date) -> frozenset[str]:
        """Ids of every paper delivered (or possibly delivered) to ``email`` for other days."""
        rows = self._db.execute(
            "SELECT papers FROM digests WHERE email = ? AND day != ? AND state IN (?, ?)",
            (email.lower(), other_than.isoformat(), State.SENT, State.SENDING),
        )
        return frozenset(pid for (papers,) in rows for pid in json.loads(papers))

    def claim(self, email: str, day: date, message_id: str, papers: Iterable[str]) -> None:
        """Mark the digest as being sent, before it is handed to the transport."""
        self._db.execute(
            """INSERT INTO digests (email, day, state, message_id, papers, attempts, updated_at)
               VALUES (?, ?, ?, ?, ?, 0, ?)
               ON CONFLICT (email, day) DO UPDATE SET state = excluded.state,
                   message_id = excluded.message_id, papers = excluded.papers,
                   updated_at = excluded.updated_at""",
            (
                email.lower(),
                day.isoformat(),
                State.SENDING,
                message_id,
                json.dumps(list(papers)),
                _now(),
            ),
        )

    def record(
        self, email: str, day: date, state: State, *, attempts: int, detail: str = ""
    ) -> None:
        """Store the outcome of a delivery."""
        self._db.execute(
            """UPDATE digests SET state = ?, attempts = attempts + ?, detail = ?, updated_at = ?
               WHERE email = ? AND day = ?""",
            (state, attempts, detail, _now(), email.lower(), day.isoformat()),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
