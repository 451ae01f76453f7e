"""Hostile tests, round three: the fixes of the last hour (c786bd1..91f6972).

Tests whose docstring starts with "FOUND" failed on 91f6972: each was a finding, fixed since,
described in its docstring. Those starting with "HELD" are attacks that the code withstood. Two
findings are left open and not kept here (see docs/ranking.md and docs/settings.md): a
hyphenated keyword does not find its spaced form ("fine-tuning" and "fine tuning"), and a token
in a source URL's path shows in the messages about the source.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from pipeline import planning, ranking
from pipeline.errors import SettingsError
from pipeline.ledger import Ledger, State
from pipeline.models import Day, Paper, ReasonKind, Subscriber, Topic
from pipeline.settings import _check_visible, _env_file_names, load_settings
from tests.builders import whole_text_definitions
from tests.test_hostile_round2 import UNRELATED, digest_of, settings_result
from tests.test_ranking_hostile import DAY, HOSTILE, assert_same, paper


def keyword_digest(keyword: str, title: str, abstract: str) -> list[tuple[str, list[str]]]:
    """One paper (and the unrelated ones) for a topic "T" with the one ``keyword``."""
    return digest_of(Topic("T", (keyword,)), paper("2601.00001", title, abstract))


# --- 1/2. hyphenated keywords: findings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "title", "abstract"),
    [
        ("GPT4", "Evaluating GPT-4 on olympiad math", "We test GPT-4 on olympiad problems."),
        ("COVID19", "COVID-19 spread in cities", "We model COVID-19 in ten cities."),
    ],
)
def test_an_unhyphenated_acronym_keyword_finds_the_hyphenated_form(
    keyword: str, title: str, abstract: str
) -> None:
    """FOUND (wrong digest, missed paper): 1071db8 made "GPT-4" find "GPT4", but not the
    reverse. The keyword "GPT4" is the acronym term §GPT4; a paper writing "GPT-4" is indexed
    as §GPT (its first word), the stems (gpt, 4) and the hyphen term "gpt4" (lower case, not
    §GPT4), so nothing matches; BM25 reads the topic's word as §GPT4 too. The paper about
    GPT-4 is not picked at all (digest []); same for "COVID19" against "COVID-19". Expected:
    picked with the reason "T: GPT4" (the hyphenated and joined forms are one word either way)."""
    assert keyword_digest(keyword, title, abstract) == [("2601.00001", [f"T: {keyword}"])]


@pytest.mark.parametrize(
    ("keyword", "title", "abstract"),
    [
        ("GPT-4", "GPT-4-based grading of essays", "We build a GPT-4-based grader."),
        ("Llama-3", "Fine-tuning Llama-3-8B for code", "We tune Llama-3-8B on code."),
        ("COVID-19", "COVID-19-related misinformation", "We study COVID-19-related posts."),
    ],
)
def test_a_hyphenated_keyword_matches_inside_a_longer_hyphenated_run(
    keyword: str, title: str, abstract: str
) -> None:
    """FOUND (wrong reason, weaker rank): ``_hyphenated_terms`` joins the whole run, so
    "GPT-4-based" is the one stem "gpt4bas", "Llama-3-8B" is "llama38b", "COVID-19-related"
    is "covid19rel": the keyword "GPT-4" ("Llama-3", "COVID-19") no longer matches these
    papers, the commonest way papers write them as adjectives or model sizes. They come only
    through BM25 of one word, "T: the words GPT" ("the words Llama", "the words COVID"), as any
    paper on GPT-3 would. Expected: the keyword reason "T: GPT-4"."""
    assert keyword_digest(keyword, title, abstract) == [("2601.00001", [f"T: {keyword}"])]


@pytest.mark.parametrize("dash", ["\u2011", "\u2010", "\u2013"])
def test_a_hyphenated_keyword_matches_a_unicode_hyphen(dash: str) -> None:
    """FOUND (wrong reason, weaker rank): a paper writing "GPT\u20114" with a non-breaking hyphen
    (U+2011, common in text pasted from PDFs and web pages), U+2010 HYPHEN, or "COVID\u201319" with
    an en dash is not joined by ``_hyphenated_terms`` (it joins on "-" only): the keyword
    "GPT-4" does not match; the paper is picked as "T: the words GPT". Expected "T: GPT-4"."""
    got = keyword_digest("GPT-4", f"Evaluating GPT{dash}4 on math", f"We test GPT{dash}4.")
    assert got == [("2601.00001", ["T: GPT-4"])]


def test_a_keyword_with_a_trailing_hyphen_stays_case_aware() -> None:
    """FOUND (wrong reason, cosmetic): "PDE-" (the brief's own example) has no inner hyphen,
    so it is neither the hyphen path nor ``acronym`` (whose pattern cannot end in "-"): it falls
    to ``stems`` and is the folded "pde", found in a paper that writes only "pde" in lower
    case ("T: PDE-"), which the keyword "PDE" never matches. Expected: no keyword reason."""
    got = keyword_digest("PDE-", "a pde solver", "pde pde pde")
    assert ("2601.00001", ["T: PDE-"]) not in got


# --- 1. BM25 topic words: findings ----------------------------------------------------------------


def test_a_topic_name_written_in_capitals_still_finds_its_words() -> None:
    """FOUND (wrong digest): ``_query_words`` reads every all-capital word of a topic's name as
    an acronym, so a topic named "GRAPH NEURAL NETWORKS" asks BM25 for §GRAPH, §NEURAL,
    §NETWORKS, which only a paper shouting them in capitals holds. "Graph neural networks for
    molecules" is not picked (digest []), while the topic "Graph neural networks" picks it
    ("the words Graph, neural, networks"). Keywords in capitals are read as phrases (two words
    and more), so only the name is hit, but a name is what BM25 reads first. Expected: the same
    pick for both spellings of the name."""
    gnn = paper("2601.00001", "Graph neural networks for molecules", "Graph neural networks.")
    shouted = digest_of(Topic("GRAPH NEURAL NETWORKS", ("message passing xyz",)), gnn)
    plain = digest_of(Topic("Graph neural networks", ("message passing xyz",)), gnn)
    assert [pid for pid, _ in plain] == ["2601.00001"]
    assert [pid for pid, _ in shouted] == ["2601.00001"], shouted


def test_an_accented_acronym_in_a_topic_name_finds_the_paper_that_writes_it() -> None:
    """FOUND (wrong digest): the topic reads "ÉCOLE" through ``_plain`` (accent dropped) as the
    acronym §ECOLE, but a paper's acronym terms are read from its raw text, where "ÉCOLE" does
    not match ``_ACRONYM`` (ASCII capitals only) and gives no acronym term. A topic named
    "ÉCOLE" does not pick a paper titled "ÉCOLE results" (digest []). Expected: picked."""
    got = digest_of(Topic("ÉCOLE", ("zzqqxx",)), paper("2601.00001", "ÉCOLE results", "ÉCOLE."))
    assert [pid for pid, _ in got] == ["2601.00001"], got


@pytest.mark.parametrize("name", ["C++", "R", "Q&A", "X"])
def test_a_topic_name_made_only_of_short_words_has_no_bm25_words(name: str) -> None:
    """HELD (as documented, noted for the lead): a name made only of one-character words or
    symbols ("C++", "R", "Q&A") gives BM25 nothing of its own; the topic's keywords still do."""
    assert ranking._topic_words(Topic(name, ("zzqqxx",))) == ("zzqqxx",)


_MIXED = [
    *["NO", "no", "No", "LLMs", "LLM", "llm", "iPhone", "IPHONE", "mRNA", "MRNA", "mrna"],
    *["McKay", "MCKAY", "ÉCOLE", "École", "GPT-4", "GPT4", "gpt-4", "X-ray", "Xray"],
    *["Σ-algebra", "\u03c3", "学习", "O'Brien", "OBrien", "CamelCase", "camelcase", "PDEs", "pde"],
    *["AI", "ai", "3D", "5G", "IT", "it", "US", "us", "naïve", "naive", "Straße", "ﬁne"],
]


def _written(word: str, text: str) -> bool:
    """Whether ``text`` writes ``word`` as a reason may claim: case-aware for an acronym, by
    stem (a hyphenated run joined too) otherwise."""
    plain = ranking._plain(text)
    stems = {ranking._stem(w) for w in re.findall(r"\w+", plain)}
    stems |= {ranking._stem(w.replace("-", "")) for w in re.findall(r"\w+(?:-\w+)+", plain)}
    if "-" in word:  # a hyphenated word: written with or without its hyphens, in any case
        return ranking._stem(word.replace("-", "")) in stems
    if ranking.acronym(word):  # in capitals, maybe hyphenated in the paper ("GPT-4" for "GPT4")
        base = word[:-1] if re.fullmatch(r"[A-Z][A-Z0-9]+s", word) else word
        pattern = rf"\b{re.escape(base)}s?\b"
        return any(re.search(pattern, t) for t in (text, text.replace("-", "")))
    return ranking._stem(word) in stems


@HOSTILE
@given(
    st.lists(st.sampled_from(_MIXED), min_size=1, max_size=3),
    st.lists(st.lists(st.sampled_from(_MIXED), min_size=1, max_size=6), min_size=1, max_size=5),
)
def test_every_words_reason_names_words_the_paper_writes(
    name: list[str], texts: list[list[str]]
) -> None:
    """HELD: topic names of acronyms, acronym plurals, mixed case ("iPhone", "McKay", "mRNA"),
    Greek, CJK, accents, apostrophes, ligatures, hyphens: every pick has a reason, and every
    word of a WORDS reason is written in the paper (case-aware for an acronym)."""
    papers = [paper(f"2601.{i:05d}", " ".join(w), " ".join(w) + ".") for i, w in enumerate(texts)]
    sub = Subscriber("a@example.org", topics=(Topic(" ".join(name), ("zzqqxx",)),), max_papers=20)
    for scored in ranking.build_digest(sub, DAY, [*papers, *UNRELATED]).papers:
        assert scored.reasons, scored.paper.id
        text = f"{scored.paper.title} {scored.paper.abstract}"
        for reason in scored.reasons:
            if reason.kind == ReasonKind.WORDS:
                assert all(_written(w, text) for w in reason.terms), (reason, text)


# --- 3. definitions -------------------------------------------------------------------------------

_DEFINITION_WORDS = st.sampled_from(
    [
        *["severe", "acute", "respiratory", "syndrome", "(SARS)", "(SARS-CoV)", "(SARS-CoV-2)"],
        *["coronavirus", "disease", "2019", "(COVID-19)", "(COVID)", "large", "language"],
        *["models", "(LLMs)", "(LLM)", "X-ray", "computed", "tomography", "(CT)", "(X-CT)"],
        *["state-of-the-art", "(SOTA)", "(SotA)", "t-distributed", "stochastic", "neighbor"],
        *[
            "embedding",
            "(t-SNE)",
            "(TSNE)",
            "-",
            "—",
            "\u2013",
            "(",
            ")",
            "of",
            "the",
            "Über",
            "(Ü)",
        ],
        *["\u2011", "pre-trained", "(PT)", "(P-T)", "Generative", "Pre-trained", "Transformer"],
        *["(GPT)", "(GPT-4)", " " * 399, "\n" * 300],
    ]
)


@HOSTILE
@given(st.lists(_DEFINITION_WORDS, max_size=30), st.sampled_from([" ", "\n", "-", "", "  "]))
def test_definitions_with_hyphens_equal_the_whole_text_regex(words: list[str], sep: str) -> None:
    """HELD: hyphenated long forms and acronyms ("SARS-CoV-2", "t-SNE", "X-CT"), dashes, a
    non-breaking hyphen, gaps up to 399 characters (sums far beyond 400): the look-back finds
    what the whole-text reference finds (3,000 examples in scratch, none differ; a word of 401
    characters differs, as documented)."""
    text = sep.join(words)
    assert list(ranking.definitions(text)) == whole_text_definitions(text)


# --- 4. the pool and the paper cache --------------------------------------------------------------

RUN_DAY = date(2026, 1, 10)  # a Saturday
VOCAB = ["GPT-4", "gpt4", "GPT4", "LLMs", "large language models (LLMs)", "NO", "no", "X-ray"]


def day_of(when: date, seed: int) -> Day:
    """Eight papers of ``when`` over hyphenated and acronym words, ids reused across days."""
    rng = np.random.default_rng(seed + when.toordinal())
    papers = []
    for i in range(8):
        reuse = rng.random() < 0.3
        pid = f"2601.{int(rng.integers(8)) if reuse else 100 * when.day + i:05d}"
        papers.append(
            Paper(
                id=pid,
                title=" ".join(rng.choice(VOCAB, 2)),
                abstract=" ".join(rng.choice(VOCAB, 3)) + ".",
                authors=("Ada Lovelace",),
                published=when,
                upvotes=int(rng.integers(20)),
                url="https://example.org/",
                pdf_url="https://example.org/p.pdf",
                source="arxiv" if rng.random() < 0.3 else "huggingface",
            )
        )
    return Day(when, tuple(papers))


@HOSTILE
@given(st.data(), st.integers(0, 2**16))
def test_the_pool_plans_as_alone_with_hyphenated_and_acronym_words(
    data: st.DataObject, seed: int
) -> None:
    """HELD: with hyphenated and acronym keywords (the new terms) in papers and topics, a paper
    id repeated on several days with other text, weekly and daily subscribers, catch-up days,
    papers sent already: every ``pool.plan`` equals ``planning.plan`` alone."""
    held = data.draw(st.sets(st.integers(1, 6)))
    archived = {
        RUN_DAY - timedelta(days=n): day_of(RUN_DAY - timedelta(days=n), seed) for n in held
    }
    today = day_of(RUN_DAY, seed)
    subs = [
        Subscriber(
            email=f"s{i}@example.org",
            topics=(
                Topic("T", tuple(data.draw(st.lists(st.sampled_from(VOCAB), min_size=1)))[:3]),
            ),
            max_papers=data.draw(st.sampled_from([1, 3, 10])),
            frequency=data.draw(st.sampled_from(["daily", "weekly"])),
            weekday="saturday",
        )
        for i in range(data.draw(st.integers(1, 8)))
    ]
    ledger = Ledger(None)
    ids = [p.id for d in (today, *archived.values()) for p in d.papers]
    for sub in subs:
        for back in data.draw(st.lists(st.integers(1, 9), max_size=2, unique=True)):
            served = RUN_DAY - timedelta(days=back)
            ledger.claim(sub.email, served, "<m@example.org>", ids[back : back + 3])
            ledger.record(sub.email, served, State.SENT, attempts=1)
    pool = planning.rank_pool(subs, today, ledger, archived.get)
    for sub in subs:
        got, covers = pool.plan(sub, ledger)
        alone, alone_covers = planning.plan(sub, today, ledger, archived.get)
        assert covers == alone_covers
        assert_same(got, alone)


def test_the_paper_cache_never_serves_another_texts_fields() -> None:
    """HELD: the run's cache of indexed papers (``known``) is keyed by the whole frozen Paper
    (every field compared and hashed): two papers equal by value share fields; the same id with
    another abstract is worked out anew."""
    one = paper("2601.00001", "Neural operators", "We study PDEs.")
    same = paper("2601.00001", "Neural operators", "We study PDEs.")
    other = paper("2601.00001", "Neural operators", "We study NO in cells.")
    known: ranking.Indexed = {}
    ranking.build_index([one], known=known)
    ranking.build_index([same], known=known)
    assert len(known) == 1
    index = ranking.build_index([other], known=known)
    assert len(known) == 2
    assert "§NO" in index.paper_stems(0)
    assert "§NO" not in ranking.build_index([same], known=known).paper_stems(0)


# --- 5a. .env -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dotenv",
    [
        "PAPERMAIL_DKIM_SELECTOR=O'Brien\nPAPERMAIL_SMTP_PORT=25\n",
        "PAPERMAIL_SMTP_HOST=smtp.example.org # the relay's 'name\nPAPERMAIL_SMTP_PORT=25\n",
        'PAPERMAIL_SMTP_HOST=smtp.example.org # said "hi\nPAPERMAIL_SMTP_PORT=25\n',
        "PAPERMAIL_DKIM_SELECTOR='two\nPAPERMAIL_NOT an assignment\n'\nPAPERMAIL_SMTP_PORT=25\n",
        'PAPERMAIL_DKIM_SELECTOR= "a\nb"\nPAPERMAIL_SMTP_PORT=25\n',
        "PAPERMAIL_SMTP_HOST=smtp.example.org\r\nPAPERMAIL_SMTP_PORT=25\r\n",
        "export\tPAPERMAIL_SMTP_HOST=smtp.example.org\n",
        'PAPERMAIL_DKIM_SELECTOR="a\\\\"\nPAPERMAIL_SMTP_PORT=25\n',
    ],
)
def test_valid_dotenv_files_with_quotes_are_read(env: Path, dotenv: str) -> None:
    """HELD: an apostrophe mid-value, quotes in a comment after a value, a single-quoted value
    over lines holding a "PAPERMAIL_..." line, a space before the opening quote, CRLF, "export"
    and a tab, an escaped backslash before the closing quote: each is read (python-dotenv reads
    them the same)."""
    (env / ".env").write_text(dotenv, encoding="utf-8", newline="")
    assert _env_file_names(env / ".env") == list(dotenv_values(stream=io.StringIO(dotenv)))


