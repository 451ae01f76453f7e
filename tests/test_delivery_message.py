"""The message itself: headers, encoding, injection-proofing, line limits, DKIM; rate, backoff."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import random
from datetime import UTC, date, datetime
from email import errors, message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import delivery
from pipeline.clock import Clock
from pipeline.delivery import message
from pipeline.errors import SettingsError
from pipeline.models import Digest, RenderedEmail, Subscriber, Topic
from pipeline.rendering import Renderer
from pipeline.settings import DEFAULT_TEMPLATES, from_address_warning, load_settings
from pipeline.text import one_line

DAY = date(2026, 1, 1)
FROM = "digest@papers.example.org"


def rendered(
    *,
    email: str = "ada@example.org",
    name: str | None = "Ada Lovelace",
    subject: str = "papermail · 1 Jan 2026: 3 papers — Grokking",
    html: str = "<p>Hello</p>",
    text: str = "Hello",
    day: date = DAY,
) -> RenderedEmail:
    """A rendered email for one subscriber, with the given parts."""
    subscriber = Subscriber(email=email, name=name, topics=(Topic("T", ("t",)),))
    return RenderedEmail(Digest(subscriber, day, ()), subject, html, text)


def wire(
    email: RenderedEmail, *, signer: delivery.DkimSigner | None = None, **options: Any
) -> bytes:
    """The bytes that go on the wire for ``email``."""
    return delivery.compose(email, from_address=FROM, signer=signer, **options).data


def parsed(data: bytes) -> EmailMessage:
    """Parse wire bytes back into a message."""
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_headers_and_parts() -> None:
    """From, To with the name, Subject, Date, List-Id, mailto unsubscribe; text then HTML."""
    now = datetime(2026, 1, 2, 6, 15, tzinfo=UTC)
    msg = parsed(wire(rendered(), now=now))
    assert msg["From"] == f"papermail <{FROM}>"
    assert msg["To"] == "Ada Lovelace <ada@example.org>"
    assert msg["Subject"] == "papermail · 1 Jan 2026: 3 papers — Grokking"
    assert msg["Date"] == "Fri, 02 Jan 2026 06:15:00 +0000"
    assert msg["List-Id"] == "papermail digest <digest.papers.example.org>"
    assert msg["List-Unsubscribe"] == f"<mailto:{FROM}?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None, "one-click needs an https link"
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


def test_https_unsubscribe_adds_one_click_post() -> None:
    """With PAPERMAIL_UNSUBSCRIBE_URL the https link comes first, with RFC 8058's Post header."""
    msg = delivery.build_message(
        rendered(email="a+b@example.org"),
        from_address=FROM,
        unsubscribe_url="https://papers.example.org/unsub?e={email}",
    )
    assert msg["List-Unsubscribe"] == (
        "<https://papers.example.org/unsub?e=a%2Bb@example.org>, "
        f"<mailto:{FROM}?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_message_id_is_stable_per_subscriber_and_day() -> None:
    """The same subscriber and day give the same Message-ID; another day or reader another."""
    first = delivery.build_message(rendered(), from_address=FROM)["Message-ID"]
    again = delivery.build_message(rendered(), from_address=FROM)["Message-ID"]
    other_day = delivery.build_message(rendered(day=date(2026, 1, 2)), from_address=FROM)
    other_reader = delivery.build_message(rendered(email="bob@example.org"), from_address=FROM)
    assert first == again
    assert first.endswith("@papers.example.org>")
    assert len({first, other_day["Message-ID"], other_reader["Message-ID"]}) == 3


def test_non_ascii_name_and_subject_are_encoded() -> None:
    """Names and subjects outside ASCII are RFC 2047 encoded on the wire and read back intact."""
    data = wire(rendered(name="Ådá Lövelace, Countess", subject="papermail · Über Grokking ✓"))
    assert data.isascii()
    assert b"=?utf-8?" in data
    back = parsed(data)
    assert back["To"].addresses[0].display_name == "Ådá Lövelace, Countess"
    assert back["Subject"] == "papermail · Über Grokking ✓"


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\x0b", "\x85"])
def test_upstream_text_cannot_inject_a_header(breaker: str) -> None:
    """A line break of any kind in a title or a name never starts a header of its own."""
    back = parsed(
        wire(
            rendered(
                name=f"Eve{breaker}Bcc: spy@evil.example",
                subject=f"Nice paper{breaker}Bcc: spy@evil.example{breaker}{breaker}body",
            )
        )
    )
    assert back["Bcc"] is None
    assert len(back.get_all("Subject") or []) == 1
    assert "spy@evil.example" in back["Subject"], "kept as text, on one line"
    assert [a.addr_spec for a in back["To"].addresses] == ["ada@example.org"]


HEADER_VALUES = [
    ("To", "Ada Lovelace <ada@example.org>"),
    ("To", "ada@example.org"),
    ("To", '"A. Lovelace" <ada@example.org>'),
    ("To", '"Lovelace, Ada" <ada@example.org>'),
    ("To", '"Ada \\"the countess\\"" <ada@example.org>'),
    ("To", "Ada (the countess) <ada@example.org>"),
    ("To", '"Ada" <ada@example.org>'),
    ("To", "(Ada) <ada@example.org>"),
    ("To", "Ada Lovelace <ada.byron-king+digest@very-long-subdomain.mathematics.example.org>"),
    ("Subject", "papermail: 3 papers, Grokking"),
    ("Subject", "Attention Is All You Need =?utf-8?q?x?= again"),
    ("Subject", "=?utf-8?q?Grokking?="),
    ("Subject", "\\(backslash) first"),
    ("Subject", "A title with \\ a backslash and 'quotes' and \"double\" ones"),
    ("Subject", "A (parenthesised) title; with: punctuation <and> brackets @ 100%"),
    ("Subject", "x" * 69),
    ("Subject", "x" * 70),
    ("Subject", "papermail " + "word " * 20),
    ("Date", "Fri, 02 Jan 2026 06:15:00 +0000"),
    ("Message-ID", "<papermail.2026-01-01.0123456789abcdef0123@papers.example.org>"),
    ("List-Unsubscribe", "<https://example.org/u?e=ada%40example.org&x=1>"),
    ("List-Id", "papermail digest <digest.papers.example.org>"),
]


@pytest.mark.parametrize(("name", "value"), HEADER_VALUES)
def test_headers_written_directly_agree_with_the_email_package(name: str, value: str) -> None:
    """A header ``compose`` writes as is, without the email package, is what that would write."""
    expected = policy.SMTP.fold_binary(name, policy.SMTP.header_factory(name, value))
    assert message._header(name, value) == expected


def test_the_content_type_is_folded_as_the_email_package_folds_it() -> None:
    """compose writes the multipart Content-Type itself; the email package would write the same."""
    boundary = "=_papermail_0123456789abcdef0123"
    value = f'multipart/alternative; boundary="{boundary}"'
    expected = policy.SMTP.fold_binary(
        "Content-Type", policy.SMTP.header_factory("Content-Type", value)
    )
    assert message._multipart(boundary) == expected
    sent = parsed(wire(rendered()))
    assert sent.is_multipart()
    assert str(sent.get_boundary()).startswith("=_papermail_")


@pytest.mark.parametrize(
    "subject",
    [
        "papermail · 1 Jan 2026: 3 papers — Grokking",
        "papermail · 1 Jan 2026: 10 papers — " + " ".join(["Ünïcödé title"] * 12),
        " ".join(["数学"] * 40),
        "🦜 emoji 🧪 in a title 🚀" * 5,
        "e\u0301 combining accents and =?utf-8?q?look-alikes?= — " + "x" * 120,
        "é",
    ],
)
def test_a_non_ascii_subject_decodes_to_exactly_the_subject(subject: str) -> None:
    """Encoded words, cut between characters, give back the subject; no line over 78."""
    data = wire(rendered(subject=subject))
    assert parsed(data)["Subject"] == subject
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("Ada Lovelace", "ada@example.org"),
        ("", "ada@example.org"),
        ("papermail", "digest@papers.example.org"),
        ("A. Lovelace", "ada@example.org"),
        ("Lovelace, Ada", "ada@example.org"),
        ('Ada "the countess"', "ada@example.org"),
        ("Ada (the countess)", "ada@example.org"),
        ("Ada  Lovelace", "ada@example.org"),
        ("Ada Lovelace", "ada.byron+digest@mail.example.org"),
        ("Ada Lovelace", '"ada lovelace"@example.org'),
        ("Ada Lovelace", "ada..byron@example.org"),
        ("Ada Lovelace", "ada@[127.0.0.1]"),
        ("Ada Lovelace", "ada@example.org."),
        ("Ada Lovelace", "@example.org"),
        ("Ada Lovelace", "ada@"),
        ("Ada\0Lovelace", "ada@example.org"),
        ("Ada Lovelace", "ada\0x@example.org"),
    ],
)
def test_mailboxes_written_directly_agree_with_the_email_package(name: str, address: str) -> None:
    """A From or To that ``compose`` writes itself is what the email package's quoting gives."""
    try:
        expected = str(Address(name, addr_spec=address))
    except (ValueError, IndexError, errors.HeaderParseError) as exc:
        with pytest.raises(type(exc)):
            message._mailbox(name, address)
    else:
        assert message._mailbox(name, address) == expected


