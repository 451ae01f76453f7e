"""Semantic scoring: a small sentence-embedding model, run on the CPU with onnxruntime.

The model is all-MiniLM-L6-v2 (384 dimensions, English), as an int8 ONNX file with its
``tokenizer.json``: tokenised by the ``tokenizers`` package, run by onnxruntime, mean-pooled and
normalised, so a dot product is a cosine. No torch at run time.

Where the model comes from (``load_embedder``):

- ``PAPERMAIL_SEMANTIC=off``: nowhere; ranking is lexical.
- ``PAPERMAIL_EMBEDDING_MODEL=<folder>``: a folder holding ``tokenizer.json`` and the ONNX file
  (``model.onnx``, ``model_quantized.onnx`` or ``onnx/model_quantized.onnx``).
- otherwise ``<state>/models/<name>/``, downloaded from the Hugging Face Hub (the Daily Papers
  API's host) at first use: the files of ``HUB_REPO`` at the pinned revision ``HUB_REVISION``,
  each checked against its pinned sha256 before it is moved into place.

When the model cannot be had (offline first run, a bad file), ``load_embedder`` logs one warning
and returns None: the run ranks lexically, and the semantic part never stops a send.

Vectors are cached: a day's papers beside the archive (``<state>/archive/<day>.vectors.npz``,
keyed by the model, each paper's id and a hash of its text), the subscribers' topics by their text
(``<state>/models/<name>.queries.npz``), so a run whose topics were seen before embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from pipeline.clock import SYSTEM_CLOCK, Clock
from pipeline.errors import SourceError
from pipeline.files import write_atomic
from pipeline.models import Day, Paper, Subscriber
from pipeline.ranking import Example, Meaning, topic_query
from pipeline.settings import Settings
from pipeline.sources import arxiv
from pipeline.sources.http import Fetcher

log = logging.getLogger(__name__)

HUB = "https://huggingface.co"
HUB_REPO = "Xenova/all-MiniLM-L6-v2"  # all-MiniLM-L6-v2 exported to ONNX, with an int8 file
HUB_REVISION = "751bff37182d3f1213fa05d7196b954e230abad9"
#: Path in the repository → (file name in the model folder, sha256).
HUB_FILES = {
    "onnx/model_quantized.onnx": (
        "model.onnx",
        "afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1",
    ),
    "tokenizer.json": (
        "tokenizer.json",
        "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0",
    ),
}
MODEL_NAME = f"all-MiniLM-L6-v2-{HUB_REVISION[:7]}"
MAX_TOKENS = 128  # what all-MiniLM-L6-v2 was trained on; longer texts are cut
BATCH = 16  # texts per model call, sorted by length so little padding is run
DIMENSIONS = 384
_ONNX_NAMES = ("model.onnx", "model_quantized.onnx", "onnx/model_quantized.onnx", "onnx/model.onnx")
FloatArray = npt.NDArray[np.float32]


class ModelUnavailable(Exception):
    """The embedding model could not be loaded or obtained; ranking goes on lexically."""


# --- the model ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Embedder:
    """Texts → unit vectors, with the ONNX model and tokenizer of one model folder."""

    name: str  # identifies the model in the caches: vectors of another model are not reused
    _session: Any
    _tokenizer: Any
    _inputs: frozenset[str]

    @classmethod
    def load(cls, folder: Path, name: str | None = None) -> Embedder:
        """Load the model in ``folder``; ``ModelUnavailable`` says why it cannot be."""
        # Imported here: onnxruntime takes a while to import, and a lexical run never needs it.
        import onnxruntime  # noqa: PLC0415
        from tokenizers import Tokenizer  # noqa: PLC0415

        onnx = next((folder / n for n in _ONNX_NAMES if (folder / n).is_file()), None)
        vocab = folder / "tokenizer.json"
        if onnx is None or not vocab.is_file():
            raise ModelUnavailable(f"{folder} holds no model.onnx and tokenizer.json")
        try:
            tokenizer = Tokenizer.from_file(str(vocab))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = min(2, os.cpu_count() or 1)
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                str(onnx), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime and tokenizers raise their own kinds
            raise ModelUnavailable(f"cannot load the model in {folder}: {exc}") from exc
        inputs = frozenset(i.name for i in session.get_inputs())
        return cls(name or _fingerprint(onnx), session, tokenizer, inputs)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """One unit vector (a row) per text; mean of the token vectors, normalised."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = self._embed_batch([texts[i] for i in chunk])
        return out

    def _embed_batch(self, texts: list[str]) -> FloatArray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden: FloatArray = self._session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: FloatArray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit


