"""Property tests at the boundaries that take outside input: whatever arrives, the answer is a
clean value or a clear papermail error, never another exception."""

from __future__ import annotations

import html
import re
import tempfile
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import ranking
from pipeline.errors import SourceError
from pipeline.models import MAX_COUNT, Paper
from pipeline.rendering import tldr
from pipeline.rendering.views import html_text, sentences
from pipeline.sources import arxiv, huggingface
from pipeline.sources.text import LONG_TEXT, SHORT_TEXT, TITLE_TEXT, MalformedItem, clean_title
from pipeline.subscribers import FIELDS, TOPIC_FIELDS, load_subscribers
from tests.builders import paper as sample_paper
from tests.builders import whole_text_definitions

DAY = date(2026, 1, 1)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- values as they come from JSON and YAML ---------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", "2310.06110", "cs.LG", "Friday", "1e30", "$x^{2}$", "\\alpha"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def assert_clean_text(text: str, cap: int) -> None:
    """One line, printable, within its cap."""
    assert len(text) <= cap
    assert text == text.strip()
    assert "\n" not in text
    assert text.isprintable()


def assert_clean_paper(paper: Paper) -> None:
    """Every field of a parsed paper is a clean, bounded value."""
    assert paper.title
    assert_clean_text(paper.id, SHORT_TEXT)
    assert len(paper.title) <= TITLE_TEXT
    assert len(paper.abstract) <= LONG_TEXT
    assert 0 <= paper.upvotes <= MAX_COUNT
    assert paper.num_comments is None or 0 <= paper.num_comments <= MAX_COUNT
    for name in (*paper.authors, *paper.keywords, *paper.categories):
        assert_clean_text(name, SHORT_TEXT)
    for url in (paper.url, paper.pdf_url, paper.github_url, paper.project_url):
        assert url is None or url.startswith(("http://", "https://"))


# --- the text and LaTeX cleaner -----------------------------------------------------------------

latexish = st.text(alphabet="$\\{}^_ ()ab1\n\t&%#~'\"", max_size=200)


@PROPERTY
@given(st.one_of(st.text(), latexish, json_values))
def test_the_cleaner_gives_clean_bounded_text(value: Any) -> None:
    """Any value, text or not, LaTeX or not: one printable line within the cap."""
    assert_clean_text(clean_title(value), TITLE_TEXT)
    assert_clean_text(clean_title(value, LONG_TEXT), LONG_TEXT)


@PROPERTY
@given(st.integers(min_value=1, max_value=400), st.sampled_from(["$", "$$", "\\(", ""]))
def test_deep_latex_never_raises(depth: int, opener: str) -> None:
    """Braces nested to any depth after a math opener: a clean title, never a RecursionError."""
    assert_clean_text(clean_title(f"T {opener}" + "{" * depth + "x" + "}" * depth), TITLE_TEXT)


# --- the Daily Papers item parser ----------------------------------------------------------------

papers = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["2310.06110", "2601.00077v2", "hep-th/9901001"]), scalars),
        "title": json_values,
        "summary": json_values,
        "authors": st.lists(
            st.one_of(st.fixed_dictionaries({"name": json_values}), scalars), max_size=4
        )
        | json_values,
        "upvotes": scalars,
        "ai_summary": json_values,
        "ai_keywords": json_values,
        "githubRepo": json_values,
        "projectPage": json_values,
    },
)
items = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"paper": papers}, optional={"title": json_values, "numComments": scalars}
    ),
)


@PROPERTY
@given(items)
def test_a_daily_papers_item_is_a_clean_paper_or_malformed(item: Any) -> None:
    """Any JSON value as an item: a clean Paper, or MalformedItem saying why."""
    try:
        paper = huggingface.parse_item(item, DAY)
    except MalformedItem as exc:
        reason = str(exc)
    else:
        assert_clean_paper(paper)
        return
    assert reason