def random_html_parts(rng: random.Random) -> list[str]:
    """HTML in pieces as the stencils hand it over: long shared pieces and short values, with
    what quoted-printable must get right at a piece's edge (spaces, tabs, ``=``, line ends,
    non-ASCII, a leading dot, long lines)."""
    alphabet = ["a", "b", " ", "\t", "=", "\n", ".", "é", "—", "<", ">", '"', "x" * 90]
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 3, 40, 300, 900])))
        for _ in range(rng.randint(1, 12))
    ]


@pytest.mark.parametrize("seed", range(40))
def test_html_sent_from_parts_decodes_to_exactly_the_html(seed: int) -> None:
    """The HTML part encoded piece by piece (shared pieces once a run) is the HTML, byte for byte,
    and every encoded line stays within quoted-printable's limit."""
    parts = random_html_parts(random.Random(seed))
    html = "".join(parts)
    email = dataclasses.replace(rendered(html=html), html_parts=tuple(parts))
    data = wire(email)
    html_part = parsed(data).get_body(("html",))
    assert html_part is not None
    decoded = html_part.get_payload(decode=True).decode("utf-8")
    assert decoded.replace("\r\n", "\n") == html  # a line break goes out as CRLF
    # 76, and 78 where binascii writes a tab ending a line as =09 past the limit (CPython's)
    assert max(len(line) for line in data.split(b"\r\n")) <= 78


