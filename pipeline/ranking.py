"""Ranking: papers + subscribers → digests with scores and reasons. Pure: no I/O, no clock.

The papers of a run (one day, or several for a weekly digest) are indexed once with
``build_index``; ``PaperIndex.rank`` then scores every subscriber against every paper together
(each distinct topic's keywords once, as sparse matrix products, summed per subscriber in dense
blocks), and
``Rankings.digest`` picks one subscriber's papers (leaving out what the ledger says they already
had). ``PaperIndex.digest`` does both for a single subscriber.

How a paper is scored for a subscriber (docs/ranking.md says why, with the measurements):

- Text is folded (case, accents), split into words and stemmed (Snowball English, repeated until
  the stem stops changing, so derived forms meet), so "Diffusion Models" matches the keyword
  "diffusion model". A keyword of several words matches as a phrase, or (for
  ``PROXIMITY_FACTOR`` of the score) by proximity: its words within a short window of one field,
  in any order. A keyword written as an acronym matches only in capitals, and also the long form
  the day's papers define it by ("partial differential equations (PDEs)"), and the other way
  round. A keyword of stopwords only matches nothing.
- A keyword's score in a paper is ``idf * sum(field weight * saturation(count))``: a title
  match weighs ``TITLE_WEIGHT``, a Hugging Face keyword ``KEYWORD_WEIGHT``, an abstract match
  ``ABSTRACT_WEIGHT`` at its start, decaying towards half of that deep in the abstract. The
  (smooth, at least 1) idf favours keywords that single out few of the run's papers; the
  saturation keeps repetition from dominating.
- A topic's score is its ``weight`` * the sum of its matched keywords' scores; the keyword
  relevance is the sum over topics. A followed author adds ``AUTHOR_SCORE``.
- The lexical part mixes that relevance (squashed into [0, 1)) with Okapi BM25 of every word of
  the subscriber's topics (``BM25_SHARE``); with ``Meaning`` (the embedding model's vectors), the
  fused score mixes in how close each topic and example paper is to the paper
  (``SEMANTIC_BLEND``).
- A paper is a candidate when its fused score reaches ``MIN_RELEVANCE`` (``MIN_LEXICAL`` without
  vectors), a keyword matches it with a relevance of at least ``KEYWORD_FLOOR``, or one of its
  authors is followed (always included). Nothing is padded in. ``exclude``, ``min_upvotes`` and
  the already-sent papers drop candidates, and so does an arXiv-only paper outside the
  subscriber's ``categories`` (arXiv is asked only for those who follow categories).
  ``max_papers`` caps the digest, followed authors' papers taking their places first.
- Popularity (upvotes + comments) multiplies the score by at most ``1 + POPULARITY_NUDGE``, so
  it can only reorder papers whose scores differ by less than that; ties fall back to the id.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import snowballstemmer
from scipy import sparse

from pipeline.models import Digest, Paper, Reason, ReasonKind, ScoredPaper, Subscriber, Topic

Vector = npt.NDArray[np.float32]

TITLE_WEIGHT = 3.0
KEYWORD_WEIGHT = 2.0
ABSTRACT_WEIGHT = 1.0  # at the start of the abstract; half of it deep inside
ABSTRACT_DECAY_TOKENS = 60.0  # an abstract match this many words in weighs 3/4
SATURATION_K1 = 1.2  # BM25's k1: the second mention adds less than the first
AUTHOR_SCORE = 5.0
#: A keyword of several words whose words all occur, in any order, within this many words more
#: than it has, matches "by proximity", for this share of an exact phrase's score.
PROXIMITY_SLACK = 3
PROXIMITY_FACTOR = 0.5
#: The lexical part mixes the keyword score with Okapi BM25 over every word of the subscriber's
#: topics (names and keywords) against each paper's title and abstract, at this share; BM25's
#: score is divided by the subscriber's best so that it lies in [0, 1].
BM25_SHARE = 0.7
BM25_K1 = 1.5
#: BM25 is divided by the subscriber's best score, or by this when their best is lower: on a day
#: where nothing matches well, nothing is lifted to the top.
BM25_REFERENCE = 10.0
#: BM25 shares below this are dropped: a paper that shares only a common word or two with a
#: subscriber's topics is not lifted by it (chosen on the dev half, docs/ranking.md).
BM25_KEEP = 0.3
BM25_B = 0.75
#: The lexical relevance at which its share of the fused score is half way to its maximum.
LEXICAL_HALF = 2.0
#: Cosine (topic, paper) below which meaning adds nothing; above it, it adds linearly.
SEMANTIC_FLOOR = 0.3
#: The fused score: (1 - SEMANTIC_BLEND) * lexical share + SEMANTIC_BLEND * semantic share.
SEMANTIC_BLEND = 0.2
#: A keyword match (with a followed author's bonus) of at least this raw lexical relevance makes a
#: paper a candidate whatever its fused score: one mid-abstract mention of a fairly common keyword.
KEYWORD_FLOOR = 0.5
#: The floor on the fused score.
MIN_RELEVANCE = 0.15
#: The floor without semantic vectors, on the lexical share alone.
MIN_LEXICAL = 0.15
#: A paper picked by meaning names the topic (or example) it is this close to.
REASON_COSINE = 0.4
#: Subscriber x paper cells scored together, as dense arrays: bounds the temporary arrays (a
#: few of 8 bytes a cell) while keeping numpy's per-call overhead small.
BLOCK_CELLS = 1 << 21
#: A subscriber's candidates are cut to about this many times their ``max_papers`` before they
#: are sorted (by score bands of 1 / ``SCORE_BANDS``; a followed author's papers always stay). A
#: digest that runs out of them (its first ones sent already, or outside the days it covers)
#: ranks its subscriber again without the cut.
CANDIDATE_FACTOR = 3
SCORE_BANDS = 64
#: (topic, paper) reasons kept for the subscribers who share the topic: bounds their memory.
REASON_CACHE = 1 << 20
POPULARITY_NUDGE = 0.05  # popularity reorders only papers within 5 % of each other's relevance

Phrase = tuple[str, ...]
FloatArray = npt.NDArray[np.float64]
Vectors = npt.NDArray[np.float32]  # unit vectors as rows
_KeywordHits = tuple[str, Mapping[int, float]]  # a keyword, and its score by paper position
_FIELDS = (("title", TITLE_WEIGHT), ("keywords", KEYWORD_WEIGHT), ("abstract", ABSTRACT_WEIGHT))
_WORD = re.compile(r"\w+")
_ACRONYM_PLURAL = re.compile(r"^[A-Z][A-Z0-9]+s$")  # PDEs, LLMs, GNNs → PDE, LLM, GNN
#: A word written as an acronym: capitals (and digits), at least two capitals, maybe a plural s.
_ACRONYM = re.compile(r"^(?=(?:[A-Z0-9]*[A-Z]){2})[A-Z][A-Z0-9-]*[A-Z0-9](?:s)?$")
#: "partial differential equations (PDEs)": an acronym in parentheses (at most 32 characters:
#: a longer run, a gene sequence say, would make the pattern backtrack over all of it), after up
#: to eight words, each followed by white space, none (nor any gap) longer than
#: ``_DEFINITION_REACH`` characters.
_DEFINED = re.compile(r"\(\s*([A-Z][A-Za-z0-9-]{0,15}[A-Z][A-Za-z0-9]{0,15})\s*\)")
_DEFINITION_WORDS = 8
_DEFINITION_REACH = 400
#: BM25 reads a topic's words of at least MIN_WORD letters, and of a hyphenated word the parts
#: of at least MIN_PART ("no" of "no-regret" is no topic; "fine" of "fine-tuning" is: dropping
#: the parts of four letters cost recall on the dev half).
MIN_WORD = 2
MIN_PART = 4
#: A text in capitals is shouted when one of its words is longer than this: longer than acronyms
#: are ("COVID", "BERT"), so "GRAPH NEURAL NETWORKS" is read as words and "NO NO" as acronyms.
SHOUTED = 5
#: Hyphens that join the words of one term ("GPT-4", "GPT\u20114", "COVID\u201319"): the ASCII
#: one, the Unicode hyphen and non-breaking hyphen, the figure and en dashes.
HYPHENS = "-\u2010\u2011\u2012\u2013"
_HYPHENATED = re.compile(f"\\w+(?:[{HYPHENS}]\\w+)+")  # a hyphenated word
_WORD_OR_HYPHENATED = re.compile(f"\\w+(?:[{HYPHENS}]\\w+)*")
ACRONYM_MARK = "\u00a7"  # an acronym's index term: "§PDE" (case kept, so "NO" is not "no")
#: Words that carry no topic: a keyword made only of them matches nothing.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "over",
        "that",
        "the",
        "their",
        "these",
        "this",
        "to",
        "under",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "with",
        "within",
        "without",
    }
)
_STEMMER = snowballstemmer.stemmer("english")
_IRREGULAR = {  # plurals of papers' Latin and Greek words, which the stemmer leaves apart
    "matrices": "matrix",
    "vertices": "vertex",
    "indices": "index",
    "analyses": "analysis",
    "hypotheses": "hypothesis",
    "spectra": "spectrum",
    "criteria": "criterion",
    "phenomena": "phenomenon",
}


# --- text -----------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower-case, accent-free form of a text (``"Préau"`` → ``"preau"``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A word's stem: Snowball's, applied until it stops changing, so that derived forms meet
    ("dimensionality" → "dimension" → "dimens" → "dimen", and "dimension" → "dimens" → "dimen")."""
    if _ACRONYM_PLURAL.match(word):
        word = word[:-1]
    folded = fold(word)
    stem = _IRREGULAR.get(folded, folded)
    for _ in range(4):
        shorter = str(_STEMMER.stemWord(stem))
        if shorter == stem:
            break
        stem = shorter
    return stem


