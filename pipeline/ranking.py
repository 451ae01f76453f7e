"""Ranking: papers + subscribers → digests with scores and reasons. Pure: no I/O, no clock.

The papers of a run (one day, or several for a weekly digest) are indexed once with
``build_index``; ``PaperIndex.rank`` then scores every subscriber against every paper together, as
sparse matrix products, and ``Rankings.digest`` picks one subscriber's papers (leaving out what the
ledger says they already had). ``PaperIndex.digest`` does both for a single subscriber.

How a paper is scored for a subscriber:

- Text is folded (case, accents), split into words and stemmed (Snowball English), so "Diffusion
  Models" matches the keyword "diffusion model". A keyword of several words matches only as a
  phrase: its stems must follow one another in the same field.
- A keyword's score in a paper is ``idf * sum(field weight * saturation(count))``: a title
  match weighs ``TITLE_WEIGHT``, a Hugging Face keyword ``KEYWORD_WEIGHT``, an abstract match
  ``ABSTRACT_WEIGHT`` at its start, decaying towards half of that deep in the abstract. The
  (smooth, at least 1) idf favours keywords that single out few of the run's papers; the
  saturation keeps repetition from dominating.
- A topic's score is its ``weight`` * the sum of its matched keywords' scores; a paper's relevance
  is the sum over topics. A followed author adds ``AUTHOR_SCORE``.
- A paper is a candidate when its relevance reaches ``MIN_RELEVANCE`` (the floor: nothing is padded
  in) or one of its authors is followed (always included, bypassing the floor). ``exclude``,
  ``min_upvotes`` and the already-sent papers drop candidates, and so does an arXiv-only paper
  outside the subscriber's ``categories`` (arXiv is asked only for those who follow categories).
  ``max_papers`` caps the digest, followed authors' papers taking their places first.
- Popularity (upvotes + comments) multiplies the relevance by at most ``1 + POPULARITY_NUDGE``, so
  it can only reorder papers whose relevance differs by less than that; ties fall back to the id.
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

TITLE_WEIGHT = 3.0
KEYWORD_WEIGHT = 2.0
ABSTRACT_WEIGHT = 1.0  # at the start of the abstract; half of it deep inside
ABSTRACT_DECAY_TOKENS = 60.0  # an abstract match this many words in weighs 3/4
SATURATION_K1 = 1.2  # BM25's k1: the second mention adds less than the first
AUTHOR_SCORE = 5.0
MIN_RELEVANCE = 0.5  # the floor; one mid-abstract mention of a fairly common keyword clears it
#: Subscribers whose candidates are worked out together: bounds the temporary arrays.
CANDIDATE_ROWS = 8192
POPULARITY_NUDGE = 0.05  # popularity reorders only papers within 5 % of each other's relevance

Phrase = tuple[str, ...]
FloatArray = npt.NDArray[np.float64]
_KeywordHits = tuple[str, Mapping[int, float]]  # a keyword, and its score by paper position
_FIELDS = (("title", TITLE_WEIGHT), ("keywords", KEYWORD_WEIGHT), ("abstract", ABSTRACT_WEIGHT))
_WORD = re.compile(r"\w+")
_ACRONYM_PLURAL = re.compile(r"^[A-Z][A-Z0-9]+s$")  # PDEs, LLMs, GNNs → PDE, LLM, GNN
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
    if _ACRONYM_PLURAL.match(word):
        word = word[:-1]
    folded = fold(word)
    return str(_STEMMER.stemWord(_IRREGULAR.get(folded, folded)))


def stems(text: str) -> Phrase:
    """The stemmed words of a text, in order: what keywords and papers are compared on."""
    if text.isascii():  # nearly every abstract: nothing to decompose
        plain = text
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return tuple(_stem(w) for w in _WORD.findall(plain))


@lru_cache(maxsize=65536)
def phrase_of(keyword: str) -> Phrase:
    """A subscriber's keyword as the stems it is matched on (cached: keywords repeat a lot)."""
    return stems(keyword)


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


@dataclass(frozen=True, slots=True)
class _Hits:
    """Where one phrase matched: paper positions and the phrase's score in each."""

    papers: npt.NDArray[np.int64]
    scores: FloatArray
    by_paper: Mapping[int, float]


