"""Ranking: a day's papers + a subscriber's preferences → the digest, with reasons. Pure, no I/O.

A paper's score for a topic is the weighted count of the topic's keywords found in it, a title match
counting three times an abstract match and a Hugging Face keyword twice; topic weights multiply.
Keywords are matched as whole words or phrases, case-insensitively, with simple English plurals.
A paper by a followed author is always included. Exclusions, ``min_upvotes`` and
``max_papers`` hold, and a paper that matches nothing is never padded in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from pipeline.models import Digest, Paper, Reason, ReasonKind, ScoredPaper, Subscriber

TITLE_WEIGHT = 3.0
KEYWORD_WEIGHT = 2.0
ABSTRACT_WEIGHT = 1.0
AUTHOR_SCORE = 10.0


def build_digest(
    subscriber: Subscriber,
    day: date,
    papers: Iterable[Paper],
    *,
    already_sent: frozenset[str] = frozenset(),
) -> Digest:
    """The digest ``subscriber`` gets for ``day``: best first, at most ``max_papers``."""
    picked = [
        scored
        for paper in papers
        if paper.id not in already_sent and paper.upvotes >= subscriber.min_upvotes
        if (scored := score_paper(paper, subscriber)) is not None
    ]
    picked.sort(key=lambda s: (-s.score, -s.paper.upvotes, s.paper.id))
    return Digest(subscriber=subscriber, day=day, papers=tuple(picked[: subscriber.max_papers]))


def score_paper(paper: Paper, subscriber: Subscriber) -> ScoredPaper | None:
    """Score one paper for one subscriber; None when excluded or when nothing matches."""
    fields = _fields(paper)
    if any(_matches(term, text) for term in subscriber.exclude for text in fields.values()):
        return None
    reasons: list[Reason] = []
    score = 0.0
    for author in subscriber.authors:
        if any(same_person(author, name) for name in paper.authors):
            reasons.append(Reason(ReasonKind.AUTHOR, author))
            score += AUTHOR_SCORE
    for topic in subscriber.topics:
        terms = [k for k in topic.keywords if any(_matches(k, text) for text in fields.values())]
        if not terms:
            continue
        topic_score = sum(_term_score(term, fields) for term in terms)
        score += topic.weight * topic_score
        reasons.append(Reason(ReasonKind.TOPIC, topic.name, tuple(terms)))
    return ScoredPaper(paper, score, tuple(reasons)) if reasons else None


def _fields(paper: Paper) -> dict[str, str]:
    return {
        "title": paper.title,
        "abstract": paper.abstract,
        "keywords": " | ".join(paper.keywords),
    }


def _term_score(term: str, fields: dict[str, str]) -> float:
    weights = {"title": TITLE_WEIGHT, "keywords": KEYWORD_WEIGHT, "abstract": ABSTRACT_WEIGHT}
    return sum(w for name, w in weights.items() if _matches(term, fields[name]))


def _matches(term: str, text: str) -> bool:
    return _pattern(term).search(text) is not None


@lru_cache(maxsize=4096)
def _pattern(term: str) -> re.Pattern[str]:
    """A whole-word, case-insensitive pattern for a word or phrase, allowing a plural ending."""
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<!\w)" + r"[\s-]+".join(words) + r"(?:s|es)?(?!\w)", re.IGNORECASE)


def fold(name: str) -> str:
    """Lower-case, accent-free, punctuation-free form of a name."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain.lower()).split())


def same_person(wanted: str, candidate: str) -> bool:
    """Whether two ways of writing a name are the same person ("C. Pehlevan" ~ "Cengiz Pehlevan").

    Family names must be equal; given names must agree on their initials as far as both go.
    """
    a, b = fold(wanted).split(), fold(candidate).split()
    if not a or not b or a[-1] != b[-1]:
        return False
    given_a, given_b = a[:-1], b[:-1]
    if not given_a or not given_b:
        return True
    return given_a[0][0] == given_b[0][0] and (
        len(given_a[0]) == 1 or len(given_b[0]) == 1 or given_a[0] == given_b[0]
    )