@pytest.mark.parametrize(
    "dotenv",
    [
        "PAPERMAIL_DKIM_SELECTOR='it''s'\nPAPERMAIL_SMTP_PORT=25\n",
        "PAPERMAIL_DKIM_SELECTOR='a' b\nPAPERMAIL_SMTP_PORT=25\n",
        "PAPERMAIL_DKIM_SELECTOR='C:\\'\nPAPERMAIL_SMTP_PORT=25\n",
        "PAPERMAIL_SMTP_HOST: smtp.example.org\n",
        "export PAPERMAIL_SMTP_HOST\n",
        "OTHER='abc\nPAPERMAIL_SMTP_PORT=25\n",
    ],
)
def test_dotenv_lines_python_dotenv_cannot_read_are_refused(
    env: Path, monkeypatch: pytest.MonkeyPatch, dotenv: str
) -> None:
    """HELD: each of these is a statement python-dotenv skips (or reads as no value); each is
    refused with "cannot be parsed"."""
    (env / ".env").write_text(dotenv, encoding="utf-8")
    assert "cannot be parsed" in settings_result(env, monkeypatch)


def test_a_dotenv_error_names_the_line_an_editor_shows(tmp_path: Path) -> None:
    """FOUND (cosmetic): ``_env_file_names`` numbers lines with ``str.splitlines``, which also
    breaks at U+000C, U+001C..U+001E, U+0085, U+2028, U+2029 and U+000B; python-dotenv and
    editors break only at \\n and \\r. A comment holding a form feed (as some editors write
    between sections) above a bad line shifts the number: "line 3" for the second line."""
    path = tmp_path / ".env"
    path.write_text("# settings\x0c\nPAPERMAIL_SMTP_HOST smtp.example.org\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        _env_file_names(path)
    assert "line 2:" in str(caught.value), str(caught.value)


# --- 5b. invisible characters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "pay\u200dpal",  # ZWJ between Latin letters: no emoji, no script needs it
        "a\u200cb",  # ZWNJ between Latin letters
        "a\u2800b",  # BRAILLE PATTERN BLANK
        "a\ufe0fb",  # VS16 after a Latin letter
        "a\U000e0100b",  # VARIATION SELECTOR-17
        "a\u180bb",  # MONGOLIAN FREE VARIATION SELECTOR ONE
        "a\u17b4b",  # KHMER VOWEL INHERENT AQ
        "a\U0001d159b",  # MUSICAL SYMBOL NULL NOTEHEAD
    ],
)
def test_remaining_invisible_characters_in_a_path_are_refused(name: str) -> None:
    """FOUND (invisible character accepted): ``_check_visible`` refuses category Cf and five
    fillers, but allows ZWJ/ZWNJ anywhere (not only inside an emoji sequence or between letters
    of a script that joins): "pay\\u200dpal" looks exactly like "paypal". Also accepted and
    drawing nothing: U+2800, variation selectors (U+FE0F after "a", U+E0100, U+180B), U+17B4,
    U+1D159. Expected: refused with the code point."""
    with pytest.raises(ValueError, match="U\\+"):
        _check_visible(f"/srv/{name}")