def stems(text: str) -> Phrase:
    """The stemmed words of a text, in order: what keywords and papers are compared on."""
    return tuple(_stem(w) for w in _WORD.findall(_plain(text)))


def _plain(text: str) -> str:
    """A text without its accents, as words are split (an accent after its letter would split
    a word written decomposed, as macOS saves it)."""
    if text.isascii():  # nearly every abstract: nothing to decompose
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def acronym(word: str) -> str | None:
    """The index term of a word written as an acronym ("PDEs" → "§PDE"), or None."""
    if not _ACRONYM.match(word):
        return None
    if _ACRONYM_PLURAL.match(word):
        word = word[:-1]
    return ACRONYM_MARK + word.replace("-", "")


_STOP_STEMS = frozenset(_stem(w) for w in STOPWORDS)


@lru_cache(maxsize=65536)
def phrase_of(keyword: str) -> Phrase:
    """A subscriber's keyword as the stems it is matched on (cached: keywords repeat a lot).

    A keyword written as one acronym ("PDE", "NTK") is matched case-aware, as ``§PDE``: only
    where a paper writes it in capitals, and (``PaperIndex``) where it writes the long form the
    day's papers define it by. A hyphenated word ("GPT-4", "COVID-19", "X-ray") is one stem
    without its hyphens, matched in any case where a paper writes it with or without them, also
    at the start of a longer run ("GPT-4-based"); the letter or number after the hyphen alone
    matches nothing. A keyword made only of stopwords ("the") matches nothing.
    """
    words = [w.strip(HYPHENS) for w in keyword.split()]
    if len(words) == 1 and not _HYPHENATED.fullmatch(words[0]) and (term := acronym(words[0])):
        return (term,)
    found = tuple(s for word in words for s in _word_stems(word))
    if all(s in _STOP_STEMS for s in found):
        return ()
    return found


def _word_stems(word: str) -> Phrase:
    """The stems of one word of a keyword: a hyphenated one ("GPT-4", "X-ray") as one stem
    without its hyphens (papers index it so too), any other as its words' stems."""
    if _HYPHENATED.fullmatch(_plain(word)):
        return (_stem(_unhyphenated(word)),)
    return stems(word)


def _unhyphenated(text: str) -> str:
    """``text`` without its hyphens."""
    return "".join(c for c in text if c not in HYPHENS)


def _acronym_terms(text: str) -> Iterable[tuple[int, str]]:
    """(word position, index term) of each word of ``text`` written as an acronym."""
    for pos, word in enumerate(_WORD.findall(_plain(text))):  # "ÉCOLE" is §ECOLE, as in a topic
        if word[0].isupper() and (term := acronym(word)):
            yield pos, term


def _hyphenated_terms(text: str) -> Iterable[tuple[int, str]]:
    """(word position, index term) of each hyphenated run of ``text`` ("GPT-4", "X-ray": words
    joined by a hyphen alone), at its first word: each of its leading parts of two words or more
    ("GPT-4" and "GPT-4-based") as one stem without its hyphens, and as an acronym term when
    written as one ("GPT-4" is also §GPT4, as the keyword "GPT4" is)."""
    words = list(_WORD.finditer(_plain(text)))
    pos = 0
    while pos < len(words):
        last = pos
        while last + 1 < len(words) and len(gap := _between(words, last)) == 1 and gap in HYPHENS:
            last += 1
            joined = "-".join(w.group() for w in words[pos : last + 1])
            yield pos, _stem(_unhyphenated(joined))
            if term := acronym(joined):
                yield pos, term
        pos = last + 1


def _between(words: Sequence[re.Match[str]], i: int) -> str:
    """The text between the ``i``-th word match and the next."""
    return words[i].string[words[i].end() : words[i + 1].start()]


def definitions(text: str) -> Iterable[tuple[str, Phrase]]:
    """The acronyms a text defines, as (term, long form's stems): "partial differential
    equations (PDEs)" gives ``("§PDE", ("partial", "differenti", "equat"))``. The acronym's
    capitals must be the initials of the words before it (stopwords may sit between them)."""
    for match in _DEFINED.finditer(text):
        before = _long_form_before(text, match.start())
        if not before:
            continue
        words, short = re.split(r"[\s-]+", before.strip()), match.group(1)
        letters = [c.lower() for c in short.rstrip("s") if c.isupper()]
        picked: list[int] = []
        for i in range(len(words) - 1, -1, -1):
            if len(picked) == len(letters):
                break
            if fold(words[i]) in STOPWORDS and picked:
                continue
            picked.append(i)
        if len(picked) != len(letters):
            continue
        initials = [fold(words[i])[:1] for i in reversed(picked)]
        if initials != letters:
            continue
        long_form = stems(" ".join(words[picked[-1] :]))
        term = acronym(short) or (stems(short)[0] if len(stems(short)) == 1 else None)
        if term and long_form:
            yield term, long_form


def _long_form_before(text: str, end: int) -> str:
    """The words before ``end`` (where "(" is) that could be an acronym's long form: up to
    ``_DEFINITION_WORDS`` runs of word characters (``\\w`` or "-"), each followed by white space,
    as the pattern ``(?:[\\w-]+\\s+){1,8}`` followed by "(" would match them, read backwards from
    ``end`` so that the text before is never searched; "" when there are none. A word or a gap
    longer than ``_DEFINITION_REACH`` characters ends the long form (no abstract has one)."""
    start = pos = end
    for _ in range(_DEFINITION_WORDS):
        gap = pos
        while gap > 0 and pos - gap < _DEFINITION_REACH and text[gap - 1].isspace():
            gap -= 1
        word = gap
        while word > 0 and gap - word < _DEFINITION_REACH and _is_word_character(text[word - 1]):
            word -= 1
        if gap in {pos, word} or (word > 0 and _is_word_character(text[word - 1])):
            break  # no white space after it, no word before that, or one too long
        start = pos = word
    return text[start:end]


def _is_word_character(c: str) -> bool:
    """What ``[\\w-]`` matches: a Unicode letter or digit, "_" or "-"."""
    return c.isalnum() or c in "_-"


def topic_query(topic: Topic) -> str:
    """The text a topic is embedded from: its name and its keywords."""
    return f"{topic.name}: {', '.join(topic.keywords)}"


@dataclass(frozen=True, slots=True)
class Example:
    """An example paper a subscriber likes (``like:``): its title and unit vector."""

    id: str
    title: str
    vector: Vector


@dataclass(frozen=True, slots=True)
class Meaning:
    """Unit vectors for semantic scoring (``pipeline.semantic`` makes them): papers by id, topic
    queries by their text (``topic_query``), example papers by id. What is missing scores 0."""

    papers: Mapping[str, Vector]
    queries: Mapping[str, Vector]
    examples: Mapping[str, Example] = field(default_factory=dict)


# --- names ----------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _name_parts(name: str) -> tuple[str, ...]:
    return tuple(re.sub(r"[^\w\s]", " ", fold(name)).replace("_", " ").split())


def same_person(wanted: str, candidate: str) -> bool:
    """Whether two ways of writing a name are the same person ("C. Pehlevan" ~ "Cengiz Pehlevan").

    Accents and case are ignored. Family names must be equal; given names must agree on their
    initials as far as both go, and on the whole first name when both spell it out.
    """
    a, b = _name_parts(wanted), _name_parts(candidate)
    if not a or not b or a[-1] != b[-1]:
        return False
    given_a, given_b = a[:-1], b[:-1]
    if not given_a or not given_b:
        return True
    first_a, first_b = given_a[0], given_b[0]
    if len(first_a) > 1 and len(first_b) > 1 and first_a != first_b:
        return False
    return all(x[0] == y[0] for x, y in zip(given_a, given_b, strict=False))


