"""Transports: wire bytes → SMTP (aiosmtplib) or an ``.eml`` file in the outbox, with retries.

The only module that imports aiosmtplib. Each failure is classified once, here:

- transient (connection refused or dropped before the server accepted the message, 4xx, 421):
  retried with exponential backoff and jitter, up to ``max_attempts``;
- permanent (5xx, a refused recipient): not retried;
- uncertain (no reply in the DATA step: a timeout, a closed or reset connection): the server may
  have accepted the message, so it is not resent (never twice beats never lost here). aiosmtplib
  sends DATA, the message and the final ``.`` in one call, so a connection lost while waiting for
  the ``354`` counts as uncertain too;
- the run's own failure (``RunFailure``: AUTH refused, the sender refused at MAIL FROM, TLS or
  a certificate that does not verify): no recipient's fault, never retried; the run stops.

A connection that cannot be opened after retries is marked ``unreachable``: the run stops trying
the server and exits 69. Nothing here raises for one subscriber's failure; every outcome is an
``Attempted``.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, quote_plus

import aiosmtplib

from pipeline.clock import SYSTEM_CLOCK, Clock
from pipeline.delivery.message import Outgoing
from pipeline.files import write_new
from pipeline.models import slug_of
from pipeline.settings import Settings
from pipeline.text import one_line


class TransientFailure(Exception):
    """A delivery attempt failed in a way that may succeed later."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class PermanentFailure(Exception):
    """The server refused the message or the recipient for good (5xx)."""


class UncertainDelivery(Exception):
    """No reply in the DATA step: the server may or may not have accepted the message."""


class RunFailure(Exception):
    """A failure of the run, not of the recipient: the run stops at once, nobody is marked failed.

    ``configuration`` when a setting is clearly the cause (AUTH refused, the From address refused,
    STARTTLS not offered): exit 78; else (TLS, a certificate): exit 69.
    """

    def __init__(self, message: str, *, configuration: bool) -> None:
        super().__init__(message)
        self.configuration = configuration


# --- transports ----------------------------------------------------------------------------------


class Transport(Protocol):
    """Something that takes one message, or raises one of the three failures above."""

    async def send(self, outgoing: Outgoing) -> None:
        """Deliver ``outgoing``; raise TransientFailure, PermanentFailure, UncertainDelivery or
        RunFailure."""

    async def close(self) -> None:
        """Release connections."""

    @property
    def in_data(self) -> bool:
        """Whether a message is being handed over (its DATA step begun, no reply yet): only then
        can cutting the send short leave the server with a message nobody recorded."""


class OutboxTransport:
    """Writes each message atomically as ``<outbox>/<day>-<recipient slug>.eml``, never over an
    existing file: one there already is this recipient's digest for that day (the same
    Message-ID), delivered by an earlier run that stopped before recording it."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def path_for(self, outgoing: Outgoing) -> Path:
        """The file a message goes to (``slug_of``: a distinct name for every address)."""
        slug = slug_of(outgoing.recipient)
        return self.outbox / f"{outgoing.day.isoformat()}-{slug}.eml"

    async def send(self, outgoing: Outgoing) -> None:
        """Write the message file, unless this digest is in the outbox already."""
        try:
            write_new(self.path_for(outgoing), outgoing.data.decode("utf-8"))
        except OSError as exc:
            raise TransientFailure(
                f"cannot write to outbox {self.outbox}: {exc.strerror}", unreachable=True
            ) from None

    async def close(self) -> None:
        """Nothing to release."""

    @property
    def in_data(self) -> bool:
        """Never: a file is written in one step, which no cancellation can cut in two."""
        return False


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach the SMTP server; the password is only ever handed to aiosmtplib."""

    host: str
    port: int
    security: str  # ssl, starttls or none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    tls_context: ssl.SSLContext | None = None


