"""Ranking: phrases, inflections, field weights, authors, exclusions, thresholds, floor, order."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import date
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.models import Paper, ReasonKind, Subscriber, Topic
from pipeline.ranking import (
    POPULARITY_NUDGE,
    build_digest,
    build_index,
    rank_all,
    same_person,
    stems,
)
from tests.conftest import PapersServer, no_sleep

DAY = date(2026, 1, 1)
FILLER = (
    "We study a broad family of methods and report experiments on standard benchmarks. "
    "Our analysis covers several settings and the results are consistent across them. "
) * 4


def paper(
    pid: str,
    title: str,
    abstract: str = "A study.",
    *,
    authors: tuple[str, ...] = ("A. Nobody",),
    upvotes: int = 0,
    keywords: tuple[str, ...] = (),
    comments: int | None = None,
    published: date = DAY,
) -> Paper:
    """A paper with only the fields ranking reads filled in meaningfully."""
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=authors,
        published=published,
        upvotes=upvotes,
        url=f"https://example.org/{pid}",
        pdf_url=f"https://example.org/{pid}.pdf",
        source="huggingface",
        keywords=keywords,
        num_comments=comments,
    )


def reader(*keywords: str, **overrides: object) -> Subscriber:
    """A subscriber with one topic made of ``keywords``."""
    fields: dict[str, object] = {
        "email": "r@example.org",
        "topics": (Topic("Topic", tuple(keywords)),),
    }
    fields.update(overrides)
    return Subscriber(**fields)  # type: ignore[arg-type]


def ids(sub: Subscriber, papers: list[Paper], **kwargs: frozenset[str]) -> list[str]:
    """The ids of the digest ``sub`` gets from ``papers``, in order."""
    return [s.paper.id for s in build_digest(sub, DAY, papers, **kwargs).papers]


def test_a_phrase_matches_only_as_a_phrase() -> None:
    """'training dynamics' matches the phrase, not 'training' and 'dynamics' far apart."""
    together = paper("1", "On the training dynamics of transformers")
    apart = paper("2", "Training robots", "We study the dynamics of fluids.")
    assert ids(reader("training dynamics"), [together, apart]) == ["1"]


def test_matching_ignores_case_accents_and_simple_inflections() -> None:
    """'diffusion model' finds 'Diffusion Models'; 'PDE' finds 'PDEs'; accents are folded."""
    papers = [
        paper("1", "Fast Diffusion Models for Audio"),
        paper("2", "Neural solvers for PDEs"),
        paper("3", "Théorie des modèles"),
    ]
    assert ids(reader("diffusion model"), papers) == ["1"]
    assert ids(reader("PDE"), papers) == ["2"]
    assert ids(reader("theorie"), papers) == ["3"]
    assert stems("Training Dynamics") == stems("trained dynamic")


def test_a_title_match_counts_more_than_one_deep_in_the_abstract() -> None:
    """The same keyword scores higher in the title than at the end of a long abstract."""
    in_title = paper("b", "Grokking in small transformers", "A study.")
    deep = paper("a", "Small transformers", FILLER + "We also observe grokking.")
    early = paper("c", "Small transformers", "Grokking is observed. " + FILLER)
    digest = build_digest(reader("grokking"), DAY, [deep, in_title, early])
    assert [s.paper.id for s in digest.papers] == ["b", "c", "a"]


def test_topic_weights_count() -> None:
    """With equal matches, the paper of the heavier topic ranks first."""
    sub = Subscriber(
        email="w@example.org",
        topics=(Topic("Light", ("holography",), 0.5), Topic("Heavy", ("grokking",), 2.0)),
    )
    papers = [paper("1", "Holography and branes"), paper("2", "Grokking and circuits")]
    assert ids(sub, papers) == ["2", "1"]
    sub_flipped = Subscriber(
        email="w@example.org",
        topics=(Topic("Light", ("holography",), 2.0), Topic("Heavy", ("grokking",), 0.5)),
    )
    assert ids(sub_flipped, papers) == ["1", "2"]


def test_the_relevance_floor_pads_nothing_in() -> None:
    """Papers matching nothing never fill the digest; no match at all gives an empty digest."""
    papers = [paper(str(i), f"Unrelated paper {i}", upvotes=100) for i in range(5)]
    papers.append(paper("x", "Grokking, again"))
    assert ids(reader("grokking"), papers) == ["x"]
    assert ids(reader("holography"), papers) == []


@pytest.mark.parametrize(
    ("wanted", "written"),
    [
        ("Cengiz Pehlevan", "Cengiz Pehlevan"),
        ("C. Pehlevan", "Cengiz Pehlevan"),
        ("Cengiz Pehlevan", "C Pehlevan"),
        ("Edwan Preau", "Edwan Préau"),
        ("satya n. majumdar", "Satya N. Majumdar"),
        ("S. N. Majumdar", "Satya Narayan Majumdar"),
        ("Pierre Le Doussal", "P. Le Doussal"),
    ],
)
def test_names_match_as_people_write_them(wanted: str, written: str) -> None:
    """Initials, accents, case and punctuation do not hide a followed author."""
    assert same_person(wanted, written)


@pytest.mark.parametrize(
    ("wanted", "written"),
    [
        ("Cengiz Pehlevan", "Carl Pehlevan"),
        ("C. Pehlevan", "D. Pehlevan"),
        ("Cengiz Pehlevan", "Cengiz Pehlivan"),
        ("S. N. Majumdar", "Satya K. Majumdar"),
    ],
)
def test_different_people_do_not_match(wanted: str, written: str) -> None:
    """Another first name, initial or family name is another person."""
    assert not same_person(wanted, written)


def test_a_followed_author_is_always_included_with_the_reason() -> None:
    """A paper by a followed author comes in even when no topic matches, saying why."""
    sub = reader("grokking", authors=("C. Pehlevan",))
    papers = [paper("1", "Kernels and widths", authors=("Blake Bordelon", "Cengiz Pehlevan"))]
    (picked,) = build_digest(sub, DAY, papers).papers
    assert [str(r) for r in picked.reasons] == ["by C. Pehlevan"]
    assert picked.reasons[0].kind is ReasonKind.AUTHOR


def test_followed_authors_take_their_places_first_under_max_papers() -> None:
    """With max_papers 1, the followed author's weakly matching paper wins the only slot."""
    sub = reader("grokking", authors=("Cengiz Pehlevan",), max_papers=1)
    papers = [
        paper("1", "Grokking grokking grokking", keywords=("grokking",)),
        paper("2", "Kernels", authors=("Cengiz Pehlevan",)),
    ]
    assert ids(sub, papers) == ["2"]


