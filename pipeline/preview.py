"""Preview: every subscriber's email written to a folder (HTML, text, an index), nothing sent."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.ledger import Ledger
from pipeline.models import Day, Subscriber
from pipeline.ranking import rank_all
from pipeline.rendering import Renderer
from pipeline.run import digest_for, skip_reason
from pipeline.sources.archive import write_atomic


@dataclass(frozen=True, slots=True)
class PreviewEntry:
    """One subscriber's previewed email."""

    subscriber: Subscriber
    papers: int
    html_file: str
    text_file: str
    note: str = ""


def write_previews(
    out: Path,
    *,
    day: Day,
    subscribers: Sequence[Subscriber],
    renderer: Renderer,
    ledger: Ledger | None,
) -> list[PreviewEntry]:
    """Render each subscriber's email into ``out`` and write ``index.html`` linking them."""
    entries = []
    rankings = rank_all(day.papers, subscribers)
    for subscriber in subscribers:
        digest = digest_for(subscriber, day, ledger, rankings)
        rendered = renderer.render(digest)
        html_file, text_file = f"{subscriber.slug}.html", f"{subscriber.slug}.txt"
        write_atomic(out / html_file, rendered.html)
        write_atomic(out / text_file, rendered.text)
        entries.append(
            PreviewEntry(
                subscriber,
                len(digest.papers),
                html_file,
                text_file,
                skip_reason(subscriber, day.day) or "",
            )
        )
    write_atomic(out / "index.html", index_page(entries, day))
    return entries


def index_page(entries: Sequence[PreviewEntry], day: Day) -> str:
    """A small page listing every previewed email with its paper count."""
    rows = "\n".join(
        f'<li><a href="{html.escape(e.html_file)}">{html.escape(e.subscriber.email)}</a>'
        f" — {e.papers} paper{'s' if e.papers != 1 else ''}"
        f' (<a href="{html.escape(e.text_file)}">text</a>)'
        + (f" <em>{html.escape(e.note)}: would not be sent</em>" if e.note else "")
        + "</li>"
        for e in entries
    )
    title = f"papermail preview · {day.day.isoformat()}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title></head>\n<body style="font-family: sans-serif; margin: 2em;">'
        f"<h1>{title}</h1>\n<p>{len(day.papers)} papers gathered.</p>\n"
        f"<ul>\n{rows}\n</ul>\n</body></html>\n"
    )
