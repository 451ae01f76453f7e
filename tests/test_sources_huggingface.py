"""The Daily Papers source: paging, the paper's day, tolerant parsing, duplicates, skips."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from pipeline.clock import Clock
from pipeline.errors import SourceError
from pipeline.models import Day
from pipeline.sources import huggingface
from pipeline.sources.http import Fetcher
from pipeline.sources.sample import sources_transport
from tests.builders import live_items, many_items

DAY = date(2026, 1, 1)
URL = "http://127.0.0.1:9/api/daily_papers"


def fetch(days: dict[str, list[Any]], seen: list[httpx.Request] | None = None) -> Day:
    """Fetch ``DAY`` from a transport that pages like the live API (and record the requests)."""
    inner = sources_transport(days)

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return inner.handle_request(request)

    client = httpx.Client(transport=httpx.MockTransport(handle))
    fetcher = Fetcher(client, Clock(sleep=lambda _s: None), "Daily Papers API")
    return huggingface.fetch_day(fetcher, URL, DAY)


def test_a_day_of_250_papers_arrives_whole_in_three_pages() -> None:
    """250 papers, pages of 100: three requests (p=0,1,2), every paper exactly once."""
    seen: list[httpx.Request] = []
    day = fetch({DAY.isoformat(): many_items(250)}, seen)
    assert len(day.papers) == 250
    assert len({p.id for p in day.papers}) == 250
    assert [r.url.params["p"] for r in seen] == ["0", "1", "2"]
    assert {r.url.params["limit"] for r in seen} == {"100"}
    assert {r.url.params["date"] for r in seen} == {"2026-01-01"}


def test_a_day_of_exactly_200_papers_ends_on_an_empty_page() -> None:
    """A full last page is followed by one more request, which comes back empty."""
    seen: list[httpx.Request] = []
    day = fetch({DAY.isoformat(): many_items(200)}, seen)
    assert len(day.papers) == 200
    assert len(seen) == 3


def test_an_empty_day_is_normal() -> None:
    """200 with `[]` (a weekend) is a day without papers, not an error."""
    day = fetch({})
    assert day.papers == ()
    assert day.skipped == ()
    assert day.day == DAY


def test_a_server_that_ignores_p_does_not_loop_forever() -> None:
    """If every page repeats the first, paging stops and each paper is kept once."""
    page = many_items(100)
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200, json=page)))
    fetcher = Fetcher(client, Clock(sleep=lambda _s: None), "Daily Papers API")
    day = huggingface.fetch_day(fetcher, URL, DAY)
    assert len(day.papers) == 100


def test_a_page_that_is_not_a_list_is_a_source_error() -> None:
    """A JSON object where a list belongs (an error envelope, say) is reported, not parsed."""
    client = httpx.Client(
        transport=httpx.MockTransport(lambda _r: httpx.Response(200, json={"error": "maintenance"}))
    )
    fetcher = Fetcher(client, Clock(sleep=lambda _s: None), "Daily Papers API")
    with pytest.raises(SourceError, match="expected a list"):
        huggingface.fetch_day(fetcher, URL, DAY)


def test_live_shapes_parse_into_clean_papers() -> None:
    """The recorded page: four unique papers, entities and LaTeX clean, links checked."""
    day = huggingface.parse_items(live_items(), DAY)
    by_id = {p.id: p for p in day.papers}
    assert list(by_id) == ["2410.24164", "2601.00042", "2601.00077"]

    pi0 = by_id["2410.24164"]
    assert pi0.title == "π₀: A Vision-Language-Action Flow Model for General Robot Control"
    assert pi0.authors == ("Kevin Black", "Noah Brown", "Danny Driess", "Sergey Levine")
    assert pi0.abstract.startswith("Robot learning holds tremendous promise to unlock the full")
    assert "\n" not in pi0.abstract
    assert "knowledge & dexterity" in pi0.abstract
    assert pi0.ai_summary == "A flow-matching VLA model, π0, controls diverse robots from language."
    assert pi0.keywords == ("flow matching", "vision-language model", "VLA", "robot control")
    assert pi0.github_url == "https://github.com/Physical-Intelligence/openpi"
    assert pi0.project_url == "https://www.physicalintelligence.company/blog/pi0"
    assert pi0.upvotes == 41
    assert pi0.num_comments == 3
    assert pi0.url == "https://huggingface.co/papers/2410.24164"
    assert pi0.pdf_url == "https://arxiv.org/pdf/2410.24164"
    assert pi0.source == "huggingface"


def test_nulls_and_missing_optional_fields_become_unknown() -> None:
    """`null` summary, keywords, links and comments, and unknown extras, cost nothing."""
    paper = {p.id: p for p in huggingface.parse_items(live_items(), DAY).papers}["2601.00042"]
    assert paper.title == 'Scaling Laws for Q&A: Don\'t Trust "Bigger" &lt;Always&gt;'
    assert paper.abstract == ""
    assert paper.ai_summary is None
    assert paper.keywords == ()
    assert paper.project_url is None
    assert paper.num_comments is None
    assert paper.github_url == "https://github.com/someone/qa-scaling"


def test_published_is_the_daily_papers_day_not_arxiv_publication() -> None:
    """Every paper of the day has `published` = the requested day, whatever `publishedAt` says."""
    day = huggingface.parse_items(live_items(), DAY)
    assert {p.published for p in day.papers} == {DAY}
    assert day.papers[0].to_json()["published"] == "2026-01-01"


def test_duplicates_and_versioned_ids_keep_the_higher_upvoted_copy() -> None:
    """`2601.00077v2` (2 upvotes) and `2601.00077` (9) are one paper, with 9 upvotes."""
    day = huggingface.parse_items(live_items(), DAY)
    (paper,) = [p for p in day.papers if p.id == "2601.00077"]
    assert paper.upvotes == 9
    assert paper.authors == ("Ivan Dadić",)
    assert paper.num_comments == 1  # "1" as a string is still a count
    assert (
        paper.title == "Causality and Renormalization in Finite-Time-Path Out-of-Equilibrium φ³ QFT"
    )


def test_malformed_items_are_skipped_with_reasons_and_cost_nothing_else() -> None:
    """No id, a blank title, a null paper and a bare string: four skips, the rest parsed."""
    day = huggingface.parse_items(live_items(), DAY)
    assert [(s.source, s.position) for s in day.skipped] == [
        ("huggingface", 4),
        ("huggingface", 5),
        ("huggingface", 6),
        ("huggingface", 7),
    ]
    reasons = [s.reason for s in day.skipped]
    assert reasons[0] == "paper has no id"
    assert reasons[1] == "paper 2601.00099 has no title"
    assert reasons[2] == reasons[3] == "item has no `paper` object"
    assert len(day.papers) == 3


def test_a_javascript_project_page_never_becomes_a_link() -> None:
    """Upstream links are untrusted: only http(s) survives."""
    day = huggingface.parse_items(live_items()[2:3], DAY)
    assert day.papers[0].project_url is None
    assert day.papers[0].github_url == "https://github.com/owner/repo"


@pytest.mark.parametrize("upvotes", [None, "many", -3, True, [], 1e400])
def test_odd_upvotes_count_as_zero(upvotes: object) -> None:
    """An odd `upvotes` value is "no upvotes", never a lost paper."""
    item = live_items()[0]
    item["paper"]["upvotes"] = upvotes
    (paper,) = huggingface.parse_items([item], DAY).papers
    assert paper.upvotes == 0
