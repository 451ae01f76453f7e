"""The exception tree of papermail, and the exit code each one means to cron.

::

    PapermailError                 exit 1   anything we raise on purpose
    ├── UsageError                 exit 2   a command line that cannot be carried out
    ├── SettingsError              exit 78  a PAPERMAIL_* variable is missing or invalid
    ├── SourceError                exit 69  a paper source failed after retries (URL, status)
    ├── TemplateError              exit 1   a template does not compile (carries file and line)
    ├── DeliveryError              exit 69  ``send-test``'s message was refused or not delivered
    └── LockedError                exit 75  another run holds the state directory's lock

Foreign exceptions (httpx, yaml, aiosmtplib, jinja2, pydantic) are translated into these at the one
module that uses that library (``raise Ours(...) from exc``), so the CLI only ever maps this tree to
exit codes and one-line messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class ExitCode(enum.IntEnum):
    """The exit codes of SPEC.md, in one place."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    DATA_ERR = 65  # invalid subscriber data; the others were still served
    NO_USER = 67  # a recipient was refused permanently
    UNAVAILABLE = 69  # a source or the SMTP server was unavailable after retries
    TEMP_FAIL = 75  # some deliveries failed transiently; the next run retries them
    CONFIG = 78  # invalid settings
    INTERRUPTED = 130  # SIGINT (Ctrl-C): the run stopped handing out messages, report written
    TERMINATED = 143  # SIGTERM: the same


#: Where several apply, the first of these wins.
PRECEDENCE = (
    ExitCode.INTERRUPTED,
    ExitCode.TERMINATED,
    ExitCode.CONFIG,
    ExitCode.UNAVAILABLE,
    ExitCode.TEMP_FAIL,
    ExitCode.NO_USER,
    ExitCode.DATA_ERR,
)


def worst_exit_code(codes: set[ExitCode]) -> ExitCode:
    """Pick the exit code that wins when several problems happened in one run."""
    for code in PRECEDENCE:
        if code in codes:
            return code
    return ExitCode.UNEXPECTED if codes - {ExitCode.OK} else ExitCode.OK


class PapermailError(Exception):
    """Base of every error papermail raises on purpose; ``str()`` is the one-line message."""

    exit_code = ExitCode.UNEXPECTED


class UsageError(PapermailError):
    """The command line names something that does not exist (an unknown subscriber, say)."""

    exit_code = ExitCode.USAGE


class SettingsError(PapermailError):
    """A setting is missing or invalid; the message names the environment variable."""

    exit_code = ExitCode.CONFIG


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a subscriber file, printed as ``file:line: field: message``."""

    file: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)  # 0: no line
        return f"{where}: {self.field}: {self.message}"


class SourceError(PapermailError):
    """A paper source could not deliver the day, after retries where retrying made sense."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class TemplateError(PapermailError):
    """A template failed to compile or render; the message names the template file and line."""


class DeliveryError(PapermailError):
    """A single message (``papermail send-test``) could not be delivered; the run's own
    deliveries are recorded per subscriber instead."""

    exit_code = ExitCode.UNAVAILABLE


class LockedError(PapermailError):
    """Another papermail run holds the lock on the state directory."""

    exit_code = ExitCode.TEMP_FAIL