def build_index(papers: Iterable[Paper]) -> PaperIndex:
    """Index papers (of one day or several) for ranking; of a repeated id the first is kept."""
    first: dict[str, Paper] = {}
    for paper in papers:
        first.setdefault(paper.id, paper)
    unique = tuple(first.values())
    fields = tuple(_paper_fields(p) for p in unique)
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
        _by_family=dict(by_family),
        nudge=1.0 + POPULARITY_NUDGE * popularity / (1.0 + popularity),
        upvotes=np.array([p.upvotes for p in unique], dtype=np.int64),
        id_rank=np.argsort(np.argsort(np.array([p.id for p in unique]), kind="stable")),
        position={p.id: i for i, p in enumerate(unique)},
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
    _by_family: Mapping[str, list[tuple[int, str]]]
    nudge: FloatArray  # 1 .. 1 + POPULARITY_NUDGE, by paper position
    upvotes: npt.NDArray[np.int64]
    id_rank: npt.NDArray[np.int64]  # each paper's place in id order: the deterministic tie-break
    position: Mapping[str, int]  # paper id → position
    _phrase_cache: dict[Phrase, _Hits] = field(default_factory=dict)
    _author_cache: dict[str, frozenset[int]] = field(default_factory=dict)

    def digest(
        self,
        subscriber: Subscriber,
        day: date,
        *,
        already_sent: frozenset[str] = frozenset(),
        among: frozenset[str] | None = None,
    ) -> Digest:
        """The digest ``subscriber`` gets for ``day`` from these papers (or those ``among``)."""
        rankings = self.rank([subscriber])
        return rankings.digest(subscriber, day, already_sent=already_sent, among=among)

    def rank(self, subscribers: Sequence[Subscriber]) -> Rankings:
        """Score every subscriber against every paper at once (sparse matrix products)."""
        phrase_ids: dict[Phrase, int] = {}
        topic_rows: list[int] = []
        topic_cols: list[int] = []
        topic_vals: list[float] = []
        excl_rows: list[int] = []
        excl_cols: list[int] = []
        author_rows: list[int] = []
        author_cols: list[int] = []
        for row, subscriber in enumerate(subscribers):
            for topic in subscriber.topics:
                for keyword in topic.keywords:
                    col = phrase_ids.setdefault(phrase_of(keyword), len(phrase_ids))
                    topic_rows.append(row)
                    topic_cols.append(col)
                    topic_vals.append(topic.weight)
            for term in subscriber.exclude:
                excl_rows.append(row)
                excl_cols.append(phrase_ids.setdefault(phrase_of(term), len(phrase_ids)))
            for author in subscriber.authors:
                for paper in sorted(self.papers_by(author)):
                    author_rows.append(row)
                    author_cols.append(paper)
        shape = (len(subscribers), len(phrase_ids))
        hits = self._hit_matrix(list(phrase_ids))
        weights = sparse.csr_matrix((topic_vals, (topic_rows, topic_cols)), shape=shape)
        excludes = sparse.csr_matrix((np.ones(len(excl_rows)), (excl_rows, excl_cols)), shape=shape)
        authors = sparse.csr_matrix(
            (np.ones(len(author_rows)), (author_rows, author_cols)),
            shape=(len(subscribers), len(self.papers)),
        )
        authors.data[:] = 1.0  # a paper by two followed authors counts once
        relevance = sparse.csr_matrix(weights @ hits) + AUTHOR_SCORE * authors
        excluded = sparse.csr_matrix(excludes @ (hits > 0).astype(np.float64))
        return Rankings(
            index=self,
            rows={s.email: i for i, s in enumerate(subscribers)},
            subscribers=tuple(subscribers),
            candidates=self._candidates(subscribers, relevance, excluded, authors),
        )

    def _candidates(
        self,
        subscribers: Sequence[Subscriber],
        relevance: sparse.csr_matrix,
        excluded: sparse.csr_matrix,
        followed: sparse.csr_matrix,
    ) -> _Candidates:
        """Every subscriber's candidates, worked out for all of them at once (see ``_Candidates``),
        ``CANDIDATE_ROWS`` subscribers at a time so the temporary arrays stay small."""
        parts = [
            self._candidate_rows(
                subscribers[start : start + CANDIDATE_ROWS],
                relevance[start : start + CANDIDATE_ROWS],
                excluded[start : start + CANDIDATE_ROWS],
                followed[start : start + CANDIDATE_ROWS],
            )
            for start in range(0, len(subscribers), CANDIDATE_ROWS)
        ] or [_Candidates.empty()]
        counts = np.concatenate([np.diff(p.starts) for p in parts])
        return _Candidates(
            starts=np.concatenate(([0], np.cumsum(counts))),
            papers=np.concatenate([p.papers for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            followed=np.concatenate([p.followed for p in parts]),
        )

    def _candidate_rows(
        self,
        subscribers: Sequence[Subscriber],
        relevance: sparse.csr_matrix,
        excluded: sparse.csr_matrix,
        followed: sparse.csr_matrix,
    ) -> _Candidates:
        """The candidates of these subscribers (the rows of these matrices).

        One entry per stored (subscriber, paper) score: the floor (which followed authors bypass),
        ``exclude``, ``min_upvotes`` and categories decide whether it is kept; the kept ones are
        sorted by subscriber, then followed first, then by final score, then by id.
        """
        rows, cols = _entries(relevance)
        width = len(self.papers)
        keys = rows * width + cols
        by_followed = np.isin(keys, _keys(followed, width))
        keep = (relevance.data >= MIN_RELEVANCE) | by_followed  # followed authors bypass the floor
        keep &= ~np.isin(keys, _keys(excluded, width))
        min_upvotes = np.array([s.min_upvotes for s in subscribers], dtype=np.int64)
        keep &= self.upvotes[cols] >= min_upvotes[rows]
        keep &= self._in_categories(rows, cols, subscribers)
        rows, cols, by_followed = rows[keep], cols[keep], by_followed[keep]
        final = relevance.data[keep] * self.nudge[cols]
        order = np.lexsort((self.id_rank[cols], -final, ~by_followed, rows))
        counts = np.bincount(rows, minlength=len(subscribers))
        return _Candidates(
            starts=np.concatenate(([0], np.cumsum(counts))),
            papers=cols[order].astype(np.int32),
            scores=final[order],
            followed=by_followed[order],
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
        """Score a phrase in every paper that contains it (cached: subscribers share keywords)."""
        cached = self._phrase_cache.get(phrase)
        if cached is not None:
            return cached
        found: dict[int, float] = {}
        if phrase and all(stem in self._postings for stem in phrase):
            candidates = frozenset.intersection(*(self._postings[stem] for stem in phrase))
            for i in sorted(candidates):
                score = _field_score(phrase, self._fields[i])
                if score > 0:
                    found[i] = score
        n, df = len(self.papers), len(found)
        idf = 1.0 + math.log((1.0 + n) / (1.0 + df))  # ≥ 1: a common keyword still counts
        by_paper = {i: idf * score for i, score in found.items()}
        hits = _Hits(
            papers=np.fromiter(by_paper, dtype=np.int64, count=df),
            scores=np.fromiter(by_paper.values(), dtype=np.float64, count=df),
            by_paper=by_paper,
        )
        self._phrase_cache[phrase] = hits
        return hits

    def papers_by(self, author: str) -> frozenset[int]:
        """Positions of the papers ``author`` (as a subscriber wrote the name) is an author of."""
        cached = self._author_cache.get(author)
        if cached is None:
            parts = _name_parts(author)
            candidates = self._by_family.get(parts[-1], []) if parts else []
            cached = frozenset(i for i, name in candidates if same_person(author, name))
            self._author_cache[author] = cached
        return cached


def _field_score(phrase: Phrase, fields: _Fields) -> float:
    """sum over fields of field weight * saturated count (abstract matches decaying with depth)."""
    total = 0.0
    for name, weight in _FIELDS:
        starts = _phrase_starts(phrase, fields.tokens[name], fields.positions[name])
        if not starts:
            continue
        count = len(starts)
        saturation = count * (SATURATION_K1 + 1) / (count + SATURATION_K1)
        depth = 1.0
        if name == "abstract":
            depth = 0.5 + 0.5 / (1.0 + starts[0] / ABSTRACT_DECAY_TOKENS)
        total += weight * saturation * depth
    return total


def _phrase_starts(
    phrase: Phrase, tokens: Phrase, positions: Mapping[str, tuple[int, ...]]
) -> list[int]:
    size = len(phrase)
    return [
        p
        for p in positions.get(phrase[0], ())
        if tokens[p : p + size] == phrase  # a phrase, not its words scattered
    ]


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

    @classmethod
    def empty(cls) -> _Candidates:
        """No subscriber, no candidate."""
        return cls(
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.float64),
            np.zeros(0, dtype=np.bool_),
        )


@dataclass(frozen=True, slots=True)
class Rankings:
    """Every ranked subscriber's candidate papers, in order; ``digest`` picks one's papers."""

    index: PaperIndex
    rows: Mapping[str, int]
    subscribers: tuple[Subscriber, ...]  # by row
    candidates: _Candidates

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
            return self.index.digest(subscriber, day, already_sent=already_sent, among=among)
        picked = self._pick(row, subscriber.max_papers, already_sent, among)
        papers = self.index.papers
        topic_hits = self._topic_hits(subscriber) if picked else []
        return Digest(
            subscriber=subscriber,
            day=day,
            papers=tuple(
                ScoredPaper(papers[i], score, self._reasons(subscriber, i, by_followed, topic_hits))
                for i, score, by_followed in picked
            ),
        )

    def _pick(
        self, row: int, limit: int, already_sent: frozenset[str], among: frozenset[str] | None
    ) -> list[tuple[int, float, bool]]:
        """The first ``limit`` candidates of ``row`` (followed authors' papers first) not sent
        already and, when given, ``among`` those ids: (paper position, final score, followed),
        shown best first."""
        found = self.candidates
        papers = self.index.papers
        if among is not None and len(among) >= len(papers):
            among = None  # every paper of the index is among them
        start, end = int(found.starts[row]), int(found.starts[row + 1])
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

    def _topic_hits(self, subscriber: Subscriber) -> list[tuple[Topic, list[_KeywordHits]]]:
        """Each topic with its distinct keywords and the papers each matches, with its score in
        each: looked up once a digest rather than once a paper."""
        index = self.index
        return [
            (topic, [(k, index.phrase_scores(k)) for k in dict.fromkeys(topic.keywords)])
            for topic in subscriber.topics
        ]

    def _reasons(
        self,
        subscriber: Subscriber,
        paper: int,
        followed: bool,
        topic_hits: Sequence[tuple[Topic, Sequence[_KeywordHits]]],
    ) -> tuple[Reason, ...]:
        """Why ``paper`` was picked: the followed authors, then topics by their contribution."""
        reasons: list[Reason] = []
        if followed:
            reasons.extend(
                Reason(ReasonKind.AUTHOR, author)
                for author in subscriber.authors
                if paper in self.index.papers_by(author)
            )
        scored_topics: list[tuple[float, int, Reason]] = []
        for order, (topic, hits) in enumerate(topic_hits):
            terms: list[str] = []
            total = 0.0
            for keyword, by_paper in hits:
                score = by_paper.get(paper, 0.0)
                if score > 0:
                    terms.append(keyword)
                    total += score
            if terms:
                reason = Reason(ReasonKind.TOPIC, topic.name, tuple(terms))
                scored_topics.append((-total * topic.weight, order, reason))
        if len(scored_topics) > 1:
            scored_topics.sort(key=lambda t: (t[0], t[1]))
        reasons.extend(r for _, _, r in scored_topics)
        return tuple(reasons)


def _entries(
    matrix: sparse.csr_matrix,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The row and column of every stored entry of a CSR matrix, in storage order."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows, matrix.indices.astype(np.int64)


def _keys(matrix: sparse.csr_matrix, width: int) -> npt.NDArray[np.int64]:
    """One number per stored entry of a CSR matrix with ``width`` columns: row * width + column."""
    rows, cols = _entries(matrix)
    return rows * width + cols


def rank_all(papers: Iterable[Paper], subscribers: Sequence[Subscriber]) -> Rankings:
    """Index ``papers`` once and score every subscriber against them: a run's ranking step."""
    return build_index(papers).rank(subscribers)


def build_digest(
    subscriber: Subscriber,
    day: date,
    papers: Iterable[Paper],
    *,
    already_sent: frozenset[str] = frozenset(),
) -> Digest:
    """One subscriber's digest from a sequence of papers (indexes them; for one-off use)."""
    return build_index(papers).digest(subscriber, day, already_sent=already_sent)
