"""The message: a rendered email → MIME wire bytes (CRLF), DKIM-signed when configured.

The only module that imports dkimpy. Headers are folded and RFC 2047-encoded by the email package,
or written directly where that is what it would write (tests pin the agreement); both parts are
quoted-printable, the pieces of HTML every email shares encoded once per run.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

import dkim

from pipeline.errors import SettingsError
from pipeline.models import RenderedEmail
from pipeline.quoted_printable import encode_body
from pipeline.settings import Settings
from pipeline.text import one_line
from pipeline.unsubscribe import unsubscribe_links

NEWSLETTER = "papermail"
#: Headers the DKIM signature covers; RFC 8058 asks for both List-Unsubscribe headers.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


# --- the message ---------------------------------------------------------------------------------


def message_id_for(email: str, day: date, from_address: str) -> str:
    """A Message-ID that is the same for the same subscriber and day (dedupe at the receiver)."""
    digest = hashlib.sha256(f"{email.lower()}|{day.isoformat()}".encode()).hexdigest()[:20]
    return f"<papermail.{day.isoformat()}.{digest}@{_domain(from_address)}>"


def compose(
    rendered: RenderedEmail,
    *,
    from_address: str,
    from_name: str = NEWSLETTER,
    unsubscribe_url: str | None = None,
    signer: DkimSigner | None = None,
    now: datetime | None = None,
) -> Outgoing:
    """The multipart/alternative message (text, then HTML) as it goes on the wire (CRLF).

    Built straight to bytes, because the email package's object model costs milliseconds a
    message: a header is written as is where the email package would not change it, a non-ASCII
    subject as encoded words, anything else folded by the email package's SMTP policy; both parts
    are quoted-printable (C-speed ``binascii``), so lines stay within 76 characters (78 where it
    encodes a tab ending a line). Every header value is single-lined first, so upstream text (a
    paper title in the subject, a subscriber's name) can never start a header of its own. The
    boundary starts with ``=_``, which quoted-printable text can never contain.
    """
    if not from_address.isascii():  # the same for every message: a setting, not a subscriber
        raise SettingsError(
            f"PAPERMAIL_FROM_ADDRESS {from_address} is not ASCII (papermail does not use "
            "SMTPUTF8; write an internationalised domain as punycode, xn--…)"
        )
    subscriber = rendered.digest.subscriber
    message_id = message_id_for(subscriber.email, rendered.digest.day, from_address)
    boundary = "=_papermail_" + message_id[1:].partition("@")[0].rpartition(".")[2]
    headers = [
        ("From", _mailbox(one_line(from_name), from_address)),
        ("To", _mailbox(one_line(subscriber.name or ""), subscriber.email)),
        ("Subject", one_line(rendered.subject)),
        ("Date", format_datetime(now or datetime.now(UTC))),
        ("Message-ID", message_id),
        ("List-Id", f"{NEWSLETTER} digest <digest.{_domain(from_address)}>"),
        *_unsubscribe_headers(subscriber.email, from_address, unsubscribe_url),
        ("MIME-Version", "1.0"),
    ]
    head = b"".join(_header(name, value) for name, value in headers) + _multipart(boundary)
    delimiter = f"--{boundary}\r\n".encode()
    body = b"".join(
        (
            delimiter,
            _qp_part("plain", rendered.text),
            delimiter,
            _qp_part("html", rendered.html, rendered.html_parts),
            f"--{boundary}--\r\n".encode(),
        )
    )
    data = head + b"\r\n" + body
    if signer is not None:
        data = signer.sign(data)
    return Outgoing(subscriber.email, from_address, rendered.digest.day, message_id, data)


#: A header value the email package would write back unchanged: printable ASCII words separated
#: by single spaces, nothing it would quote, decode or fold (no quotes, backslashes, comments or
#: encoded words).
_MAX_LINE = 78  # policy.SMTP.max_line_length: RFC 5322's "SHOULD" for a header line
_PLAIN_VALUE = re.compile(r"(?:(?!=\?)[!#-'*-\[\]-~])+(?: (?:(?!=\?)[!#-'*-\[\]-~])+)*")


def _header(name: str, value: str) -> bytes:
    """One header line: as is when that is what the email package would write, else folded and
    (where not ASCII) RFC 2047-encoded by it. The shortcut saves a tenth of a millisecond for
    each of To, Date and Message-ID; a test checks it agrees with the email package."""
    if len(name) + len(value) <= _MAX_LINE - 2 and _PLAIN_VALUE.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    if name == "List-Unsubscribe" and value.isascii():
        return _link_list(name, value)
    if name == "Subject" and not value.isascii():
        return _encoded_words(name, value)
    return _folded(name, value)


def _link_list(name: str, value: str) -> bytes:
    """A structured list of ``<link>``s (List-Unsubscribe), folded only between links.

    The email package would fold a link longer than a line into RFC 2047 encoded words, which no
    receiver decodes in this header (the unsubscribe button would be lost); a link is ASCII
    (percent-encoded, punycode), and one longer than 78 characters keeps its own line, well
    within RFC 5322's 998.
    """
    lines = [f"{name}:"]
    for link in value.split(", "):
        piece = f" {link}"
        if len(lines[-1]) + len(piece) + 1 > _MAX_LINE and lines[-1] != f"{name}:":
            lines[-1] += ","
            lines.append(piece)
        else:
            lines[-1] += ("," if lines[-1] != f"{name}:" else "") + piece
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


#: UTF-8 bytes per encoded word: ``=?utf-8?b?`` + 52 base64 characters + ``?=`` is 64, so even
#: the first line (``Subject: `` and a word) stays under 78 characters.
_WORD_BYTES = 39


def _encoded_words(name: str, value: str) -> bytes:
    """An unstructured header as RFC 2047 base64 words, one per line, cut between characters.

    Subjects are nearly all different and nearly all hold a "·" or "—"; the email package takes a
    tenth of a millisecond to fold each, this a few microseconds, and a reader decodes the same
    text (a test checks, through the email package's parser).
    """
    words: list[bytes] = []
    chunk = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(bytes(chunk))
            chunk.clear()
        chunk += encoded
    words.append(bytes(chunk))
    lines = b"\r\n ".join(b"=?utf-8?b?" + base64.b64encode(word) + b"?=" for word in words)
    return name.encode("ascii") + b": " + lines + b"\r\n"


@lru_cache(maxsize=4096)
def _folded(name: str, value: str) -> bytes:
    """``_header`` by the email package; cached, since From and List-Id repeat."""
    smtp = policy.SMTP
    return smtp.fold_binary(name, smtp.header_factory(name, value))


def _multipart(boundary: str) -> bytes:
    """The Content-Type header, folded as the email package folds it (a test checks): the
    boundary is ours, made of letters, digits, ``=`` and ``_``."""
    return f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode("ascii")


def _unsubscribe_headers(
    email: str, from_address: str, unsubscribe_url: str | None
) -> list[tuple[str, str]]:
    """List-Unsubscribe (mailto, and the https link first when configured) and RFC 8058's
    List-Unsubscribe-Post, which only an https link may have."""
    links = [f"<{link}>" for link in unsubscribe_links(email, from_address, unsubscribe_url)]
    headers = [("List-Unsubscribe", ", ".join(links))]
    if links[0].startswith("<https://"):
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def _qp_part(subtype: str, content: str, parts: Sequence[str] = ()) -> bytes:
    """One ``text/<subtype>`` body part, UTF-8, quoted-printable, CRLF line ends.

    ``parts`` (joined, ``content``) lets the pieces every email shares be encoded once per run.
    """
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    encoded = encode_body(content, parts)
    return head.encode() + encoded + b"\r\n"  # that CRLF belongs to the next boundary line


def build_message(
    rendered: RenderedEmail,
    *,
    from_address: str,
    unsubscribe_url: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """What ``compose`` sends, parsed back into a message object (to inspect it, not to send)."""
    outgoing = compose(
        rendered, from_address=from_address, unsubscribe_url=unsubscribe_url, now=now
    )
    message = message_from_bytes(outgoing.data, policy=policy.default)
    if not isinstance(message, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise TypeError("the email package did not build an EmailMessage")
    return message


#: A display name and an address that need no quoting: atext words, a dot-atom@dot-atom address.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_MAILBOX = re.compile(
    rf"(?:{_ATEXT}(?: {_ATEXT})*)?\0{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*"
)


def _mailbox(name: str, address: str) -> str:
    """``Name <address>`` (or the bare address), quoted where RFC 5322 needs it.

    The email package's ``Address`` does the quoting, at a tenth of a millisecond; a name and an
    address that need none are written directly (a test checks the two agree)."""
    if _PLAIN_MAILBOX.fullmatch(f"{name}\0{address}"):
        return f"{name} <{address}>" if name else address
    return str(Address(name, addr_spec=address))


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for the wire: envelope, Message-ID and the exact bytes (CRLF)."""

    recipient: str
    sender: str
    day: date
    message_id: str
    data: bytes = field(repr=False)


class DkimSigner:
    """Signs outgoing messages with one RSA key (relaxed/relaxed canonicalization)."""

    def __init__(self, *, selector: str, domain: str, private_key: bytes) -> None:
        self.selector = selector
        self.domain = domain
        self._key = private_key

    def __repr__(self) -> str:
        return f"DkimSigner(selector={self.selector!r}, domain={self.domain!r})"

    def sign(self, data: bytes) -> bytes:
        """``data`` with a DKIM-Signature header in front."""
        try:
            header: bytes = dkim.sign(
                data,
                self.selector.encode(),
                self.domain.encode(),
                self._key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=list(SIGNED_HEADERS),
            )
        except dkim.DKIMException as exc:
            raise SettingsError(
                f"PAPERMAIL_DKIM_KEY_FILE: cannot sign with this key: {exc}"
            ) from None
        return header + data


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer the settings ask for (None without DKIM settings); checks the key at once."""
    key_file, selector, domain = (
        settings.dkim_key_file,
        settings.dkim_selector,
        settings.dkim_domain,
    )
    if not (key_file and selector and domain):
        return None
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"PAPERMAIL_DKIM_KEY_FILE: cannot read {key_file}: {exc.strerror}"
        ) from None
    signer = DkimSigner(selector=selector, domain=domain, private_key=key)
    signer.sign(b"From: check@invalid\r\nSubject: key check\r\n\r\nkey check\r\n")
    return signer
