"""Log lines on stderr: plain on a terminal, stamped with ISO 8601 UTC time everywhere else.

Under cron, systemd or CI the log is read later, often beside other runs' lines, so each line
carries when it was written (``2026-01-02T06:15:03Z INFO …``); at a terminal the person watching
knows when, and the short form reads better.
"""

from __future__ import annotations

import logging
import time
from typing import TextIO

PLAIN = "%(levelname)s %(message)s"
STAMPED = "%(asctime)s %(levelname)s %(message)s"
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def formatter_for(stream: TextIO) -> logging.Formatter:
    """The formatter for log lines written to ``stream``: stamped in UTC unless it is a terminal."""
    if stream.isatty():
        return logging.Formatter(PLAIN)
    stamped = logging.Formatter(STAMPED, datefmt=ISO_UTC)
    stamped.converter = time.gmtime
    return stamped


def setup_logging(stream: TextIO, *, verbose: bool) -> None:
    """Send papermail's log to ``stream`` (INFO, or DEBUG when ``verbose``); quiet the libraries
    whose notes are not papermail's (httpx's requests, pylatexenc's parse notes)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(stream))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("pylatexenc").setLevel(logging.ERROR)
