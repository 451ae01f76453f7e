"""The arXiv export API as a paper source, for the categories subscribers list.

One query covers the union of every subscriber's categories, so each paper is fetched once:
``search_query=(cat:cs.LG OR cat:physics.comp-ph) AND submittedDate:[D0000 TO D2359]``, sorted by
submission date and paged with ``start``/``max_results`` until ``opensearch:totalResults`` is
reached, or until a page brings no entry not already read (a server that ignores ``start``).
arXiv asks for at most one request every 3 seconds; the fetcher keeps that pace.

The arXiv papers of a day D are the entries first submitted on D (UTC): their ``published``
(the v1 timestamp) falls on D. That is what the query asks for and what is checked again on each
entry. A paper submitted late on D that arXiv has not announced yet when the day is gathered is
not in the archived day; ``fetch --refresh`` picks it up.

The feed is Atom, parsed by ``defusedxml`` with DTDs forbidden: a document carrying a DTD, in
whatever encoding it declares (UTF-16 hides ``<!DOCTYPE`` from a byte search), is refused outright
before any entity is expanded. A query arXiv cannot run answers HTTP 200
with a single entry titled "Error": that is a ``SourceError``, not a paper.
"""

from __future__ import annotations

import itertools
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pipeline.errors import SourceError
from pipeline.models import Day, Paper, SkippedItem
from pipeline.sources.http import Fetcher, snippet
from pipeline.sources.text import (
    LONG_TEXT,
    MalformedItem,
    bare_arxiv_id,
    clean_text,
    clean_title,
    http_url,
    is_arxiv_id,
)

log = logging.getLogger(__name__)

MIN_INTERVAL = 3.0  # seconds between requests, as arXiv's API terms ask
PAGE_SIZE = 500
MAX_PAGES = 60  # 30,000 entries: the most arXiv's API will page through anyway
MAX_AUTHORS = 5_000  # the largest collaborations sign about 3,000
EMPTY_PAGE_RETRIES = 3  # arXiv sometimes answers a page of a known-larger result with no entries

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_TOTAL = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is true, int("²") fails
_CATEGORY = re.compile(r"[a-z][a-z\-]*(?:\.[A-Za-z][A-Za-z\-]*)?")


@dataclass(frozen=True, slots=True)
class Feed:
    """One page of the API's answer: the total the query matches, and this page's entries."""

    total: int
    entries: tuple[ET.Element, ...]


def fetch_day(fetcher: Fetcher, url: str, day: date, categories: Collection[str]) -> Day:
    """The papers first submitted on ``day`` in any of ``categories`` (none when it is empty)."""
    query = day_query(categories, day)
    if not query:
        return Day(day=day, papers=())
    entries: list[ET.Element] = []
    seen: set[str] = set()  # entry ids read so far: a page bringing none new ends the paging
    empty_pages = 0
    for _ in range(MAX_PAGES):
        params = {
            "search_query": query,
            "start": str(len(entries)),
            "max_results": str(PAGE_SIZE),
            "sortBy": "submittedDate",
            "sortOrder": "ascending",
        }
        feed = _at_most(parse_feed(fetcher.get(url, params).content, url), url)
        ids = {clean_text(entry.findtext(f"{ATOM}id")) for entry in feed.entries}
        if feed.entries and ids <= seen:
            log.warning(
                "arXiv API at %s repeats entries already read at %d of %d results for %s; stopping",
                url,
                len(entries),
                feed.total,
                day,
            )
            break
        seen |= ids
        entries.extend(feed.entries)
        if len(entries) >= feed.total:
            break
        if not feed.entries:
            empty_pages += 1
            if empty_pages > EMPTY_PAGE_RETRIES:
                raise SourceError(
                    f"arXiv API at {url} keeps answering an empty page at {len(entries)} of "
                    f"{feed.total} results",
                    url=url,
                    status=200,
                )
            log.warning("arXiv: empty page at %d of %d; asking again", len(entries), feed.total)
    else:
        log.warning("arXiv: stopped after %d pages for %s", MAX_PAGES, day)
    return parse_entries(entries, day)


def _at_most(feed: Feed, url: str) -> Feed:
    """The page cut to the ``PAGE_SIZE`` entries asked for, with a warning if it had more: a page
    of thousands of entries is not taken whole, and ``start`` keeps counting what was kept."""
    if len(feed.entries) <= PAGE_SIZE:
        return feed
    log.warning(
        "arXiv API at %s answered %d entries to max_results=%d; keeping the first %d",
        url,
        len(feed.entries),
        PAGE_SIZE,
        PAGE_SIZE,
    )
    return replace(feed, entries=feed.entries[:PAGE_SIZE])


ID_BATCH = 100  # ids per id_list query


def fetch_by_ids(fetcher: Fetcher, url: str, ids: Collection[str]) -> dict[str, Paper]:
    """The papers with these arXiv ids (``id_list`` queries of ``ID_BATCH`` ids, paced by the
    fetcher); an id arXiv does not know is simply not in the answer. ``published`` is the day
    each paper was first submitted."""
    wanted = sorted(set(ids))
    found: dict[str, Paper] = {}
    for start in range(0, len(wanted), ID_BATCH):
        batch = wanted[start : start + ID_BATCH]
        params = {
            "search_query": "",  # as arXiv's own id_list links have it
            "id_list": ",".join(batch),
            "start": "0",
            "max_results": str(len(batch)),
        }
        feed = parse_feed(fetcher.get(url, params).content, url)
        for position, entry in enumerate(feed.entries):
            try:
                submitted, paper = parse_entry(entry, date.min)
            except MalformedItem as exc:
                log.info("arXiv: entry %d of an id_list answer skipped: %s", position, exc)
                continue
            if paper.id in batch:
                found[paper.id] = replace(paper, published=submitted)
    return found