class SmtpTransport:
    """One persistent SMTP connection, reused for many messages and reopened after a drop."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: aiosmtplib.SMTP | None = None
        self._secrets = _secret_forms(config.username, config.password)
        self._in_data = False

    @property
    def in_data(self) -> bool:
        """Whether DATA was sent for a message whose final reply has not come yet."""
        return self._in_data

    async def _connected(self) -> aiosmtplib.SMTP:
        """The open connection, or a new one (TLS as configured, certificates verified, AUTH)."""
        if self._client is not None and self._client.is_connected:
            return self._client
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.security == "ssl",
            start_tls=False,  # asked for below, once the server is known to offer it
            validate_certs=True,
            tls_context=cfg.tls_context,
            timeout=cfg.timeout,
        )
        where = f"SMTP server {cfg.host}:{cfg.port}"
        try:
            await client.connect()
            await client.ehlo()
            if cfg.security == "starttls":
                _require(client, "STARTTLS", where, "PAPERMAIL_SMTP_SECURITY")
                await client.starttls()
                await client.ehlo()
            if cfg.username:
                _require(client, "AUTH", where, "PAPERMAIL_SMTP_SECURITY and the port")
                await client.login(cfg.username, cfg.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            if 400 <= exc.code < 500:  # 454: a temporary failure, not the credentials
                raise RunFailure(
                    f"{where} cannot authenticate for now: {self._why(exc)}",
                    configuration=False,
                ) from None
            raise RunFailure(
                f"{where} refused AUTH for {cfg.username}: {self._why(exc)} "
                "(check PAPERMAIL_SMTP_USERNAME and PAPERMAIL_SMTP_PASSWORD)",
                configuration=True,
            ) from None
        except (RunFailure, asyncio.CancelledError):  # cancelled: the run stopped meanwhile
            client.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            if tls := _tls_failure(exc):
                raise RunFailure(
                    f"TLS with {where} failed: {one_line(str(tls))}", configuration=False
                ) from None
            raise TransientFailure(
                f"cannot connect to {where}: {self._why(exc)}", unreachable=True
            ) from None
        self._client = client
        return client

    async def send(self, outgoing: Outgoing) -> None:
        """MAIL, RCPT and DATA over the persistent connection, each failure classified.

        Cancelled (the run stopped), the connection is dropped: a command cut short leaves it in
        a state nobody knows. Before DATA that loses nothing: no message without its final dot.
        """
        _check_ascii(outgoing)
        client = await self._connected()
        try:
            await self._mail(client, outgoing)
        except asyncio.CancelledError:
            client.close()
            self._client = None
            raise
        finally:
            self._in_data = False

    async def _mail(self, client: aiosmtplib.SMTP, outgoing: Outgoing) -> None:
        """MAIL, RCPT and DATA for one message on an open connection."""
        try:
            await client.mail(outgoing.sender)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(client)
            if 500 <= exc.code < 600:
                raise RunFailure(
                    f"the server refused the sender {outgoing.sender}: {self._why(exc)} "
                    "(check PAPERMAIL_FROM_ADDRESS)",
                    configuration=True,
                ) from None
            raise _by_code(exc, "sender refused", self._secrets) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            raise TransientFailure(f"SMTP connection failed: {self._why(exc)}") from None
        try:
            await client.rcpt(outgoing.recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(client)
            raise _by_code(exc, "refused", self._secrets) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            raise TransientFailure(f"SMTP connection failed: {self._why(exc)}") from None
        self._in_data = True
        try:
            await client.data(outgoing.data)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(client)
            raise _by_code(exc, "message refused", self._secrets) from None
        except (aiosmtplib.SMTPException, OSError) as exc:  # a timeout, a closed or reset socket
            await self._drop()
            what = (
                f"no reply to DATA within {self.config.timeout:g}s"
                if isinstance(exc, aiosmtplib.SMTPTimeoutError)
                else f"connection lost in DATA ({self._why(exc)})"
            )
            raise UncertainDelivery(
                f"{what}; the server may have accepted {outgoing.message_id}"
            ) from None

    def _why(self, exc: BaseException) -> str:
        """``_reason``, with this connection's credentials cut out."""
        return _reason(exc, self._secrets)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        """After a refused command, RSET so the connection can carry the next message."""
        if not client.is_connected:
            await self._drop()
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self._drop()

    async def _drop(self) -> None:
        """Drop the connection without a goodbye (its state is unknown)."""
        await self._close(polite=False)

    async def close(self) -> None:
        """Say QUIT if still connected; forget the connection either way."""
        await self._close(polite=True)

    async def _close(self, *, polite: bool) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        protocol = client.protocol
        if polite and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        else:
            client.close()
        await _socket_closed(protocol, limit=min(self.config.timeout, 5.0))