def test_exclude_drops_a_paper_even_by_a_followed_author() -> None:
    """An exclusion phrase anywhere in the paper drops it, whatever else matched."""
    sub = reader("intrinsic dimension", authors=("Nicholas Konz",), exclude=("medical",))
    papers = [
        paper("1", "Intrinsic dimension of natural images"),
        paper("2", "Intrinsic dimension of medical images", authors=("Nicholas Konz",)),
        paper("3", "Intrinsic dimension", "Applied to Medical imaging."),
    ]
    assert ids(sub, papers) == ["1"]


def test_min_upvotes_and_max_papers_hold() -> None:
    """Papers under min_upvotes are dropped; at most max_papers are kept, best first."""
    papers = [paper(str(i), f"Grokking study {i}", upvotes=i) for i in range(10)]
    assert ids(reader("grokking", min_upvotes=5, max_papers=3), papers) == ["9", "8", "7"]
    assert len(ids(reader("grokking", min_upvotes=5), papers)) == 5


def test_already_sent_papers_are_left_out() -> None:
    """A paper the ledger says was sent before is never picked again."""
    papers = [paper("1", "Grokking one"), paper("2", "Grokking two")]
    assert ids(reader("grokking"), papers, already_sent=frozenset({"1"})) == ["2"]


def test_an_arxiv_only_paper_goes_only_to_followers_of_its_categories() -> None:
    """arXiv is asked for some subscribers' categories; its extra papers are theirs alone."""
    from_arxiv = dataclasses.replace(
        paper("9", "Grokking in transformers"), source="arxiv", categories=("cs.LG", "stat.ML")
    )
    papers = [paper("1", "Grokking one"), from_arxiv]
    assert ids(reader("grokking"), papers) == ["1"]
    assert ids(reader("grokking", categories=("math.PR",)), papers) == ["1"]
    assert sorted(ids(reader("grokking", categories=("stat.ML",)), papers)) == ["1", "9"]