@PROPERTY
@given(st.lists(items, max_size=6))
def test_a_daily_papers_page_never_raises(page: list[Any]) -> None:
    """A page of any items: papers and skipped items, one of the two for every item."""
    day = huggingface.parse_items(page, DAY)
    assert len(day.papers) + len(day.skipped) <= len(page)
    for paper in day.papers:
        assert_clean_paper(paper)


# --- the arXiv Atom parser -----------------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60
).filter(lambda t: all(c in "\t\n\r" or ord(c) >= 0x20 for c in t))


@st.composite
def atom_entries(draw: st.DrawFn) -> ET.Element:
    """An Atom entry with any subset of fields, each with any text."""
    entry = ET.Element(f"{{{ATOM}}}entry")
    fields = {
        "id": st.one_of(st.just("http://arxiv.org/abs/2310.06110v1"), xml_text),
        "title": xml_text,
        "summary": xml_text,
        "published": st.one_of(st.just("2026-01-01T10:00:00Z"), xml_text),
    }
    for name, strategy in fields.items():
        if draw(st.booleans()):
            ET.SubElement(entry, f"{{{ATOM}}}{name}").text = draw(strategy)
    for _ in range(draw(st.integers(0, 3))):
        author = ET.SubElement(entry, f"{{{ATOM}}}author")
        ET.SubElement(author, f"{{{ATOM}}}name").text = draw(xml_text)
    for _ in range(draw(st.integers(0, 2))):
        ET.SubElement(entry, f"{{{ATOM}}}category", term=draw(xml_text))
    if draw(st.booleans()):
        ET.SubElement(entry, f"{{{ATOM}}}link", title="pdf", href=draw(xml_text))
    return entry


@PROPERTY
@given(atom_entries())
def test_an_atom_entry_is_a_clean_paper_or_malformed(entry: ET.Element) -> None:
    """Any entry: (its day, a clean Paper), or MalformedItem saying why."""
    try:
        submitted, paper = arxiv.parse_entry(entry, DAY)
    except MalformedItem as exc:
        reason = str(exc)
    else:
        assert isinstance(submitted, date)
        assert_clean_paper(paper)
        return
    assert reason


@PROPERTY
@given(st.lists(atom_entries(), max_size=4), st.one_of(st.just(None), xml_text))
def test_an_atom_feed_parses_or_is_a_source_error(entries: list[ET.Element], total: Any) -> None:
    """A feed document with any entries and any total: a Feed, or a SourceError."""
    feed = ET.Element(f"{{{ATOM}}}feed")
    feed.extend(entries)
    if total is not None:
        ET.SubElement(feed, "{http://a9.com/-/spec/opensearch/1.1/}totalResults").text = total
    try:
        parsed = arxiv.parse_feed(ET.tostring(feed), "http://127.0.0.1:9/api/query")
    except SourceError as exc:
        message = str(exc)
    else:
        assert parsed.total >= 0
        arxiv.parse_entries(parsed.entries, DAY)
        return
    assert "127.0.0.1:9" in message


@PROPERTY
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_as_a_feed_parse_or_are_a_source_error(body: bytes) -> None:
    """Bytes that are not Atom at all: a SourceError naming the URL, nothing else."""
    try:
        arxiv.parse_feed(body, "http://127.0.0.1:9/api/query")
    except SourceError as exc:
        message = str(exc)
    else:
        return
    assert "127.0.0.1:9" in message


# --- the subscriber loader -----------------------------------------------------------------------