@pytest.mark.parametrize(
    "name",
    [
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland
        "\u0600\u0661\u0662",  # ARABIC NUMBER SIGN before Arabic digits (drawn, spans them)
    ],
)
def test_a_path_with_a_tag_flag_emoji_or_an_arabic_number_sign_is_accepted(name: str) -> None:
    """FOUND (false refusal, rare): the flags of Scotland, England and Wales are emoji tag
    sequences (U+1F3F4, tags U+E0067.., U+E007F), all category Cf, so "/srv/🏴󠁧󠁢󠁳󠁣󠁴󠁿" is
    refused "(U+E0067)"; U+0600..U+0605 (Arabic number signs, drawn above the digits they
    precede) are Cf as well. Expected: accepted, as the ZWJ emoji sequences now are."""
    _check_visible(f"/srv/{name}")


@pytest.mark.parametrize(
    "name",
    ["👍🏽", "🇫🇷", "1️⃣", "👨\u200d👩\u200d👧", "مرحبا", "שלום", "हिन्दी", "e\u0301cole", "ﬁle"],
)
def test_legitimate_paths_are_still_accepted(name: str) -> None:
    """HELD: skin tones, regional-indicator flags, keycaps, ZWJ families, Arabic, Hebrew,
    Devanagari, combining accents, ligatures."""
    _check_visible(f"/srv/{name}")


