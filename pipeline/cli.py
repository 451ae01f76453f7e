"""The ``papermail`` command: parses arguments, calls one library function, prints, and maps errors
to SPEC's exit codes. The only module that prints or reads ``sys.argv``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import TextIO

import httpx

from pipeline import __version__, app, engine, planning
from pipeline.clock import SYSTEM_CLOCK, Clock
from pipeline.errors import ExitCode, PapermailError
from pipeline.models import DeliveryResult, DeliveryStatus, Digest, RunReport, slug_of
from pipeline.preview import DEFAULT_PORT, PreviewServer, render_previews
from pipeline.settings import Settings, load_settings
from pipeline.sources.sample import SAMPLE_DAY, sample_client
from pipeline.subscribers import load_subscribers

log = logging.getLogger("papermail")


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """Run one command and return its exit code.

    ``clock`` is for tests; ``sleep``, a shorthand for them, replaces its every wait.
    """
    if sleep is not None:
        clock = Clock.waiting_with(sleep, now=clock.now, monotonic=clock.monotonic)
    parser = build_parser(clock)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("pylatexenc").setLevel(logging.ERROR)  # its parse notes are not ours
    try:
        settings = load_settings()
        return int(args.handler(args, settings, clock))
    except PapermailError as exc:
        print(f"papermail: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("papermail: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # the last resort: one line, the traceback only with --verbose
        log.debug("unexpected error", exc_info=True)
        print(
            f"papermail: unexpected error: {type(exc).__name__}: {exc} (rerun with -v for details)",
            file=sys.stderr,
        )
        return ExitCode.UNEXPECTED


def build_parser(clock: Clock) -> argparse.ArgumentParser:
    """The argument parser with one sub-command per SPEC command."""
    parser = argparse.ArgumentParser(
        prog="papermail",
        description="A personal daily research-papers newsletter: gather, rank, render, send.",
        epilog="Settings come from PAPERMAIL_* environment variables and .env (see README).",
    )
    parser.add_argument("--version", action="version", version=f"papermail {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    yesterday = clock.now().astimezone(UTC).date() - timedelta(days=1)

    def day_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--date",
            type=_date,
            default=yesterday,
            metavar="YYYY-MM-DD",
            help=f"Daily Papers day in UTC (default: yesterday, {yesterday.isoformat()})",
        )

    p = sub.add_parser(
        "run",
        help="the daily batch: gather, rank, render and send",
        description="Gather the day's papers, rank them for every active subscriber, "
        "render and send each digest; print a summary and write a JSON report.",
    )
    day_option(p)
    p.add_argument(
        "--subscribers",
        type=Path,
        metavar="PATH",
        help="a YAML file or directory (default: PAPERMAIL_SUBSCRIBERS)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="EMAIL",
        help="serve only this subscriber (repeatable)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="render everything, send nothing, leave the ledger untouched",
    )
    p.add_argument(
        "--resend-uncertain",
        action="store_true",
        help="send again the digests whose delivery was uncertain (the server timed out after "
        "DATA); check the server's log first, the subscriber may get it twice",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the digests of that day recorded failed_permanent (once the cause, "
        "a refused address or a digest that could not be prepared, is fixed)",
    )
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser(
        "fetch",
        help="gather and archive the day's papers; print them as JSON",
        description="Gather the day's papers (from the archive unless --refresh) "
        "and print them as a JSON array.",
    )
    day_option(p)
    p.add_argument("--refresh", action="store_true", help="fetch again even if the day is archived")
    p.set_defaults(handler=cmd_fetch)

    p = sub.add_parser(
        "explain",
        help="show the digest one subscriber would get, with reasons",
        description="Show the digest EMAIL would get for the day, in order, "
        "with score and reasons. Sends nothing.",
    )
    p.add_argument("email", metavar="EMAIL")
    day_option(p)
    p.add_argument("--subscribers", type=Path, metavar="PATH", help="a YAML file or directory")
    p.add_argument(
        "--json", action="store_true", help="print a JSON array of {id, title, score, reasons}"
    )
    p.set_defaults(handler=cmd_explain)

    p = sub.add_parser(
        "preview",
        help="render every subscriber's email to files, send nothing",
        description="Render each subscriber's email to DIR/<slug>.html and .txt "
        "plus an index.html.",
    )
    day_option(p)
    p.add_argument("--subscriber", metavar="EMAIL", help="only this subscriber")
    p.add_argument("--subscribers", type=Path, metavar="PATH", help="a YAML file or directory")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("preview"),
        metavar="DIR",
        help="output folder (default: preview/)",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the folder on 127.0.0.1 and render again when a template or subscriber "
        "file changes",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"port for --serve (default: {DEFAULT_PORT})",
    )
    p.set_defaults(handler=cmd_preview)

    p = sub.add_parser(
        "check",
        help="validate subscriber files",
        description="Validate subscriber files; print each problem as file:line: field: message.",
    )
    p.add_argument(
        "path",
        nargs="?",
        type=Path,
        metavar="PATH",
        help="a YAML file or directory (default: PAPERMAIL_SUBSCRIBERS)",
    )
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser(
        "demo",
        help="the whole pipeline on the bundled sample day, offline, into the outbox",
        description="Run the whole pipeline on the bundled sample day (no network) and deliver "
        "to the outbox directory as .eml files.",
    )
    p.set_defaults(handler=cmd_demo)
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _http_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        timeout=settings.http_timeout,
        headers={"User-Agent": f"papermail/{__version__}"},
        follow_redirects=True,
    )


def _with_subscribers(settings: Settings, path: Path | None) -> Settings:
    return settings.model_copy(update={"subscribers": path}) if path else settings


# --- commands ------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail run"""
    settings = _with_subscribers(settings, args.subscribers)
    with _http_client(settings) as client:
        report = app.run_batch(
            settings,
            day=args.date,
            client=client,
            clock=clock,
            only=args.only,
            dry_run=args.dry_run,
            resend_uncertain=args.resend_uncertain,
            retry_failed=args.retry_failed,
            progress=progress_for(sys.stderr),
        )
    print_summary(report)
    return app.exit_code_for(report)


