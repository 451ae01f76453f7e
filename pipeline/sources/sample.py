"""The bundled sample day, served through the real source code paths; and fake API far ends.

``papermail demo`` and the tests use an ``httpx.MockTransport`` (or a local HTTP server) that
answers like the Daily Papers API from ``pipeline/samples/`` and like the arXiv API from a list
of Atom entries, so the sample goes through exactly the paging and parsing a live day does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from importlib import resources
from typing import Any

import httpx

SAMPLE_DAY = date(2026, 1, 1)
SAMPLE_FILE = f"daily_papers_{SAMPLE_DAY.isoformat()}.json"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"


def sample_items() -> list[object]:
    """The sample day's API items, as the live API would send them."""
    text = resources.files("pipeline.samples").joinpath(SAMPLE_FILE).read_text(encoding="utf-8")
    items: list[object] = json.loads(text)
    return items


def daily_papers_page(days: Mapping[str, Sequence[Any]], params: Mapping[str, str]) -> list[Any]:
    """The page the Daily Papers API answers for ``date``, ``limit`` (at most 100) and ``p``."""
    items = days.get(params.get("date", ""), [])
    limit = min(100, int(params.get("limit", "50")))
    page = int(params.get("p", "0"))
    return list(items[page * limit : (page + 1) * limit])


def arxiv_feed(entries: Sequence[str], params: Mapping[str, str]) -> str:
    """The Atom page the arXiv API answers for ``start`` and ``max_results`` over ``entries``.

    ``entries`` are ``<entry>`` elements as text, in the Atom and arXiv namespaces declared here.
    """
    start = int(params.get("start", "0"))
    size = int(params.get("max_results", "10"))
    page = entries[start : start + size]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom">\n'
        '  <link href="http://arxiv.org/api/query" rel="self" type="application/atom+xml"/>\n'
        '  <title type="html">ArXiv Query</title>\n'
        "  <id>http://arxiv.org/api/sample</id>\n"
        "  <updated>2026-01-02T00:00:00-05:00</updated>\n"
        f"  <opensearch:totalResults>{len(entries)}</opensearch:totalResults>\n"
        f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
        f"  <opensearch:itemsPerPage>{len(page)}</opensearch:itemsPerPage>\n"
        + "".join(page)
        + "</feed>\n"
    )


def sources_transport(
    days: Mapping[str, Sequence[Any]], arxiv_entries: Sequence[str] = ()
) -> httpx.MockTransport:
    """A transport answering like both APIs: arXiv for a ``search_query``, else Daily Papers."""

    def handle(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if "search_query" in params:
            body = arxiv_feed(arxiv_entries, params).encode()
            return httpx.Response(200, content=body, headers={"Content-Type": ATOM_CONTENT_TYPE})
        return httpx.Response(200, json=daily_papers_page(days, params))

    return httpx.MockTransport(handle)


def sample_client() -> httpx.Client:
    """An HTTP client whose APIs serve the bundled sample day (other days and arXiv: empty)."""
    return httpx.Client(transport=sources_transport({SAMPLE_DAY.isoformat(): sample_items()}))