# --- 5c. URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PAPERMAIL_PREFERENCES_URL", "PAPERMAIL_UNSUBSCRIBE_URL"])
@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.org/unsubscribe?e={email}", True),
        ("https://example.org/u?list=ai&e={email}#top", True),
        ("https://admin@example.org/u?e={email}", False),
        ("https://:@example.org/u?e={email}", False),
        ("https://a%3Ab@example.org/u?e={email}", False),
        ("HTTPS://U:P@EXAMPLE.ORG/u?e={email}", False),
    ],
)
def test_email_urls_keep_their_query_and_refuse_login_details(
    env: Path, monkeypatch: pytest.MonkeyPatch, name: str, url: str, ok: bool
) -> None:
    """HELD: an unsubscribe or preferences URL with "?e={email}" (and a fragment) is accepted;
    a user, an empty user and password, percent-encoded or upper-case login details are
    refused."""
    got = settings_result(env, monkeypatch, **{name: url})
    assert (got == "OK") == ok, got


# --- additions: hyphens inside multi-word keywords, the cache over big weeks ----------------------


def test_a_multiword_keyword_with_a_hyphenated_word_does_not_match_its_parts_apart() -> None:
    """FOUND (wrong reason / false positive): 1071db8 made the single keyword "GPT-4" one stem
    so that "GPT-3 against 4 baselines" no longer matches (round 2), but a keyword of several
    words keeps the old reading: "GPT-4 evaluation" is the phrase (gpt, 4, evalu), matched by
    proximity, so "Evaluation of GPT-3 on 4 tasks" is picked with the keyword reason
    "T: GPT-4 evaluation". Expected: no keyword reason (at most "the words ...")."""
    got = keyword_digest(
        "GPT-4 evaluation", "Evaluation of GPT-3 on 4 tasks", "Evaluation of GPT-3 on 4 tasks."
    )
    assert ("2601.00001", ["T: GPT-4 evaluation"]) not in got, got