# --- the index ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fields:
    """One paper's fields as stem sequences, with each stem's positions."""

    tokens: Mapping[str, Phrase]
    positions: Mapping[str, Mapping[str, tuple[int, ...]]]


#: Papers already indexed in a run: each one's fields and the acronyms it defines.
Indexed = dict[Paper, tuple["_Fields", tuple[tuple[str, Phrase], ...]]]


@dataclass(frozen=True, slots=True)
class _Hits:
    """Where one phrase matched: paper positions and the phrase's score in each."""

    papers: npt.NDArray[np.int64]
    scores: FloatArray
    by_paper: Mapping[int, float]


def build_index(papers: Iterable[Paper], *, known: Indexed | None = None) -> PaperIndex:
    """Index papers (of one day or several) for ranking; of a repeated id the first is kept.
    ``known`` keeps each paper's fields for the next index of the run (``rank_all``)."""
    first: dict[str, Paper] = {}
    for paper in papers:
        first.setdefault(paper.id, paper)
    unique = tuple(first.values())
    known = {} if known is None else known
    for paper in unique:
        if paper not in known:
            known[paper] = (
                _paper_fields(paper),
                tuple(definitions(f"{paper.title}. {paper.abstract}")),
            )
    fields = tuple(known[p][0] for p in unique)
    defined: dict[str, dict[Phrase, int]] = defaultdict(lambda: defaultdict(int))
    for paper in unique:
        for term, long_form in known[paper][1]:
            defined[term][long_form] += 1
    links: dict[Phrase, set[Phrase]] = defaultdict(set)
    for term, forms in defined.items():
        long_form = max(forms, key=lambda f: (forms[f], f))  # the day's usual long form
        links[(term,)].add(long_form)
        links[long_form].add((term,))
    postings: dict[str, set[int]] = defaultdict(set)
    for i, f in enumerate(fields):
        for positions in f.positions.values():
            for stem in positions:
                postings[stem].add(i)
    by_family: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, paper in enumerate(unique):
        for name in paper.authors:
            if parts := _name_parts(name):
                by_family[parts[-1]].append((i, name))
    popularity = np.array(
        [math.log1p(p.upvotes + (p.num_comments or 0)) for p in unique], dtype=np.float64
    )
    return PaperIndex(
        papers=unique,
        arxiv_only=np.array([p.source == "arxiv" for p in unique], dtype=np.bool_),
        _fields=fields,
        _postings={k: frozenset(v) for k, v in postings.items()},
        _links={k: tuple(sorted(v)) for k, v in links.items()},
        _by_family=dict(by_family),
        nudge=1.0 + POPULARITY_NUDGE * popularity / (1.0 + popularity),
        upvotes=np.array([p.upvotes for p in unique], dtype=np.int64),
        id_rank=np.argsort(np.argsort(np.array([p.id for p in unique]), kind="stable")),
        position={p.id: i for i, p in enumerate(unique)},
        lengths=np.array(
            [len(f.tokens["title"]) + len(f.tokens["abstract"]) for f in fields], dtype=np.float64
        ),
    )


def _paper_fields(paper: Paper) -> _Fields:
    keyword_tokens: list[str] = []
    for keyword in paper.keywords:
        keyword_tokens.extend((*stems(keyword), ""))  # "" keeps phrases from spanning keywords
    tokens = {
        "title": stems(paper.title),
        "keywords": tuple(keyword_tokens),
        "abstract": stems(paper.abstract),
    }
    positions: dict[str, dict[str, list[int]]] = {}
    for name, toks in tokens.items():
        where: dict[str, list[int]] = defaultdict(list)
        for pos, tok in enumerate(toks):
            if tok:
                where[tok].append(pos)
        positions[name] = where
    for name, text in (("title", paper.title), ("abstract", paper.abstract)):
        for pos, term in (*_acronym_terms(text), *_hyphenated_terms(text)):
            positions[name][term].append(pos)
    for pos, keyword in enumerate(paper.keywords):
        if short := acronym(keyword.strip()):
            positions["keywords"][short].append(pos)
    return _Fields(
        tokens=tokens,
        positions={n: {t: tuple(p) for t, p in w.items()} for n, w in positions.items()},
    )


