"""The arXiv source: the day's query, Atom parsing, the Error entry, paging at 3 s, merging."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import httpx
import pytest

from pipeline.errors import SourceError
from pipeline.models import Day, Paper
from pipeline.sources import arxiv
from pipeline.sources.http import Fetcher
from pipeline.sources.merge import merge_days
from pipeline.sources.sample import arxiv_feed
from tests.conftest import FakeTime

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
DAY = date(2026, 1, 1)
URL = "http://127.0.0.1:9/api/query"


def recorded(name: str) -> bytes:
    """A recorded arXiv answer."""
    return (FIXTURES / name).read_bytes()


def entries_of(count: int) -> list[str]:
    """``count`` distinct entries of the day, in the live shape, as Atom text."""
    return [
        f"""<entry>
    <id>http://arxiv.org/abs/2601.{20000 + n}v1</id>
    <published>2026-01-01T{n % 24:02d}:00:00Z</published>
    <title>Entry {n}</title>
    <summary>Abstract {n}.</summary>
    <author><name>Author {n}</name></author>
    <link title="pdf" href="http://arxiv.org/pdf/2601.{20000 + n}v1" rel="related"/>
    <arxiv:primary_category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
"""
        for n in range(count)
    ]


class Paced(FakeTime):
    """Fake time for the fetcher: it moves only by sleeping, and records each sleep."""

    def fetcher(self, handler: httpx.MockTransport) -> Fetcher:
        """An arXiv fetcher (3 s pacing) on ``handler`` with this fake time."""
        client = httpx.Client(transport=handler)
        return Fetcher(client, self.clock(), "arXiv API", min_interval=arxiv.MIN_INTERVAL)


def test_the_recorded_feed_parses_into_the_papers_of_the_day() -> None:
    """Three of four entries were first submitted on the day; each is clean and complete."""
    feed = arxiv.parse_feed(recorded("arxiv_cs_LG_2026-01-01.xml"), URL)
    assert feed.total == 4
    day = arxiv.parse_entries(feed.entries, DAY)
    by_id = {p.id: p for p in day.papers}
    assert list(by_id) == ["2601.00077", "2601.00101", "hep-th/0101001"]
    assert day.skipped == ()

    paper = by_id["2601.00101"]
    assert (
        paper.title
        == "Grokking at the Edge of 𝒪(n log n): Delayed Generalization in Sorting Networks"
    )
    assert paper.abstract == (
        "We observe grokking in networks trained to sort; the test loss drops long after "
        "the training loss reaches 10⁻⁴ & stays there."
    )
    assert paper.authors == ("Grace B. Hopper",)
    assert paper.categories == ("cs.LG", "stat.ML")
    assert paper.pdf_url == "https://arxiv.org/pdf/2601.00101v1"
    assert paper.url == "https://arxiv.org/abs/2601.00101"
    assert paper.published == DAY
    assert paper.upvotes == 0
    assert paper.source == "arxiv"

    assert by_id["2601.00077"].categories == ("hep-th", "physics.comp-ph")
    assert by_id["hep-th/0101001"].pdf_url == "https://arxiv.org/pdf/hep-th/0101001"


def test_the_error_entry_is_an_error_not_a_paper() -> None:
    """HTTP 200 with one entry titled "Error": SourceError quoting arXiv's reason."""
    with pytest.raises(SourceError) as info:
        arxiv.parse_feed(recorded("arxiv_error.xml"), URL)
    assert "rejected the query: malformed query string" in str(info.value)
    assert info.value.url == URL


def test_a_paper_titled_error_is_still_a_paper() -> None:
    """Only an entry without a paper id is arXiv's error; a real paper may be called "Error"."""
    entry = entries_of(1)[0].replace("<title>Entry 0</title>", "<title>Error</title>")
    feed = arxiv.parse_feed(arxiv_feed([entry], {}).encode(), URL)
    (paper,) = arxiv.parse_entries(feed.entries, DAY).papers
    assert paper.title == "Error"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service Unavailable</body></html>",
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x "y">]><feed xmlns="http://www.w3.org/2005/Atom"/>',
    ],
)
def test_documents_that_are_not_atom_feeds_are_source_errors(body: bytes) -> None:
    """An HTML page, garbage or a document with a DTD is refused with a clear message."""
    with pytest.raises(SourceError, match="arXiv API at"):
        arxiv.parse_feed(body, URL)


_DTD_FEED = (
    '<?xml version="1.0" encoding="{encoding}"?>'
    '<!DOCTYPE feed [<!ENTITY x "expanded">]>'
    '<feed xmlns="http://www.w3.org/2005/Atom"><title>&x;</title></feed>'
)


