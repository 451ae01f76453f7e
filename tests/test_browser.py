"""The rendered email in a real browser: headless Debian chromium at phone and desktop widths.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in NUL on file descriptors 3 and 4), which needs no extra library and gives an
exact viewport (``Emulation.setDeviceMetricsOverride``) and full-page screenshots. Nothing leaves
the machine: the pages are local files and background networking is off. Screenshots go to
``build/screenshots/`` for a person to look at.

Four ways a client shows the email: light; dark (``prefers-color-scheme``, as Apple Mail and
Outlook for Mac do); forced dark (the colours inverted by the client whatever the email says, as
the Gmail app and Outlook do; chromium's auto dark mode); and without its ``<style>`` block (as
clients that keep only inline styles do). What the eye checks is measured: no sideways scroll,
the background dark to the window's bottom edge, and text contrast of at least 4.5:1, from the
computed colours where the browser knows them and from the screenshot's pixels in forced dark.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.app import gather
from pipeline.clock import Clock
from pipeline.models import Paper, ScoredPaper
from pipeline.planning import digest_for
from pipeline.preview import render_previews
from pipeline.rendering import Renderer
from pipeline.rendering.views import ZWSP
from pipeline.settings import DEFAULT_TEMPLATES, load_settings
from pipeline.sources.sample import SAMPLE_DAY, sample_client
from tests.builders import digest, paper
from tests.conftest import REPO, SUBSCRIBERS, no_sleep

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = REPO / "build" / "screenshots"
WIDTHS = (375, 1200)
TIMEOUT = 60.0  # seconds for one DevTools answer; only a hung browser ever waits this long

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)"
)

TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)
MEASURE = """
(() => {
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c && !c.endsWith(', 0)') && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const titles = [...document.querySelectorAll('a.title-link')].map((a) => {
    a.scrollIntoView({block: 'center'});
    const r = a.getBoundingClientRect();
    const s = getComputedStyle(a);
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height, 20) / 2);
    return {
      text: a.textContent, left: r.left, right: r.right, width: r.width, height: r.height,
      shown: s.visibility === 'visible' && s.display !== 'none' && parseFloat(s.opacity) > 0,
      onTop: !!hit && (hit === a || a.contains(hit)),
      color: s.color, background: background(a),
    };
  });
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!/[A-Za-z0-9]/.test(node.textContent) || el.getClientRects().length === 0) continue;
    texts.push({
      text: node.textContent.trim().slice(0, 40),
      color: getComputedStyle(el).color,
      background: background(el),
    });
  }
  window.scrollTo(0, 0);
  return {
    texts,
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    scrollHeight: document.documentElement.scrollHeight,
    contentHeight: Math.max(
      ...[...document.body.children].map((e) => e.getBoundingClientRect().bottom)),
    titles,
  };
})()
"""


BOXES = """
(() => [...document.querySelectorAll('.title-link, .tldr, .why, .kicker, .headline')]
  .filter((el) => el.getClientRects().length > 0)
  .map((el) => {
    const r = el.getBoundingClientRect();
    return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,
            text: el.textContent.trim().slice(0, 40)};
  }))()