@dataclass(frozen=True, slots=True)
class PaperIndex:
    """The run's papers, indexed once; scores any number of subscribers against them."""

    papers: tuple[Paper, ...]
    arxiv_only: npt.NDArray[np.bool_]  # papers only arXiv listed: for their categories' followers
    _fields: tuple[_Fields, ...]
    _postings: Mapping[str, frozenset[int]]
    _links: Mapping[
        Phrase, tuple[Phrase, ...]
    ]  # an acronym ↔ its long forms, as the day's papers define them
    _by_family: Mapping[str, list[tuple[int, str]]]
    nudge: FloatArray  # 1 .. 1 + POPULARITY_NUDGE, by paper position
    upvotes: npt.NDArray[np.int64]
    id_rank: npt.NDArray[np.int64]  # each paper's place in id order: the deterministic tie-break
    position: Mapping[str, int]  # paper id → position
    lengths: FloatArray  # words in each paper's title and abstract (BM25's document length)
    _phrase_cache: dict[Phrase, _Hits] = field(default_factory=dict)
    _word_cache: dict[str, tuple[npt.NDArray[np.int64], FloatArray]] = field(default_factory=dict)
    _author_cache: dict[str, frozenset[int]] = field(default_factory=dict)

    def digest(
        self,
        subscriber: Subscriber,
        day: date,
        *,
        already_sent: frozenset[str] = frozenset(),
        among: frozenset[str] | None = None,
        meaning: Meaning | None = None,
    ) -> Digest:
        """The digest ``subscriber`` gets for ``day`` from these papers (or those ``among``)."""
        rankings = self.rank([subscriber], meaning, keep_all=True)
        return rankings.digest(subscriber, day, already_sent=already_sent, among=among)

    def rank(
        self,
        subscribers: Sequence[Subscriber],
        meaning: Meaning | None = None,
        *,
        keep_all: bool = False,
    ) -> Rankings:
        """Score every subscriber against every paper at once (sparse matrix products); with
        ``meaning``, the lexical score is fused with the topics' and examples' cosines.
        ``keep_all`` keeps every candidate rather than the best few (``CANDIDATE_FACTOR``)."""
        if not self.papers:  # an empty day: nothing to be close to
            meaning = None
        vectors = self.vectors(meaning) if meaning else None
        asked = self._asked(subscribers, meaning, vectors)
        width = max(len(self.papers), 1)
        step = max(1, BLOCK_CELLS // width)
        parts = [
            self._candidate_rows(
                subscribers[start : start + step],
                asked.scores(start, start + step),
                floor=MIN_RELEVANCE if meaning else MIN_LEXICAL,
                keep_all=keep_all,
            )
            for start in range(0, len(subscribers), step)
        ]
        return Rankings(
            index=self,
            rows={s.email: i for i, s in enumerate(subscribers)},
            subscribers=tuple(subscribers),
            candidates=_Candidates.join(parts),
            explaining=asked.explaining(),
            meaning=meaning,
            vectors=vectors,
        )

    def _asked(
        self,
        subscribers: Sequence[Subscriber],
        meaning: Meaning | None,
        vectors: Vectors | None,
    ) -> _Asked:
        """What the subscribers ask of these papers: each distinct topic scored once against
        every paper (keywords, BM25, meaning), and a row per subscriber that sums its topics,
        beside its followed authors, exclusions and example papers, as sparse matrices.

        Distinct topics, phrases and words are numbered in sorted order, so that a subscriber's
        sums run in the same order whether ranked alone or with others."""
        topics = tuple(
            sorted(dict.fromkeys(t for s in subscribers for t in s.topics), key=_topic_key)
        )
        topic_ids = {t: i for i, t in enumerate(topics)}
        shape = (len(subscribers), len(self.papers))
        rows = _Rows.gather(subscribers, topic_ids, self)
        excludes = sorted({phrase for _, phrase in rows.excludes})
        exclude_ids = {phrase: i for i, phrase in enumerate(excludes)}
        phrases = sorted({phrase_of(k) for t in topics for k in t.keywords})
        phrase_ids = {phrase: i for i, phrase in enumerate(phrases)}
        keyword_rows, keyword_cols, keyword_vals = [], [], []
        for i, topic in enumerate(topics):
            for keyword in topic.keywords:
                keyword_rows.append(i)
                keyword_cols.append(phrase_ids[phrase_of(keyword)])
                keyword_vals.append(topic.weight)
        keywords = sparse.csr_matrix(
            (keyword_vals, (keyword_rows, keyword_cols)), shape=(len(topics), len(phrases))
        )
        authors = rows.matrix(rows.authors, shape)
        authors.data[:] = 1.0  # a paper by two followed authors counts once
        semantic = self._semantic(topics, rows, meaning, vectors)
        return _Asked(
            topics=topics,
            topic_rows=rows.topic_matrix(len(topics)),
            topic_starts=rows.topic_starts,
            topic_ids=rows.topic_ids,
            shared=np.bincount(rows.topic_ids, minlength=len(topics)) > 1,
            relevance=sparse.csr_matrix(keywords @ self._hit_matrix(phrases)),
            bm25=self._bm25(topics) if BM25_SHARE > 0 else None,
            excludes=rows.matrix(
                [(r, exclude_ids[phrase]) for r, phrase in rows.excludes],
                (len(subscribers), len(excludes)),
            ),
            present=sparse.csr_matrix((self._hit_matrix(excludes) > 0).astype(np.float64)),
            authors=authors,
            semantic=semantic,
        )

    def _bm25(self, topics: Sequence[Topic]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Okapi BM25's query and documents: topic x word, the words of each topic (its name and
        keywords, each word as often as it is written, times the topic's weight); and word x
        paper, each word's BM25 weight in each paper's title and abstract."""
        rows: list[int] = []
        words: list[str] = []
        vals: list[float] = []
        for row, topic in enumerate(topics):
            found = _topic_words(topic)
            rows.extend([row] * len(found))
            words.extend(found)
            vals.extend([topic.weight] * len(found))
        word_ids = {w: i for i, w in enumerate(sorted(set(words)))}
        cols = [word_ids[w] for w in words]
        query = sparse.csr_matrix(
            (vals, (rows, cols)), shape=(len(topics), len(word_ids)), dtype=np.float64
        )
        return query, self._word_matrix(list(word_ids))

    def _word_matrix(self, words: list[str]) -> sparse.csr_matrix:
        """Word x paper: each word's BM25 weight in each paper's title and abstract."""
        rows, cols, vals = [], [], []
        for row, word in enumerate(words):
            papers, weights = self._word_weights(word)
            rows.append(np.full(len(papers), row, dtype=np.int64))
            cols.append(papers)
            vals.append(weights)
        if not words:
            return sparse.csr_matrix((0, len(self.papers)))
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(words), len(self.papers)),
        )

    def _word_weights(self, word: str) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """The papers holding ``word`` in title or abstract, and its BM25 weight in each."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        lengths = self.lengths
        found: list[tuple[int, int]] = []
        for i in sorted(self._postings.get(word, ())):
            positions = self._fields[i].positions
            count = len(positions["title"].get(word, ())) + len(positions["abstract"].get(word, ()))
            if count:
                found.append((i, count))
        n, df = len(self.papers), len(found)
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        average = float(lengths.mean()) if n else 1.0
        papers = np.array([i for i, _ in found], dtype=np.int64)
        tf = np.array([c for _, c in found], dtype=np.float64)
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths[papers] / max(average, 1.0))
        weights = idf * tf * (BM25_K1 + 1.0) / (tf + norm)
        self._word_cache[word] = (papers, weights)
        return papers, weights

    def vectors(self, meaning: Meaning) -> Vectors:
        """The papers' unit vectors as rows, by paper position (zeros where one is missing)."""
        out = np.zeros((len(self.papers), _dimensions(meaning)), dtype=np.float32)
        for i, paper in enumerate(self.papers):
            vector = meaning.papers.get(paper.id)
            if vector is not None:
                out[i] = vector
        return out

    def _semantic(
        self,
        topics: Sequence[Topic],
        rows: _Rows,
        meaning: Meaning | None,
        vectors: Vectors | None,
    ) -> _Semantic | None:
        """The topics' and example papers' query vectors and how close each is to each paper."""
        if meaning is None or vectors is None:
            return None
        queries: list[Vector] = []
        query_of: list[int] = []
        texts: dict[str, int] = {}
        for topic in topics:
            vector = meaning.queries.get(text := topic_query(topic))
            if vector is None:
                query_of.append(-1)
                continue
            if text not in texts:
                texts[text] = len(queries)
                queries.append(vector)
            query_of.append(texts[text])
        # two topics may share a text ("A: b: c" is topic "A: b" with keyword "c", or topic "A"
        # with keyword "b: c"), never a reason: each names its own topic
        topic_reasons = tuple(Reason(ReasonKind.SEMANTIC, t.name) for t in topics)
        examples = sorted({pid for _, pid in rows.liked if pid in meaning.examples})
        example_of = {pid: len(queries) + i for i, pid in enumerate(examples)}
        example_reasons = {}
        for pid in examples:
            example = meaning.examples[pid]
            example_reasons[example_of[pid]] = Reason(ReasonKind.LIKE, pid, (example.title,))
            queries.append(example.vector)
        stacked = np.array(queries, dtype=np.float32).reshape(len(queries), vectors.shape[1])
        closeness, near = _closeness(stacked, vectors)
        weights = sparse.csr_matrix(
            (
                [t.weight for t, q in zip(topics, query_of, strict=True) if q >= 0],
                (
                    [i for i, q in enumerate(query_of) if q >= 0],
                    [q for q in query_of if q >= 0],
                ),
            ),
            shape=(len(topics), len(queries)),
        )
        liked = [(row, example_of[pid]) for row, pid in rows.liked if pid in example_of]
        of_topics: list[int] = (
            np.array(query_of, dtype=np.int64)[rows.topic_ids].tolist() if query_of else []
        )
        asked = [*(q for q in of_topics if q >= 0), *(q for _, q in liked)]
        return _Semantic(
            weights=weights,
            examples=rows.matrix(liked, (rows.count, len(queries))),
            closeness=closeness,
            near=_Near(
                queries=stacked,
                topic_reasons=topic_reasons,
                example_reasons=example_reasons,
                shared=np.bincount(np.array(asked, dtype=np.int64), minlength=len(queries)) > 1,
                query_of=tuple(query_of),
                example_of=example_of,
                near=near,
            ),
        )

    def _candidate_rows(
        self,
        subscribers: Sequence[Subscriber],
        scores: _Scores,
        *,
        floor: float,
        keep_all: bool,
    ) -> _Candidates:
        """The candidates of these subscribers (the rows of ``scores``).

        A (subscriber, paper) is a candidate when its fused score reaches the floor, a followed
        author wrote it or a keyword matches it with a relevance of at least ``KEYWORD_FLOOR``,
        and neither ``exclude``, ``min_upvotes`` nor categories rule it out; the candidates are
        sorted by subscriber, then followed first, then by final score, then by id.
        """
        keep = scores.fused >= floor
        keep |= scores.followed
        keep |= scores.matched
        if scores.excluded is not None:
            keep &= ~scores.excluded
        min_upvotes = np.array([s.min_upvotes for s in subscribers], dtype=np.int64)
        if min_upvotes.any():
            keep &= self.upvotes[None, :] >= min_upvotes[:, None]
        entries = np.flatnonzero(keep)
        rows, cols = np.divmod(entries, len(self.papers))
        in_categories = self._in_categories(rows, cols, subscribers)
        rows, cols, entries = rows[in_categories], cols[in_categories], entries[in_categories]
        by_followed = scores.followed.ravel()[entries]
        final = scores.fused.ravel()[entries] * self.nudge[cols]
        cut = np.zeros(len(subscribers), dtype=np.bool_)
        if not keep_all:
            wanted = np.array([s.max_papers for s in subscribers], dtype=np.int64)
            best = _best_few(rows, final, by_followed, CANDIDATE_FACTOR * wanted)
            cut = np.bincount(rows[~best], minlength=len(subscribers)) > 0
            rows, cols, by_followed, final = rows[best], cols[best], by_followed[best], final[best]
        order = _digest_order(rows, by_followed, final, self.id_rank[cols])
        counts = np.bincount(rows, minlength=len(subscribers))
        return _Candidates(
            starts=np.concatenate(([0], np.cumsum(counts))),
            papers=cols[order].astype(np.int32),
            scores=final[order],
            followed=by_followed[order],
            cut=cut,
        )

    def _in_categories(
        self,
        rows: npt.NDArray[np.int64],
        cols: npt.NDArray[np.int64],
        subscribers: Sequence[Subscriber],
    ) -> npt.NDArray[np.bool_]:
        """Which (subscriber, paper) entries a subscriber may get: every Daily Papers paper, and an
        arXiv-only paper only when it is in one of the subscriber's ``categories``."""
        eligible = ~self.arxiv_only[cols]
        pending = np.flatnonzero(~eligible)
        if len(pending):
            wanted = [frozenset(s.categories) for s in subscribers]
            papers = self.papers
            eligible[pending] = [
                not wanted[row].isdisjoint(papers[col].categories)
                for row, col in zip(rows[pending].tolist(), cols[pending].tolist(), strict=True)
            ]
        return eligible

    def paper_stems(self, paper: int) -> frozenset[str]:
        """The stems of a paper's title and abstract (what BM25 reads of it)."""
        fields = self._fields[paper].positions
        return frozenset((*fields["title"], *fields["abstract"]))

    def phrase_scores(self, text: str) -> Mapping[int, float]:
        """Paper position → score of one keyword or phrase in that paper (where it matches)."""
        return self._hits(phrase_of(text)).by_paper

    def _hit_matrix(self, phrases: list[Phrase]) -> sparse.csr_matrix:
        rows: list[npt.NDArray[np.int64]] = []
        cols: list[npt.NDArray[np.int64]] = []
        vals: list[FloatArray] = []
        for row, phrase in enumerate(phrases):
            hits = self._hits(phrase)
            rows.append(np.full(len(hits.papers), row, dtype=np.int64))
            cols.append(hits.papers)
            vals.append(hits.scores)
        if not phrases:
            return sparse.csr_matrix((0, len(self.papers)))
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(phrases), len(self.papers)),
        )

    def _hits(self, phrase: Phrase) -> _Hits:
        """Score a phrase in every paper that contains it (cached: subscribers share keywords).

        An acronym and the long form the day's papers define it by stand for each other: a paper
        scores the better of the phrase's and its linked forms' scores.
        """
        cached = self._phrase_cache.get(phrase)
        if cached is not None:
            return cached
        found: dict[int, float] = {}
        for form in (phrase, *self._links.get(phrase, ())):
            for i, score in self._form_scores(form).items():
                found[i] = max(found.get(i, 0.0), score)
        n, df = len(self.papers), len(found)
        idf = 1.0 + math.log((1.0 + n) / (1.0 + df))  # ≥ 1: a common keyword still counts
        by_paper = {i: idf * score for i, score in sorted(found.items())}
        hits = _Hits(
            papers=np.fromiter(by_paper, dtype=np.int64, count=df),
            scores=np.fromiter(by_paper.values(), dtype=np.float64, count=df),
            by_paper=by_paper,
        )
        self._phrase_cache[phrase] = hits
        return hits

    def _form_scores(self, phrase: Phrase) -> dict[int, float]:
        """Paper position → the phrase's field score (before idf), where it matches."""
        content = tuple(dict.fromkeys(s for s in phrase if s not in _STOP_STEMS)) or phrase
        if not phrase or not all(stem in self._postings for stem in content):
            return {}
        found: dict[int, float] = {}
        candidates = frozenset.intersection(*(self._postings[stem] for stem in content))
        for i in sorted(candidates):
            score = _field_score(phrase, content, self._fields[i])
            if score > 0:
                found[i] = score
        return found

    def papers_by(self, author: str) -> frozenset[int]:
        """Positions of the papers ``author`` (as a subscriber wrote the name) is an author of."""
        cached = self._author_cache.get(author)
        if cached is None:
            parts = _name_parts(author)
            candidates = self._by_family.get(parts[-1], []) if parts else []
            cached = frozenset(i for i, name in candidates if same_person(author, name))
            self._author_cache[author] = cached
        return cached