def _fingerprint(path: Path) -> str:
    """A short name for a model file: its size and a hash of its first mebibyte."""
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:12]
    return f"{path.stem}-{path.stat().st_size}-{head}"


def load_embedder(
    *,
    state_dir: Path,
    enabled: bool = True,
    folder: Path | None = None,
    client: httpx.Client | None = None,
    hub: str = HUB,
) -> Embedder | None:
    """The embedding model a run uses, or None (one warning) when it is off or cannot be had.

    ``folder`` (``PAPERMAIL_EMBEDDING_MODEL``) is used as it is; otherwise the pinned model is
    read from ``<state>/models/``, downloaded there first if needed (with ``client``).
    """
    if not enabled:
        log.info("semantic scoring is off (PAPERMAIL_SEMANTIC=off): ranking lexically")
        return None
    try:
        if folder is not None:
            return Embedder.load(folder)
        target = state_dir / "models" / MODEL_NAME
        if not all((target / name).is_file() for name, _ in HUB_FILES.values()):
            download_model(target, client=client, hub=hub)
        return Embedder.load(target, MODEL_NAME)
    except ModelUnavailable as exc:
        log.warning("semantic scoring unavailable, ranking lexically: %s", exc)
        return None
    except Exception as exc:  # a model that loads but cannot run: still never stops a send
        log.warning("semantic scoring unavailable, ranking lexically: %s", exc)
        return None