@pytest.mark.parametrize(
    "body",
    [
        _DTD_FEED.format(encoding="UTF-8").encode("utf-8"),
        _DTD_FEED.format(encoding="UTF-16").encode("utf-16"),  # with its byte-order mark
        "\ufeff".encode("utf-16-be") + _DTD_FEED.format(encoding="UTF-16").encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-16", "utf-16-be"],
)
def test_a_dtd_is_refused_in_any_encoding(body: bytes) -> None:
    """UTF-16 hides ``<!DOCTYPE`` from a byte search: the parser itself refuses any DTD, so its
    entities are never expanded, and the day ends in a SourceError naming the URL."""

    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with pytest.raises(SourceError) as caught:
        arxiv.fetch_day(Paced().fetcher(httpx.MockTransport(handle)), URL, DAY, ["cs.LG"])
    assert str(caught.value).startswith(f"arXiv API at {URL} answered a document with a DTD")
    assert caught.value.url == URL


def test_malformed_entries_are_skipped_and_counted() -> None:
    """An entry without id or date is skipped with its reason; the others stay."""
    good = entries_of(1)
    no_id = good[0].replace("<id>http://arxiv.org/abs/2601.20000v1</id>", "")
    no_date = good[0].replace("<published>2026-01-01T00:00:00Z</published>", "")
    feed = arxiv.parse_feed(
        arxiv_feed([no_id, no_date, *good], {"max_results": "10"}).encode(), URL
    )
    day = arxiv.parse_entries(feed.entries, DAY)
    assert [p.id for p in day.papers] == ["2601.20000"]
    assert [(s.source, s.position) for s in day.skipped] == [("arxiv", 0), ("arxiv", 1)]
    assert "not an arXiv id" in day.skipped[0].reason
    assert "published" in day.skipped[1].reason


def test_the_query_is_one_union_of_categories_for_the_day() -> None:
    """One query for every category, restricted to submissions on the day (UTC)."""
    query = arxiv.day_query(["physics.comp-ph", "cs.LG", "cs.LG", "bad category!"], DAY)
    assert (
        query
        == "(cat:cs.LG OR cat:physics.comp-ph) AND submittedDate:[202601010000 TO 202601012359]"
    )
    assert arxiv.day_query([], DAY) == ""


def test_paging_fetches_every_entry_at_one_request_per_3_seconds() -> None:
    """1,200 entries in pages of 500: three requests, two 3-second pauses, 1,200 papers."""
    entries = entries_of(1200)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=arxiv_feed(entries, dict(request.url.params)))

    time = Paced()
    day = arxiv.fetch_day(time.fetcher(httpx.MockTransport(handle)), URL, DAY, ["cs.LG", "math.AP"])
    assert len(day.papers) == 1200
    assert [r.url.params["start"] for r in seen] == ["0", "500", "1000"]
    assert {r.url.params["search_query"] for r in seen} == {
        "(cat:cs.LG OR cat:math.AP) AND submittedDate:[202601010000 TO 202601012359]"
    }
    assert time.sleeps == [3.0, 3.0]


def test_an_empty_page_in_the_middle_is_asked_again() -> None:
    """arXiv sometimes answers an empty page of a larger result: the page is requested again."""
    entries = entries_of(600)
    answers = iter([None, [], None])  # page 1 fine, page 2 empty once, then fine

    def handle(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        override = next(answers, None)
        text = arxiv_feed(entries, params)
        if override == []:
            text = re.sub(r"<entry>.*</entry>\s*", "", text, flags=re.DOTALL)
        return httpx.Response(200, text=text)

    time = Paced()
    day = arxiv.fetch_day(time.fetcher(httpx.MockTransport(handle)), URL, DAY, ["cs.LG"])
    assert len(day.papers) == 600


def test_a_page_that_stays_empty_is_a_source_error() -> None:
    """A result that claims more entries but never delivers them ends in SourceError."""
    entries = entries_of(600)

    def handle(request: httpx.Request) -> httpx.Response:
        text = arxiv_feed(entries, dict(request.url.params))
        if request.url.params["start"] != "0":
            text = re.sub(r"<entry>.*</entry>\s*", "", text, flags=re.DOTALL)
        return httpx.Response(200, text=text)

    with pytest.raises(SourceError, match="empty page at 500 of 600"):
        arxiv.fetch_day(Paced().fetcher(httpx.MockTransport(handle)), URL, DAY, ["cs.LG"])


def test_a_server_answering_the_same_page_forever_is_stopped_after_one_repeat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that ignores ``start`` and claims a huge total: the second page brings no new
    entry, so paging stops there with a warning, keeping what the first page brought."""
    entries = entries_of(arxiv.PAGE_SIZE)
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["start"])
        text = arxiv_feed(entries, {"start": "0", "max_results": str(arxiv.PAGE_SIZE)})
        return httpx.Response(
            200,
            text=text.replace(f">{arxiv.PAGE_SIZE}</opensearch:total", ">99999</opensearch:total"),
        )

    time = Paced()
    with caplog.at_level("WARNING"):
        day = arxiv.fetch_day(time.fetcher(httpx.MockTransport(handle)), URL, DAY, ["cs.LG"])
    assert len(day.papers) == arxiv.PAGE_SIZE
    assert seen == ["0", "500"]
    assert time.sleeps == [3.0]
    assert "repeats entries already read at 500 of 99999 results" in caplog.text


def test_a_page_larger_than_asked_is_cut_to_the_page_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server ignoring ``max_results`` is read a page size at a time, with a warning: paging
    still counts ``start`` from what was kept, and the day arrives whole."""
    entries = entries_of(1200)
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["start"])
        params = {"start": request.url.params["start"], "max_results": "100000"}
        return httpx.Response(200, text=arxiv_feed(entries, params))

    with caplog.at_level("WARNING"):
        day = arxiv.fetch_day(Paced().fetcher(httpx.MockTransport(handle)), URL, DAY, ["cs.LG"])
    assert len(day.papers) == 1200
    assert seen == ["0", "500", "1000"]
    assert "answered 1200 entries to max_results=500; keeping the first 500" in caplog.text


