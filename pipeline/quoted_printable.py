"""Quoted-printable as a body part goes on the wire: UTF-8, CRLF line ends, 76-character lines.

Shared by the delivery stage, which sends these bytes, and the renderer's size guard, which
counts them (Gmail clips the HTML by its size as transmitted), so the two cannot disagree.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from functools import lru_cache


def encode(text: str) -> bytes:
    """Quoted-printable, UTF-8, CRLF line ends (``binascii``: C speed, 76-character lines)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(lines, istext=True).replace(b"\n", b"\r\n")


def encode_body(content: str, parts: Sequence[str] = ()) -> bytes:
    """The encoded body of a part holding ``content``: from its ``parts`` (``content`` cut into
    pieces that many emails share) when there are any, else from ``content`` itself."""
    return encode_joined(parts) if parts and "\r" not in content else encode(content)


#: Parts at least this long are shared by many emails (layout, paper cards); shorter ones (values,
#: ranks) are encoded together with their neighbours. Both are kept encoded, since the runs of
#: short ones repeat too (a rank, a reason chip).
SHARED_PART = 256
_encode_cached = lru_cache(maxsize=16384)(encode)


def encode_joined(parts: Sequence[str]) -> bytes:
    """``encode`` of the parts joined, from the cached encodings of its pieces.

    Encoded pieces are joined by a soft line break (``=`` CRLF) unless one ends a line, so the
    decoded text is exactly the parts joined; each piece keeps ``binascii``'s line lengths.
    """
    chunks: list[bytes] = []
    short: list[str] = []
    for part in parts:
        if len(part) < SHARED_PART:
            short.append(part)
            continue
        if short:
            chunks.append(_encode_cached("".join(short)))
            short.clear()
        chunks.append(_encode_cached(part))
    if short:
        chunks.append(_encode_cached("".join(short)))
    encoded = [c for c in chunks if c]
    out = [c if c.endswith(b"\r\n") else c + b"=\r\n" for c in encoded[:-1]]
    out.extend(encoded[-1:])  # the text ends there: no soft break after it
    return b"".join(out)
