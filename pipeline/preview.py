"""Preview: every subscriber's email written to a folder (HTML, text, an index), nothing sent.

``render_previews`` writes ``<slug>.html``, ``<slug>.txt`` and ``index.html``. ``PreviewServer``
serves that folder on 127.0.0.1 and, before answering a request, re-renders it when a template
or subscriber file changed since the last rendering (their sizes and modification times are
compared), so a template author sees an edit on reload. A template that does not compile is
shown as an error page until it is fixed; the server keeps running.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pipeline import semantic
from pipeline.app import archive_of, ledger_path, select
from pipeline.errors import PapermailError, UsageError
from pipeline.files import write_atomic
from pipeline.ledger import Ledger
from pipeline.models import Day, Subscriber
from pipeline.planning import Archive, Meanings, gather_covered, rank_pool, skip_reason
from pipeline.rendering import Renderer
from pipeline.settings import Settings
from pipeline.subscribers import SubscriberSet, load_subscribers

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True, slots=True)
class PreviewEntry:
    """One subscriber's previewed email."""

    subscriber: Subscriber
    papers: int
    html_file: str
    text_file: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Preview:
    """What one rendering of the preview folder produced."""

    entries: tuple[PreviewEntry, ...]
    problems: tuple[str, ...]  # invalid subscriber files, as ``file:line: field: message``


def render_previews(
    settings: Settings,
    *,
    day: Day,
    out: Path,
    only: str | None = None,
    subscriber_set: SubscriberSet | None = None,
    gather: Callable[[date], Day] | None = None,
) -> Preview:
    """Load the templates (and the subscribers, unless given) afresh and write every preview
    into ``out``. With ``gather``, the earlier days the digests cover and the archive lacks are
    gathered first, as a run does; without, they are read from the archive."""
    if subscriber_set is None:
        subscriber_set = load_subscribers(settings.subscribers)
    subscribers = select(subscriber_set, [only] if only else [])
    renderer = Renderer.for_settings(settings)
    path = ledger_path(settings)
    ledger = Ledger(path) if path.exists() else None
    semantic_part = semantic.prepare(settings, subscribers)  # the model the run uses
    try:
        archive = archive_of(settings)
        if gather is not None:
            archive = gather_covered(subscribers, day.day, ledger, gather, archive).archive
        entries = write_previews(
            out,
            day=day,
            subscribers=subscribers,
            renderer=renderer,
            ledger=ledger,
            archive=archive,
            meanings=semantic_part.meaning if semantic_part else None,
        )
    finally:
        if ledger:
            ledger.close()
    return Preview(tuple(entries), tuple(str(p) for p in subscriber_set.problems))


def write_previews(
    out: Path,
    *,
    day: Day,
    subscribers: Sequence[Subscriber],
    renderer: Renderer,
    ledger: Ledger | None,
    archive: Archive,
    meanings: Meanings | None = None,
) -> list[PreviewEntry]:
    """Render each subscriber's email into ``out`` and write ``index.html`` linking them.

    Each digest is the one the run would send: with catch-up and weekly days from ``archive``.
    """
    entries = []
    pool = rank_pool(subscribers, day, ledger, archive, meanings)  # ranked as the run ranks
    for subscriber in subscribers:
        digest, _covers = pool.plan(subscriber, ledger)
        rendered = renderer.render(digest)
        html_file, text_file = f"{subscriber.slug}.html", f"{subscriber.slug}.txt"
        write_atomic(out / html_file, rendered.html)
        write_atomic(out / text_file, rendered.text)
        notes = [skip_reason(subscriber, day.day) or "", rendered.trimmed or ""]
        entries.append(
            PreviewEntry(
                subscriber,
                len(rendered.digest.papers),
                html_file,
                text_file,
                "; ".join(n for n in notes if n),
            )
        )
    write_atomic(out / "index.html", index_page(entries, day))
    return entries


def index_page(entries: Sequence[PreviewEntry], day: Day) -> str:
    """A small page listing every previewed email with its paper count."""
    rows = "\n".join(
        "<tr>"
        f'<td><a href="{html.escape(e.html_file)}">{html.escape(e.subscriber.email)}</a></td>'
        f'<td class="n">{e.papers}</td>'
        f'<td><a href="{html.escape(e.text_file)}">text</a></td>'
        f"<td>{html.escape(e.note)}</td>"
        "</tr>"
        for e in entries
    )
    title = f"papermail preview · {day.day.isoformat()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  margin: 2rem auto; max-width: 48rem; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #8884; }}
