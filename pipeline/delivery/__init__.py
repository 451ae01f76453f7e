"""Delivery: a rendered email → MIME wire bytes (DKIM-signed when configured) → SMTP or an ``.eml``.

* ``message``: the wire bytes of one email (headers, quoted-printable parts, DKIM);
* ``transport``: SMTP over persistent connections (aiosmtplib) or the outbox, failures classified
  (transient, permanent, uncertain), retries with backoff, the rate limit.
"""

from pipeline.delivery.message import (
    NEWSLETTER,
    DkimSigner,
    Outgoing,
    build_message,
    compose,
    dkim_signer,
    message_id_for,
)
from pipeline.delivery.transport import (
    Attempted,
    OutboxTransport,
    Outcome,
    PermanentFailure,
    RateLimiter,
    Retry,
    RunFailure,
    SmtpConfig,
    SmtpTransport,
    TransientFailure,
    Transport,
    UncertainDelivery,
    send_with_retries,
    transport_factory,
)

__all__ = [
    "NEWSLETTER",
    "Attempted",
    "DkimSigner",
    "OutboxTransport",
    "Outcome",
    "Outgoing",
    "PermanentFailure",
    "RateLimiter",
    "Retry",
    "RunFailure",
    "SmtpConfig",
    "SmtpTransport",
    "TransientFailure",
    "Transport",
    "UncertainDelivery",
    "build_message",
    "compose",
    "dkim_signer",
    "message_id_for",
    "send_with_retries",
    "transport_factory",
]
