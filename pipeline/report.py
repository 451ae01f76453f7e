"""The run report's frame: when it ran, how long, which papermail, where mail went, Message-IDs.

``run_batch`` produces the results; ``finish_report`` adds what the operator reads first in the
JSON report and the summary. Kept apart from the engine so the engine stays about sending.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from pipeline import __version__
from pipeline.delivery.message import message_id_for
from pipeline.models import DeliveryStatus, RunReport
from pipeline.settings import Settings

#: Why mail went to files: said in the summary, the progress line and the report.
OUTBOX_REASON = "PAPERMAIL_SMTP_HOST is not set"


def transport_of(settings: Settings) -> str:
    """Where mail goes, for people: the SMTP server (never the credentials) or the outbox."""
    if settings.smtp_host:
        return f"smtp://{settings.smtp_host}:{settings.smtp_port} ({settings.security})"
    return f"outbox {settings.outbox}/"


def outbox_note(settings: Settings) -> str | None:
    """``written to outbox/ — PAPERMAIL_SMTP_HOST is not set`` in outbox mode, else None."""
    if settings.smtp_host:
        return None
    return f"written to {settings.outbox}/ — {OUTBOX_REASON}"


def finish_report(
    report: RunReport,
    *,
    settings: Settings,
    started: datetime,
    exit_code: int,
    finished: datetime | None = None,
) -> RunReport:
    """The report with its frame filled in, and each delivered digest's Message-ID.

    The Message-ID is the one ``delivery.compose`` wrote: it depends only on the recipient, the
    day and the From address, which is what makes a resend recognisable as the same message.
    """
    results = tuple(
        dataclasses.replace(r, message_id=message_id_for(r.email, r.day, settings.from_email))
        if r.status is DeliveryStatus.SENT
        else r
        for r in report.results
    )
    return dataclasses.replace(
        report,
        results=results,
        started=started,
        finished=finished or datetime.now(UTC),
        exit_code=exit_code,
        version=__version__,
        transport=transport_of(settings),
        outbox=not settings.smtp_host,
    )