def test_every_line_fits_smtp_limits() -> None:
    """A 5,000-character HTML line and text line still go out in lines far below 998 octets."""
    long_html = "<p>" + "x" * 5000 + "</p>"
    long_text = "y" * 5000 + "\n.\n.leading dot\n"
    data = wire(rendered(html=long_html, text=long_text))
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    back = parsed(data)
    text = back.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().startswith("y" * 5000)


# --- DKIM ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    """A 2048-bit RSA key: the private key as PEM, the public key's DNS TXT record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dkim_settings(tmp_path: Path, key: bytes) -> delivery.DkimSigner | None:
    """The signer built from PAPERMAIL_DKIM_* settings with ``key`` in a file."""
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(key)
    settings = load_settings(
        dkim_key_file=key_file, dkim_selector="pm2026", dkim_domain="papers.example.org"
    )
    return delivery.dkim_signer(settings)


def test_a_signed_message_verifies_against_the_public_key(
    env: Path, tmp_path: Path, key_pair: tuple[bytes, bytes]
) -> None:
    """dkimpy verifies the signature with the test key (looked up by a function, not DNS)."""
    private, txt = key_pair
    signer = dkim_settings(tmp_path, private)
    assert signer is not None
    data = wire(rendered(), signer=signer, unsubscribe_url="https://papers.example.org/u/{email}")
    assert data.startswith(b"DKIM-Signature: ")
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return txt

    assert dkim.verify(data, dnsfunc=dns)
    assert looked_up == [b"pm2026._domainkey.papers.example.org."]
    signature = parsed(data)["DKIM-Signature"].replace(" ", "").lower()
    assert "list-unsubscribe:list-unsubscribe-post" in signature, "RFC 8058 asks for both"
    tampered = data.replace(b"Hello", b"Jello")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_settings_must_be_complete_and_the_key_usable(env: Path, tmp_path: Path) -> None:
    """Half the DKIM settings, a missing key file or a key that is no key: exit 78 messages."""
    with pytest.raises(SettingsError, match="PAPERMAIL_DKIM_SELECTOR"):
        load_settings(dkim_key_file=tmp_path / "k.pem")
    with pytest.raises(SettingsError, match="cannot read"):
        delivery.dkim_signer(
            load_settings(dkim_key_file=tmp_path / "k.pem", dkim_selector="s", dkim_domain="d.org")
        )
    with pytest.raises(SettingsError, match="cannot sign with this key"):
        dkim_settings(
            tmp_path, b"-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----\n"
        )
    assert delivery.dkim_signer(load_settings()) is None


# --- rate and backoff ----------------------------------------------------------------------------