def test_popularity_orders_near_equal_papers_but_never_outranks_relevance() -> None:
    """Upvotes decide between equally relevant papers, never against a clearly better match."""
    quiet = paper("a", "Grokking in transformers", upvotes=0)
    loud = paper("b", "Grokking in transformers", upvotes=500, comments=40)
    assert ids(reader("grokking"), [quiet, loud]) == ["b", "a"]
    better = paper("c", "Grokking and delayed generalization", upvotes=0)
    viral = paper("d", "Grokking in transformers", upvotes=100_000, comments=10_000)
    assert ids(reader("grokking", "delayed generalization"), [viral, better]) == ["c", "d"]
    digest = build_digest(reader("grokking"), DAY, [quiet, loud])
    low, high = sorted(s.score for s in digest.papers)
    assert high / low < 1 + POPULARITY_NUDGE


def test_ties_are_deterministic_whatever_the_input_order() -> None:
    """Equal papers come out in id order, however they went in."""
    papers = [paper(f"2601.{i:05d}", "Grokking study") for i in range(8)]
    expected = sorted(p.id for p in papers)
    for seed in range(5):
        shuffled = papers[:]
        random.Random(seed).shuffle(shuffled)
        assert ids(reader("grokking", max_papers=20), shuffled) == expected


def test_every_pick_carries_its_reasons() -> None:
    """Each reason names the topic and the keywords, as the subscriber wrote them, that matched."""
    sub = Subscriber(
        email="r@example.org",
        topics=(
            Topic("Grokking", ("grokking", "training dynamics", "unrelated")),
            Topic("Theory", ("random matrix",)),
        ),
    )
    papers = [paper("1", "Grokking and Training Dynamics", "Random matrices appear deep in here.")]
    (picked,) = build_digest(sub, DAY, papers).papers
    assert [str(r) for r in picked.reasons] == [
        "Grokking: grokking, training dynamics",
        "Theory: random matrix",
    ]
    assert picked.to_json()["reasons"] == [str(r) for r in picked.reasons]


def test_papers_of_several_days_rank_together_and_a_repeated_id_counts_once() -> None:
    """The index takes papers of several days (weekly digests); a duplicate id is kept once."""
    monday = paper("1", "Grokking on Monday", published=date(2026, 1, 5))
    tuesday = paper("2", "Grokking on Tuesday", published=date(2026, 1, 6), upvotes=3)
    again = paper("1", "Grokking on Monday", published=date(2026, 1, 5))
    index = build_index([monday, tuesday, again])
    assert len(index.papers) == 2
    assert [s.paper.id for s in index.digest(reader("grokking"), DAY).papers] == ["2", "1"]


def test_scoring_everyone_together_equals_scoring_each_alone() -> None:
    """The batch ranking gives each subscriber exactly the digest they would get alone."""
    rng = random.Random(7)
    vocabulary = ["grokking", "neural operator", "holography", "diffusion model", "PDE", "lattice"]
    papers = [
        paper(
            f"2601.{i:05d}",
            " ".join(rng.sample(vocabulary, 2)),
            " ".join(rng.sample(vocabulary, 3)) + ". " + FILLER,
            authors=(rng.choice(["Ada Lovelace", "Grace Hopper", "Alan Turing"]),),
            upvotes=rng.randrange(50),
        )
        for i in range(60)
    ]
    subscribers = [
        Subscriber(
            email=f"s{i}@example.org",
            topics=(Topic("T", tuple(rng.sample(vocabulary, 2)), rng.choice([0.5, 1.0, 2.0])),),
            authors=(("G. Hopper",) if i % 3 == 0 else ()),
            exclude=(("lattice",) if i % 4 == 0 else ()),
            max_papers=rng.choice([3, 5, 10]),
        )
        for i in range(40)
    ]
    together = rank_all(papers, subscribers)
    for sub in subscribers:
        alone = build_digest(sub, DAY, papers)
        assert together.digest(sub, DAY) == alone
    latecomer = reader("holography", email="late@example.org")
    assert together.digest(latecomer, DAY) == build_digest(latecomer, DAY, papers)


