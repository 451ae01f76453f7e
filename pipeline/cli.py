"""The ``papermail`` command: parses arguments, calls one library function, prints, and maps errors
to SPEC's exit codes. The only module that prints or reads ``sys.argv``.

Each command imports what it needs when it runs (numpy, scipy, premailer, lxml, dkim and httpx only
where used), so ``--help``, ``--version`` and ``check`` answer at once.
"""

# ruff: noqa: PLC0415 (imports inside functions keep start-up fast: see the docstring)
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline import __version__
from pipeline.clock import SYSTEM_CLOCK, Clock
from pipeline.errors import ExitCode, PapermailError, UsageError
from pipeline.logs import setup_logging

if TYPE_CHECKING:
    import httpx

    from pipeline import engine
    from pipeline.models import DeliveryResult, Digest, RunReport
    from pipeline.settings import Settings

log = logging.getLogger("papermail")

#: The days a command accepts: none before arXiv opened (August 1991), and none a century ahead
#: (a typo, and near ``date.max`` the catch-up's date arithmetic would overflow).
FIRST_DAY = date(1991, 8, 1)
LATEST_AHEAD = timedelta(days=36525)

EXIT_CODES = """\
exit codes (what cron should do):
  0   all done
  1   unexpected error (a bug: report it with the -v output)
  2   usage error (fix the command line)
  65  invalid subscriber data; the others were still served (fix the file; `papermail check`)
  67  a recipient was refused permanently (5xx; recorded, not retried)
  69  a paper source or the SMTP server was unavailable (the next run retries)
  75  deliveries failed transiently or are uncertain, another run holds the lock, or the disk is
      full (the next run retries; uncertain ones only with --resend-uncertain)
  78  invalid settings, a state directory that cannot be written, or the SMTP server
      refusing our AUTH, STARTTLS or From address (fix the configuration)
  130 stopped by SIGINT, 143 by SIGTERM (replies in flight recorded; a rerun sends the rest)
where several apply, the first of 130, 143, 78, 69, 75, 67, 65 wins."""


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
    if getattr(args, "handler", None) is None:  # bare `papermail`: the help, as a usage error
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    # ISO 8601 UTC stamps unless stderr is a terminal; the libraries' own notes quietened
    setup_logging(sys.stderr, verbose=getattr(args, "verbose", False))
    return _run_command(args, clock)