keys = st.one_of(
    st.sampled_from(FIELDS + TOPIC_FIELDS + ("topic", "keyword", "wieght")), st.text(max_size=8)
)
entries = st.recursive(
    scalars | st.sampled_from(["a@example.org", "Friday", "cs.LG"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


def load_text(text: str) -> None:
    """Load ``text`` as a subscriber file; every outcome must be clean."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "s.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        loaded = load_subscribers(path)
    assert loaded.subscribers or loaded.problems
    for problem in loaded.problems:
        assert problem.message
        assert "Input should" not in problem.message
        assert "\n" not in str(problem)
    for subscriber in loaded.subscribers:
        assert subscriber.topics or subscriber.authors


@PROPERTY
@given(entries)
def test_any_yaml_data_loads_or_is_a_problem(data: Any) -> None:
    """Any mix of fields and values: valid subscribers, or problems in papermail's words."""
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    load_text(text)


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_as_a_subscriber_file_loads_or_is_a_problem(text: str) -> None:
    """Arbitrary text (broken YAML, tabs, tags, anchors): subscribers or problems, no crash."""
    load_text(text)


@PROPERTY
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["[", "{a: "]))
def test_any_flow_nesting_depth_loads_or_is_a_problem(depth: int, opener: str) -> None:
    """Flow lists or mappings nested to any depth: a problem at a line, never a RecursionError."""
    closer = {"[": "]", "{a: ": "}"}[opener]
    load_text("email: a@example.org\nauthors: " + opener * depth + "x" + closer * depth + "\n")


@PROPERTY
@given(st.integers(min_value=1, max_value=300), st.sampled_from(["a:", "-"]))
def test_any_block_nesting_depth_loads_or_is_a_problem(depth: int, opener: str) -> None:
    """Block lists or mappings nested to any depth: the same."""
    lines = [" " * (2 * i) + opener for i in range(depth)]
    load_text("email: a@example.org\nauthors:\n" + "\n".join("  " + x for x in lines) + " x\n")


# --- summaries and their HTML ----------------------------------------------------------------

WORDS = ("We", "show", "Fig.", "2", "et", "al.", "J.", "Smith", "e.g.", "A.", "It", "works.")
URLISH = ("x" * 30, "https://github.com/a-very-long-owner/a-very-long-repo", "(see", "it).")
prose = st.lists(st.sampled_from(WORDS + URLISH), max_size=60).map(" ".join)


@PROPERTY
@given(prose | st.text(max_size=300).map(" ".join))
def test_sentences_give_back_the_text_and_summaries_stay_in_bounds(text: str) -> None:
    """Cutting into sentences loses nothing; a summary from them is within its limit."""
    text = " ".join(text.split())
    assert " ".join(sentences(text)) == text
    summary = tldr(sample_paper(ai_summary=None, abstract=text), 120)
    assert len(summary) <= 120
    assert "……" not in summary


@PROPERTY
@given(prose | st.text(max_size=300))
def test_the_html_of_a_text_shows_that_text_and_no_url_holds_an_invisible_character(
    text: str,
) -> None:
    """Tags out and entities decoded, the HTML form reads as the text (zero-width spaces aside)."""
    markup = html_text(text, links=True).markup
    shown = html.unescape(re.sub(r"<[^>]*>", "", markup))
    assert shown.replace("\u200b", "") == text
    for url in re.findall(r'href="([^"]*)"', markup):
        assert "\u200b" not in url
        assert html.unescape(url) in text


# --- ranking: acronym definitions ---------------------------------------------------------------

_DEFINITION_VOCABULARY = (
    "the of a deep neural network partial differential equations large language model x-ray "
    "Graph Networks in and for ( ) (DNN) (PDEs) (LLM) (XR) (GNNs) (NN) (A) , ; . - é"
)
_DEFINITION_WORDS = st.sampled_from(_DEFINITION_VOCABULARY.split()) | st.sampled_from(
    [
        "partial differential equations (PDEs)",
        "a deep neural network (DNN)",
        "large language models ( LLMs )",
        "Graph Neural-Networks (GNNs)",
        "x-ray (XR)",
    ]
)


@PROPERTY
@given(st.lists(_DEFINITION_WORDS, max_size=60), st.sampled_from([" ", "  ", "\n", " - ", ""]))
def test_acronym_definitions_are_those_a_whole_text_regex_finds(
    words: list[str], space: str
) -> None:
    """Looking back from each acronym in parentheses finds what one regex over the whole text
    finds (for words shorter than the look-back reach)."""
    text = space.join(words)
    assert list(ranking.definitions(text)) == whole_text_definitions(text)