def _field_score(phrase: Phrase, content: Phrase, fields: _Fields) -> float:
    """sum over fields of field weight * saturated count (abstract matches decaying with depth).

    A phrase of several words that does not occur as such in a field, but whose words (other
    than stopwords) all occur there within a short window, in any order, counts once at
    ``PROXIMITY_FACTOR`` of the weight.
    """
    total = 0.0
    for name, weight in _FIELDS:
        positions = fields.positions[name]
        starts = _phrase_starts(phrase, fields.tokens[name], positions)
        factor = 1.0
        if not starts and len(content) > 1:
            near = _window_start(content, positions, len(phrase) + PROXIMITY_SLACK)
            starts, factor = ([near], PROXIMITY_FACTOR) if near is not None else ([], 0.0)
        if not starts:
            continue
        count = len(starts)
        saturation = count * (SATURATION_K1 + 1) / (count + SATURATION_K1)
        depth = 1.0
        if name == "abstract":
            depth = 0.5 + 0.5 / (1.0 + starts[0] / ABSTRACT_DECAY_TOKENS)
        total += weight * saturation * depth * factor
    return total


def _phrase_starts(
    phrase: Phrase, tokens: Phrase, positions: Mapping[str, tuple[int, ...]]
) -> list[int]:
    size = len(phrase)
    if size == 1:
        return list(positions.get(phrase[0], ()))
    return [
        p
        for p in positions.get(phrase[0], ())
        if tokens[p : p + size] == phrase  # a phrase, not its words scattered
    ]


def _window_start(
    words: Phrase, positions: Mapping[str, tuple[int, ...]], width: int
) -> int | None:
    """The first position of the narrowest window holding every one of ``words`` (distinct), if
    that window spans at most ``width`` words; else None."""
    lists = [positions.get(w, ()) for w in words]
    if not all(lists):
        return None
    events = sorted((p, k) for k, ps in enumerate(lists) for p in ps)
    counts = [0] * len(words)
    have, left, best = 0, 0, None
    for pos, k in events:
        counts[k] += 1
        have += counts[k] == 1
        while have == len(words):
            start, k0 = events[left]
            if pos - start + 1 <= width and (best is None or start < best[0]):
                best = (start, pos)
            counts[k0] -= 1
            have -= counts[k0] == 0
            left += 1
    return best[0] if best else None


# --- scoring -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scores:
    """A block of subscribers x every paper, dense: the fused score and what bypasses or rules
    out the floor."""

    fused: FloatArray
    followed: npt.NDArray[np.bool_]  # a followed author wrote the paper
    matched: npt.NDArray[np.bool_]  # a keyword (or followed author) of relevance >= KEYWORD_FLOOR
    excluded: npt.NDArray[np.bool_] | None  # an ``exclude`` term matches the paper (None: none)


