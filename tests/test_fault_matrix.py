"""Issue 12's fault matrix: each fault, a run and a rerun, and the deliveries counted per recipient.

The servers are real and local: ``tests.rawsmtp`` for the replies aiosmtpd cannot give (a refused
sender, 421 mid-session, a hang-up after the final dot, no reply to it) and aiosmtpd
(``tests.faults``) for the rest. After each run and rerun: no recipient has a message twice,
and every recipient has one, except the digests the ledger lists as uncertain.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.delivery import (
    OutboxTransport,
    Outgoing,
    PermanentFailure,
    SmtpConfig,
    SmtpTransport,
)
from pipeline.files import write_new
from pipeline.models import slug_of
from pipeline.sources.archive import save_day
from pipeline.sources.sample import SAMPLE_DAY
from tests.faults import faulty_server, sample_day, write_subscribers
from tests.rawsmtp import HANG_UP, RCPT_421, REFUSE_421, SILENCE, RawServer, raw_smtp_server

DAY = SAMPLE_DAY.isoformat()
READERS = [f"m{n}@example.org" for n in range(5)]


@pytest.fixture
def home(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Five subscribers and the archived sample day; two SMTP connections."""
    save_day(env / "var", sample_day())
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(write_subscribers(env / "subs", READERS)))
    monkeypatch.setenv("PAPERMAIL_SMTP_CONCURRENCY", "2")
    return env


@pytest.fixture
def raw(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RawServer]:
    """The raw SMTP server, with the settings pointed at it."""
    with raw_smtp_server() as server:
        monkeypatch.setenv("PAPERMAIL_SMTP_HOST", server.host)
        monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(server.port))
        monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
        yield server


def run(*args: str) -> int:
    """``papermail run`` for the sample day; backoff waits return at once."""
    return main(["run", "--date", DAY, *args], sleep=lambda _s: None)


def ledger(home: Path) -> dict[str, tuple[str, str]]:
    """Each recipient's (state, detail) for the sample day (none when no run made a ledger)."""
    if not (home / "var" / "ledger.sqlite3").exists():
        return {}
    with closing(sqlite3.connect(home / "var" / "ledger.sqlite3")) as db:
        rows = db.execute("SELECT email, state, detail FROM digests WHERE day = ?", (DAY,))
        return {email: (state, detail) for email, state, detail in rows}


def newest_report(home: Path) -> dict[str, object]:
    """The newest run report."""
    data: dict[str, object] = json.loads(max((home / "var" / "reports").glob("*.json")).read_text())
    return data


def never_twice_never_lost(home: Path, received: dict[str, int]) -> None:
    """No recipient has a message twice; each has one unless the ledger says uncertain."""
    states = ledger(home)
    assert all(received.get(r, 0) <= 1 for r in READERS), received
    lost = [r for r in READERS if not received.get(r) and states[r][0] != "uncertain"]
    assert lost == []


@pytest.mark.parametrize(
    "case",
    [
        (HANG_UP, 75, True),  # the server read the message and hung up: it may have it
        (SILENCE, 75, True),  # no reply to the final dot within the timeout
        (REFUSE_421, 0, False),  # 421 to the final dot: not accepted, retried
        (RCPT_421, 0, False),  # 421 mid-session: reconnect, retried
    ],
)
def test_each_fault_then_a_rerun_never_repeats_and_never_loses(
    home: Path, raw: RawServer, monkeypatch: pytest.MonkeyPatch, case: tuple[str, int, bool]
) -> None:
    """The fault hits the second reader's first message; run and rerun count deliveries."""
    fault, first_exit, uncertain = case
    monkeypatch.setenv("PAPERMAIL_SMTP_TIMEOUT", "1")  # SILENCE: the client gives up after 1 s
    victim = READERS[1]
    raw.faults[victim] = fault
    assert run() == first_exit
    assert (ledger(home)[victim][0] == "uncertain") is uncertain
    assert raw.received[victim] == 1 if fault != REFUSE_421 else raw.accepted[victim] == 1
    assert run() == first_exit, "the rerun reports the uncertain digest again, sends nothing"
    received = dict(raw.accepted if fault == REFUSE_421 else raw.received)
    never_twice_never_lost(home, received)
    assert sum(raw.received.values()) == len(READERS)