def cmd_fetch(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail fetch"""
    with _http_client(settings) as client:
        day = app.gather(
            settings,
            args.date,
            client=client,
            clock=clock,
            categories=app.subscriber_categories(settings),
            refresh=args.refresh,
        )
    json.dump([p.to_json() for p in day.papers], sys.stdout, ensure_ascii=False, indent=2)
    print()
    log.info(
        "%d papers for %s%s",
        len(day.papers),
        args.date,
        f", {len(day.skipped)} malformed items skipped" if day.skipped else "",
    )
    return ExitCode.OK


def cmd_explain(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail explain"""
    settings = _with_subscribers(settings, args.subscribers)
    with _http_client(settings) as client:
        digest = app.explain(settings, args.email, day=args.date, client=client, clock=clock)
    if args.json:
        json.dump([s.to_json() for s in digest.papers], sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print_digest(digest)
    if reason := planning.skip_reason(digest.subscriber, digest.day):
        log.warning("%s gets no email on %s (%s)", args.email, digest.day.isoformat(), reason)
    return ExitCode.OK


def cmd_preview(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail preview"""
    settings = _with_subscribers(settings, args.subscribers)
    subscriber_set = load_subscribers(settings.subscribers)  # read once: categories, previews
    categories = app.categories_of(subscriber_set.subscribers)
    with _http_client(settings) as client:
        day = app.gather(settings, args.date, client=client, clock=clock, categories=categories)
    preview = render_previews(
        settings, day=day, out=args.out, only=args.subscriber, subscriber_set=subscriber_set
    )
    for problem in preview.problems:
        log.error("%s", problem)
    for entry in preview.entries:
        print(f"{args.out / entry.html_file}  {entry.papers} papers  {entry.subscriber.email}")
    if args.serve:
        server = PreviewServer.for_settings(
            settings, day=day, out=args.out, only=args.subscriber, port=args.port
        )
        print(
            f"serving {server.url} (renders again on every template or subscriber change; "
            "Ctrl-C stops)",
            flush=True,
        )
        server.serve_until_interrupted()
    else:
        print(f"open {args.out / 'index.html'} in a browser")
    return ExitCode.DATA_ERR if preview.problems else ExitCode.OK


def cmd_check(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail check"""
    path = args.path or settings.subscribers
    subscriber_set = load_subscribers(path)
    for problem in subscriber_set.problems:
        print(problem)
    valid = len(subscriber_set.subscribers)
    if subscriber_set.problems:
        print(
            f"{len(subscriber_set.problems)} problem(s); {valid} valid subscriber(s) in {path}",
            file=sys.stderr,
        )
        return ExitCode.DATA_ERR
    print(f"{valid} valid subscriber(s) in {path}", file=sys.stderr)
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail demo"""
    # The demo keeps its own state (under <state>/demo) and forgets what it sent last time, so it
    # can be run again and again without touching the real ledger.
    demo_settings = settings.model_copy(
        update={"state_dir": settings.state_dir / "demo", "smtp_host": None}
    )
    app.ledger_path(demo_settings).unlink(missing_ok=True)
    with sample_client() as client:
        print(
            f"papermail demo: the bundled sample day {SAMPLE_DAY.isoformat()}, "
            f"delivered to {settings.outbox}/"
        )
        report = app.run_batch(
            demo_settings,
            day=SAMPLE_DAY,
            client=client,
            clock=clock,
            progress=progress_for(sys.stderr),
        )
    print_summary(report)
    for result in report.results:
        if result.status is DeliveryStatus.SENT:
            print(f"  {settings.outbox / f'{SAMPLE_DAY.isoformat()}-{slug_of(result.email)}.eml'}")
    return app.exit_code_for(report)


# --- output --------------------------------------------------------------------------------------


def progress_for(stream: TextIO) -> engine.Progress:
    """A progress bar on a terminal; one log line per subscriber otherwise (cron, pipes)."""
    return TerminalProgress(stream) if stream.isatty() else LogProgress()


class LogProgress:
    """One log line per subscriber, for logs that are read later."""

    def start(self, total: int) -> None:
        """Say how many subscribers the run serves."""
        log.info("serving %d subscriber(s)", total)

    def advance(self, result: DeliveryResult) -> None:
        """Log one subscriber's result."""
        detail = f" ({result.detail})" if result.detail else ""
        log.info("%-16s %s%s", result.status.value, result.email, detail)

    def finish(self) -> None:
        """Nothing more to say; the summary follows on stdout."""


class TerminalProgress:
    """A one-line progress bar redrawn in place; log lines printed meanwhile clear it first."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.total = 0
        self.done = 0
        self.failed = 0
        self._filter = _ClearLine(stream)

    def start(self, total: int) -> None:
        """Draw the empty bar and make log lines clear it before they print."""
        self.total = total
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._filter)
        self._draw()

    def advance(self, result: DeliveryResult) -> None:
        """Count one result and redraw."""
        self.done += 1
        if result.status in FAILURES:
            self.failed += 1
        self._draw()

    def finish(self) -> None:
        """End the bar's line and stop clearing before log lines."""
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._filter)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self) -> None:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r\x1b[Ksending [{bar}] {self.done}/{self.total}{failed}")
        self.stream.flush()


class _ClearLine(logging.Filter):
    """Clears the progress bar's line before a log record is printed on the same terminal."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def filter(self, record: logging.LogRecord) -> bool:
        """Clear the line; let the record through."""
        self.stream.write("\r\x1b[K")
        return True


FAILURES = (
    DeliveryStatus.FAILED_PERMANENT,
    DeliveryStatus.FAILED_TRANSIENT,
    DeliveryStatus.UNCERTAIN,
)
SUMMARY_ROWS = (
    ("sent", DeliveryStatus.SENT),
    ("dry run (not sent)", DeliveryStatus.DRY_RUN),
    ("already sent", DeliveryStatus.ALREADY_SENT),
    ("nothing to send", DeliveryStatus.NOTHING_TO_SEND),
    ("skipped", DeliveryStatus.SKIPPED),
    ("failed permanently", DeliveryStatus.FAILED_PERMANENT),
    ("failed transiently", DeliveryStatus.FAILED_TRANSIENT),
    ("uncertain", DeliveryStatus.UNCERTAIN),
)


def print_summary(report: RunReport) -> None:
    """The end-of-run table on stdout, then one line per digest that did not go out."""
    mode = " (dry run)" if report.dry_run else ""
    print(
        f"papermail run for {report.day.isoformat()}{mode}: "
        f"{report.papers_gathered} papers gathered"
    )
    for label, status in SUMMARY_ROWS:
        print(f"  {label:<24}{report.count(status):>6}")
    print(f"  {'invalid subscribers':<24}{report.invalid_subscribers:>6}")
    print(f"  {'skipped upstream items':<24}{len(report.skipped_items):>6}")
    if report.stopped:
        print(f"stopped early: {report.stopped}")
    problems = [r for r in report.results if r.status in FAILURES]
    if problems:
        print("not delivered:")
    for result in problems:
        print(f"  {result.email}: {result.status.value}: {result.detail}")


def print_digest(digest: Digest) -> None:
    """``explain``'s human-readable listing."""
    who = digest.subscriber.email
    if not digest.papers:
        print(f"{who}, {digest.day.isoformat()}: nothing matched")
        return
    print(f"{who}, {digest.day.isoformat()}: {len(digest.papers)} paper(s)")
    for rank, scored in enumerate(digest.papers, start=1):
        print(f"{rank:>2}. [{scored.score:6.2f}] {scored.paper.title} ({scored.paper.id})")
        for reason in scored.reasons:
            print(f"      - {reason}")