def test_rate_limiter_spaces_slots_evenly() -> None:
    """At 4 messages/s, five immediate requests leave at 0, 0.25, 0.5, 0.75 and 1.0 s."""
    now = [0.0]
    leaving: list[float] = []

    def advance(seconds: float) -> None:
        now[0] += seconds

    async def five() -> None:
        clock = Clock.waiting_with(advance, monotonic=lambda: now[0])
        limiter = delivery.RateLimiter(4, clock=clock)
        for _ in range(5):
            await limiter.wait()
            leaving.append(now[0])

    asyncio.run(five())
    assert leaving == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    """Each wait is between half and all of 2, 4, 8 … seconds, never above the ceiling."""
    low = delivery.Retry(jitter=lambda: 0.0, max_delay=20.0)
    high = delivery.Retry(jitter=lambda: 1.0, max_delay=20.0)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert [high.delay(n) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 16.0, 20.0]


def test_the_unsubscribe_link_in_header_and_body_is_the_same_encoded_link() -> None:
    """``ann+papers@`` reaches the server as itself (%2B), in the header and in both parts."""
    ann = Subscriber(email="ann+papers@example.org", topics=(Topic("Grokking", ("grokking",)),))
    url = "https://papers.example.org/unsub?e={email}"
    rendered = Renderer(DEFAULT_TEMPLATES, unsubscribe_url=url).render(Digest(ann, DAY, ()))
    msg = message.build_message(rendered, from_address=FROM, unsubscribe_url=url)
    link = "https://papers.example.org/unsub?e=ann%2Bpapers@example.org"
    assert msg["List-Unsubscribe"].strip().startswith(f"<{link}>")
    assert link in rendered.text
    assert f'href="{link}"' in rendered.html


@pytest.mark.parametrize(
    ("host", "address", "warns"),
    [
        ("smtp.example.org", "papermail@localhost", True),
        ("smtp.example.org", "papers@example.org", False),
        (None, "papermail@localhost", False),  # the outbox: nothing leaves the machine
    ],
)
def test_a_localhost_from_address_with_a_real_smtp_host_is_warned_about(
    host: str | None, address: str, warns: bool
) -> None:
    """Receivers score a From at localhost as spam: the run says so at its start."""
    settings = load_settings(smtp_host=host, from_address=address)
    warning = from_address_warning(settings)
    assert (warning is not None) is warns
    if warning:
        assert "PAPERMAIL_FROM_ADDRESS" in warning


@pytest.mark.parametrize(
    ("email", "url"),
    [
        (
            "firstname.lastname+papers@department.university.example.edu",
            "https://newsletter.lab.example.org/papermail/unsubscribe?address={email}",
        ),
        ("ann@example.org", None),  # the mailto alone, from a long From address below
    ],
)
def test_a_long_list_unsubscribe_is_folded_between_links_never_encoded(
    email: str, url: str | None
) -> None:
    """Receivers do not decode RFC 2047 words in List-Unsubscribe: however long the links, the
    header is the links as written (read here with compat32, which decodes nothing), each line
    within 998 characters."""
    sender = "papermail-digest@research-group.cs.university.example.edu"
    data = delivery.compose(rendered(email=email), from_address=sender, unsubscribe_url=url).data
    raw = message_from_bytes(data)  # compat32: the header exactly as sent, unfolded
    value = " ".join(str(raw["List-Unsubscribe"]).split())
    assert "=?" not in value
    expected = [f"<mailto:{sender}?subject=unsubscribe>"]
    if url:
        expected.insert(0, "<" + url.format(email=email.replace("+", "%2B")) + ">")
    assert value == ", ".join(expected)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


@settings(max_examples=150, deadline=None)
@given(
    name=st.none() | st.text(max_size=300),
    subject=st.text(max_size=600),
    local=st.from_regex(r"[a-z0-9]{1,10}(?:[.+_=-][a-z0-9]{1,10}){0,3}", fullmatch=True),
    from_name=st.text(max_size=80),
)
def test_any_upstream_name_and_subject_compose_to_clean_headers(
    name: str | None, subject: str, local: str, from_name: str
) -> None:
    """Whatever the subscriber's name, the subject (a paper's title) or the From name: the message
    is ASCII, parses without defects, has exactly the headers papermail writes (one each), every
    line within SMTP's 998, and the subject reads back as the subject on one line."""
    email = f"{local}@example.org"
    data = delivery.compose(
        rendered(email=email, name=name, subject=subject),
        from_address=FROM,
        from_name=from_name,
    ).data
    assert data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    back = parsed(data)
    assert not back.defects
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    names = [line.split(":", 1)[0] for line in head.split("\r\n") if line[:1] not in (" ", "\t")]
    assert sorted(names) == sorted(set(names)), "each header once"
    assert set(names) <= {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
        "Content-Type",
    }
    assert back["Subject"] == one_line(subject)
    assert [a.addr_spec for a in back["To"].addresses] == [email]
