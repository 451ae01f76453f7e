"""The email against what mail clients and spam filters do with it.

* caniemail's support data (the npm package ``@jsx-email/doiuse-email``, installed by ``.ci/run``
  into ``tests/email_clients/node_modules``): no layout-critical CSS property is unsupported in
  Outlook for Windows, Gmail, Apple Mail or Yahoo; and, since Outlook for Windows honours padding
  only on table cells, no padding or border on anything but a cell (docs/email.md says what each
  client drops and why that is acceptable).
* SpamAssassin from Debian, local rules only (``-L``: no network tests): the sample day's emails
  score at most 0.5.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.app import gather
from pipeline.clock import Clock
from pipeline.delivery.message import compose
from pipeline.planning import digest_for
from pipeline.rendering import Renderer
from pipeline.settings import DEFAULT_TEMPLATES, load_settings
from pipeline.sources.sample import SAMPLE_DAY, sample_client
from pipeline.subscribers import load_subscribers
from tests.builders import digest, paper
from tests.conftest import REPO, SUBSCRIBERS, no_sleep

CHECKER = REPO / "tests" / "email_clients"
DOIUSE = CHECKER / "node_modules" / "@jsx-email" / "doiuse-email"
NODE = shutil.which("node")
SPAMASSASSIN = shutil.which("spamassassin")
CLIENTS = (
    "outlook.windows",
    "gmail.desktop-webmail",
    "gmail.ios",
    "gmail.android",
    "apple-mail.macos",
    "apple-mail.ios",
    "yahoo.desktop-webmail",
    "yahoo.ios",
    "yahoo.android",
)
#: Properties whose loss changes spacing, wrapping, sizes or legibility: none may be unsupported.
#: (Rounded corners, opacity, @media and the like are enhancements: see docs/email.md. So is
#: MJML's ``word-break`` on columns (long words wrap because they carry zero-width spaces) and
#: its ``word-spacing: normal`` on the body (a reset, the default anyway).)
LAYOUT_CRITICAL = frozenset(
    {
        "padding",
        "margin",
        "border",
        "border-top",
        "border-bottom",
        "width",
        "max-width",
        "min-width",
        "height",
        "background",
        "background-color",
        "color",
        "font-size",
        "font-weight",
        "line-height",
        "display",
        "white-space",
        "text-align",
        "vertical-align",
        "float",
        "position",
        "flex",
        "grid",
        "table-layout",
    }
)
UNSUPPORTED = re.compile(r"^`(?P<feature>[^`]+)` is not supported by `(?P<client>[^`]+)`$")


def sample_emails(from_address: str = "papers@example.org") -> dict[str, bytes]:
    """The sample day's emails for every bundled subscriber, as they go on the wire."""
    settings = load_settings(subscribers=SUBSCRIBERS, state_dir=REPO / "build" / "clients-var")
    with sample_client() as client:
        day = gather(settings, SAMPLE_DAY, client=client, clock=Clock.waiting_with(no_sleep))
    renderer = Renderer.for_settings(settings)
    out = {}
    for subscriber in load_subscribers(settings.subscribers).subscribers:
        rendered = renderer.render(digest_for(subscriber, day, None))
        out[subscriber.slug] = compose(rendered, from_address=from_address).data
    return out


def caniemail(html: str) -> dict[str, list[str]]:
    """caniemail's verdict on ``html`` for CLIENTS."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(CHECKER / "caniemail.mjs"), *CLIENTS],
        input=html,
        capture_output=True,
        text=True,
        cwd=CHECKER,
        timeout=120,
        check=True,
    )
    verdict: dict[str, list[str]] = json.loads(done.stdout)
    return verdict


@pytest.fixture(scope="module")
def long_html() -> str:
    """A long digest (overview list, every optional field, long words) as HTML."""
    papers = [paper(n, title=f"Paper {n} " + "Supercalifragilistic" * 3) for n in range(12)]
    return Renderer(DEFAULT_TEMPLATES).render(digest(*papers)).html


@pytest.mark.skipif(
    NODE is None or not DOIUSE.is_dir(),
    reason="caniemail data not installed (CI installs it: npm ci --prefix tests/email_clients)",
)
def test_no_layout_critical_css_is_unsupported_in_the_main_clients(long_html: str) -> None:
    """caniemail: every property the layout depends on works in Outlook for Windows, Gmail,
    Apple Mail and Yahoo (and the check does see the email: it reports the enhancements)."""
    verdict = caniemail(long_html)
    unsupported = [m for e in verdict["errors"] if (m := UNSUPPORTED.match(e))]
    assert len(unsupported) == len(verdict["errors"]), verdict["errors"]
    critical = sorted(
        e.group(0) for e in unsupported if e.group("feature").lower() in LAYOUT_CRITICAL
    )
    assert critical == []
    assert any("border-radius" in e for e in verdict["errors"]), "the check saw the email"


def test_padding_and_borders_sit_on_table_cells_for_outlook(long_html: str) -> None:
    """Outlook for Windows honours padding only on table cells and borders on p or div badly: a
    non-zero padding or a border elsewhere would be lost."""
    offenders = []
    for tag, style in re.findall(r'<(\w+)\b[^>]*?style="([^"]*)"', long_html):
        for prop, value in re.findall(r"(?:^|;)\s*([a-z-]+)\s*:\s*([^;]*)", style):
            cell = tag in ("td", "th", "table")
            if prop.startswith("padding") and not cell and set(value) - set("0px "):
                offenders.append(f"<{tag} style={style!r}>")
            side = prop.startswith("border") and prop not in ("border-radius", "border-collapse")
            if side and not cell:
                offenders.append(f"<{tag} style={style!r}>")
    assert offenders == []
    assert long_html.count('<td class="line" style="border-top:1px solid') == 11, "the rules"


@pytest.mark.skipif(
    SPAMASSASSIN is None,
    reason="spamassassin is not installed (CI installs it: apt-get install spamassassin)",
)
def test_the_sample_days_emails_score_low_with_spamassassin(tmp_path: Path) -> None:
    """SpamAssassin with its local rules only (no network tests): at most 0.5 for each email."""
    assert SPAMASSASSIN is not None
    emails = sample_emails()
    assert emails
    for slug, data in emails.items():
        done = subprocess.run(
            [SPAMASSASSIN, "-L", "-x", "-t"],
            input=data,
            capture_output=True,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            timeout=300,
            check=False,
        )
        status = re.search(rb"^X-Spam-Status: \w+, score=(-?[\d.]+)", done.stdout, re.M)
        assert status is not None, done.stderr.decode(errors="replace")[-500:]
        report = done.stdout.decode(errors="replace")
        assert float(status.group(1)) <= 0.5, (slug, report[report.find("Content analysis") :])
