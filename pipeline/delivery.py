"""Delivery: a rendered email → a MIME message → SMTP (aiosmtplib) or an ``.eml`` in the outbox.

The only module that imports aiosmtplib. Transient failures (connection errors, 4xx) are retried
with exponential backoff and jitter; permanent ones (5xx) are not. Every outcome is a
``DeliveryResult``; nothing here raises for one subscriber's failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

import aiosmtplib

from pipeline.models import RenderedEmail
from pipeline.settings import Settings
from pipeline.sources.archive import write_atomic

Sleep = Callable[[float], Awaitable[None]]


class TransientFailure(Exception):
    """A delivery attempt failed in a way that may succeed later."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class PermanentFailure(Exception):
    """The server refused the message or the recipient for good (5xx)."""


# --- the message ---------------------------------------------------------------------------------


def message_id_for(email: str, day: date, from_address: str) -> str:
    """A Message-ID that is the same for the same subscriber and day (dedupe at the receiver)."""
    digest = hashlib.sha256(f"{email.lower()}|{day.isoformat()}".encode()).hexdigest()[:20]
    domain = from_address.rpartition("@")[2] or "localhost"
    return f"<papermail.{day.isoformat()}.{digest}@{domain}>"


def build_message(
    rendered: RenderedEmail,
    *,
    from_address: str,
    unsubscribe_url: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The multipart/alternative message (text, then HTML) with safe, encoded headers."""
    subscriber = rendered.digest.subscriber
    msg = EmailMessage()
    msg["From"] = Address("papermail", addr_spec=from_address)
    msg["To"] = Address(_one_line(subscriber.name or ""), addr_spec=subscriber.email)
    msg["Subject"] = _one_line(rendered.subject)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id_for(subscriber.email, rendered.digest.day, from_address)
    domain = from_address.rpartition("@")[2] or "localhost"
    msg["List-Id"] = f"papermail digest <digest.{domain}>"
    unsubscribe = [f"<mailto:{from_address}?subject=unsubscribe>"]
    if unsubscribe_url:
        unsubscribe.insert(0, f"<{unsubscribe_url.replace('{email}', subscriber.email)}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Unsubscribe"] = ", ".join(unsubscribe)
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return msg


def _one_line(text: str) -> str:
    """Header values never carry a line break, whatever upstream sent."""
    return " ".join(text.split())


# --- transports ----------------------------------------------------------------------------------


class Transport(Protocol):
    """Something that takes one message for one recipient, or raises a failure."""

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """Deliver ``message`` to ``recipient``; raise TransientFailure or PermanentFailure."""

    async def close(self) -> None:
        """Release connections."""


class OutboxTransport:
    """Writes each message atomically as ``<outbox>/<day>-<recipient>.eml``."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """Write the message file (atomically; a rerun overwrites the same name)."""
        day = str(message["Message-ID"]).split(".")[1]
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in recipient.lower())
        try:
            write_atomic(self.outbox / f"{day}-{slug}.eml", message.as_string())
        except OSError as exc:
            raise TransientFailure(
                f"cannot write to outbox {self.outbox}: {exc}", unreachable=True
            ) from exc

    async def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach the SMTP server; the password is only ever passed to aiosmtplib."""

    host: str
    port: int
    security: str  # ssl, starttls or none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = None


class SmtpTransport:
    """One persistent SMTP connection, reconnected when it drops."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.security == "ssl",
            start_tls=cfg.security == "starttls",
            username=cfg.username,
            password=cfg.password,
            timeout=cfg.timeout,
            tls_context=cfg.tls_context,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientFailure(
                f"cannot connect to SMTP server {cfg.host}:{cfg.port}: {_reason(exc)}",
                unreachable=True,
            ) from None
        self._client = client
        return client

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """Send over the persistent connection, classifying failures."""
        client = await self._connected()
        try:
            await client.send_message(message, recipients=[recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(code >= 500 for code in codes):
                raise PermanentFailure(f"recipient refused: {_reason(exc.recipients[0])}") from None
            raise TransientFailure(f"recipient deferred: {_reason(exc.recipients[0])}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentFailure(f"SMTP {exc.code}: {exc.message}") from None
            await self.close()
            raise TransientFailure(f"SMTP {exc.code}: {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            raise TransientFailure(f"SMTP connection failed: {_reason(exc)}") from None

    async def close(self) -> None:
        """Say QUIT if still connected; forget the connection either way."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _reason(exc: object) -> str:
    """A short description of a failure that never includes credentials."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return str(exc) or type(exc).__name__


# --- retries -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempted:
    """The outcome of delivering one message with retries."""

    ok: bool
    attempts: int
    permanent: bool = False
    unreachable: bool = False
    detail: str = ""


async def send_with_retries(
    transport: Transport,
    message: EmailMessage,
    recipient: str,
    *,
    max_attempts: int,
    sleep: Sleep = asyncio.sleep,
    base_delay: float = 1.0,
) -> Attempted:
    """Try up to ``max_attempts`` times, backing off between transient failures."""
    failure = TransientFailure("no attempt was made")
    for attempt in range(1, max_attempts + 1):
        try:
            await transport.send(message, recipient)
        except PermanentFailure as exc:
            return Attempted(ok=False, attempts=attempt, permanent=True, detail=str(exc))
        except TransientFailure as exc:
            failure = exc
            if attempt < max_attempts:
                await sleep(random.uniform(0, base_delay * 2 ** (attempt - 1)))
            continue
        return Attempted(ok=True, attempts=attempt)
    return Attempted(
        ok=False, attempts=max_attempts, unreachable=failure.unreachable, detail=str(failure)
    )


def transport_factory(
    settings: Settings, *, tls_context: ssl.SSLContext | None = None
) -> Callable[[], Transport]:
    """SMTP when ``PAPERMAIL_SMTP_HOST`` is set, the outbox otherwise (SPEC's embedded default)."""
    host = settings.smtp_host
    if not host:
        outbox = settings.outbox
        return lambda: OutboxTransport(outbox)
    config = SmtpConfig(
        host=host,
        port=settings.smtp_port,
        security=settings.security,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        tls_context=tls_context,
    )
    return lambda: SmtpTransport(config)