def test_a_multiword_keyword_with_a_hyphenated_word_matches_the_joined_form() -> None:
    """FOUND (wrong reason, inconsistent): the keyword "GPT-4" finds "GPT4", but "GPT-4
    evaluation" does not find "GPT4 evaluation on math" (reason "T: the words evaluation"):
    the hyphen rule of ``phrase_of`` applies to one-word keywords only."""
    got = keyword_digest("GPT-4 evaluation", "GPT4 evaluation on math", "GPT4 evaluation.")
    assert got == [("2601.00001", ["T: GPT-4 evaluation"])], got


def test_the_paper_cache_holds_a_week_of_a_busy_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """FOUND (performance): ``_indexed`` was an LRU of 8,192 papers. A week of 1,300 papers a
    day (9,100, as arXiv's cs.* alone gives) ranked for two groups (a weekly subscriber on all
    seven days, a catch-up subscriber on six) is read in the same order twice: the second
    group's scan evicts each paper just before it is needed, so papers are indexed again and
    again: 26,000 calls for 9,100 papers (9,100 with an unbounded cache: 0.56 s against 0.31 s
    on these one-word abstracts), the cost c96f0af removed for small days. Expected: each
    paper indexed once a run (a cache sized to the run, or per run)."""
    window = tuple(RUN_DAY - timedelta(days=n) for n in range(6, -1, -1))
    days = {
        when: Day(
            when,
            tuple(
                Paper(
                    id=f"{when.day:02d}{i:02d}.{i:05d}",
                    title=f"Study {when.day} {i}",
                    abstract="Short.",
                    authors=("A. Nobody",),
                    published=when,
                    upvotes=0,
                    url="https://example.org/",
                    pdf_url="https://example.org/p.pdf",
                    source="huggingface",
                )
                for i in range(1300)
            ),
        )
        for when in window
    }
    weekly = Subscriber("w@example.org", topics=(Topic("T", ("grokking",)),))
    catch_up = Subscriber("c@example.org", topics=(Topic("T", ("grokking",)),))
    assign = {weekly.email: window, catch_up.email: window[1:]}
    monkeypatch.setattr(
        planning,
        "days_to_cover",
        lambda subscribers, day, ledger, email=None: {
            s.email: assign[s.email] for s in subscribers
        },
    )
    calls = 0
    real = ranking._paper_fields

    def counted(p: Paper) -> object:
        nonlocal calls
        calls += 1
        return real(p)

    monkeypatch.setattr(ranking, "_paper_fields", counted)
    planning.rank_pool([weekly, catch_up], days[RUN_DAY], None, days.get)
    assert calls <= 7 * 1300, f"{calls} papers indexed for {7 * 1300}"