def _run_command(args: argparse.Namespace, clock: Clock) -> int:
    """Load the settings, run the command's handler, and turn every failure into its exit code."""
    settings: Settings | None = None
    try:
        from pipeline.settings import load_settings

        settings = load_settings()
        return int(args.handler(args, settings, clock))
    except PapermailError as exc:
        print(f"papermail: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("papermail: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `papermail fetch | head`: the reader has all it wanted
        _silence_stdout()
        return ExitCode.OK
    except Exception as exc:
        known = _system_failure(exc, settings)
        if known is None:  # the last resort: one line, the traceback only with --verbose
            log.debug("unexpected error", exc_info=True)
            known = (
                f"unexpected error: {type(exc).__name__}: {exc} (rerun with -v for details)",
                ExitCode.UNEXPECTED,
            )
        message, code = known
        prefix = "papermail: " if code == ExitCode.UNEXPECTED else "papermail: error: "
        print(prefix + message, file=sys.stderr)
        return code


@contextlib.contextmanager
def _reader_may_leave() -> Iterator[None]:
    """Printing to a reader that went away (a closed pipe) ends the output, not the command."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (a test's capture)
        pass


def _system_failure(exc: Exception, settings: Settings | None) -> tuple[str, int] | None:
    """A state directory that cannot be written (78) or a full disk (75), with the path.

    SQLite says "database or disk is full" without a path or errno: the ledger is the file it
    was writing, and its transaction was rolled back, so the ledger is as before.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        where = exc.filename or (settings.state_dir if settings else "?")
        return f"cannot use {where}: {what} (check PAPERMAIL_STATE_DIR)", ExitCode.CONFIG
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = exc.filename or (settings.state_dir if settings else "?")
        return f"no space left on the device writing {where}", ExitCode.TEMP_FAIL
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 and isinstance(exc, sqlite3.OperationalError) and settings is not None:
        ledger = settings.state_dir / "ledger.sqlite3"
        text = str(exc)
        if "disk is full" in text:
            return (
                f"no space left on the device writing {ledger} (the ledger is unchanged)",
                ExitCode.TEMP_FAIL,
            )
        if "disk I/O error" in text:
            return f"cannot write {ledger}: {text} (is the disk full?)", ExitCode.TEMP_FAIL
        if "readonly" in text or "unable to open" in text:
            return f"cannot write {ledger}: {text} (check PAPERMAIL_STATE_DIR)", ExitCode.CONFIG
    return None


def build_parser(clock: Clock) -> argparse.ArgumentParser:
    """The argument parser with one sub-command per SPEC command.

    The global options (-v, -V, --help) are accepted before and after the command.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # so a sub-command does not reset what was given before it
        help="debug logging on stderr (tracebacks of unexpected errors)",
    )
    common.add_argument("-V", "--version", action="version", version=f"papermail {__version__}")
    parser = argparse.ArgumentParser(
        prog="papermail",
        description="A personal daily research-papers newsletter: gather, rank, render, send. "
        "Without a command, this help (exit 2).",
        epilog="Settings come from PAPERMAIL_* environment variables and .env "
        "(docs/settings.md).\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    # Not verbose=False here: the -v action is shared with every sub-command (parents=), and a
    # default set on it would reset a -v given before the command.
    parser.set_defaults(handler=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    today = clock.now().astimezone(UTC).date()

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    _add_daily_commands(command, today)
    _add_setup_commands(command, today)
    return parser


Command = Callable[[str, str, str], argparse.ArgumentParser]


def _day_option(p: argparse.ArgumentParser, today: date) -> None:
    yesterday = today - timedelta(days=1)
    p.add_argument(
        "--date",
        type=lambda text: _date(text, latest=today + LATEST_AHEAD),
        default=yesterday,
        metavar="YYYY-MM-DD",
        help=f"Daily Papers day in UTC (default: yesterday, {yesterday.isoformat()})",
    )


def _subscribers_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--subscribers",
        type=_path,
        metavar="PATH",
        help="a subscriber YAML file or a directory of them "
        "(default: PAPERMAIL_SUBSCRIBERS, else subscribers/)",
    )


def _only_option(p: argparse.ArgumentParser, *aliases: str) -> None:
    p.add_argument(
        "--only",
        *aliases,
        dest="only",
        action="append",
        default=[],
        metavar="EMAIL",
        help="only this subscriber (repeatable; default: every active subscriber)",
    )


def _add_daily_commands(command: Command, today: date) -> None:
    """run, fetch, explain, preview: the commands about one day's papers."""

    p = command(
        "run",
        "the daily batch: gather, rank, render and send",
        "Gather the day's papers, rank them for every active subscriber, render and send each "
        "digest; print a summary and write a JSON report into PAPERMAIL_STATE_DIR/reports/.",
    )
    _day_option(p, today)
    _subscribers_option(p)
    _only_option(p)
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

    p = command(
        "fetch",
        "gather and archive the day's papers; print them as JSON",
        "Gather the day's papers (from the archive unless --refresh) and print them as a JSON "
        "array on stdout. The subscribers' arXiv categories decide which arXiv papers join.",
    )
    _day_option(p, today)
    _subscribers_option(p)
    p.add_argument("--refresh", action="store_true", help="fetch again even if the day is archived")
    p.set_defaults(handler=cmd_fetch)

    p = command(
        "explain",
        "show the digest one subscriber would get, with reasons",
        "Show the digest EMAIL would get for the day, in order, with score and reasons. "
        "Sends nothing, changes nothing.",
    )
    p.add_argument(
        "email", metavar="EMAIL", help="the subscriber's address, as in their subscriber file"
    )
    _day_option(p, today)
    _subscribers_option(p)
    p.add_argument(
        "--json", action="store_true", help="print a JSON array of {id, title, score, reasons}"
    )
    p.set_defaults(handler=cmd_explain)

    p = command(
        "preview",
        "render every subscriber's email to files, send nothing",
        "Render each subscriber's email to DIR/<slug>.html and .txt plus an index.html.",
    )
    _day_option(p, today)
    _only_option(p, "--subscriber")
    _subscribers_option(p)
    p.add_argument(
        "--out",
        type=_path,
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
        type=_port,
        default=8000,
        metavar="N",
        help="port for --serve, 1-65535, or 0 for any free one (default: 8000)",
    )
    p.set_defaults(handler=cmd_preview)


def _add_setup_commands(command: Command, today: date) -> None:
    """check, demo, init, send-test: the commands that help set papermail up."""
    p = command(
        "check",
        "validate subscriber files",
        "Validate subscriber files; print each problem as file:line: field: message.",
    )
    _subscribers_option(p)
    p.add_argument(
        "path",
        nargs="?",
        type=_path,
        metavar="PATH",
        help="the same as --subscribers PATH (kept for older scripts)",
    )
    p.set_defaults(handler=cmd_check)

    p = command(
        "demo",
        "the whole pipeline on the bundled sample day, offline, into the outbox",
        "Run the whole pipeline on the bundled sample day (no network) and deliver to the "
        "outbox directory (PAPERMAIL_OUTBOX, default outbox/) as .eml files.",
    )
    _subscribers_option(p)
    p.set_defaults(handler=cmd_demo)

    p = command(
        "init",
        "write a commented subscriber file for EMAIL",
        "Write a commented subscriber file for EMAIL into the subscribers directory "
        "(never overwrites); edit it, then `papermail check`.",
    )
    p.add_argument("email", metavar="EMAIL", help="the new subscriber's address")
    _subscribers_option(p)
    p.set_defaults(handler=cmd_init)

    p = command(
        "send-test",
        "send one real digest to ADDRESS, to prove the mail settings",
        "Render one real digest (that subscriber's with --only, else the bundled sample day's "
        "for a sample profile) and send it to ADDRESS through the configured transport (SMTP, "
        "or the outbox without PAPERMAIL_SMTP_HOST). Prints the server's reply; writes nothing "
        "to the ledger.",
    )
    p.add_argument("address", metavar="ADDRESS", help="where the test digest goes")
    p.add_argument(
        "--only",
        "--subscriber",
        dest="only",
        metavar="EMAIL",
        help="render this subscriber's digest for --date (default: the sample day's digest)",
    )
    _day_option(p, today)
    _subscribers_option(p)
    p.set_defaults(handler=cmd_send_test)

    p = command(
        "schema",
        "print the JSON Schema of a subscriber file (for editors)",
        "Print the JSON Schema of a subscriber file, generated from the model `check` uses. "
        "Save it (papermail schema > subscriber.schema.json) and put "
        "`# yaml-language-server: $schema=subscriber.schema.json` at the top of a subscriber "
        "file: editors with YAML support then check it while you type.",
    )
    p.set_defaults(handler=cmd_schema)


def _port(text: str) -> int:
    """A TCP port for ``preview --serve``: 1-65535, or 0 for one the system picks."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535, or 0 for any free one)")
    return port


def _path(text: str) -> Path:
    """A path the system can open (the settings' rule: no control characters, not too long)."""
    from pipeline.settings import check_path

    try:
        check_path(Path(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: {exc}") from None
    return Path(text)


def _date(text: str, *, latest: date) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if not FIRST_DAY <= day <= latest:
        raise argparse.ArgumentTypeError(
            f"{text} is out of range ({FIRST_DAY.isoformat()} to {latest.isoformat()})"
        )
    return day


def _http_client(settings: Settings) -> httpx.Client:
    import httpx  # only the commands that fetch pay for it

    return httpx.Client(
        timeout=settings.http_timeout,
        headers={"User-Agent": f"papermail/{__version__}"},
        follow_redirects=False,  # each use sets its own policy: the sources follow same-host only
    )


def _subscribers(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with ``--subscribers PATH`` (or ``check PATH``) applied."""
    path = getattr(args, "path", None) or getattr(args, "subscribers", None)
    return settings.model_copy(update={"subscribers": path}) if path else settings


# --- commands ------------------------------------------------------------------------------------
# Each imports the library side it needs when it runs (see the module docstring).


def cmd_run(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail run"""
    from pipeline import app

    settings = _subscribers(settings, args)
    if not args.dry_run:
        _ready_outbox(settings)
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
            progress=progress_for(sys.stderr, outbox_note=_outbox_note(settings)),
        )
    with _reader_may_leave():  # `papermail run | head`: the run's exit code still counts
        print_summary(report)
    return app.exit_code_for(report)


def cmd_fetch(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail fetch"""
    import json

    from pipeline import app

    settings = _subscribers(settings, args)
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
    print(flush=True)
    log.info(
        "%d papers for %s%s",
        len(day.papers),
        args.date,
        f", {len(day.skipped)} malformed items skipped" if day.skipped else "",
    )
    return ExitCode.OK


def cmd_explain(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail explain"""
    import json

    from pipeline import app, planning

    settings = _subscribers(settings, args)
    with _http_client(settings) as client:
        digest = app.explain(settings, args.email, day=args.date, client=client, clock=clock)
    if args.json:
        json.dump([s.to_json() for s in digest.papers], sys.stdout, ensure_ascii=False, indent=2)
        print()
        log.info("covers %s; waits for %s", _days(digest.covers), _days(digest.waiting) or "none")
    else:
        print_digest(digest)
    if reason := planning.skip_reason(digest.subscriber, digest.day):
        log.warning("%s gets no email on %s (%s)", args.email, digest.day.isoformat(), reason)
    return ExitCode.OK


def cmd_preview(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail preview"""
    from pipeline import app
    from pipeline.preview import PreviewServer, render_previews
    from pipeline.subscribers import load_subscribers

    settings = _subscribers(settings, args)
    if reason := _unwritable(args.out):  # a command-line option: a usage error, before the work
        raise UsageError(f"--out {args.out}: cannot create or write it: {reason}")
    subscriber_set = load_subscribers(settings.subscribers)  # read once: categories, previews
    chosen = app.select(subscriber_set, args.only)  # an unknown --only fails before gathering
    only = args.only[0] if len(args.only) == 1 else None
    if args.serve and len(args.only) > 1:
        raise UsageError("preview --serve takes one --only EMAIL (or none for everyone)")
    categories = app.categories_of(subscriber_set.subscribers)
    with _http_client(settings) as client:
        gather = partial(app.gather, settings, client=client, clock=clock, categories=categories)
        day = gather(args.date)
        preview = render_previews(
            settings,
            day=day,
            out=args.out,
            subscriber_set=dataclasses.replace(subscriber_set, subscribers=chosen),
            gather=gather,  # the earlier days the digests cover, as a run gathers them
        )
    for problem in preview.problems:
        log.error("%s", problem)
    for entry in preview.entries:
        print(f"{args.out / entry.html_file}  {entry.papers} papers  {entry.subscriber.email}")
    if args.serve:
        server = PreviewServer.for_settings(
            settings, day=day, out=args.out, only=only, port=args.port
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


def cmd_check(args: argparse.Namespace, settings: Settings, _clock: Clock) -> int:
    """papermail check"""
    from pipeline.subscribers import load_subscribers

    if args.path and args.subscribers:
        raise UsageError("check takes PATH or --subscribers PATH, not both")
    path = _subscribers(settings, args).subscribers
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
    from pipeline import app
    from pipeline.bundled import EXAMPLE_SUBSCRIBERS
    from pipeline.models import DeliveryStatus, slug_of
    from pipeline.sources.sample import SAMPLE_DAY, sample_client

    settings = _subscribers(settings, args)
    # The demo keeps its own state (under <state>/demo) and forgets what it sent last time, so it
    # can be run again and again without touching the real ledger. It serves the example
    # subscribers that ship with papermail, never the user's own.
    demo_settings = settings.model_copy(
        update={
            "state_dir": settings.state_dir / "demo",
            "smtp_host": None,
            "subscribers": EXAMPLE_SUBSCRIBERS,
        }
    )
    _ready_outbox(demo_settings)
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
    with _reader_may_leave():
        print_summary(report, outbox_reason="the demo never sends mail")
        for result in report.results:
            if result.status is DeliveryStatus.SENT:
                eml = f"{SAMPLE_DAY.isoformat()}-{slug_of(result.email)}.eml"
                print(f"  {settings.outbox / eml}")
    return app.exit_code_for(report)


def cmd_schema(_args: argparse.Namespace, _settings: Settings, _clock: Clock) -> int:
    """papermail schema"""
    import json

    from pipeline.subscribers import subscriber_schema

    with _reader_may_leave():
        print(json.dumps(subscriber_schema(), indent=2, ensure_ascii=False))
    return ExitCode.OK


def cmd_init(args: argparse.Namespace, settings: Settings, _clock: Clock) -> int:
    """papermail init"""
    from pipeline.firststeps import init_subscriber

    path = init_subscriber(_subscribers(settings, args).subscribers, args.email)
    print(path)
    print(
        f"written; edit its topics, then `papermail check` and `papermail explain {args.email}`",
        file=sys.stderr,
    )
    return ExitCode.OK


def cmd_send_test(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """papermail send-test"""
    from pipeline.firststeps import send_test

    settings = _subscribers(settings, args)
    _ready_outbox(settings)
    with _http_client(settings) as client:
        sent = send_test(
            settings, args.address, only=args.only, day=args.date, client=client, clock=clock
        )
    print(f"{sent.message_id} to {args.address} via {sent.transport}: {sent.reply}")
    print(f"  {sent.papers} paper(s) from {sent.what}; nothing was written to the ledger")
    return ExitCode.OK


def _ready_outbox(settings: Settings) -> None:
    """In outbox mode, make the outbox folder and prove it takes a file, before anything is
    rendered: a folder that cannot be made or written is the setting's fault (78, with the path),
    not five delivery attempts and then 69."""
    if settings.smtp_host:
        return
    from pipeline.errors import SettingsError

    if reason := _unwritable(settings.outbox):
        raise SettingsError(f"PAPERMAIL_OUTBOX: cannot create or write {settings.outbox}: {reason}")


def _unwritable(folder: Path) -> str | None:
    """Why ``folder`` cannot be made or take a file (the system's reason), or None when it can."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _outbox_note(settings: Settings) -> str | None:
    from pipeline.report import outbox_note

    return outbox_note(settings)


# --- output --------------------------------------------------------------------------------------


def progress_for(stream: TextIO, *, outbox_note: str | None = None) -> engine.Progress:
    """A progress bar on a terminal; one log line per subscriber otherwise (cron, pipes).

    ``outbox_note`` (outbox mode) is said on the progress line, so nobody mistakes files for mail.
    """
    if stream.isatty():
        return TerminalProgress(stream, note=outbox_note)
    return LogProgress(note=outbox_note)


class LogProgress:
    """One log line per subscriber, for logs that are read later."""

    def __init__(self, *, note: str | None = None) -> None:
        self.note = note

    def start(self, total: int) -> None:
        """Say how many subscribers the run serves (and that mail goes to files, if it does)."""
        log.info("serving %d subscriber(s)%s", total, f"; {self.note}" if self.note else "")

    def advance(self, result: DeliveryResult) -> None:
        """Log one subscriber's result."""
        detail = f" ({result.detail})" if result.detail else ""
        log.info("%-16s %s%s", result.status.value, result.email, detail)

    def finish(self) -> None:
        """Nothing more to say; the summary follows on stdout."""


class TerminalProgress:
    """A one-line progress bar redrawn in place; log lines printed meanwhile clear it first."""

    WIDTH = 30

    def __init__(self, stream: TextIO, *, note: str | None = None) -> None:
        self.stream = stream
        self.note = note
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
        if result.status.value in FAILURES:
            self.failed += 1
        self.done += 1
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
        note = f" — {self.note}" if self.note else ""
        self.stream.write(f"\r\x1b[Ksending [{bar}] {self.done}/{self.total}{failed}{note}")
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


FAILURES = ("failed_permanent", "failed_transient", "uncertain")
LABELS = {
    "sent": "sent",
    "dry_run": "dry run (not sent)",
    "already_sent": "already sent",
    "nothing_to_send": "nothing to send",
    "skipped": "skipped",
    "failed_permanent": "failed permanently",
    "failed_transient": "failed transiently",
    "uncertain": "uncertain",
}


def print_summary(
    report: RunReport, *, outbox_reason: str = "PAPERMAIL_SMTP_HOST is not set"
) -> None:
    """What happened, on stdout: the rows that are not zero, where mail went, what did not go out.

    Zero counts are left out; a run that served nobody says so in words.
    """
    mode = " (dry run)" if report.dry_run else ""
    print(
        f"papermail run for {report.day.isoformat()}{mode}: "
        f"{report.papers_gathered} papers gathered"
    )
    if report.transport and not report.dry_run:
        where = report.transport
        if report.outbox:
            where = f"written to {where.removeprefix('outbox ')} — {outbox_reason}"
        print(f"  mail: {where}")
    rows = [(LABELS.get(status, status), n) for status, n in report.counts().items()]
    rows += [
        ("invalid subscribers", report.invalid_subscribers),
        ("skipped upstream items", len(report.skipped_items)),
    ]
    rows = [(label, n) for label, n in rows if n]
    for label, n in rows:
        print(f"  {label:<24}{n:>6}")
    if not report.results:
        print("  no subscriber to serve")
    problems = [r for r in report.results if r.status.value in FAILURES]
    if problems:
        print("not delivered:")
    for result in problems:
        print(f"  {result.email}: {result.status.value}: {result.detail}")
    if report.missing_days:
        print(f"days not gathered yet (digests wait for them): {_days(report.missing_days)}")
    if report.stopped:
        print(f"stopped early: {report.stopped}")
    if report.duration is not None:
        print(f"  took {report.duration:.1f} s; exit code {report.exit_code}")


def print_digest(digest: Digest) -> None:
    """``explain``'s human-readable listing."""
    who = digest.subscriber.email
    if not digest.papers:
        print(f"{who}, {digest.day.isoformat()}: nothing matched")
    else:
        print(f"{who}, {digest.day.isoformat()}: {len(digest.papers)} paper(s)")
    print(f"  covers {_days(digest.covers)}")
    if digest.waiting:
        print(f"  waits for {_days(digest.waiting)} (not gathered yet)")
    for rank, scored in enumerate(digest.papers, start=1):
        print(f"{rank:>2}. [{scored.score:6.2f}] {scored.paper.title} ({scored.paper.id})")
        for reason in scored.reasons:
            print(f"      - {reason}")


def _days(days: Sequence[date]) -> str:
    return ", ".join(d.isoformat() for d in days)
