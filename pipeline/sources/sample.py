"""The bundled sample day, served through the real Hugging Face source code path.

``papermail demo`` and the tests use an ``httpx.MockTransport`` that answers like the Daily
Papers API from ``pipeline/samples/``, so the sample goes through exactly the parsing and
paging a live day does.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

import httpx

SAMPLE_DAY = date(2026, 1, 1)
SAMPLE_FILE = f"daily_papers_{SAMPLE_DAY.isoformat()}.json"


def sample_items() -> list[object]:
    """The sample day's API items, as the live API would send them."""
    text = resources.files("pipeline.samples").joinpath(SAMPLE_FILE).read_text(encoding="utf-8")
    items: list[object] = json.loads(text)
    return items


def daily_papers_handler(days: dict[str, list[object]]) -> httpx.MockTransport:
    """A transport paging through ``days`` as the Daily Papers API does (``limit``, ``p``)."""

    def handle(request: httpx.Request) -> httpx.Response:
        items = days.get(request.url.params.get("date", ""), [])
        limit = int(request.url.params.get("limit", "50"))
        page = int(request.url.params.get("p", "0"))
        return httpx.Response(200, json=items[page * limit : (page + 1) * limit])

    return httpx.MockTransport(handle)


def sample_client() -> httpx.Client:
    """An HTTP client whose Daily Papers API serves the bundled sample day (and empty days)."""
    return httpx.Client(transport=daily_papers_handler({SAMPLE_DAY.isoformat(): sample_items()}))