@dataclass(frozen=True, slots=True)
class _Rows:
    """The subscribers' side of ``PaperIndex._asked``: what each wrote, by row."""

    topic_starts: npt.NDArray[np.int64]  # row → where its topic ids start in ``topic_ids``
    topic_ids: npt.NDArray[np.int64]  # each row's topic ids, in the order it wrote them
    authors: list[tuple[int, int]]  # (row, paper position) of a followed author's paper
    excludes: list[tuple[int, Phrase]]  # (row, phrase) of an ``exclude`` term
    liked: list[tuple[int, str]]  # (row, paper id) of an example paper

    @classmethod
    def gather(
        cls, subscribers: Sequence[Subscriber], topic_ids: Mapping[Topic, int], index: PaperIndex
    ) -> _Rows:
        """The rows of ``subscribers``, their topics numbered by ``topic_ids``."""
        counts = np.fromiter((len(s.topics) for s in subscribers), np.int64, len(subscribers))
        ids = (topic_ids[t] for s in subscribers for t in s.topics)
        return cls(
            topic_starts=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
            topic_ids=np.fromiter(ids, np.int64, int(counts.sum())),
            authors=[
                (row, paper)
                for row, s in enumerate(subscribers)
                for author in s.authors
                for paper in sorted(index.papers_by(author))
            ],
            excludes=[(row, phrase_of(t)) for row, s in enumerate(subscribers) for t in s.exclude],
            liked=[(row, pid) for row, s in enumerate(subscribers) for pid in s.like],
        )

    @property
    def count(self) -> int:
        """How many rows."""
        return len(self.topic_starts) - 1

    def topic_matrix(self, topics: int) -> sparse.csr_matrix:
        """Row x topic: how often the row wrote the topic."""
        rows = np.repeat(np.arange(self.count), np.diff(self.topic_starts))
        return sparse.csr_matrix(
            (np.ones(len(rows)), (rows, self.topic_ids)), shape=(self.count, topics)
        )

    @staticmethod
    def matrix(pairs: Sequence[tuple[int, int]], shape: tuple[int, int]) -> sparse.csr_matrix:
        """1 at each (row, column) of ``pairs`` (a pair written twice counts twice)."""
        rows = [r for r, _ in pairs]
        cols = [c for _, c in pairs]
        return sparse.csr_matrix((np.ones(len(pairs)), (rows, cols)), shape=shape, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Near:
    """The queries of meaning (the topics' distinct texts, then the example papers) as unit
    vectors, the papers each is at least ``REASON_COSINE`` close to, and the reasons they give:
    what digests need of meaning once everyone is scored."""

    queries: Vectors
    topic_reasons: tuple[Reason, ...]  # by topic id: "close to <topic>"
    example_reasons: Mapping[int, Reason]  # by query of an example paper: "like <id>: <title>"
    shared: npt.NDArray[np.bool_]  # by query: asked by more than one topic or example written
    query_of: tuple[int, ...]  # topic id → its query (-1: no vector)
    example_of: Mapping[str, int]  # example paper id → its query
    near: sparse.csr_matrix  # query x paper: the cosines of at least ``REASON_COSINE``


@dataclass(frozen=True, slots=True)
class _Semantic:
    """Meaning as scoring needs it: the topics' and examples' weights and how close each query is
    to each paper; and what digests need of it (``near``)."""

    weights: sparse.csr_matrix  # topic x query: the topic's weight
    examples: sparse.csr_matrix  # subscriber x query: 1 for each example paper they like
    closeness: sparse.csr_matrix  # query x paper: the cosine's share above ``SEMANTIC_FLOOR``
    near: _Near


@dataclass(frozen=True, slots=True)
class _Explaining:
    """What digests need once everyone is scored: each row's topics, which topics are shared,
    and meaning's close papers (the scoring matrices are let go)."""

    topics: tuple[Topic, ...]  # the distinct topics, by id
    topic_starts: npt.NDArray[np.int64]  # row → where its topic ids start in ``topic_ids``
    topic_ids: npt.NDArray[np.int64]  # each row's topic ids, in the order it wrote them
    shared: npt.NDArray[np.bool_]  # by topic id: written more than once (by several rows)
    near: _Near | None

    def row_topics(self, row: int) -> list[int]:
        """The topic ids of a row, in the order its subscriber wrote them."""
        start, stop = self.topic_starts[row], self.topic_starts[row + 1]
        ids: list[int] = self.topic_ids[start:stop].tolist()
        return ids


@dataclass(frozen=True, slots=True)
class _Asked:
    """What the subscribers ask of the papers: each distinct topic's keyword scores against
    every paper, its BM25 words and its query of meaning, and a row per subscriber that sums its
    topics, beside its followed authors and exclusions; ``scores`` multiplies them out for a
    block of rows. (BM25 and meaning are multiplied out per block, not per topic: with topics
    that few subscribers share, a topic x paper matrix of them would be as large as the
    subscribers'.)

    The products are turned dense a block at a time: the fused score sums three matrices that
    share most of their entries (BM25's common words and the cosines reach most papers), which
    dense arrays add far faster than sparse ones merge.
    """

    topics: tuple[Topic, ...]  # the distinct topics, by id
    topic_rows: sparse.csr_matrix  # subscriber x topic: how often they wrote it
    topic_starts: npt.NDArray[np.int64]  # row → where its topic ids start in ``topic_ids``
    topic_ids: npt.NDArray[np.int64]  # each row's topic ids, in the order it wrote them
    shared: npt.NDArray[np.bool_]  # by topic id: written more than once (by several rows)
    relevance: sparse.csr_matrix  # topic x paper: weight * sum of its keywords' scores
    #: Okapi BM25's topic x word query and word x paper weights (None: BM25 is not mixed in)
    bm25: tuple[sparse.csr_matrix, sparse.csr_matrix] | None
    excludes: sparse.csr_matrix  # subscriber x exclusion phrase
    present: sparse.csr_matrix  # exclusion phrase x paper: 1 where it matches
    authors: sparse.csr_matrix  # subscriber x paper: 1 where a followed author wrote it
    semantic: _Semantic | None

    def explaining(self) -> _Explaining:
        """What digests need of this."""
        near = self.semantic.near if self.semantic is not None else None
        return _Explaining(self.topics, self.topic_starts, self.topic_ids, self.shared, near)

    def scores(self, start: int, stop: int) -> _Scores:
        """The scores of rows ``start`` to ``stop``: the keyword relevance (with a followed
        author's bonus) squashed into [0, 1) (half at ``LEXICAL_HALF``), mixed with BM25
        (``BM25_SHARE``), then with the semantic closeness (``SEMANTIC_BLEND``) when there is
        one."""
        topics = self.topic_rows[start:stop]
        authors = self.authors[start:stop]
        relevance = (topics @ self.relevance).toarray()
        followed = authors.toarray() > 0
        if authors.nnz:
            np.add(relevance, AUTHOR_SCORE, out=relevance, where=followed)
        fused = relevance + LEXICAL_HALF  # in place from here: blocks are large
        np.divide(relevance, fused, out=fused)
        if self.bm25 is not None:  # a subscriber's query is the sum of their topics'
            words, documents = self.bm25
            bm25 = _bm25_shares((sparse.csr_matrix(topics @ words) @ documents).toarray())
            fused *= 1.0 - BM25_SHARE
            bm25 *= BM25_SHARE
            fused += bm25
        if self.semantic is not None:
            queries = sparse.csr_matrix(topics @ self.semantic.weights)
            semantic = (queries @ self.semantic.closeness).toarray()
            examples = self.semantic.examples[start:stop]
            if examples.nnz:
                semantic += (examples @ self.semantic.closeness).toarray()
            fused *= 1.0 - SEMANTIC_BLEND
            semantic *= SEMANTIC_BLEND
            fused += semantic
        excludes = self.excludes[start:stop]
        return _Scores(
            fused=fused,
            followed=followed,
            matched=relevance >= KEYWORD_FLOOR,
            excluded=(excludes @ self.present).toarray() > 0 if excludes.nnz else None,
        )


# --- picking a digest -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidates:
    """Every ranked subscriber's candidate papers, each subscriber's in the order a digest takes
    them: papers by followed authors first, then by final score (relevance * popularity nudge),
    then by id. Compact arrays (13 bytes an entry: 100,000 subscribers x 500 papers hold tens of
    millions); a digest turns only its own subscriber's few into Python values.

    Only what depends on the subscriber and the papers is settled here; what the covered days and
    the ledger rule out is left to ``Rankings.digest``.
    """

    starts: npt.NDArray[np.int64]  # row → where its entries start (and row + 1 where they end)
    papers: npt.NDArray[np.int32]  # paper positions
    scores: FloatArray  # final scores
    followed: npt.NDArray[np.bool_]  # whether a followed author wrote the paper
    cut: npt.NDArray[np.bool_]  # by row: whether weaker candidates were left out (``_best_few``)

    @classmethod
    def join(cls, parts: Sequence[_Candidates]) -> _Candidates:
        """The candidates of consecutive blocks of subscribers, as one."""
        counts = np.concatenate([np.diff(p.starts) for p in parts] or [np.zeros(0, np.int64)])
        return cls(
            starts=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
            papers=np.concatenate([p.papers for p in parts] or [np.zeros(0, np.int32)]),
            scores=np.concatenate([p.scores for p in parts] or [np.zeros(0, np.float64)]),
            followed=np.concatenate([p.followed for p in parts] or [np.zeros(0, np.bool_)]),
            cut=np.concatenate([p.cut for p in parts] or [np.zeros(0, np.bool_)]),
        )


class _Queries:
    """One digest's queries of meaning, gathered as it is picked (see ``Rankings._queries``)."""

    def __init__(self, semantic: _Near, papers: Vectors) -> None:
        self.semantic = semantic
        self.papers = papers  # the papers' unit vectors, by position
        self.ids: list[int] = []  # rows of ``_Near.queries``
        self.near: list[dict[int, float]] = []  # paper → cosine, where at least REASON_COSINE
        self.orders: list[int] = []  # minus the place among the topics or the example papers
        self.reasons: list[Reason] = []

    def add(self, query: int, near: dict[int, float], order: int, reason: Reason) -> None:
        """One more query."""
        self.ids.append(query)
        self.near.append(near)
        self.orders.append(order)
        self.reasons.append(reason)


@dataclass(frozen=True, slots=True)
class Rankings:
    """Every ranked subscriber's candidate papers, in order; ``digest`` picks one's papers."""

    index: PaperIndex
    rows: Mapping[str, int]
    subscribers: tuple[Subscriber, ...]  # by row
    candidates: _Candidates
    explaining: _Explaining
    meaning: Meaning | None = None
    vectors: Vectors | None = None  # the papers' unit vectors, by position, with ``meaning``
    #: topic id * papers + paper → (sort key, reason) the topic gives the paper, or None:
    #: subscribers share topics, so each (topic, paper) is explained once.
    _topic_reasons_cache: dict[int, tuple[float, Reason] | None] = field(default_factory=dict)
    _keyword_hits: dict[int, list[_KeywordHits]] = field(default_factory=dict)
    _near: dict[int, dict[int, float]] = field(default_factory=dict)  # ``_Near.near`` by query
    _among: dict[frozenset[str], bool] = field(default_factory=dict)  # ``_holds_every_paper``

    def digest(
        self,
        subscriber: Subscriber,
        day: date,
        *,
        already_sent: frozenset[str] = frozenset(),
        among: frozenset[str] | None = None,
    ) -> Digest:
        """The digest for ``subscriber``, best first (ranked alone if not ranked with the rest, or
        ranked with another profile under the same address).

        ``among``, when given, limits the candidates to those paper ids (the days the digest
        covers, when the index holds several days' papers).
        """
        row = self.rows.get(subscriber.email)
        if row is None or self.subscribers[row] != subscriber:
            return self.index.digest(
                subscriber, day, already_sent=already_sent, among=among, meaning=self.meaning
            )
        picked = self._pick(row, subscriber.max_papers, already_sent, among)
        if len(picked) < subscriber.max_papers and self.candidates.cut[row]:
            return self.index.digest(  # the best few were not enough: rank with every candidate
                subscriber, day, already_sent=already_sent, among=among, meaning=self.meaning
            )
        papers = self.index.papers
        topics = self.explaining.row_topics(row)
        positions = [i for i, _, _ in picked]
        by_topic = [self._topic_reasons(t, positions) for t in topics] if picked else []
        queries = self._queries(subscriber, topics) if picked else None
        return Digest(
            subscriber=subscriber,
            day=day,
            papers=tuple(
                ScoredPaper(
                    papers[i],
                    score,
                    self._reasons(
                        subscriber,
                        i,
                        by,
                        topics=topics,
                        found=[found[j] for found in by_topic],
                        queries=queries,
                    ),
                )
                for j, (i, score, by) in enumerate(picked)
            ),
        )

    def _queries(self, subscriber: Subscriber, topics: Sequence[int]) -> _Queries | None:
        """A subscriber's queries of meaning (their topics', then their example papers'): each
        one's cosines of at least ``REASON_COSINE`` by paper, its order and its reason."""
        semantic = self.explaining.near
        if semantic is None or self.vectors is None:
            return None
        found = _Queries(semantic, self.vectors)
        for order, topic in enumerate(topics):
            if (query := semantic.query_of[topic]) >= 0:
                reason = semantic.topic_reasons[topic]
                found.add(query, self._near_of(semantic, query), -order, reason)
        for order, pid in enumerate(subscriber.like):
            if (query := semantic.example_of.get(pid, -1)) >= 0:
                reason = semantic.example_reasons[query]
                found.add(query, self._near_of(semantic, query), -order, reason)
        return found if found.ids else None

    def _near_of(self, semantic: _Near, query: int) -> dict[int, float]:
        """Paper position → cosine, for the papers at least ``REASON_COSINE`` close to a query."""
        found = self._near.get(query)
        if found is None:
            near = semantic.near
            start, stop = near.indptr[query], near.indptr[query + 1]
            papers, cosines = near.indices[start:stop].tolist(), near.data[start:stop].tolist()
            found = dict(zip(papers, cosines, strict=True))
            if semantic.shared[query]:  # kept for the other subscribers who ask it
                self._near[query] = found
        return found

    @staticmethod
    def _meaning_reasons(queries: _Queries, paper: int, matched: set[str]) -> list[Reason]:
        """The topics (not matched by keyword) and the example papers a paper is close to in
        meaning (cosine at least ``REASON_COSINE``), closest first."""
        shown = [
            (cosine, order, reason)
            for near, order, reason in zip(
                queries.near, queries.orders, queries.reasons, strict=True
            )
            if (cosine := near.get(paper)) is not None
            and (reason.kind is ReasonKind.LIKE or reason.label not in matched)
        ]
        if len(shown) > 1:
            shown.sort(key=lambda c: (-c[0], -c[1]))
        return [r for _, _, r in shown]

    @staticmethod
    def _closest(queries: _Queries, paper: int) -> Reason:
        """The topic or example paper a paper is closest to in meaning, however far."""
        cosines = queries.semantic.queries[queries.ids] @ queries.papers[paper]
        return queries.reasons[int(np.argmax(cosines))]

    def _pick(
        self, row: int, limit: int, already_sent: frozenset[str], among: frozenset[str] | None
    ) -> list[tuple[int, float, bool]]:
        """The first ``limit`` candidates of ``row`` (followed authors' papers first) not sent
        already and, when given, ``among`` those ids: (paper position, final score, followed),
        shown best first."""
        found = self.candidates
        papers = self.index.papers
        if among is not None and self._holds_every_paper(among):
            among = None  # every paper of the index is among them
        start, end = int(found.starts[row]), int(found.starts[row + 1])
        if among is None:  # at most the sent papers are skipped: the rest is never looked at
            end = min(end, start + limit + len(already_sent))
        picked: list[tuple[int, float, bool]] = []
        for paper, score, by_followed in zip(
            found.papers[start:end].tolist(),
            found.scores[start:end].tolist(),
            found.followed[start:end].tolist(),
            strict=True,
        ):
            if len(picked) == limit:
                break
            pid = papers[paper].id
            if pid in already_sent or (among is not None and pid not in among):
                continue
            picked.append((paper, score, by_followed))
        tie = self.index.id_rank
        picked.sort(key=lambda p: (-p[1], tie[p[0]]))
        return picked

    def _holds_every_paper(self, among: frozenset[str]) -> bool:
        """Whether every paper of the index is ``among`` those ids (asked once per set: a run's
        digests share a few)."""
        found = self._among.get(among)
        if found is None:
            found = len(among) >= len(self.index.papers) and all(
                p.id in among for p in self.index.papers
            )
            self._among[among] = found
        return found

    def _reasons(
        self,
        subscriber: Subscriber,
        paper: int,
        followed: bool,
        *,
        topics: Sequence[int],
        found: Sequence[tuple[float, Reason] | None],
        queries: _Queries | None,
    ) -> tuple[Reason, ...]:
        """Why ``paper`` was picked: the followed authors, then the ``topics`` that give it a
        reason (``found``: ``_topic_reasons``, in the subscriber's order) by their contribution,
        then what it is close to in meaning; when none of these explains it, the topics whose
        words it shares, or else the topic or example paper it is closest to."""
        reasons: list[Reason] = []
        if followed:
            reasons.extend(
                Reason(ReasonKind.AUTHOR, author)
                for author in subscriber.authors
                if paper in self.index.papers_by(author)
            )
        scored_topics = [(f[0], order, f[1]) for order, f in enumerate(found) if f is not None]
        if len(scored_topics) > 1:
            scored_topics.sort(key=lambda t: (t[0], t[1]))
        reasons.extend(r for _, _, r in scored_topics)
        if queries is not None:
            matched = {r.label for _, _, r in scored_topics}
            reasons.extend(self._meaning_reasons(queries, paper, matched))
        if not reasons:  # BM25 over the topics' words lifted it: name the words it shares
            reasons.extend(self._word_reasons(paper, topics))
        if not reasons and queries is not None:  # then only meaning can have: its closest
            reasons.append(self._closest(queries, paper))
        if len(reasons) > 1:  # a topic or example written twice gives one reason
            return tuple(dict.fromkeys(reasons))
        return tuple(reasons)

    def _word_reasons(self, paper: int, topics: Sequence[int]) -> list[Reason]:
        """The subscriber's topics whose words (stopwords aside) a paper's title or abstract
        holds, each with those words as written in the topic: why BM25 found it when no keyword
        phrase matches."""
        fields = self.index.paper_stems(paper)
        found = []
        for topic_id in topics:
            topic = self.explaining.topics[topic_id]
            shared = [word for word, stem in _topic_terms(topic) if stem in fields]
            if shared:
                found.append(Reason(ReasonKind.WORDS, topic.name, tuple(shared)))
        return found

    def _topic_reasons(
        self, topic_id: int, papers: Sequence[int]
    ) -> list[tuple[float, Reason] | None]:
        """The reason a topic gives each of ``papers`` (``_explain``), kept for the other
        subscribers when the topic is shared."""
        topic, hits = self.explaining.topics[topic_id], self._keyword_hits_of(topic_id)
        if not self.explaining.shared[topic_id]:
            return _explain(topic, hits, papers)
        cache, first = self._topic_reasons_cache, topic_id * len(self.index.papers)
        found: list[tuple[float, Reason] | None] = []
        for paper in papers:
            if (key := first + paper) not in cache:
                if len(cache) >= REASON_CACHE:  # many shared topics: keep memory bounded
                    cache.clear()
                cache[key] = _explain(topic, hits, [paper])[0]
            found.append(cache[key])
        return found

    def _keyword_hits_of(self, topic_id: int) -> list[_KeywordHits]:
        """A topic's distinct keywords with the papers each matches and its score in each; kept
        for the other subscribers when the topic is shared."""
        hits = self._keyword_hits.get(topic_id)
        if hits is None:
            index = self.index
            keywords = dict.fromkeys(self.explaining.topics[topic_id].keywords)
            hits = [(k, index.phrase_scores(k)) for k in keywords]
            if self.explaining.shared[topic_id]:
                self._keyword_hits[topic_id] = hits
        return hits


def _explain(
    topic: Topic, hits: Sequence[_KeywordHits], papers: Sequence[int]
) -> list[tuple[float, Reason] | None]:
    """The reason a topic gives each of ``papers`` (its name and the keywords that match), with
    the key reasons are sorted by (its contribution, negated); None where no keyword matches."""
    found: list[tuple[float, Reason] | None] = []
    for paper in papers:
        terms: list[str] = []
        total = 0.0
        for keyword, by_paper in hits:
            score = by_paper.get(paper, 0.0)
            if score > 0:
                terms.append(keyword)
                total += score
        reason = Reason(ReasonKind.TOPIC, topic.name, tuple(terms)) if terms else None
        found.append((-total * topic.weight, reason) if reason else None)
    return found


def _topic_key(topic: Topic) -> tuple[str, tuple[str, ...], float]:
    """A topic's place in the order distinct topics are numbered in."""
    return topic.name, topic.keywords, topic.weight


def _query_words(topic: Topic) -> Iterable[tuple[str, str]]:
    """(word as written, term) of each word of a topic's name and keywords, as BM25 reads them:
    its stem, or its acronym term when written as one ("NO" is not "no"), unless the whole text
    is in capitals with a word too long for an acronym ("GRAPH NEURAL NETWORKS" is shouted, not
    abbreviated; "NO NO" is not), then shown in lower case; numbers, words shorter than
    ``MIN_WORD`` and parts of a hyphenated word shorter than ``MIN_PART`` left out, and
    stopwords."""
    for text in (topic.name, *topic.keywords):
        written = unicodedata.normalize("NFC", text)  # a decomposed accent splits no word
        shouted = not any(c.islower() for c in written) and any(
            len(w) > SHOUTED for w in _WORD.findall(written)
        )
        for run in _WORD_OR_HYPHENATED.findall(written):
            parts = _WORD.findall(run)
            for word in parts:
                plain = _plain(word)
                if len(plain) < (MIN_PART if len(parts) > 1 else MIN_WORD) or plain.isdigit():
                    continue
                term = (None if shouted else acronym(plain)) or _stem(plain)
                if term not in _STOP_STEMS:
                    yield (word.lower() if shouted else word), term


@lru_cache(maxsize=65536)
def _topic_words(topic: Topic) -> tuple[str, ...]:
    """A topic's BM25 query terms (``_query_words``), each as often as written."""
    return tuple(term for _, term in _query_words(topic))


@lru_cache(maxsize=65536)
def _topic_terms(topic: Topic) -> tuple[tuple[str, str], ...]:
    """(word as written, term) of each distinct term of a topic's BM25 query: what a reason can
    show of the words a paper shares with the topic."""
    seen: dict[str, str] = {}
    for word, term in _query_words(topic):
        seen.setdefault(term, word)
    return tuple((word, term) for term, word in seen.items())


def _bm25_shares(scores: FloatArray) -> FloatArray:
    """BM25 scores divided by each row's best (at least ``BM25_REFERENCE``), without the shares
    below ``BM25_KEEP``."""
    if 0 in scores.shape:  # no papers (an empty day: a weekend) or no subscribers
        return scores
    best = np.maximum(scores.max(axis=1), BM25_REFERENCE)
    shares: FloatArray = scores * (1.0 / best)[:, None]
    shares[shares < BM25_KEEP] = 0.0
    return shares


def _dimensions(meaning: Meaning) -> int:
    """The vectors' length: of the papers', the topics' or the examples', whichever it has."""
    for vector in (*meaning.papers.values(), *meaning.queries.values()):
        return len(vector)
    for example in meaning.examples.values():
        return len(example.vector)
    return 1


def _closeness(
    queries: npt.NDArray[np.float32], vectors: Vectors
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Query x paper: (cosine - ``SEMANTIC_FLOOR``) / (1 - ``SEMANTIC_FLOOR``) where positive, for
    scoring; and the cosines that reach ``REASON_COSINE``, for reasons. Computed a block of
    queries at a time and kept sparse."""
    if len(queries) == 0:
        empty = sparse.csr_matrix((0, len(vectors)))
        return empty, sparse.csr_matrix(empty, dtype=np.float32)
    above_blocks = []
    near_blocks = []
    step = max(1, BLOCK_CELLS // max(len(vectors), 1))
    for start in range(0, len(queries), step):
        cosines = queries[start : start + step] @ vectors.T
        above = np.maximum(cosines - SEMANTIC_FLOOR, 0.0) / (1.0 - SEMANTIC_FLOOR)
        above_blocks.append(sparse.csr_matrix(above.astype(np.float64)))
        near_blocks.append(sparse.csr_matrix(np.where(cosines >= REASON_COSINE, cosines, 0.0)))
    return (
        sparse.csr_matrix(sparse.vstack(above_blocks)),
        sparse.csr_matrix(sparse.vstack(near_blocks), dtype=np.float32),
    )


def _digest_order(
    rows: npt.NDArray[np.int64],
    followed: npt.NDArray[np.bool_],
    scores: FloatArray,
    id_rank: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """The order of entries by row, then followed authors' papers first, then by score (best
    first), then by id: ``np.lexsort((id_rank, -scores, ~followed, rows))``, done as three stable
    sorts, the least significant key first. The two integer keys are sorted in the smallest
    integer type that holds them, for which numpy's stable sort is a radix sort: about twice as
    fast as ``lexsort`` on the millions of entries of a large run."""
    group = rows * 2 + ~followed  # row, then followed first
    order = np.argsort(_small(id_rank), kind="stable")
    order = order[np.argsort(-scores[order], kind="stable")]
    return order[np.argsort(_small(group[order]), kind="stable")]


def _best_few(
    rows: npt.NDArray[np.int64],
    scores: FloatArray,
    followed: npt.NDArray[np.bool_],
    wanted: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Which entries to keep so that each row keeps at least its best ``wanted[row]`` (or all it
    has): whole score bands of 1 / ``SCORE_BANDS``, from the top down (scores of 1 and more
    share the top band), and every followed author's paper. Linear, unlike a sort."""
    band = np.clip((scores * SCORE_BANDS).astype(np.int64), 0, SCORE_BANDS - 1)
    depth = SCORE_BANDS - 1 - band  # 0: the top band
    counts = np.bincount(rows * SCORE_BANDS + depth, minlength=len(wanted) * SCORE_BANDS)
    held = np.cumsum(counts.reshape(len(wanted), SCORE_BANDS), axis=1)
    last = (held < wanted[:, None]).sum(axis=1)  # the deepest band to keep, by row
    keep: npt.NDArray[np.bool_] = (depth <= last[rows]) | followed
    return keep


def _small(values: npt.NDArray[np.int64]) -> npt.NDArray[np.integer]:
    """Non-negative integers in the smallest unsigned type that holds them."""
    top = int(values.max()) if len(values) else 0
    return values.astype(np.min_scalar_type(top))


def rank_all(
    papers: Iterable[Paper],
    subscribers: Sequence[Subscriber],
    meaning: Meaning | None = None,
    *,
    known: Indexed | None = None,
) -> Rankings:
    """Index ``papers`` once and score every subscriber against them: a run's ranking step.
    ``known``: the fields of papers indexed before in the run (a run indexes the papers of each
    set of covered days apart, ``planning.rank_pool``, and those sets overlap)."""
    return build_index(papers, known=known).rank(subscribers, meaning)


def build_digest(
    subscriber: Subscriber,
    day: date,
    papers: Iterable[Paper],
    *,
    already_sent: frozenset[str] = frozenset(),
    meaning: Meaning | None = None,
) -> Digest:
    """One subscriber's digest from a sequence of papers (indexes them; for one-off use)."""
    return build_index(papers).digest(subscriber, day, already_sent=already_sent, meaning=meaning)