.n {{ text-align: right; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{len(day.papers)} papers gathered. Nothing here is sent.</p>
<table>
<thead><tr><th>subscriber</th><th class="n">papers</th><th>plain text</th><th>note</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body></html>
"""


# --- serving -------------------------------------------------------------------------------------

Fingerprint = tuple[tuple[str, int, int], ...]


def watched_files(settings: Settings) -> Iterator[Path]:
    """The files whose change means the previews must be rendered again."""
    if settings.templates.is_dir():
        yield from sorted(p for p in settings.templates.rglob("*") if p.is_file())
    subscribers = settings.subscribers
    if subscribers.is_dir():
        yield from sorted(p for p in subscribers.iterdir() if p.suffix in (".yaml", ".yml"))
    elif subscribers.exists():
        yield subscribers


def fingerprint(paths: Iterator[Path]) -> Fingerprint:
    """Name, size and modification time of each file: any edit, addition or removal changes it."""
    out = []
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed between listing and looking
            continue
        out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class PreviewServer:
    """Serves the preview folder on 127.0.0.1, rendering it again whenever its inputs change."""

    def __init__(
        self,
        out: Path,
        *,
        rebuild: Callable[[], object],
        inputs: Callable[[], Fingerprint],
        port: int = DEFAULT_PORT,
    ) -> None:
        self.out = out
        self._rebuild = rebuild
        self._inputs = inputs
        self._seen = inputs()
        self._error: str | None = None
        self._lock = threading.Lock()
        handler = partial(_Handler, directory=str(out), preview=self)
        try:
            self._httpd = ThreadingHTTPServer((HOST, port), handler)
        except OSError as exc:  # in use, or below 1024 without the right: choose another --port
            reason = exc.strerror or type(exc).__name__
            raise UsageError(
                f"cannot serve on {HOST}:{port}: {reason} (choose another --port)"
            ) from None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_settings(
        cls, settings: Settings, *, day: Day, out: Path, only: str | None, port: int
    ) -> PreviewServer:
        """A server that re-renders ``render_previews(settings, ...)`` on every change."""
        return cls(
            out,
            rebuild=lambda: render_previews(settings, day=day, out=out, only=only),
            inputs=lambda: fingerprint(watched_files(settings)),
            port=port,
        )

    @property
    def port(self) -> int:
        """The port served on (the one the system chose, for port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Where the index is served."""
        return f"http://{HOST}:{self._httpd.server_address[1]}/"

    def refresh(self) -> str | None:
        """Render again if an input changed; return the error that stops rendering, if any."""
        with self._lock:
            now = self._inputs()
            if now != self._seen:
                self._seen = now
                try:
                    self._rebuild()
                except PapermailError as exc:
                    self._error = str(exc)
                    log.error("preview not rendered: %s", exc)
                else:
                    self._error = None
                    log.info("inputs changed: previews rendered again")
            return self._error

    def start(self) -> None:
        """Serve in a background thread (tests, or an embedding program)."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join()

    def serve_until_interrupted(self) -> None:
        """Serve in the foreground until Ctrl-C."""
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            log.info("preview server stopped")
        finally:
            self._httpd.server_close()


class _Handler(SimpleHTTPRequestHandler):
    """Static files from the preview folder, rendered afresh first when an input changed."""

    extensions_map = {  # noqa: RUF012 (the base class declares it a plain dict)
        **SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html; charset=utf-8",
        ".txt": "text/plain; charset=utf-8",
    }

    def __init__(self, *args: Any, preview: PreviewServer, **kwargs: Any) -> None:
        self.preview = preview
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        """Answer with the file, or with the rendering error while there is one."""
        if refusal := self._refusal():
            self.send_error(400, refusal)
            return
        error = self.preview.refresh()
        if error is None:
            super().do_GET()
            return
        body = (
            '<!doctype html><html lang="en"><meta charset="utf-8"><title>preview error</title>'
            "<h1>The preview could not be rendered</h1>"
            f"<pre>{html.escape(error)}</pre><p>Fix it and reload.</p></html>"
        ).encode()
        self.send_response(500)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refusal(self) -> str | None:
        """Why the request is refused: a Host that is not this server (a DNS-rebinding page in
        the browser could otherwise read the previews), or a path no file can have (NUL)."""
        port = self.preview.port
        host = (self.headers.get("Host") or "").strip().lower()
        names = ("127.0.0.1", "localhost")
        allowed = {f"{name}:{port}" for name in names} | (set(names) if port == 80 else set())
        if host not in allowed:
            return "unexpected Host header"
        if "\x00" in unquote(self.path):
            return "bad path"
        return None

    def end_headers(self) -> None:
        """Never let the browser cache a preview: a reload must show the latest rendering."""
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to the debug log, not to stderr."""
        log.debug("%s %s", self.address_string(), format % args)
