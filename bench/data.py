"""Deterministic synthetic inputs in papermail's outward formats.

Subscribers are SPEC-shaped profile dicts (what a subscriber YAML file holds), drawn from a
vocabulary of real ML and physics topics; a day is a list of Daily Papers API items, built from the
bundled real sample day by varying ids, titles, authors and upvotes. The same seed always gives the
same data, so two runs of the benchmark measure the same work.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.sources.sample import sample_items

BENCH_DAY = date(2026, 1, 1)

#: (label, keywords): topics real researchers follow; many match the sample day, some match nothing.
TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Grokking", ("grokking", "delayed generalization", "training dynamics")),
    ("Learning dynamics", ("learning dynamics", "lazy training", "feature learning")),
    ("Neural operators", ("neural operator", "operator learning", "function spaces")),
    ("PDE solvers", ("PDE", "partial differential equation", "reduced order modeling")),
    ("Holography", ("holography", "holographic", "AdS/CFT")),
    ("Quantum field theory", ("quantum field theory", "renormalization", "QFT")),
    ("Random matrices", ("random matrix", "random matrices", "Coulomb gas")),
    ("Diffusion models", ("diffusion model", "score-based", "Poisson flow")),
    ("Generative models", ("generative model", "normalizing flow", "variational autoencoder")),
    ("Scaling laws", ("scaling law", "compute-optimal", "emergence")),
    ("Language models", ("language model", "LLM", "fine-tuning")),
    ("Intrinsic dimension", ("intrinsic dimension", "dimensionality reduction", "manifold")),
    ("Generalization theory", ("generalization error", "generalization", "overparameterization")),
    ("Adversarial robustness", ("adversarial attack", "adversarial", "robustness")),
    ("Interpretability", ("explainable AI", "interpretability", "mechanistic")),
    ("World models", ("world model", "model-based", "planning")),
    ("Reinforcement learning", ("reinforcement learning", "policy gradient", "sample efficiency")),
    ("Neural quantum states", ("neural quantum states", "open quantum systems", "variational")),
    ("Lattice gauge theory", ("lattice QED", "lattice gauge", "finite density")),
    ("Quantum gravity", ("weak gravity conjecture", "black hole", "Hawking-Page")),
    ("String theory", ("branes", "string theory", "swampland")),
    ("Chaos", ("chaotic systems", "chaos", "Lyapunov")),
    ("Time series", ("time series", "forecasting", "dynamical systems")),
    ("Representation learning", ("representation learning", "mutual information", "entropy")),
    ("Optimization", ("loss landscape", "objective landscapes", "hypernetworks")),
    ("Transformers", ("transformer", "attention", "autoregressive")),
    ("High-dimensional statistics", ("high-dimensional", "robust statistics", "cumulants")),
    ("Mathematical biology", ("chemotaxis", "Keller-Segel", "singular limit")),
    ("Graph neural networks", ("graph neural network", "message passing", "GNN")),
    ("Protein design", ("protein folding", "protein design", "molecular dynamics")),
    ("Speech", ("speech recognition", "text-to-speech", "audio")),
    ("Computer vision", ("object detection", "segmentation", "vision transformer")),
)
AUTHORS = ("Cengiz Pehlevan", "Yuandong Tian", "Chunyuan Li", "Ivan Dadić", "Tim Genewein")
EXCLUDES = ("medical", "protein folding", "autonomous driving", "benchmark", "survey")
TITLE_PREFIXES = ("", "Revisiting ", "Towards ", "On ", "A Note on ", "Beyond ", "Rethinking ")


def profiles(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` varied subscriber profiles with one to four topics each."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        chosen = rng.sample(TOPICS, rng.randint(1, 4))
        profile: dict[str, Any] = {
            "email": f"reader{i:06d}@example.org",
            "name": f"Reader {i}",
            "topics": [
                {
                    "name": name,
                    "keywords": list(rng.sample(keywords, rng.randint(1, len(keywords)))),
                    "weight": rng.choice((0.5, 1.0, 1.0, 1.5, 2.0)),
                }
                for name, keywords in chosen
            ],
            "max_papers": rng.choice((5, 10, 10, 10, 15)),
        }
        if rng.random() < 0.2:
            profile["authors"] = [rng.choice(AUTHORS)]
        if rng.random() < 0.3:
            profile["exclude"] = [rng.choice(EXCLUDES)]
        out.append(profile)
    return out


def distinct_topics(count: int, *, seed: int = 13) -> list[str]:
    """``count`` topic texts no two alike (as ``ranking.topic_query`` writes them): a real topic
    with a sample of its keywords and a number, as if every subscriber wrote their own."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        name, keywords = rng.choice(TOPICS)
        chosen = rng.sample(keywords, rng.randint(1, len(keywords)))
        out.append(f"{name} {i}: {', '.join(chosen)}")
    return out


def broad_profile(max_papers: int) -> dict[str, Any]:
    """A profile that matches almost every paper, for digests of a chosen size."""
    return {
        "email": f"broad{max_papers}@example.org",
        "name": "Broad Reader",
        "topics": [
            {"name": "Everything", "keywords": ["learning", "model", "theory", "neural", "the"]}
        ],
        "max_papers": max_papers,
    }


def day_items(count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` Daily Papers API items, real-shaped, with unique ids and varied titles."""
    rng = random.Random(seed)
    base = sample_items()
    out = []
    for i in range(count):
        item: dict[str, Any] = copy.deepcopy(base[i % len(base)])  # type: ignore[arg-type]
        paper = item["paper"]
        prefix = TITLE_PREFIXES[(i // len(base)) % len(TITLE_PREFIXES)]
        title = prefix + paper["title"] if prefix else paper["title"]
        if i >= len(base) * len(TITLE_PREFIXES):
            title = f"{title} ({i // (len(base) * len(TITLE_PREFIXES)) + 1})"
        paper["id"] = f"2601.{10000 + i:05d}"
        paper["title"] = item["title"] = title
        paper["upvotes"] = rng.randint(0, 120)
        rng.shuffle(paper["authors"])
        out.append(item)
    return out


def write_subscribers(path: Path, profiles_: list[dict[str, Any]]) -> Path:
    """Write the profiles as one subscribers file (JSON flow style, which is valid YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profiles_, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path