def valid_categories(categories: Iterable[str]) -> tuple[str, ...]:
    """The well-formed arXiv categories among ``categories``, sorted, once each."""
    wanted = set(categories)
    valid = tuple(sorted(c for c in wanted if _CATEGORY.fullmatch(c)))
    for odd in sorted(wanted - set(valid)):
        log.warning("ignoring %r: not an arXiv category", odd)
    return valid


def day_query(categories: Iterable[str], day: date) -> str:
    """The search query for ``day`` in the union of ``categories``; "" when there are none."""
    valid = valid_categories(categories)
    if not valid:
        return ""
    stamp = day.strftime("%Y%m%d")
    union = " OR ".join(f"cat:{c}" for c in valid)
    return f"({union}) AND submittedDate:[{stamp}0000 TO {stamp}2359]"


def parse_feed(body: bytes, url: str) -> Feed:
    """One Atom page → its entries; an unreadable document or arXiv's "Error" entry raises."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise SourceError(
            f"arXiv API at {url} answered a document with a DTD ({type(exc).__name__}); "
            "refused, nothing in it expanded",
            url=url,
            status=200,
        ) from exc
    except ET.ParseError as exc:
        raise SourceError(
            f"arXiv API at {url} answered something that is not XML ({exc}): "
            f"{snippet(body.decode('utf-8', 'replace'))}",
            url=url,
            status=200,
        ) from exc
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"arXiv API at {url} answered {root.tag!r}, not an Atom feed", url=url)
    entries = tuple(root.iter(f"{ATOM}entry"))
    for entry in entries:
        if _is_error(entry):
            message = clean_text(entry.findtext(f"{ATOM}summary")) or "no reason given"
            raise SourceError(
                f"arXiv API at {url} rejected the query: {snippet(message)}", url=url, status=200
            )
    total_text = clean_text(root.findtext(f"{OPENSEARCH}totalResults"))
    total = int(total_text) if _TOTAL.fullmatch(total_text) else len(entries)
    return Feed(total=total, entries=entries)


def parse_entries(entries: Iterable[ET.Element], day: date) -> Day:
    """The entries first submitted on ``day`` as papers, once each; malformed ones skipped."""
    papers: dict[str, Paper] = {}
    skipped: list[SkippedItem] = []
    other_days = 0
    for position, entry in enumerate(entries):
        try:
            submitted, paper = parse_entry(entry, day)
        except MalformedItem as exc:
            skipped.append(SkippedItem("arxiv", position, str(exc)))
            continue
        if submitted != day:
            other_days += 1
        else:
            papers.setdefault(paper.id, paper)
    if other_days:
        log.info("arXiv: %d entries were first submitted on another day; left out", other_days)
    return Day(day=day, papers=tuple(papers.values()), skipped=tuple(skipped))


def parse_entry(entry: ET.Element, day: date) -> tuple[date, Paper]:
    """One Atom entry → (the day it was first submitted, a Paper listed on ``day``)."""
    paper_id = bare_arxiv_id(clean_text(entry.findtext(f"{ATOM}id")))
    if not paper_id or not is_arxiv_id(paper_id):
        raise MalformedItem(f"entry id {snippet(paper_id or '(none)', 60)!r} is not an arXiv id")
    title = clean_title(entry.findtext(f"{ATOM}title"))
    if not title:
        raise MalformedItem(f"paper {paper_id} has no title")
    try:
        submitted = datetime.fromisoformat(clean_text(entry.findtext(f"{ATOM}published"))).date()
    except ValueError as exc:
        raise MalformedItem(f"paper {paper_id} has no valid `published` date") from exc
    primary = entry.find(f"{ARXIV}primary_category")
    terms = [primary.get("term") if primary is not None else None]
    terms += [c.get("term") for c in entry.iter(f"{ATOM}category")]
    pdf = next(
        (ln.get("href") for ln in entry.iter(f"{ATOM}link") if ln.get("title") == "pdf"), None
    )
    paper = Paper(
        id=paper_id,
        title=title,
        abstract=clean_title(entry.findtext(f"{ATOM}summary"), LONG_TEXT),
        authors=tuple(
            dict.fromkeys(
                name
                for author in itertools.islice(entry.iter(f"{ATOM}author"), MAX_AUTHORS)
                if (name := clean_text(author.findtext(f"{ATOM}name")))
            )
        ),
        published=day,
        upvotes=0,
        url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=_https(http_url(pdf)) or f"https://arxiv.org/pdf/{paper_id}",
        source="arxiv",
        categories=tuple(dict.fromkeys(t for t in map(clean_text, terms) if t)),
    )
    return submitted, paper


def _is_error(entry: ET.Element) -> bool:
    """arXiv's way of saying "bad query": an entry titled Error with an ``api/errors`` id."""
    entry_id = clean_text(entry.findtext(f"{ATOM}id"))
    title = clean_text(entry.findtext(f"{ATOM}title"))
    return "/api/errors" in entry_id or (title == "Error" and "/abs/" not in entry_id)


def _https(url: str | None) -> str | None:
    return url.replace("http://arxiv.org/", "https://arxiv.org/", 1) if url else None
