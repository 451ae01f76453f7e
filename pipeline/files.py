"""Files written whole or not at all: the archive, reports, previews and the outbox share this."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _synced_temporary(path: Path, text: str) -> Path:
    """``text`` in a synced temporary file beside ``path`` (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_new(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` whole, unless ``path`` exists: then leave it and return False.

    The file appears complete or not at all (a hard link from a synced temporary file), and an
    existing one is never replaced.
    """
    tmp = _synced_temporary(path, text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    tmp = _synced_temporary(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
