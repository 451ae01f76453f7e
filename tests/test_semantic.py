"""Semantic scoring: the packaged model, how the model is obtained, caches, example papers."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline import semantic
from pipeline.cli import main
from pipeline.models import Day, Paper
from pipeline.sources import arxiv
from pipeline.sources.http import Fetcher
from tests.builders import plain_paper as paper
from tests.conftest import FakeTime, PapersServer, SmtpServer
from tests.embedding import embedder, packaged_model

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
DAY = date(2026, 1, 1)


def test_the_model_puts_texts_on_one_subject_closer_than_texts_on_another() -> None:
    """Unit vectors; two texts about training dynamics are closer than either is to cooking."""
    a, b, c = embedder().embed(
        [
            "Grokking: generalization long after overfitting in neural network training.",
            "The sharpness of the loss landscape during training of deep networks.",
            "A recipe for slow-cooked tomato sauce with basil and garlic.",
        ]
    )
    for v in (a, b, c):
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4
    assert float(a @ b) > float(a @ c) + 0.1
    assert float(a @ b) > float(b @ c) + 0.1


def test_semantic_off_loads_nothing_and_warns_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``PAPERMAIL_SEMANTIC=off``: no model, no download, no warning."""
    with caplog.at_level(logging.WARNING):
        assert semantic.load_embedder(state_dir=tmp_path, enabled=False) is None
    assert not caplog.records
    assert not (tmp_path / "models").exists()


def test_a_local_model_folder_is_used_as_it_is(tmp_path: Path) -> None:
    """``PAPERMAIL_EMBEDDING_MODEL``: the folder's files, nothing downloaded."""
    loaded = semantic.load_embedder(state_dir=tmp_path, folder=packaged_model())
    assert loaded is not None
    assert loaded.embed(["x"]).shape == (1, semantic.DIMENSIONS)


def test_an_unreachable_hub_is_one_warning_and_no_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline first run: one warning, None (the run ranks lexically); nothing left behind."""

    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    client = httpx.Client(transport=httpx.MockTransport(offline))
    with caplog.at_level(logging.WARNING):
        assert semantic.load_embedder(state_dir=tmp_path, client=client) is None
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "ranking lexically" in caplog.records[0].getMessage()
    target = tmp_path / "models" / semantic.MODEL_NAME
    assert not any(target.iterdir())


def _hub_serving(
    files: dict[str, bytes], asked: list[str], connection: list[str] | None = None
) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if connection is not None:
            connection.append(request.headers.get("Connection", ""))
        for path, body in files.items():
            if request.url.path.endswith(f"/resolve/{semantic.HUB_REVISION}/{path}"):
                return httpx.Response(200, content=body)
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_the_model_is_downloaded_once_at_the_pinned_revision_and_checked(tmp_path: Path) -> None:
    """Each file comes from ``<hub>/<repo>/resolve/<revision>/<path>`` and is kept only when its
    sha256 is the pinned one; a second load reads the files already there."""
    folder = packaged_model()
    bodies = {
        "onnx/model_quantized.onnx": (folder / "model.onnx").read_bytes(),
        "tokenizer.json": (folder / "tokenizer.json").read_bytes(),
    }
    names = {"onnx/model_quantized.onnx": "model.onnx", "tokenizer.json": "tokenizer.json"}
    pinned = {p: (names[p], hashlib.sha256(b).hexdigest()) for p, b in bodies.items()}
    asked: list[str] = []
    connection: list[str] = []
    target = tmp_path / "models" / "m"
    semantic.download_model(target, client=_hub_serving(bodies, asked, connection), files=pinned)
    # no kept-alive connection for the Daily Papers request to reuse unseen by its watchdog
    assert connection == ["close", "close"]
    assert asked == [
        f"/{semantic.HUB_REPO}/resolve/{semantic.HUB_REVISION}/onnx/model_quantized.onnx",
        f"/{semantic.HUB_REPO}/resolve/{semantic.HUB_REVISION}/tokenizer.json",
    ]
    assert semantic.Embedder.load(target).embed(["x"]).shape == (1, semantic.DIMENSIONS)
    semantic.download_model(target, client=_hub_serving(bodies, asked), files=pinned)
    assert len(asked) == 2  # nothing fetched again

    tampered = {**bodies, "tokenizer.json": bodies["tokenizer.json"] + b" "}
    other = tmp_path / "models" / "n"
    with pytest.raises(semantic.ModelUnavailable, match="sha256"):
        semantic.download_model(other, client=_hub_serving(tampered, []), files=pinned)
    assert sorted(p.name for p in other.iterdir()) == ["model.onnx"]  # the bad file is not kept


def test_a_days_vectors_are_cached_beside_the_archive(tmp_path: Path) -> None:
    """The first run writes ``<day>.vectors.npz``; a later run reads the same vectors from it
    and does not write it again; a changed paper is embedded anew."""
    papers = (paper("1", "Grokking", "Late generalization."), paper("2", "Sauce", "Tomatoes."))
    day = Day(DAY, papers)
    first = semantic.Vectors(embedder(), tmp_path).for_days([day])
    path = semantic.vectors_path(tmp_path, day)
    stamp = path.stat().st_mtime_ns
    again = semantic.Vectors(embedder(), tmp_path).for_days([day])
    assert path.stat().st_mtime_ns == stamp
    assert all(np.array_equal(first[k], again[k]) for k in first)
    changed = Day(DAY, (papers[0], paper("2", "Sauce", "Basil.")))
    third = semantic.Vectors(embedder(), tmp_path).for_days([changed])
    assert np.array_equal(third["1"], first["1"])
    assert not np.array_equal(third["2"], first["2"])


def test_topic_vectors_are_cached_by_their_text(tmp_path: Path) -> None:
    """A topic text is embedded once; the next run reads it from ``<state>/models/``."""
    first = semantic.Vectors(embedder(), tmp_path).for_queries(["A: b, c", "A: b, c", "D: e"])
    assert list(first) == ["A: b, c", "D: e"]
    cache = tmp_path / "models" / f"{embedder().name}.queries.npz"
    stamp = cache.stat().st_mtime_ns
    again = semantic.Vectors(embedder(), tmp_path).for_queries(["D: e"])
    assert np.array_equal(again["D: e"], first["D: e"])
    assert cache.stat().st_mtime_ns == stamp


def _arxiv(asked: list[str], status: int = 200) -> Fetcher:
    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["id_list"])
        return httpx.Response(status, content=(FIXTURES / "arxiv_id_list.xml").read_bytes())

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return Fetcher(client, FakeTime().clock(), "arXiv API", max_attempts=1)


def test_example_papers_are_fetched_once_and_an_unknown_id_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One query for the missing ids; known papers and unknown ids are cached, so the next run
    asks nothing; the unknown id is a warning, not a failure."""
    asked: list[str] = []
    fetcher = _arxiv(asked)

    def fetch(ids: list[str]) -> dict[str, Paper]:
        return arxiv.fetch_by_ids(fetcher, "http://127.0.0.1:9/api/query", ids)

    wanted = ["2310.06110", "2399.99999", "2201.02177"]
    with caplog.at_level(logging.WARNING):
        found = semantic.example_papers(tmp_path, wanted, fetch)
    assert sorted(found) == ["2201.02177", "2310.06110"]
    assert asked == ["2201.02177,2310.06110,2399.99999"]
    assert [r.getMessage() for r in caplog.records] == [
        "like: arXiv does not know the paper 2399.99999; it is left out"
    ]
    again = semantic.example_papers(tmp_path, [*wanted, "2201.02177"], fetch)
    assert again == found
    assert len(asked) == 1


