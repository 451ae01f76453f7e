"""The Hugging Face Daily Papers API as a paper source.

``GET {url}?date=YYYY-MM-DD&limit=100&p=N`` answers a JSON list of items, each with a nested
``paper`` object. Pages (``p`` counts from 0; the server caps ``limit`` at 100) are fetched until
one comes back short or empty, so a day of any length arrives whole (up to ``MAX_ITEMS``, far
beyond any real day: a source answering thousands of items is cut there, with a warning).
``[]`` is an ordinary empty day (weekends).

Every paper belongs to the requested day: that is its Daily Papers day (the day it was listed,
``submittedOnDailyAt``), whatever the arXiv-based ``publishedAt`` says, and it is what
``Paper.published`` holds. Only an id and a title are required; odd or missing optional fields
become "unknown", never a lost paper. An item without id or title is skipped and reported. The
same paper listed twice (also as ``…v2``) is kept once, the copy with more upvotes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from typing import Any

import httpx

from pipeline.errors import SourceError
from pipeline.models import Day, Paper, SkippedItem, sane_count
from pipeline.sources.http import Fetcher, snippet
from pipeline.sources.text import (
    LONG_TEXT,
    MalformedItem,
    bare_arxiv_id,
    clean_text,
    clean_title,
    github_url,
    http_url,
    is_arxiv_id,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_AUTHORS = 5_000  # the largest collaborations sign about 3,000
MAX_KEYWORDS = 100
MAX_PAGES = 50  # stops a server that never ends its list
MAX_ITEMS = 2_000  # items kept for one day: far beyond any real day, however the pages come


def fetch_day(fetcher: Fetcher, url: str, day: date) -> Day:
    """Fetch every page of one Daily Papers day and parse it into papers."""
    items: list[Any] = []
    seen: set[str] = set()
    for page in range(MAX_PAGES):
        params = {"date": day.isoformat(), "limit": str(PAGE_SIZE), "p": str(page)}
        batch = _decode(fetcher.get(url, params), url)
        if len(batch) > PAGE_SIZE:
            log.warning(
                "%s answered %d items to limit=%d for %s (page %d)",
                url,
                len(batch),
                PAGE_SIZE,
                day,
                page,
            )
        if len(items) + len(batch) > MAX_ITEMS:
            items.extend(batch[: MAX_ITEMS - len(items)])
            log.warning(
                "%s: more than %d items for %s; keeping the first %d",
                url,
                MAX_ITEMS,
                day,
                MAX_ITEMS,
            )
            break
        items.extend(batch)
        ids = {str(i["paper"]["id"]) for i in batch if _has_paper(i) and i["paper"].get("id")}
        if len(batch) < PAGE_SIZE:
            break
        if ids and ids <= seen:
            log.warning("%s repeats page %d for %s: it ignores `p`; stopping", url, page, day)
            break
        seen |= ids
    else:
        log.warning("%s: stopped after %d pages for %s", url, MAX_PAGES, day)
    return parse_items(items, day)


def parse_items(items: Iterable[Any], day: date) -> Day:
    """Turn API items into unique papers (the higher-upvoted copy of a duplicate wins)."""
    papers: dict[str, Paper] = {}
    skipped: list[SkippedItem] = []
    for position, item in enumerate(items):
        try:
            paper = parse_item(item, day)
        except MalformedItem as exc:
            skipped.append(SkippedItem("huggingface", position, str(exc)))
            continue
        kept = papers.get(paper.id)
        if kept is None or paper.upvotes > kept.upvotes:
            papers[paper.id] = paper
    return Day(day=day, papers=tuple(papers.values()), skipped=tuple(skipped))


def parse_item(item: Any, day: date) -> Paper:
    """One API item → a clean Paper of ``day``; raises MalformedItem when it is unusable."""
    if not _has_paper(item):
        raise MalformedItem("item has no `paper` object")
    raw: dict[str, Any] = item["paper"]
    paper_id = bare_arxiv_id(clean_text(raw.get("id")))
    if not paper_id:
        raise MalformedItem("paper has no id")
    if not is_arxiv_id(paper_id):
        raise MalformedItem(f"paper id {snippet(paper_id, 40)!r} is not an arXiv id")
    title = clean_title(raw.get("title") or item.get("title"))
    if not title:
        raise MalformedItem(f"paper {paper_id} has no title")
    return Paper(
        id=paper_id,
        title=title,
        abstract=clean_title(raw.get("summary") or item.get("summary"), LONG_TEXT),
        authors=_authors(raw.get("authors")),
        published=day,
        upvotes=sane_count(raw.get("upvotes")) or 0,
        url=f"https://huggingface.co/papers/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        source="huggingface",
        ai_summary=clean_title(raw.get("ai_summary"), LONG_TEXT) or None,
        keywords=_strings(raw.get("ai_keywords")),
        github_url=github_url(raw.get("githubRepo")),
        project_url=http_url(raw.get("projectPage")),
        num_comments=sane_count(item.get("numComments")),
    )


def _decode(response: httpx.Response, url: str) -> list[Any]:
    """The page as a list of items; anything else is the source misbehaving."""
    try:
        batch = response.json()
    except RecursionError:  # the standard library's parser recurses once per nested list
        raise SourceError(
            f"Daily Papers API at {url} answered JSON nested too deep to read",
            url=url,
            status=response.status_code,
        ) from None
    except ValueError as exc:
        raise SourceError(
            f"Daily Papers API at {url} answered invalid JSON: {snippet(response.text)}",
            url=url,
            status=response.status_code,
        ) from exc
    if not isinstance(batch, list):
        raise SourceError(
            f"Daily Papers API at {url} answered {type(batch).__name__}, expected a list: "
            f"{snippet(response.text)}",
            url=url,
            status=response.status_code,
        )
    return batch


def _has_paper(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("paper"), dict)


def _authors(value: Any) -> tuple[str, ...]:
    """Author names in order, once each. Hidden authors (``"hidden": true`` only hides a claimed
    paper on its owner's Hub profile) are still the paper's authors, so they stay."""
    if not isinstance(value, list):
        return ()
    names = (clean_text(a.get("name") if isinstance(a, dict) else a) for a in value[:MAX_AUTHORS])
    return tuple(dict.fromkeys(n for n in names if n))


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(t for t in (clean_text(v) for v in value[:MAX_KEYWORDS]) if t))
