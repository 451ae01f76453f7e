"""The delivery ledger: which digest went to whom, with which papers, in which state (SQLite).

One row per (subscriber, day). A run claims the next few digests together, as ``queued``, in one
transaction synced to disk (``synchronous=FULL``): nothing leaves before its row is on disk, and
the group shares the fsync, which stalls every connection. Just before a digest is handed to an
SMTP connection its row becomes ``sending``, and after, its outcome; those two writes commit
without an fsync of their own (``synchronous=NORMAL``): WAL mode keeps them through a crash of
the process, and the next claim's fsync (or the checkpoint on closing) takes them to disk.

So a crash of the run repeats at most the in-flight (``sending``) messages; digests still
``queued`` never left and count as not attempted. A power cut can also lose the writes made
since the last fsync: a message sent since then may be sent again (at most four per
connection), or its papers offered again in a later day's digest.

The papers of every digest that may have reached the subscriber are kept, so a subscriber never
gets the same paper twice, and so are the days each digest covered (sent, or nothing to get):
they tell the next run which days to catch up on. A day a digest waited for (it could not be
gathered) is not among its covered days, so a later digest covers it.

States and what a later run for the same day does with them::

    queued            claimed, never handed over     → sent (as if never attempted)
    sending           in flight when a run died      → sent again (the only possible repeat)
    sent              delivered                      → nothing ("already sent")
    nothing           served, nothing matched        → ranked again (preferences may have changed)
    failed_transient  gave up after retries          → retried
    failed_permanent  refused (5xx)                  → not retried, reported again
    uncertain         DATA timed out                 → not resent, reported (``--resend-uncertain``)
"""

from __future__ import annotations

import enum
import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

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
    covers      TEXT,
    PRIMARY KEY (email, day)
);
"""
#: Ledgers written before the days a digest covers were recorded gain the column (NULL there).
COVERS_COLUMN = "ALTER TABLE digests ADD COLUMN covers TEXT"
#: Planning reads the last week's rows of every subscriber at once.
DAY_INDEX = "CREATE INDEX IF NOT EXISTS digests_by_day ON digests (day)"


class State(enum.StrEnum):
    """A digest's state in the ledger."""

    QUEUED = "queued"  # claimed ahead, never handed to a transport: as if not attempted
    SENDING = "sending"  # handed to a transport (or so when a run crashed): may have arrived
    SENT = "sent"
    NOTHING = "nothing"  # the subscriber was served, nothing matched, nothing was sent
    FAILED_TRANSIENT = "failed_transient"  # the next run retries it
    FAILED_PERMANENT = "failed_permanent"  # recorded, never retried
    UNCERTAIN = "uncertain"  # the server may have it; not resent automatically


#: States whose papers may have reached the subscriber: never send those papers again.
MAYBE_DELIVERED = (State.SENT, State.SENDING, State.UNCERTAIN)
#: States that mean "this subscriber was served for that day" (catch-up starts after them).
COVERED = (*MAYBE_DELIVERED, State.NOTHING)


class LedgerError(Exception):
    """A write to the ledger failed (a full disk, an I/O error): the run must stop, since what it
    does next could not be recorded. The message names the ledger's file."""


class Claim(NamedTuple):
    """A digest about to be sent: what ``Ledger.claim_all`` writes as ``queued``."""

    email: str
    day: date
    message_id: str
    papers: tuple[str, ...]
    covers: tuple[date, ...] = ()  # the days whose papers the digest draws on


class Served(NamedTuple):
    """A digest that served a subscriber (sent, possibly sent, or nothing to send)."""

    day: date
    #: The days it covered; () for a row written before they were recorded, which is taken to
    #: cover every day up to ``day`` (what catch-up assumed then).
    covers: tuple[date, ...]


