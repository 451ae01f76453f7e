"""The run lock: one ``papermail run`` at a time per state directory (``fcntl.flock``).

The kernel drops the lock when the process ends, however it ends (kill -9 included), so a crash
never leaves a stale lock behind, and a ``sending`` row found by the next run can only be from a
run that died. The file stays in place (removing it would race); it holds the holder's pid.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import LockedError, SettingsError

LOCK_FILE = "papermail.lock"


@contextmanager
def run_lock(state_dir: Path) -> Iterator[Path]:
    """Hold the state directory's lock for the block, or raise ``LockedError`` at once."""
    path = state_dir / LOCK_FILE
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        message = f"PAPERMAIL_STATE_DIR: cannot use {state_dir}: {exc.strerror}"
        raise SettingsError(message) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(
                f"another papermail run (pid {holder}) holds {path}; "
                "this run exits without sending anything"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)