def test_a_refused_sender_stops_the_run_at_once_and_the_rerun_serves_everyone(
    home: Path, raw: RawServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """553 at MAIL FROM: the run's failure, not the recipients'. Exit 78 at once, no retry,
    nobody recorded failed_permanent; once the server accepts the sender, everyone gets one."""
    raw.mail_reply = "553 5.7.1 sender not allowed"
    assert run() == 78
    err = capsys.readouterr()
    assert "refused the sender" in err.out + err.err
    assert "PAPERMAIL_FROM_ADDRESS" in err.out + err.err
    assert raw.mail_commands <= 2, "each connection asked once; no retries"
    assert sum(raw.received.values()) == 0
    assert "failed_permanent" not in {state for state, _ in ledger(home).values()}

    raw.mail_reply = "250 ok"
    assert run() == 0
    assert dict(raw.accepted) == dict.fromkeys(READERS, 1)


def test_idn_domains_go_out_as_ascii_in_envelope_and_headers(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``user@exämple.org`` passes check and is sent to ``user@xn--exmple-cua.org``: it used to
    crash aiosmtplib's RCPT with UnicodeEncodeError and end the run."""
    save_day(env / "var", sample_day())
    readers = ["user@exämple.org", "after@example.org"]
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(write_subscribers(env / "subs", readers)))
    assert main(["check"]) == 0
    with faulty_server() as smtp:
        monkeypatch.setenv("PAPERMAIL_SMTP_HOST", smtp.host)
        monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
        assert run() == 0
        assert smtp.received("user@xn--exmple-cua.org") == 1
        assert smtp.received("after@example.org") == 1
        (message,) = smtp.for_recipient("user@xn--exmple-cua.org")
    assert "user@xn--exmple-cua.org" in str(message["To"])


def test_a_non_ascii_local_part_is_refused_by_check_and_run_alike(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``zoë@example.org`` is a clear problem line in check and in run (exit 65, in the outbox
    mode too); the others are served. It used to crash the message composition (exit 1)."""
    save_day(env / "var", sample_day())
    readers = ["zoë@example.org", "after@example.org"]
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(write_subscribers(env / "subs", readers)))
    assert main(["check"]) == 65
    assert "non-ASCII part before the @ is not supported" in capsys.readouterr().out
    assert run() == 65
    assert [p.name for p in (env / "outbox").glob("*.eml")] == [
        f"{DAY}-{slug_of('after@example.org')}.eml"
    ]


def _break_template_for(home: Path, email: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the templates whose text part fails for ``email``'s digest."""
    repo_templates = Path(__file__).resolve().parent.parent / "templates"
    templates = home / "templates"
    for source in repo_templates.rglob("*"):
        if source.is_file():
            target = templates / source.relative_to(repo_templates)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    text = templates / "digest.txt.j2"
    text.write_text(
        f'{{% if subscriber.email == "{email}" %}}{{{{ 1 // 0 }}}}{{% endif %}}'
        + text.read_text("utf-8"),
        encoding="utf-8",
    )
    monkeypatch.setenv("PAPERMAIL_TEMPLATES", str(templates))
    return text


def test_a_digest_that_cannot_be_rendered_fails_alone_and_retry_failed_sends_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One subscriber's digest raises while rendering: failed_permanent with the reason, one log
    line, the others are sent (exit 67). Once fixed, a plain rerun leaves it alone, and
    ``--retry-failed`` sends it, once."""
    text = _break_template_for(home, READERS[2], monkeypatch)
    assert run() == 67
    states = ledger(home)
    assert states[READERS[2]][0] == "failed_permanent"
    assert "ZeroDivisionError" in states[READERS[2]][1]
    assert {states[r][0] for r in READERS if r != READERS[2]} == {"sent"}
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if " ERROR " in f" {line}"]
    assert len(errors) == 1
    assert f"{READERS[2]}: cannot prepare the digest: ZeroDivisionError" in errors[0]
    assert "Traceback" not in err

    text.write_text(text.read_text("utf-8").split("{% endif %}", 1)[1], encoding="utf-8")
    assert run() == 67
    assert run("--retry-failed") == 0
    outbox = sorted(p.name for p in (home / "outbox").glob("*.eml"))
    assert outbox == sorted(f"{DAY}-{slug_of(r)}.eml" for r in READERS)


def test_colliding_addresses_get_distinct_outbox_files(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``a+b@``, ``a_b@``, ``a=b@`` and ``a/b@`` used to share one outbox file (4 sent, 1 file)."""
    save_day(env / "var", sample_day())
    readers = ["a+b@example.org", "a_b@example.org", "a=b@example.org", "a/b@example.org"]
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(write_subscribers(env / "subs", readers)))
    assert run() == 0
    files = list((env / "outbox").glob("*.eml"))
    assert len(files) == 4
    recipients = {f.read_text("utf-8").split("To: ", 1)[1].split("\n", 1)[0] for f in files}
    assert len(recipients) == 4


def test_the_outbox_never_replaces_a_file(tmp_path: Path) -> None:
    """A second write of the same name keeps the first file (the digest is there already)."""
    path = tmp_path / "x.eml"
    assert write_new(path, "first")
    assert not write_new(path, "second")
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["x.eml"], "no temporary file left"
    assert OutboxTransport(tmp_path).outbox == tmp_path


@given(st.lists(st.emails(), min_size=2, max_size=20, unique_by=str.lower))
def test_outbox_and_preview_names_are_distinct_and_safe(addresses: list[str]) -> None:
    """Different addresses (ignoring case) never share a name; a name is a safe file name."""
    names = [slug_of(a) for a in addresses]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name
        assert name.isascii()
        assert not name.startswith(".")
        assert len(name.encode()) <= 100


def test_an_arxiv_outage_defers_only_the_subscribers_with_categories(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """arXiv refuses connections: subscribers without categories are served from Daily Papers,
    those with categories recorded failed_transient "arXiv unavailable"; exit 69. It used to
    stop everyone."""
    (home / "subs" / "z-arxiv.yaml").write_text(
        "email: arxiv@example.org\ntopics:\n  - name: L\n    keywords: [learning]\n"
        "categories: [cs.LG]\nsend_empty: true\n",
        encoding="utf-8",
    )
    assert run() == 69
    states = ledger(home)
    assert states["arxiv@example.org"][0] == "failed_transient"
    assert "arXiv unavailable" in states["arxiv@example.org"][1]
    assert {states[r][0] for r in READERS} == {"sent"}
    assert "arxiv@example.org: failed_transient: arXiv unavailable" in capsys.readouterr().out
    assert run() == 69, "still down: deferred again, the others already sent"
    assert len(list((home / "outbox").glob("*.eml"))) == len(READERS)


def test_a_non_ascii_sender_stops_the_run_as_a_setting_and_blames_no_recipient(
    home: Path, raw: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A From address aiosmtplib cannot put in MAIL FROM is the configuration's fault: exit 78,
    no MAIL command sent, nobody failed_permanent; a non-ASCII recipient reaching the transport
    would be that recipient's permanent failure, never a crash."""
    monkeypatch.setenv("PAPERMAIL_FROM_ADDRESS", "news@exämple.org")
    assert run() == 78
    assert raw.mail_commands == 0
    assert "failed_permanent" not in {state for state, _ in ledger(home).values()}
    monkeypatch.setenv("PAPERMAIL_FROM_ADDRESS", "news@example.org")
    assert run() == 0
    assert dict(raw.accepted) == dict.fromkeys(READERS, 1)

    outgoing = Outgoing("zoë@example.org", "news@example.org", SAMPLE_DAY, "<x@example.org>", b"")
    transport = SmtpTransport(SmtpConfig(raw.host, raw.port, "none", timeout=5))
    with pytest.raises(PermanentFailure, match="not ASCII"):
        asyncio.run(transport.send(outgoing))


@pytest.mark.parametrize(
    "case", [("starttls", ("AUTH PLAIN",), "STARTTLS"), ("none", ("8BITMIME",), "AUTH")]
)
def test_a_server_that_does_not_offer_starttls_or_auth_stops_the_run_as_a_setting(
    home: Path,
    raw: RawServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, tuple[str, ...], str],
) -> None:
    """STARTTLS asked for but not offered, or AUTH configured but not offered: the setup is
    wrong, so exit 78 at once (no retries, no MAIL sent), and no recipient's digest is used up."""
    security, raw.extensions, missing = case
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", security)
    monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", "lab")
    monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", "Sekr1t-Zebra-77")
    assert run() == 78
    assert f"does not offer {missing}" in capsys.readouterr().out
    assert raw.mail_commands == 0
    assert not {state for state, _ in ledger(home).values()} & {"failed_permanent", "sent"}


@pytest.mark.parametrize(
    "reply",
    [
        "535 5.7.8 bad credentials: {sent} {password}",  # the AUTH PLAIN blob, the password
        "535-bad password hunter2\r\n535 S3cr3t/x@y rejected",  # split over lines
        "535 5.7.8 bad creds pass={quoted}",  # URL-encoded
        "535 5.7.8 bad creds pass={plus}",  # form-encoded
    ],
)
def test_a_server_echoing_the_credentials_never_gets_them_into_output_ledger_or_report(
    home: Path,
    raw: RawServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    reply: str,
) -> None:
    """A server that answers AUTH by echoing what it was sent (the base64 blob, the password as
    is, split over a multi-line reply, or URL-encoded): papermail says AUTH was refused (78) and
    prints, stores and reports none of it."""
    password = "hunter2 S3cr3t/x@y"
    forms = {"quoted": quote(password, safe=""), "plus": quote_plus(password)}
    raw.extensions = ("AUTH PLAIN",)
    raw.auth_reply = reply.replace("{password}", password).format_map({"sent": "{sent}", **forms})
    monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", "lab")
    monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", password)
    assert run() == 78
    out, err = capsys.readouterr()
    blob = base64.b64encode(f"\0lab\0{password}".encode()).decode()
    stored = b"".join(p.read_bytes() for p in (home / "var").rglob("*") if p.is_file())
    for secret in (password, blob, *forms.values()):
        assert secret not in out + err
        assert secret.encode() not in stored
    assert "[redacted]" in out + err


def test_a_temporary_auth_failure_is_unavailable_not_a_setting(
    home: Path, raw: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """454 to AUTH is the server's temporary trouble, not wrong credentials: exit 69 (the next
    run tries again), no MAIL sent, nobody's digest used up."""
    raw.extensions = ("AUTH PLAIN",)
    raw.auth_reply = "454 4.7.0 temporary authentication failure"
    monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", "lab")
    monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", "Sekr1t-Zebra-77")
    assert run() == 69
    assert raw.mail_commands == 0
    assert not {state for state, _ in ledger(home).values()} & {"failed_permanent", "sent"}