def test_an_unclosed_quote_masked_by_a_later_assignment_of_the_same_name_is_refused(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FOUND (setting silently unset): in

        PAPERMAIL_DKIM_SELECTOR='mail 2026         <- quote never closed on this line
        PAPERMAIL_SMTP_HOST='smtp.example.org'
        PAPERMAIL_DKIM_SELECTOR='mail'             <- the name again, fixed lower down

    python-dotenv reads line 1 up to the next "'" (inside line 2), fails, and skips both lines:
    PAPERMAIL_SMTP_HOST is never set (the run goes to the outbox). ``_env_file_names`` decides
    a line is bad by "its name is not in dotenv's values", and PAPERMAIL_DKIM_SELECTOR is there
    (from line 3), so line 1 passes; its open quote then makes the scanner take line 2 as the
    value's continuation and skip it. The file is accepted. Found by a differential Hypothesis run
    against ``dotenv_values`` (scratch). Expected: exit 78 naming line 1."""
    text = (
        "PAPERMAIL_DKIM_SELECTOR='mail 2026\n"
        "PAPERMAIL_SMTP_HOST='smtp.example.org'\n"
        "PAPERMAIL_DKIM_SELECTOR='mail'\n"
    )
    assert "PAPERMAIL_SMTP_HOST" not in dotenv_values(stream=io.StringIO(text))
    (env / ".env").write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match="line 1: cannot be parsed"):
        _env_file_names(env / ".env")


def test_a_fragment_of_a_hyphenated_keyword_alone_picks_nothing() -> None:
    """FOUND (wrong digest + misleading reason; the class round 2 fixed for digits and single
    letters): BM25 read a hyphenated keyword's parts down to two letters, so the fragment "no"
    (of "no-regret") lifted any paper holding it: "there is no free lunch" was picked for
    ("Bandits", "no-regret") as "Bandits: the words no". BM25 now leaves out a hyphenated
    word's parts shorter than four letters. Still read (dropping them cost recall on the dev
    half): longer parts, so ("SSL", "self-supervised") can lift a paper that mentions
    "self-energy" (docs/ranking.md)."""
    no_lunch = paper("2601.00001", "There is no free lunch", "We show no method works. no no.")
    assert digest_of(Topic("Bandits", ("no-regret",)), no_lunch) == []


@pytest.mark.parametrize(
    "dotenv",
    [
        # two files joined (cat a.env b.env > .env), the second saved with a BOM by Notepad
        "PAPERMAIL_FROM_ADDRESS=digest@example.org\n\ufeffPAPERMAIL_SMTP_HOST=smtp.example.org\n",
        # a BOM written twice (a file re-saved with one by an editor that adds another)
        "\ufeff\ufeffPAPERMAIL_SMTP_HOST=smtp.example.org\n",
        # a zero-width space or a left-to-right mark pasted before the name
        "\u200bPAPERMAIL_SMTP_HOST=smtp.example.org\n",
        "\u200ePAPERMAIL_SMTP_HOST=smtp.example.org\n",
    ],
)
def test_a_bom_before_a_later_line_does_not_silently_unset_it(
    env: Path, monkeypatch: pytest.MonkeyPatch, dotenv: str
) -> None:
    """FOUND (setting silently unset): 99364ba strips one BOM at the very start, but a BOM
    starting any other line (joined files) or a second BOM is not white space to ``_ASSIGNMENT``
    nor to ``_PAPERMAIL_LINE`` (nor is a pasted U+200B or U+200E), so the line is neither read
    nor refused; python-dotenv reads the
    name "\\ufeffPAPERMAIL_SMTP_HOST", which pydantic-settings ignores and ``unknown_variables``
    does not see as papermail's. Settings load with smtp_host None: mail goes to the outbox.
    Expected: exit 78 naming the line (or the BOM skipped and the host read)."""
    (env / ".env").write_text(dotenv, encoding="utf-8")
    monkeypatch.delenv("PAPERMAIL_SMTP_HOST", raising=False)
    try:
        loaded = load_settings()
    except SettingsError:
        return  # refused: fine
    assert loaded.smtp_host == "smtp.example.org"