def hub_of(api_url: str) -> str:
    """The Hub the model comes from: the Daily Papers API's host (``https://huggingface.co``)."""
    url = httpx.URL(api_url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def download_model(
    target: Path,
    *,
    client: httpx.Client | None = None,
    hub: str = HUB,
    files: Mapping[str, tuple[str, str]] = HUB_FILES,
) -> None:
    """Fetch the pinned model ``files`` from ``hub`` into ``target``, each checked against its
    sha256 before it is moved into place."""
    own = client is None
    http = client or httpx.Client(timeout=60.0, follow_redirects=True)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for path, (name, sha256) in files.items():
            if (target / name).is_file():
                continue
            url = f"{hub}/{HUB_REPO}/resolve/{HUB_REVISION}/{path}"
            _download(http, url, target / name, sha256)
    except (OSError, httpx.HTTPError) as exc:
        raise ModelUnavailable(f"cannot download the model from {hub}: {exc}") from exc
    finally:
        if own:
            http.close()


def _download(http: httpx.Client, url: str, dest: Path, sha256: str) -> None:
    """Stream ``url`` to a temporary file beside ``dest``; rename it there only if it checks.

    Redirects are followed to any host, whatever the client's default: the Hub's file URLs
    redirect to its CDN, and the pinned sha256 decides whether what arrived is kept. The
    connection is closed after it, like every source request's: a kept-alive connection to the
    Hub would be reused by the Daily Papers request that follows, whose watchdog (``sources``)
    learns its socket only from a connection it opens."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            http.stream(
                "GET", url, headers={"Connection": "close"}, follow_redirects=True
            ) as response,
        ):
            if response.status_code != 200:
                raise ModelUnavailable(f"{url} answered HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ModelUnavailable(f"{url} did not match its pinned sha256")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- texts ----------------------------------------------------------------------------------------


def paper_text(paper: Paper) -> str:
    """What a paper is embedded from: its title and abstract."""
    return f"{paper.title}. {paper.abstract}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


# --- caches ---------------------------------------------------------------------------------------


def _read_npz(path: Path, model: str) -> tuple[list[str], FloatArray] | None:
    """The keys and vectors of a cache file made with ``model``, or None (missing, damaged)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != model:
                return None
            keys = [str(k) for k in data["keys"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
    except (OSError, KeyError, ValueError) as exc:
        if path.exists():
            log.warning("embedding cache %s is unreadable (%s); embedding again", path, exc)
        return None
    if vectors.shape != (len(keys), DIMENSIONS):
        return None
    return keys, vectors


def _write_npz(path: Path, model: str, keys: Sequence[str], vectors: FloatArray) -> None:
    """Write a cache file atomically (a crash leaves the old one or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, model=np.array(model), keys=np.array(keys), vectors=vectors)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the embedding cache %s: %s", path, exc)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def vectors_path(state_dir: Path, day: Day) -> Path:
    """Where a day's paper vectors are kept: beside the archived day."""
    return state_dir / "archive" / f"{day.day.isoformat()}.vectors.npz"


@dataclass(slots=True)
class Vectors:
    """Embeds papers and queries with one model, each text at most once (cached on disk).

    ``state_dir`` None keeps the caches in memory only (tests, the evaluation harness).
    """

    embedder: Embedder
    state_dir: Path | None = None
    _queries: dict[str, FloatArray] = field(default_factory=dict)
    _queries_loaded: bool = False
    _papers: dict[str, FloatArray] = field(default_factory=dict)  # text digest → vector

    @property
    def model(self) -> str:
        """The model's name, as the caches record it."""
        return self.embedder.name

    def for_days(self, days: Iterable[Day]) -> dict[str, FloatArray]:
        """Paper id → vector for every paper of these days (each day's cache read or written)."""
        out: dict[str, FloatArray] = {}
        for day in days:
            out.update(self._day(day))
        return out

    def for_papers(self, papers: Iterable[Paper]) -> dict[str, FloatArray]:
        """Paper id → vector (no disk cache: papers that belong to no day, like examples)."""
        return self._embed_papers(list(papers))

    def _day(self, day: Day) -> dict[str, FloatArray]:
        path = vectors_path(self.state_dir, day) if self.state_dir else None
        cached = _read_npz(path, self.model) if path else None
        if cached is not None:
            keys, vectors = cached
            by_key = dict(zip(keys, vectors, strict=True))
            self._papers.update(by_key)
        found = self._embed_papers(list(day.papers))
        if path and (cached is None or set(cached[0]) != set(self._keys(day.papers))):
            keys = self._keys(day.papers)
            _write_npz(path, self.model, keys, np.array([self._papers[k] for k in keys]))
        return found

    def _keys(self, papers: Sequence[Paper]) -> list[str]:
        return list(dict.fromkeys(_digest(paper_text(p)) for p in papers))

    def _embed_papers(self, papers: list[Paper]) -> dict[str, FloatArray]:
        keys = [_digest(paper_text(p)) for p in papers]
        missing = {k: paper_text(p) for k, p in zip(keys, papers, strict=True)}
        missing = {k: t for k, t in missing.items() if k not in self._papers}
        if missing:
            vectors = self.embedder.embed(list(missing.values()))
            self._papers.update(zip(missing, vectors, strict=True))
        return {p.id: self._papers[k] for p, k in zip(papers, keys, strict=True)}

    def for_queries(self, texts: Iterable[str]) -> dict[str, FloatArray]:
        """Query text → vector; new texts are embedded once and added to the on-disk cache."""
        self._load_queries()
        wanted = list(dict.fromkeys(texts))
        missing = [t for t in wanted if t not in self._queries]
        if missing:
            self._queries.update(zip(missing, self.embedder.embed(missing), strict=True))
            if self.state_dir:
                keys = list(self._queries)
                path = self._queries_path()
                _write_npz(path, self.model, keys, np.array([self._queries[k] for k in keys]))
        return {t: self._queries[t] for t in wanted}

    def _queries_path(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "models" / f"{self.model}.queries.npz"

    def _load_queries(self) -> None:
        if self._queries_loaded or self.state_dir is None:
            return
        self._queries_loaded = True
        cached = _read_npz(self._queries_path(), self.model)
        if cached is not None:
            self._queries.update(zip(cached[0], cached[1], strict=True))


def cosine(queries: Mapping[str, FloatArray], papers: FloatArray) -> dict[str, FloatArray]:
    """Each query's cosine with each paper (rows of ``papers``), all vectors being unit vectors."""
    return {text: papers @ vector for text, vector in queries.items()}


# --- a run's semantic part ------------------------------------------------------------------------


def examples_path(state_dir: Path) -> Path:
    """Where the example papers fetched from arXiv are kept (fetched once each)."""
    return state_dir / "examples.json"


def example_papers(
    state_dir: Path, ids: Iterable[str], fetch: Callable[[list[str]], Mapping[str, Paper]]
) -> dict[str, Paper]:
    """The example papers (``like:``) by id: from the cache, the missing ones fetched (one
    ``fetch`` call) and cached. An id arXiv does not know is a warning (once, when first asked)
    and is not asked again; a failed fetch is a warning and is tried again next run."""
    path = examples_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        papers = {pid: Paper.from_json(p) for pid, p in data["papers"].items()}
        unknown = set(data["unknown"])
    except FileNotFoundError:
        papers, unknown = {}, set()
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("example papers cache %s is unreadable (%s); fetching again", path, exc)
        papers, unknown = {}, set()
    wanted = sorted(set(ids))
    missing = [pid for pid in wanted if pid not in papers and pid not in unknown]
    if missing:
        try:
            found = fetch(missing)
        except SourceError as exc:
            log.warning("cannot fetch example papers from arXiv (%s); trying next run", exc)
            found = None
        if found is not None:
            papers.update(found)
            for pid in sorted(set(missing) - set(found)):
                log.warning("like: arXiv does not know the paper %s; it is left out", pid)
                unknown.add(pid)
            data = {
                "papers": {pid: p.to_json() for pid, p in sorted(papers.items())},
                "unknown": sorted(unknown),
            }
            write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    return {pid: papers[pid] for pid in wanted if pid in papers}


@dataclass(slots=True)
class Semantic:
    """A run's semantic part: the model's vectors and the subscribers' example papers."""

    vectors: Vectors
    examples: Mapping[str, Paper]

    def meaning(self, days: Sequence[Day], subscribers: Sequence[Subscriber]) -> Meaning | None:
        """The vectors ranking needs for these days and subscribers; None (one warning) if
        embedding fails: the semantic part never stops a send."""
        try:
            papers = self.vectors.for_days(days)
            queries = self.vectors.for_queries(
                topic_query(t) for s in subscribers for t in s.topics
            )
            liked = sorted({pid for s in subscribers for pid in s.like if pid in self.examples})
            embedded = self.vectors.for_papers(self.examples[pid] for pid in liked)
        except Exception as exc:  # onnxruntime's errors have no common base; nothing may escape
            log.warning("semantic scoring failed, ranking lexically: %s", exc)
            return None
        examples = {
            pid: Example(pid, self.examples[pid].title, embedded[pid])
            for pid in liked
            if pid in embedded
        }
        return Meaning(papers=papers, queries=queries, examples=examples)


def prepare(
    settings: Settings,
    subscribers: Sequence[Subscriber],
    *,
    client: httpx.Client | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Semantic | None:
    """A run's semantic part per the settings (None: lexical ranking), with the subscribers'
    example papers fetched from arXiv if not cached (with ``client``, or one of its own)."""
    if client is None:
        with httpx.Client(timeout=settings.http_timeout, follow_redirects=True) as own:
            return prepare(settings, subscribers, client=own, clock=clock)
    embedder = load_embedder(
        state_dir=settings.state_dir,
        enabled=settings.semantic,
        folder=settings.embedding_model,
        client=client,
        hub=hub_of(settings.hf_api_url),
    )
    if embedder is None:
        return None
    ids = {pid for s in subscribers for pid in s.like}
    fetcher = Fetcher(
        client,
        clock,
        "arXiv API",
        timeout=settings.http_timeout,
        max_attempts=settings.max_attempts,
        min_interval=arxiv.MIN_INTERVAL,
        setting="PAPERMAIL_ARXIV_API_URL",
    )
    url = settings.arxiv_api_url
    examples = example_papers(
        settings.state_dir, ids, lambda missing: arxiv.fetch_by_ids(fetcher, url, missing)
    )
    return Semantic(Vectors(embedder, settings.state_dir), examples)