async def _socket_closed(protocol: asyncio.BaseProtocol | None, *, limit: float) -> None:
    """Wait, briefly, until the socket is really closed.

    A TLS connection closes asynchronously (close_notify both ways); a run whose event loop ended
    first would leave the socket open until the garbage collector finds it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while getattr(protocol, "transport", None) is not None and loop.time() < deadline:
        await asyncio.sleep(0.01)


def _check_ascii(outgoing: Outgoing) -> None:
    """Addresses go out as ASCII (IDN domains as punycode, see ``pipeline.subscribers``); one
    that is not cannot be sent without SMTPUTF8, which papermail does not use."""
    if not outgoing.sender.isascii():  # the same for every recipient: the run's own failure
        raise RunFailure(
            f"the sender address {outgoing.sender} is not ASCII (papermail does not use "
            "SMTPUTF8; check PAPERMAIL_FROM_ADDRESS)",
            configuration=True,
        )
    if not outgoing.recipient.isascii():
        raise PermanentFailure(
            f"the recipient address {outgoing.recipient} is not ASCII (no SMTPUTF8)"
        )


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a connection failure (aiosmtplib wraps it), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _by_code(
    exc: aiosmtplib.SMTPResponseException, what: str, secrets: tuple[str, ...] = ()
) -> Exception:
    """5xx is permanent; everything else (4xx, 421) may succeed later."""
    if 500 <= exc.code < 600:
        return PermanentFailure(f"{what}: {_reason(exc, secrets)}")
    return TransientFailure(f"{what} for now: {_reason(exc, secrets)}")


def _reason(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """A short description of a failure that never includes credentials: a server that echoes
    what it was sent (the password, or AUTH PLAIN's base64 of it) has them cut out."""
    text = (
        f"{exc.code} {exc.message}"
        if isinstance(exc, aiosmtplib.SMTPResponseException)
        else str(exc)
    )
    return redact(text, secrets) or type(exc).__name__


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` on one line with every form of the secrets cut out, before and after the line is
    joined (a reply may split a password across its lines)."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    text = one_line(text)
    for secret in secrets:
        text = text.replace(one_line(secret), "[redacted]")
    return text


def _secret_forms(username: str | None, password: str | None) -> tuple[str, ...]:
    """The password as a server might echo it: as is, and base64 as AUTH PLAIN and LOGIN send it
    (longest first, so a whole AUTH PLAIN blob goes before the password inside it)."""
    if not password:
        return ()
    user = username or ""
    blobs = (f"\0{user}\0{password}", f"{user}\0{password}", password)
    forms = {
        password,
        quote(password, safe=""),
        quote(password),
        quote_plus(password),
        *(base64.b64encode(b.encode()).decode() for b in blobs),
    }
    return tuple(sorted(forms, key=len, reverse=True))


def _require(client: aiosmtplib.SMTP, extension: str, where: str, check: str) -> None:
    """A run failure (exit 78, no retries) unless the server offers ``extension`` (after EHLO)."""
    if not client.supports_extension(extension.lower()):
        raise RunFailure(f"{where} does not offer {extension} (check {check})", configuration=True)


# --- rate and retries ----------------------------------------------------------------------------


class RateLimiter:
    """At most ``rate`` messages per second across every worker: evenly spaced send slots."""

    def __init__(self, rate: float | None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = float("-inf")

    async def wait(self) -> None:
        """Return when the next message may leave (at once without a rate)."""
        if not self.interval:
            return
        now = self._clock.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._clock.async_sleep(slot - now)


class Outcome(enum.StrEnum):
    """How delivering one message ended."""

    SENT = "sent"
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    UNCERTAIN = "uncertain"
    STOPPED = "stopped"  # the run's own failure (RunFailure)
    HALTED = "halted"  # the run was told to stop before the message was handed over: not sent


@dataclass(frozen=True, slots=True)
class Attempted:
    """The outcome of delivering one message with retries."""

    outcome: Outcome
    attempts: int
    unreachable: bool = False
    detail: str = ""
    configuration: bool = False  # STOPPED by a setting (exit 78)


@dataclass(frozen=True, slots=True)
class Retry:
    """How to retry: attempts, backoff, and the injectable clock, jitter and rate limiter."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 120.0
    clock: Clock = SYSTEM_CLOCK
    jitter: Callable[[], float] = random.random
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(None))

    def delay(self, attempt: int) -> float:
        """Exponential backoff after ``attempt`` failed, with "equal jitter" (half fixed)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + self.jitter() * ceiling / 2


async def send_with_retries(
    transport: Transport,
    outgoing: Outgoing,
    retry: Retry,
    stop: asyncio.Event | None = None,
) -> Attempted:
    """Try up to ``retry.max_attempts`` times, backing off between transient failures.

    Once ``stop`` is set, no attempt starts (the backoff and the wait for a rate slot are cut
    short): the message is not sent (``HALTED``).
    """
    stop = stop or asyncio.Event()
    failure: TransientFailure | None = None
    for attempt in range(1, retry.max_attempts + 1):
        if retry.limiter.interval and not stop.is_set():
            await _pause(retry.limiter.wait(), stop)
        if stop.is_set():
            tried = f" (after {attempt - 1} attempts: {failure})" if failure else ""
            return Attempted(Outcome.HALTED, attempt - 1, detail=f"not sent{tried}")
        try:
            await transport.send(outgoing)
        except PermanentFailure as exc:
            return Attempted(Outcome.PERMANENT, attempt, detail=str(exc))
        except UncertainDelivery as exc:
            return Attempted(Outcome.UNCERTAIN, attempt, detail=str(exc))
        except RunFailure as exc:
            return Attempted(
                Outcome.STOPPED, attempt, detail=str(exc), configuration=exc.configuration
            )
        except TransientFailure as exc:
            failure = exc
            if attempt < retry.max_attempts:
                await _pause(retry.clock.async_sleep(retry.delay(attempt)), stop)
            continue
        return Attempted(Outcome.SENT, attempt)
    assert failure is not None  # every attempt failed transiently
    detail = f"{failure} (after {retry.max_attempts} attempts)"
    return Attempted(
        Outcome.TRANSIENT, retry.max_attempts, unreachable=failure.unreachable, detail=detail
    )


async def _pause(sleeping: Awaitable[None], stop: asyncio.Event) -> None:
    """Wait for ``sleeping`` to end, or for ``stop``, whichever comes first."""
    waits = {asyncio.ensure_future(sleeping), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def transport_factory(
    settings: Settings, *, tls_context: ssl.SSLContext | None = None
) -> Callable[[], Transport]:
    """SMTP when ``PAPERMAIL_SMTP_HOST`` is set, the outbox otherwise (SPEC's embedded default).

    ``tls_context`` replaces the system's trust store (tests pass one that trusts a test CA).
    """
    host = settings.smtp_host
    if not host:
        outbox = settings.outbox
        return lambda: OutboxTransport(outbox)
    config = smtp_config(settings, tls_context=tls_context)
    return lambda: SmtpTransport(config)


async def send_once(config: SmtpConfig, outgoing: Outgoing) -> str:
    """Send one message on a connection of its own, without retries, and return the server's
    reply to the final dot (``250 2.0.0 Ok: queued as …``). For ``papermail send-test``: a
    failure is raised classified as in ``SmtpTransport.send``, so it reads the same.
    """
    transport = SmtpTransport(config)
    try:
        client = await transport._connected()
        try:
            await client.mail(outgoing.sender)
            await client.rcpt(outgoing.recipient)
            reply = await client.data(outgoing.data)
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc, "refused", transport._secrets) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientFailure(
                f"SMTP connection failed: {transport._why(exc)} (the server may "
                "have accepted the message: look before sending again)"
            ) from None
        return redact(f"{reply.code} {reply.message}", transport._secrets)
    finally:
        await transport.close()


def smtp_config(settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> SmtpConfig:
    """The SMTP connection settings (``PAPERMAIL_SMTP_HOST`` must be set)."""
    if not settings.smtp_host:
        raise ValueError("PAPERMAIL_SMTP_HOST is not set")
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.security,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout=settings.smtp_timeout,
        tls_context=tls_context,
    )
