"""The Hugging Face Daily Papers API as a paper source.

``GET {url}?date=YYYY-MM-DD&limit=100&p=N`` answers a JSON list of items, each with a nested
``paper`` object. Pages are fetched until one comes back short; malformed items are skipped and
reported, never allowed to cost the rest of the day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx

from pipeline.errors import SourceError
from pipeline.models import Day, Paper, SkippedItem
from pipeline.sources.http import get_json
from pipeline.sources.text import bare_arxiv_id, clean_text

PAGE_SIZE = 100
MAX_PAGES = 50  # 5,000 papers: far beyond any real day; stops a server that never ends its list


def fetch_day(
    client: httpx.Client,
    url: str,
    day: date,
    *,
    sleep: Callable[[float], None],
    max_attempts: int = 4,
) -> Day:
    """Fetch every page of one Daily Papers day and parse it into papers."""
    items: list[Any] = []
    for page in range(MAX_PAGES):
        params = {"date": day.isoformat(), "limit": str(PAGE_SIZE), "p": str(page)}
        batch = get_json(client, url, params=params, sleep=sleep, max_attempts=max_attempts)
        if not isinstance(batch, list):
            raise SourceError(
                f"Daily Papers API at {url} answered {type(batch).__name__}, expected a list",
                url=url,
            )
        items.extend(batch)
        if len(batch) < PAGE_SIZE:
            break
    return parse_items(items, day)


def parse_items(items: list[Any], day: date) -> Day:
    """Turn API items into unique papers (the higher-upvoted copy of a duplicate wins)."""
    papers: dict[str, Paper] = {}
    skipped: list[SkippedItem] = []
    for position, item in enumerate(items):
        try:
            paper = parse_item(item)
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(SkippedItem("huggingface", position, _describe(exc)))
            continue
        kept = papers.get(paper.id)
        if kept is None or paper.upvotes > kept.upvotes:
            papers[paper.id] = paper
    return Day(day=day, papers=tuple(papers.values()), skipped=tuple(skipped))


def parse_item(item: Any) -> Paper:
    """One API item → a clean Paper; raises KeyError/TypeError/ValueError when it is unusable."""
    raw = item["paper"]
    paper_id = bare_arxiv_id(str(raw.get("id") or ""))
    title = clean_text(raw.get("title") or item.get("title"))
    if not paper_id:
        raise ValueError("item has no paper id")
    if not title:
        raise ValueError(f"paper {paper_id} has no title")
    authors = tuple(
        name
        for a in raw.get("authors") or ()
        if (name := clean_text(a.get("name") if isinstance(a, dict) else a))
    )
    return Paper(
        id=paper_id,
        title=title,
        abstract=clean_text(raw.get("summary")),
        authors=authors,
        published=_date(raw.get("publishedAt") or item.get("publishedAt")),
        upvotes=int(raw.get("upvotes") or 0),
        url=f"https://huggingface.co/papers/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        source="huggingface",
        ai_summary=clean_text(raw.get("ai_summary")) or None,
        keywords=tuple(k for k in (clean_text(k) for k in raw.get("ai_keywords") or ()) if k),
        github_url=_github_url(raw.get("githubRepo")),
        project_url=clean_text(raw.get("projectPage")) or None,
        num_comments=_int_or_none(item.get("numComments")),
    )


def _date(value: Any) -> date:
    if not value:
        raise ValueError("paper has no publishedAt date")
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()


def _github_url(value: Any) -> str | None:
    """``githubRepo`` comes as a full URL or as ``owner/repo``."""
    text = clean_text(value)
    if not text:
        return None
    if text.startswith(("http://", "https://")):
        return text
    return f"https://github.com/{text.strip('/')}"


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