"""
PIXELS = """
(async () => {
  const image = new Image();
  image.src = 'data:image/png;base64,' + PNG;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const luma = (d, i) => 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
  return BOXES.map((b) => {
    const w = Math.max(1, Math.floor(Math.min(b.width, image.width - b.x)));
    const h = Math.max(1, Math.floor(Math.min(b.height, image.height - b.y)));
    const d = context.getImageData(Math.floor(b.x), Math.floor(b.y), w, h).data;
    let dark = 0, light = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (luma(d, i) < luma(d, dark)) dark = i;
      if (luma(d, i) > luma(d, light)) light = i;
    }
    const rgb = (i) => `rgb(${d[i]}, ${d[i + 1]}, ${d[i + 2]})`;
    return {text: b.text || '', darkest: rgb(dark), lightest: rgb(light)};
  });
})()
"""


def _above_4(fd: int) -> int:
    """The same pipe end on a descriptor numbered 10 or more."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """Headless chromium, one page, spoken to over the DevTools pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and answers on fd 4; a small Python trampoline moves our
        # pipe ends there before it execs chromium, so they must not already be 3 or 4.
        to_browser_r, from_browser_w = _above_4(to_browser_r), _above_4(from_browser_w)
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
        ]
        fds = (str(to_browser_r), str(from_browser_w))
        self._process = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, *fds, executable, *flags],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._ids = itertools.count(1)
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=True)

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive()
            if answer.get("id") == ident:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer["result"]
                return result
            self._events.append(answer)

    def wait_for(self, event: str) -> None:
        """Wait until chromium sends ``event`` (one already received counts)."""
        while True:
            for i, seen in enumerate(self._events):
                if seen.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.append(self._receive())

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], TIMEOUT)
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def open(self, page: Path, *, width: int, dark: bool = False) -> dict[str, Any]:
        """Load ``page`` at ``width`` CSS pixels (a phone below 600) and measure it."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        scheme = "dark" if dark else "light"
        self.call(
            "Emulation.setEmulatedMedia",
            session=True,
            features=[{"name": "prefers-color-scheme", "value": scheme}],
        )
        self.call("Page.navigate", session=True, url=page.as_uri())
        self.wait_for("Page.loadEventFired")
        evaluated = self.call(
            "Runtime.evaluate", session=True, expression=MEASURE, returnByValue=True
        )
        measured: dict[str, Any] = evaluated["result"]["value"]
        return measured

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        evaluated = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True
        )
        return evaluated["result"]["value"]

    def force_dark(self, enabled: bool) -> None:
        """Chromium's auto dark mode: light pages recoloured, as forced-dark mail apps do."""
        self.call("Emulation.setAutoDarkModeOverride", session=True, enabled=enabled)

    def capture(self, *, width: int, height: int) -> str:
        """The top ``height`` CSS pixels of the page as a base64 PNG."""
        shot = self.call(
            "Page.captureScreenshot",
            session=True,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        data: str = shot["data"]
        return data

    def pixels(self, png: str, boxes: list[dict[str, float]]) -> list[dict[str, Any]]:
        """Per box (``x``, ``y``, ``width``, ``height`` in the PNG), the darkest and lightest
        pixel as ``rgb(…)``: the browser decodes the PNG, so no imaging library is needed."""
        script = PIXELS.replace("PNG", json.dumps(png)).replace("BOXES", json.dumps(boxes))
        evaluated = self.call(
            "Runtime.evaluate",
            session=True,
            expression=script,
            awaitPromise=True,
            returnByValue=True,
        )
        found: list[dict[str, Any]] = evaluated["result"]["value"]
        return found

    def screenshot(self, path: Path, *, width: int, height: int) -> None:
        """Save the top ``height`` CSS pixels of the page, ``width`` wide, as a PNG."""
        shot = self.call(
            "Page.captureScreenshot",
            session=True,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        """Ask chromium to quit; kill it if it will not."""
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self._process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless chromium for the module."""
    assert CHROMIUM is not None
    chromium = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


def stress_paper() -> Paper:
    """Untrusted text at its worst for a layout: unbreakable words and very long names."""
    return paper(
        99,
        title="Supercalifragilistic" * 6 + " and 10.1234/abcdefghijklmnopqrstuvwxyz0123456789",
        authors=("Maximiliana-Aurelia Konstantinopoulou-Vanderbilt",) * 5,
        ai_summary="See https://example.org/" + "a-very-long-path-segment-" * 8 + " for details.",
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    """The sample day's previews, a stress digest, a long one (with the overview list) and an
    empty one, each with the titles it must show."""
    out = tmp_path_factory.mktemp("preview")
    settings = load_settings(
        subscribers=SUBSCRIBERS, state_dir=out / "var", templates=DEFAULT_TEMPLATES
    )
    with sample_client() as client:
        day = gather(settings, SAMPLE_DAY, client=client, clock=Clock.waiting_with(no_sleep))
    preview = render_previews(settings, day=day, out=out)
    renderer = Renderer(DEFAULT_TEMPLATES, unsubscribe_url="https://example.org/u?e={email}")
    pages: dict[str, tuple[Path, list[str]]] = {}
    for entry in preview.entries:
        if entry.subscriber.email in ("ada@example.org", "grace@example.org"):
            picked = digest_for(entry.subscriber, day, None).papers
            titles = [s.paper.title for s in picked]
            pages[entry.subscriber.email.replace("@", "_")] = (out / entry.html_file, titles)
    stress = digest(paper(1), stress_paper())
    stress = dataclasses.replace(
        stress, papers=(*stress.papers, ScoredPaper(paper(2), 1.0, stress.papers[0].reasons * 3))
    )
    email = renderer.render(stress)
    (out / "stress.html").write_text(email.html, encoding="utf-8")
    pages["stress"] = (out / "stress.html", [s.paper.title for s in stress.papers])
    long = digest(*(paper(n, title=f"Paper {n}:" + " a long title" * (n % 4)) for n in range(12)))
    (out / "long.html").write_text(renderer.render(long).html, encoding="utf-8")
    pages["long"] = (out / "long.html", [s.paper.title for s in long.papers])
    (out / "empty.html").write_text(renderer.render(digest()).html, encoding="utf-8")
    pages["empty"] = (out / "empty.html", [])
    return pages


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["ada_example.org", "grace_example.org", "stress", "long"])
def test_nothing_overflows_and_every_title_is_visible(
    browser: Browser, pages: dict[str, tuple[Path, list[str]]], name: str, width: int
) -> None:
    """At phone and desktop widths the page never scrolls sideways and each title is on show."""
    page, titles = pages[name]
    measured = browser.open(page, width=width)
    browser.screenshot(
        SCREENSHOTS / f"{name}-{width}.png", width=width, height=measured["scrollHeight"]
    )
    assert measured["innerWidth"] == width
    assert measured["scrollWidth"] <= measured["innerWidth"]
    shown = measured["titles"]
    assert [" ".join(t["text"].replace(ZWSP, "").split()) for t in shown] == titles
    for title in shown:
        assert title["shown"], title
        assert title["onTop"], title
        assert title["width"] > 0
        assert title["height"] > 0
        assert title["left"] >= 0
        assert title["right"] <= width


def luminance(css_colour: str) -> float:
    """Relative luminance (WCAG) of an ``rgb(r, g, b)`` colour."""
    channels = [int(c) / 255 for c in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_all_text_is_readable_in_light_and_dark_mode(
    browser: Browser, pages: dict[str, tuple[Path, list[str]]], dark: bool
) -> None:
    """Every visible text keeps WCAG AA contrast against what is behind it, in both schemes."""
    page, _ = pages["ada_example.org"]
    measured = browser.open(page, width=WIDTHS[0], dark=dark)
    scheme = "dark" if dark else "light"
    browser.screenshot(
        SCREENSHOTS / f"ada_example.org-{WIDTHS[0]}-{scheme}.png",
        width=WIDTHS[0],
        height=measured["scrollHeight"],
    )
    assert len(measured["texts"]) > 40
    for text in measured["texts"]:
        assert contrast(text["color"], text["background"]) >= 4.5, text
    first = measured["titles"][0]
    assert (luminance(first["background"]) < 0.1) is dark


@contextlib.contextmanager
def forced_dark(browser: Browser, enabled: bool = True) -> Iterator[None]:
    """Chromium's auto dark mode on for the block (and off again whatever happens)."""
    browser.force_dark(enabled)
    try:
        yield
    finally:
        browser.force_dark(False)


@pytest.mark.parametrize("mode", ["dark", "forced-dark"])
def test_the_dark_background_reaches_the_bottom_of_the_window(
    browser: Browser, pages: dict[str, tuple[Path, list[str]]], mode: str
) -> None:
    """A short email in a tall window: dark from top to bottom edge, not a light band below."""
    page, _ = pages["empty"]
    width, height = WIDTHS[1], 900
    with forced_dark(browser, mode == "forced-dark"):
        measured = browser.open(page, width=width, dark=mode == "dark")
        png = browser.capture(width=width, height=height)
    (SCREENSHOTS / f"empty-{width}-{mode}.png").write_bytes(base64.b64decode(png))
    assert measured["contentHeight"] < height - 100, "the email must be shorter than the window"
    top, bottom = browser.pixels(
        png,
        [
            {"x": 0, "y": 0, "width": width, "height": 4},
            {"x": 0, "y": height - 4, "width": width, "height": 4},
        ],
    )
    for strip in (top, bottom):
        assert luminance(strip["lightest"]) < 0.05, strip


@pytest.mark.parametrize("width", WIDTHS)
def test_forced_dark_keeps_every_text_readable(
    browser: Browser, pages: dict[str, tuple[Path, list[str]]], width: int
) -> None:
    """Recoloured by the client (Gmail app, Outlook): each title, summary, reason and heading
    keeps 4.5:1 between its darkest and lightest pixel, and the page is dark."""
    page, _ = pages["ada_example.org"]
    with forced_dark(browser):
        measured = browser.open(page, width=width)
        png = browser.capture(width=width, height=measured["scrollHeight"])
        boxes = browser.evaluate(BOXES)
    (SCREENSHOTS / f"ada_example.org-{width}-forced-dark.png").write_bytes(base64.b64decode(png))
    found = browser.pixels(png, boxes)
    assert len(found) > 15
    for box in found:
        assert contrast(box["darkest"], box["lightest"]) >= 4.5, box
    (bottom,) = browser.pixels(
        png, [{"x": 0, "y": measured["scrollHeight"] - 4, "width": width, "height": 4}]
    )
    assert luminance(bottom["lightest"]) < 0.05, "forced dark makes the page dark"


@pytest.mark.parametrize("width", WIDTHS)
def test_without_its_style_block_the_email_still_reads(
    browser: Browser, pages: dict[str, tuple[Path, list[str]]], width: int, tmp_path: Path
) -> None:
    """Clients that drop <style> keep the inlined styles: no sideways scroll, every title on
    show, contrast of at least 4.5:1 (the dark and phone rules are lost, which is acceptable)."""
    page, titles = pages["ada_example.org"]
    html = page.read_text(encoding="utf-8")
    bare = tmp_path / "no-style.html"
    bare.write_text(re.sub(r"<style\b.*?</style>", "", html, flags=re.DOTALL), encoding="utf-8")
    assert "<style" not in bare.read_text(encoding="utf-8")
    measured = browser.open(bare, width=width)
    browser.screenshot(
        SCREENSHOTS / f"ada_example.org-{width}-no-style.png",
        width=width,
        height=measured["scrollHeight"],
    )
    assert measured["scrollWidth"] <= measured["innerWidth"]
    assert [" ".join(t["text"].replace(ZWSP, "").split()) for t in measured["titles"]] == titles
    assert len(measured["texts"]) > 40
    for text in measured["texts"]:
        assert contrast(text["color"], text["background"]) >= 4.5, text


def test_a_representative_screenshot_for_the_readme(
    browser: Browser, pages: dict[str, tuple[Path, list[str]]]
) -> None:
    """The top of a sample digest, light, at a desktop width, for README and docs/email.md.

    Written to build/screenshots/digest.png; with PAPERMAIL_DOCS_IMAGE=1 also to
    docs/images/digest.png, the committed copy (kept small).
    """
    page, _ = pages["ada_example.org"]
    measured = browser.open(page, width=680)
    png = base64.b64decode(browser.capture(width=680, height=min(measured["scrollHeight"], 1100)))
    assert len(png) < 300_000
    (SCREENSHOTS / "digest.png").write_bytes(png)
    if os.environ.get("PAPERMAIL_DOCS_IMAGE") == "1":
        (REPO / "docs" / "images").mkdir(parents=True, exist_ok=True)
        (REPO / "docs" / "images" / "digest.png").write_bytes(png)