def test_no_categories_means_no_request() -> None:
    """Without categories the arXiv source asks nothing."""

    def handle(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    day = arxiv.fetch_day(Paced().fetcher(httpx.MockTransport(handle)), URL, DAY, [])
    assert day.papers == ()


def hf_paper(paper_id: str, upvotes: int) -> Paper:
    """A Daily Papers paper as the HF source makes it."""
    return Paper(
        id=paper_id,
        title=f"HF title {paper_id}",
        abstract="HF abstract",
        authors=("A",),
        published=DAY,
        upvotes=upvotes,
        url=f"https://huggingface.co/papers/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        source="huggingface",
        ai_summary="HF summary",
        num_comments=4,
    )


def test_merge_keeps_one_paper_with_hf_fields_and_arxiv_categories() -> None:
    """A paper in both sources is one: HF's upvotes, comments and summary; arXiv's categories."""
    feed = arxiv.parse_feed(recorded("arxiv_cs_LG_2026-01-01.xml"), URL)
    from_arxiv = arxiv.parse_entries(feed.entries, DAY)
    hf = Day(day=DAY, papers=(hf_paper("2601.00077", 9), hf_paper("2410.24164", 41)))
    merged = merge_days(hf, from_arxiv, categories=["cs.LG", "physics.comp-ph"])

    assert [p.id for p in merged.papers] == [
        "2601.00077",
        "2410.24164",
        "2601.00101",
        "hep-th/0101001",
    ]
    both = merged.papers[0]
    assert both.source == "huggingface"
    assert both.upvotes == 9
    assert both.num_comments == 4
    assert both.ai_summary == "HF summary"
    assert both.title == "HF title 2601.00077"
    assert both.categories == ("hep-th", "physics.comp-ph")
    assert merged.papers[2].source == "arxiv"
    assert merged.categories == ("cs.LG", "physics.comp-ph")


def test_example_papers_are_fetched_by_id_in_one_paced_query() -> None:
    """``fetch_by_ids``: one ``id_list`` query for the ids (sorted, once each); the papers come
    back with the day they were first submitted; an id arXiv does not know is just absent."""
    asked: list[httpx.QueryParams] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        return httpx.Response(200, content=recorded("arxiv_id_list.xml"))

    time = Paced()
    found = arxiv.fetch_by_ids(
        time.fetcher(httpx.MockTransport(answer)), URL, ["2310.06110", "2399.99999", "2201.02177"]
    )
    assert [dict(p) for p in asked] == [
        {
            "search_query": "",
            "id_list": "2201.02177,2310.06110,2399.99999",
            "start": "0",
            "max_results": "3",
        }
    ]
    assert sorted(found) == ["2201.02177", "2310.06110"]
    paper = found["2310.06110"]
    assert paper.title == "Grokking as the Transition from Lazy to Rich Training Dynamics"
    assert paper.published == date(2023, 10, 9)
    assert "Cengiz Pehlevan" in paper.authors
    assert paper.abstract.startswith("We propose that the grokking phenomenon")


def test_many_example_ids_are_asked_in_batches_three_seconds_apart() -> None:
    """More ids than ``ID_BATCH``: one query per batch, the fetcher keeping arXiv's pace."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["id_list"])
        return httpx.Response(200, content=arxiv_feed([], {}).encode())

    time = Paced()
    ids = [f"2401.{n:05d}" for n in range(arxiv.ID_BATCH + 1)]
    assert arxiv.fetch_by_ids(time.fetcher(httpx.MockTransport(answer)), URL, ids) == {}
    assert [len(a.split(",")) for a in asked] == [arxiv.ID_BATCH, 1]
    assert time.sleeps == [arxiv.MIN_INTERVAL]