def test_categories_and_upvote_thresholds_hold_for_everyone_scored_together() -> None:
    """Each subscriber's categories and min_upvotes, settled for all at once, are their own."""
    rng = random.Random(8)
    categories = ["cs.LG", "stat.ML", "math.PR"]
    papers = [
        dataclasses.replace(
            paper(f"2601.{i:05d}", f"Grokking study {i}", upvotes=rng.randrange(20)),
            source="arxiv" if i % 2 else "huggingface",
            categories=tuple(rng.sample(categories, rng.randrange(3))),
        )
        for i in range(30)
    ]
    subscribers = [
        reader(
            "grokking",
            email=f"s{i}@example.org",
            categories=tuple(rng.sample(categories, i % 3)),
            min_upvotes=rng.choice([0, 5, 15]),
            max_papers=rng.choice([3, 10, 30]),
        )
        for i in range(24)
    ]
    together = rank_all(papers, subscribers)
    for sub in subscribers:
        assert together.digest(sub, DAY) == build_digest(sub, DAY, papers)


def test_explain_shows_the_digest_with_scores_and_reasons(
    env: Path,
    papers_server: PapersServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """papermail explain: Ada's picks in order, capped at her max_papers, each with its reasons."""
    assert main(["explain", "ada@example.org", "--date", "2026-01-01"], sleep=no_sleep) == 0
    text = capsys.readouterr().out
    assert main(["explain", "ada@example.org", "--date", "2026-01-01", "--json"]) == 0
    picks = json.loads(capsys.readouterr().out)
    assert 0 < len(picks) <= 5
    assert picks[0]["title"] == "Grokking as the Transition from Lazy to Rich Training Dynamics"
    assert picks[0]["reasons"][0] == "by Cengiz Pehlevan"
    assert [p["score"] for p in picks] == sorted((p["score"] for p in picks), reverse=True)
    assert set(picks[0]) == {"id", "title", "score", "reasons"}
    assert all(p["reasons"] for p in picks)
    assert "Medical" not in text, "ada excludes medical papers"
    for rank, pick in enumerate(picks, start=1):
        assert f"{rank:>2}. [{pick['score']:6.2f}] {pick['title']} ({pick['id']})" in text
        for reason in pick["reasons"]:
            assert f"      - {reason}" in text


def test_explain_says_when_the_digest_would_not_be_sent(
    env: Path,
    papers_server: PapersServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A paused subscriber's picks are shown, with a warning that no email goes out."""
    assert main(["explain", "alan@example.org", "--date", "2026-01-01"], sleep=no_sleep) == 0
    err = capsys.readouterr().err
    assert "alan@example.org gets no email on 2026-01-01 (paused)" in err
    assert main(["explain", "ada@example.org", "--date", "2026-01-01"], sleep=no_sleep) == 0
    assert "gets no email" not in capsys.readouterr().err


# --- lexical matching: derived forms, proximity, acronyms, stopwords ---------------------------


def test_derived_forms_meet_on_one_stem() -> None:
    """'dimensionality reduction' finds "dimension reduction" and the other way round."""
    assert stems("dimensionality reduction") == stems("dimension reduction")
    by_noun = paper("1", "Fast dimension reduction for point clouds")
    assert ids(reader("dimensionality reduction"), [by_noun]) == ["1"]


def test_a_phrase_also_matches_by_proximity_below_the_exact_phrase() -> None:
    """A keyword's words close together in any order match, for less than the phrase itself;
    far apart, or in different fields, they do not."""
    exact = paper("1", "Neural operators for fluids", "A neural operator learns the solution map.")
    near = paper("2", "Deep operator networks", "An operator built from neural layers.")
    far = paper("3", "Operators", "Operator theory. " + FILLER + " A neural method.")
    found = build_digest(reader("neural operator"), DAY, [exact, near, far])
    assert [s.paper.id for s in found.papers] == ["1", "2"]
    assert found.papers[0].score > found.papers[1].score
    assert found.papers[1].reasons[0].terms == ("neural operator",)


def test_an_acronym_matches_only_in_capitals() -> None:
    """'NO' (neural operator) is not the word "no"; 'PDE' finds "PDEs" but not "pde" in a word."""
    shout = paper("1", "NO for turbulence", "We train a NO on flows.")
    word = paper("2", "There is no free lunch", "No method wins everywhere.")
    assert ids(reader("NO"), [shout, word]) == ["1"]
    plural = paper("3", "Solving PDEs fast", "Neural solvers.")
    assert ids(reader("PDE"), [plural]) == ["3"]


def test_an_acronym_and_its_long_form_stand_for_each_other_as_the_day_defines_them() -> None:
    """ "partial differential equations (PDEs)" in one paper links 'PDE' to the long form in
    every paper of the day, and the long form to the acronym."""
    definer = paper(
        "1", "A solver", "We solve partial differential equations (PDEs) with neural networks."
    )
    long_only = paper("2", "Partial differential equations on graphs", "A study of diffusion.")
    short_only = paper("3", "Fast PDE solvers", "Multigrid.")
    assert set(ids(reader("PDE"), [definer, long_only, short_only])) == {"1", "2", "3"}
    assert set(ids(reader("partial differential equation"), [definer, long_only, short_only])) == {
        "1",
        "2",
        "3",
    }
    # without the definition on the day, neither finds the other
    assert ids(reader("PDE"), [long_only, short_only]) == ["3"]


def test_a_keyword_of_stopwords_matches_nothing() -> None:
    """'the' or 'a' alone would match every paper: it matches none."""
    papers = [paper("1", "The theory of everything", "A study of the world.")]
    assert ids(reader("the"), papers) == []
    assert ids(reader("a", "of the"), papers) == []
    assert ids(reader("theory of everything"), papers) == ["1"]


def test_papers_sharing_only_a_common_word_are_not_padded_in() -> None:
    """BM25 over a topic's words lifts nothing on a day where only a common word is shared: a
    subscriber's best paper of such a day is not made a pick by being their best."""
    papers = [
        paper(str(i), f"A model of traffic {i}", f"We model cars on road {i}. " + FILLER)
        for i in range(30)
    ]
    assert ids(reader("diffusion model", "score matching"), papers) == []


def test_a_paper_using_the_topics_words_spread_out_is_picked_one_sharing_a_word_is_not() -> None:
    """BM25 over the topic's name and keywords: a paper using several of them, though never a
    keyword as written, is picked; a paper sharing one word with them is not."""
    topic = Topic("Loss landscape", ("flat minima",))
    sub = Subscriber("r@example.org", topics=(topic,))
    spread = paper(
        "1", "Flat regions of the landscape", "Minima of the training loss found by small batches."
    )
    single = paper("2", "Landscape photography", "A camera study. " + FILLER)
    others = [paper(str(i), f"Quantum dots {i}", FILLER) for i in range(3, 30)]
    assert ids(sub, [spread, single, *others]) == ["1"]


def test_an_empty_day_ranks_to_empty_digests() -> None:
    """A day with no papers (a weekend's ``[]``) gives every subscriber an empty digest, not a
    crash, and ranking nobody is fine too."""
    subscribers = [reader("grokking"), reader("diffusion", email="d@example.org")]
    rankings = rank_all([], subscribers)
    assert [rankings.digest(s, DAY).papers for s in subscribers] == [(), ()]
    assert rank_all([paper("2601.00001", "Grokking")], []) is not None


def test_a_run_on_an_empty_day_sends_nothing_and_exits_0(
    papers_server: PapersServer, env: Path
) -> None:
    """``papermail run`` on a weekend: nothing to send, exit 0."""
    papers_server.days[DAY.isoformat()] = []
    assert main(["run", "--date", DAY.isoformat()], sleep=no_sleep) == 0


def test_a_digest_whose_best_candidates_were_sent_still_fills() -> None:
    """Ranking keeps only a subscriber's best few candidates; when those were all sent before,
    the digest is the one ranking with every candidate gives (the weaker ones fill it)."""
    words = FILLER.split()
    papers = [  # the keyword ever deeper in the abstract: ever weaker matches
        paper(f"{i:02d}", f"Study {i}", " ".join([*words[: 4 * i], "grokking", *words]))
        for i in range(40)
    ]
    sub = reader("grokking", max_papers=3)
    rankings = rank_all(papers, [sub])
    assert [s.paper.id for s in rankings.digest(sub, DAY).papers] == ["00", "01", "02"]
    sent = frozenset(f"{i:02d}" for i in range(30))
    digest = rankings.digest(sub, DAY, already_sent=sent)
    assert [s.paper.id for s in digest.papers] == ["30", "31", "32"]
    assert digest == build_digest(sub, DAY, papers, already_sent=sent)