def test_a_failed_example_fetch_is_a_warning_and_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """arXiv unavailable: a warning, no example papers, nothing cached as unknown."""
    asked: list[str] = []
    fetcher = _arxiv(asked, status=503)

    def fetch(ids: list[str]) -> dict[str, Paper]:
        return arxiv.fetch_by_ids(fetcher, "http://127.0.0.1:9/api/query", ids)

    with caplog.at_level(logging.WARNING):
        assert semantic.example_papers(tmp_path, ["2310.06110"], fetch) == {}
    assert "trying next run" in caplog.records[-1].getMessage()
    assert semantic.example_papers(tmp_path, ["2310.06110"], fetch) == {}
    assert len(asked) == 2


SUBSCRIBER = """\
- email: gen@example.org
  topics:
    - name: Generative modelling
      keywords: ["score-based sampling"]
    - name: Generalization
      keywords: [grokking]
  like: [2201.02177]
"""


def test_a_run_picks_by_meaning_and_by_example_and_says_so(
    live: SmtpServer,
    papers_server: PapersServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the model, a paper no keyword matches is picked for a topic it is close to, and a
    paper close to an example paper says so; ``explain`` and the email give those reasons."""
    (tmp_path / "subs.yaml").write_text(SUBSCRIBER, encoding="utf-8")
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(tmp_path / "subs.yaml"))
    monkeypatch.setenv("PAPERMAIL_SEMANTIC", "on")
    monkeypatch.setenv("PAPERMAIL_EMBEDDING_MODEL", str(packaged_model()))
    recorded = (FIXTURES / "arxiv_id_list.xml").read_text(encoding="utf-8")
    papers_server.arxiv_entries = re.findall(r"<entry>.*?</entry>\s*", recorded, flags=re.DOTALL)

    assert main(["explain", "gen@example.org", "--date", "2026-01-01", "--json"]) == 0
    explained = {p["id"]: p["reasons"] for p in json.loads(capsys.readouterr().out)}
    assert explained["2302.04265"] == ["close to Generative modelling"]  # PFGM++
    like = (
        "like 2201.02177: Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets"
    )
    assert explained["2310.06110"] == ["Generalization: grokking", like]  # lazy to rich dynamics
    asked = [r for r in papers_server.requests if "id_list" in r]
    assert len(asked) == 1

    assert main(["run", "--date", "2026-01-01"]) == 0
    (message,) = live.inbox.for_recipient("gen@example.org")
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    content = " ".join(text.get_content().split())
    assert "Close in meaning to Generative modelling" in content
    assert f"Like 2201.02177 — {like.partition(': ')[2]}" in content
    assert len([r for r in papers_server.requests if "id_list" in r]) == 1  # cached since


def test_a_run_on_an_empty_day_with_the_model_sends_nothing_and_exits_0(
    live: SmtpServer,
    papers_server: PapersServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A weekend's empty day with semantic ranking on: nothing to rank, nothing sent, exit 0."""
    (tmp_path / "subs.yaml").write_text(SUBSCRIBER, encoding="utf-8")
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(tmp_path / "subs.yaml"))
    monkeypatch.setenv("PAPERMAIL_SEMANTIC", "on")
    monkeypatch.setenv("PAPERMAIL_EMBEDDING_MODEL", str(packaged_model()))
    papers_server.days["2026-01-03"] = []
    assert main(["run", "--date", "2026-01-03"]) == 0
    assert live.inbox.for_recipient("gen@example.org") == []