class Ledger:
    """The SQLite ledger under the state directory."""

    def __init__(self, path: Path | None) -> None:
        """Open (or create) the ledger at ``path``; ``None`` is an empty scratch ledger in memory
        (a dry run on a state directory that has none yet, which must not create one)."""
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._failed = ""  # why a write failed (then none is tried again)
        self._db = sqlite3.connect(path or ":memory:", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # claims switch to FULL (``_synced``)
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(digests)")}
        if "covers" not in columns:
            self._db.execute(COVERS_COLUMN)
        self._db.execute(DAY_INDEX)

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

    def detail(self, email: str, day: date) -> str:
        """What the last attempt said (empty when nothing was recorded)."""
        row = self._db.execute(
            "SELECT detail FROM digests WHERE email = ? AND day = ?",
            (email.lower(), day.isoformat()),
        ).fetchone()
        return str(row[0]) if row else ""

    def sent_papers(self, email: str, *, other_than: date) -> frozenset[str]:
        """Ids of every paper delivered (or possibly delivered) to ``email`` for other days."""
        marks = ", ".join("?" * len(MAYBE_DELIVERED))
        rows = self._db.execute(
            f"SELECT papers FROM digests WHERE email = ? AND day != ? AND state IN ({marks})",
            (email.lower(), other_than.isoformat(), *MAYBE_DELIVERED),
        )
        return frozenset(pid for (papers,) in rows for pid in json.loads(papers))

    def last_covered(self, email: str, *, before: date) -> date | None:
        """The latest day before ``before`` for which ``email`` was served, or None (new)."""
        marks = ", ".join("?" * len(COVERED))
        row = self._db.execute(
            f"SELECT MAX(day) FROM digests WHERE email = ? AND day < ? AND state IN ({marks})",
            (email.lower(), before.isoformat(), *COVERED),
        ).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    def served_since(
        self, since: date, *, before: date, email: str | None = None
    ) -> dict[str, list[Served]]:
        """The digests that served each subscriber (or only ``email``) for a day from ``since``
        to before ``before``, with the days each covered, by lower-case address."""
        marks = ", ".join("?" * len(COVERED))
        query = f"""SELECT email, day, covers FROM digests
                    WHERE day >= ? AND day < ? AND state IN ({marks})"""
        params: tuple[str, ...] = (since.isoformat(), before.isoformat(), *COVERED)
        if email is not None:
            query, params = f"{query} AND email = ?", (*params, email.lower())
        served: dict[str, list[Served]] = {}
        for who, day, covers in self._db.execute(query, params):
            served.setdefault(who, []).append(Served(date.fromisoformat(day), _days(covers)))
        return served

    def sent_on(self, day: date) -> frozenset[str]:
        """The (lower-case) addresses whose digest for ``day`` was sent."""
        rows = self._db.execute(
            "SELECT email FROM digests WHERE day = ? AND state = ?", (day.isoformat(), State.SENT)
        )
        return frozenset(email for (email,) in rows)

    def claim(
        self,
        email: str,
        day: date,
        message_id: str,
        papers: Iterable[str],
        covers: tuple[date, ...] = (),
    ) -> None:
        """Claim one digest (``claim_all``) and mark it ``sending`` at once."""
        self.claim_all([Claim(email, day, message_id, tuple(papers), covers)])
        self.sending(email, day)

    def claim_all(self, claims: Iterable[Claim]) -> None:
        """Write these digests as ``queued`` in one transaction synced to disk: one fsync for all.

        A run claims the next few digests together before any of them leaves (an fsync stalls
        every connection, so sharing one is most of the ledger's cost per email).
        """
        with self._writing(), self._synced():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for c in claims:
                    self._upsert(
                        c.email, c.day, State.QUEUED, c.message_id, c.papers, covers=c.covers
                    )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                    self._db.execute("ROLLBACK")
                raise

    def sending(self, email: str, day: date) -> None:
        """Mark a claimed digest ``sending``: it is about to be handed to the transport."""
        self._set_state(email, day, State.SENDING)

    def record_nothing(self, email: str, day: date, covers: tuple[date, ...] = ()) -> None:
        """Remember that ``email`` was served for ``day`` (drawing on ``covers``) with nothing
        to send."""
        self._upsert(email, day, State.NOTHING, "", (), covers=covers)

    def record_unsent(self, email: str, day: date, state: State, detail: str) -> None:
        """Record a digest that never reached a transport (it could not be prepared, or its day's
        sources were missing) as ``state``, with why. A row that says an earlier attempt may have
        arrived (``sending``, ``uncertain``, ``sent``) keeps its state and papers."""
        marks = ", ".join("?" * len(MAYBE_DELIVERED))
        with self._writing():
            self._db.execute(
                f"""INSERT INTO digests (email, day, state, message_id, papers, detail, updated_at)
               VALUES (?, ?, ?, '', '[]', ?, ?)
               ON CONFLICT (email, day) DO UPDATE SET
                   state = excluded.state, detail = excluded.detail,
                   updated_at = excluded.updated_at
               WHERE digests.state NOT IN ({marks})""",
                (email.lower(), day.isoformat(), state, detail, _now(), *MAYBE_DELIVERED),
            )

    def record(
        self, email: str, day: date, state: State, *, attempts: int, detail: str = ""
    ) -> None:
        """Store the outcome of a delivery (on disk with the next claim; see the module doc)."""
        self._set_state(email, day, state, attempts=attempts, detail=detail)

    def _set_state(
        self, email: str, day: date, state: State, *, attempts: int = 0, detail: str = ""
    ) -> None:
        with self._writing():
            self._db.execute(
                """UPDATE digests SET state = ?, attempts = attempts + ?, detail = ?,
               updated_at = ? WHERE email = ? AND day = ?""",
                (state, attempts, detail, _now(), email.lower(), day.isoformat()),
            )

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn SQLite's failure to write into a ``LedgerError`` that names the file (SQLite
        says "database or disk is full" without a path). After one failure no write is tried
        again: the run halts, and the ledger keeps what was committed before it."""
        if self._failed:
            raise LedgerError(self._failed)
        try:
            yield
        except sqlite3.Error as exc:
            where = self.path or "the in-memory ledger"
            if "disk is full" in str(exc):
                self._failed = f"no space left on the device writing {where} ({exc})"
            else:
                self._failed = f"cannot write {where}: {exc}"
            raise LedgerError(self._failed) from exc

    @contextmanager
    def _synced(self) -> Iterator[None]:
        """Commit with an fsync (``synchronous=FULL``). Every other write commits without one
        (``NORMAL``): WAL mode keeps it through a crash of the process, and the next synced
        commit, or the checkpoint on closing, takes it to disk."""
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _upsert(
        self,
        email: str,
        day: date,
        state: State,
        message_id: str,
        papers: Iterable[str],
        *,
        covers: tuple[date, ...] = (),
    ) -> None:
        """Write a row. A claim (``queued``) keeps a state that says an earlier attempt may have
        arrived (``sending`` from a crashed run, ``uncertain`` resent): it must not count as
        never attempted if this run also stops before handing the digest over."""
        marks = ", ".join("?" * len(MAYBE_DELIVERED))
        with self._writing():
            self._db.execute(
                f"""INSERT INTO digests
                   (email, day, state, message_id, papers, attempts, updated_at, covers)
               VALUES (?, ?, ?, ?, ?, 0, ?, ?)
               ON CONFLICT (email, day) DO UPDATE SET
                   state = CASE WHEN excluded.state = ? AND digests.state IN ({marks})
                                THEN digests.state ELSE excluded.state END,
                   message_id = excluded.message_id, papers = excluded.papers,
                   updated_at = excluded.updated_at, covers = excluded.covers""",
                (
                    *(email.lower(), day.isoformat(), state, message_id, json.dumps(list(papers))),
                    *(_now(), json.dumps([d.isoformat() for d in covers]) if covers else None),
                    *(State.QUEUED, *MAYBE_DELIVERED),
                ),
            )


@functools.lru_cache(maxsize=1024)
def _days(covers: str | None) -> tuple[date, ...]:
    """The days of a row's ``covers`` column (none recorded: NULL); most rows repeat a few."""
    return tuple(date.fromisoformat(d) for d in json.loads(covers or "[]"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
