"""Rebuild the bundled sample day from the seed page.

The seed (``../shared/seeds/daily-papers-page.txt``) is the text of a real Daily Papers page: titles,
abstracts, author counts and arXiv dates. The Daily Papers API also carries ids, author names and
upvotes, which the page text does not show; they are filled in from ``METADATA`` below (real arXiv ids
and authors where known, plausible ones otherwise). The output has the real API's JSON shape: a list of
items, each with a nested ``paper`` object.

Usage: python scripts/build_sample_day.py ../shared/seeds/daily-papers-page.txt \
    pipeline/samples/daily_papers_2026-01-01.json
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

DAY = "2026-01-01"

# title prefix -> (arXiv id, authors, upvotes, comments, ai_keywords, github repo, project page)
METADATA: dict[str, tuple[str, list[str], int, int, list[str], str | None, str | None]] = {
    "Causality and Renormalization": (
        "1912.13457",
        ["Ivan Dadić", "Dubravko Klabučar"],
        2,
        0,
        ["quantum field theory", "renormalization", "out-of-equilibrium"],
        None,
        None,
    ),
    "On the Road to Clarity": (
        "2404.17350",
        [
            "Mohamed Roshdi",
            "Julian Petzold",
            "Mostafa Wahby",
            "Hussein Ebrahim",
            "Mladen Berekovic",
            "Heiko Hamann",
        ],
        4,
        1,
        ["explainable AI", "world models", "autonomous driving", "variational autoencoder"],
        None,
        None,
    ),
    "High-dimensional dynamics of generalization error": (
        "1710.03667",
        ["Madhu S. Advani", "Andrew M. Saxe"],
        11,
        2,
        ["generalization error", "random matrix theory", "overparameterization"],
        None,
        None,
    ),
    "Assessing Neural Network Representations": (
        "2312.04823",
        [
            "Danqi Liao",
            "Chen Liu",
            "Benjamin W. Christensen",
            "Alexander Tong",
            "Guillaume Huguet",
            "Guy Wolf",
            "Maximilian Nickel",
            "Ian Adelstein",
            "Smita Krishnaswamy",
        ],
        7,
        0,
        ["diffusion spectral entropy", "mutual information", "representation learning"],
        "ChenLiu-1996/DiffusionSpectralEntropy",
        None,
    ),
    "Precision holography": (
        "0807.3324",
        ["Ingmar Kanitscheider", "Kostas Skenderis", "Marika Taylor"],
        0,
        0,
        ["holography", "non-conformal branes"],
        None,
        None,
    ),
    "Measuring the Intrinsic Dimension": (
        "1804.08838",
        ["Chunyuan Li", "Heerad Farkhoor", "Rosanne Liu", "Jason Yosinski"],
        15,
        3,
        ["intrinsic dimension", "objective landscapes", "random subspace training"],
        "https://github.com/uber-research/intrinsic-dimension",
        None,
    ),
    "More on the Weak Gravity Conjecture": (
        "2109.04511",
        ["Sandipan Kundu", "Eran Palti", "Jonathan J. Heckman", "Miguel Montero", "Gary Shiu"],
        1,
        0,
        ["weak gravity conjecture", "conformal field theory"],
        None,
        None,
    ),
    "Simulating 2+1D Lattice Quantum Electrodynamics": (
        "2212.06835",
        ["Zhuo Chen", "Di Luo", "Kaiwen Hu", "Bryan K. Clark"],
        3,
        0,
        ["lattice QED", "neural quantum states", "normalizing flows"],
        None,
        None,
    ),
    "Solving High-Dimensional PDEs": (
        "2301.12664",
        ["Haixu Wu", "Tengge Hu", "Huakun Luo", "Jianmin Wang", "Mingsheng Long"],
        9,
        1,
        ["neural operators", "PDE solving", "latent spectral models"],
        "thuml/Latent-Spectral-Models",
        None,
    ),
    "Incomplete RG": (
        "2112.07582",
        ["Elias Kiritsis", "Francesco Nitti", "Edwan Préau"],
        0,
        0,
        ["holographic RG flows", "Hawking-Page transition"],
        None,
        None,
    ),
    "Parabolic-elliptic and indirect-direct": (
        "2508.00863",
        ["Philippe Laurençot", "Christian Stinner", "Ariane Trescases", "Yuan Lou"],
        0,
        0,
        ["chemotaxis", "singular limits"],
        None,
        None,
    ),
    "Linear statistics for Coulomb gases": (
        "2310.16548",
        ["Benjamin De Bruyne", "Pierre Le Doussal", "Satya N. Majumdar", "Grégory Schehr"],
        2,
        0,
        ["Coulomb gas", "cumulants", "random matrices"],
        None,
        None,
    ),
    "Autoregressive Transformer Neural Network": (
        "2009.05580",
        ["Di Luo", "Zhuo Chen", "Juan Carrasquilla", "Bryan K. Clark"],
        5,
        0,
        ["open quantum systems", "transformers", "autoregressive models"],
        None,
        None,
    ),
    "Model-agnostic Measure of Generalization Difficulty": (
        "2305.01034",
        [
            "Akhilan Boopathy",
            "Kevin Liu",
            "Jaedong Hwang",
            "Shu Ge",
            "Asaad Mohammedsaleh",
            "Ila Fiete",
        ],
        6,
        1,
        ["generalization difficulty", "inductive bias", "benchmarks"],
        None,
        None,
    ),
    "Neural Network Approximations of PDEs Beyond Linearity": (
        "2210.12101",
        ["Tanya Marwah", "Zachary C. Lipton", "Jianfeng Lu", "Andrej Risteski"],
        4,
        0,
        ["neural networks", "PDEs", "curse of dimensionality"],
        None,
        None,
    ),
    "PFGM++": (
        "2302.04265",
        [
            "Yilun Xu",
            "Ziming Liu",
            "Yonglong Tian",
            "Shangyuan Tong",
            "Max Tegmark",
            "Tommi Jaakkola",
        ],
        23,
        4,
        ["diffusion models", "Poisson flow generative models", "generative modeling"],
        "https://github.com/Newbeeer/pfgmpp",
        None,
    ),
    "Grokking as the Transition": (
        "2310.06110",
        ["Tanishq Kumar", "Blake Bordelon", "Samuel J. Gershman", "Cengiz Pehlevan"],
        31,
        5,
        ["grokking", "lazy training", "feature learning", "training dynamics"],
        None,
        None,
    ),
    "Chaos as an interpretable benchmark": (
        "2110.05266",
        ["William Gilpin"],
        8,
        1,
        ["chaotic systems", "time series forecasting", "benchmark"],
        "williamgilpin/dysts",
        None,
    ),
    "Provable Scaling Laws of Feature Emergence": (
        "2509.21519",
        ["Yuandong Tian"],
        12,
        2,
        ["grokking", "feature emergence", "scaling laws", "learning dynamics"],
        None,
        None,
    ),
    "A Heat Diffusion Perspective": (
        "2305.19043",
        [
            "Guillaume Huguet",
            "Alexander Tong",
            "Edward De Brouwer",
            "Yanlei Zhang",
            "Guy Wolf",
            "Ian Adelstein",
            "Smita Krishnaswamy",
        ],
        3,
        0,
        ["manifold learning", "heat diffusion", "dimensionality reduction"],
        None,
        None,
    ),
    "Intrinsic Dimensionality Explains": (
        "2012.13255",
        ["Armen Aghajanyan", "Luke Zettlemoyer", "Sonal Gupta"],
        1,
        0,
        ["intrinsic dimension", "fine-tuning", "language models"],
        None,
        None,
    ),
    "Scaling Laws for Adversarial Attacks": (
        "2312.02780",
        ["Stanislav Fort"],
        10,
        2,
        ["adversarial attacks", "language models", "activations", "scaling laws"],
        None,
        None,
    ),
    "Physics-informed Reduced Order Modeling": (
        "2505.14595",
        ["Nima Hosseini Dashtbayaz", "Hesam Salehipour", "Adrian Butscher", "Nigel Morris"],
        2,
        0,
        ["reduced order modeling", "differentiable solvers", "physics-informed"],
        None,
        None,
    ),
    "Principled Approaches for Extending Neural Architectures": (
        "2506.10973",
        [
            "Julius Berner",
            "Miguel Liu-Schiaffini",
            "Jean Kossaifi",
            "Valentin Duruisseaux",
            "Boris Bonev",
            "Kamyar Azizzadenesheli",
            "Anima Anandkumar",
        ],
        14,
        2,
        ["neural operators", "function spaces", "operator learning"],
        "neuraloperator/neuraloperator",
        "https://neuraloperator.github.io",
    ),
    "Contributions to Robust and Efficient Methods": (
        "2509.07012",
        ["Kai Yang"],
        0,
        0,
        ["high-dimensional data", "robust statistics"],
        None,
        None,
    ),
    "The Effect of Intrinsic Dataset Properties": (
        "2401.08865",
        ["Nicholas Konz", "Maciej A. Mazurowski"],
        5,
        1,
        ["intrinsic dimension", "medical imaging", "generalization"],
        None,
        None,
    ),
    "Magnitude Invariant Parametrizations": (
        "2304.07645",
        ["Jose Javier Gonzalez Ortiz", "John Guttag", "Adrian Dalca"],
        3,
        0,
        ["hypernetworks", "parametrization", "optimization"],
        None,
        None,
    ),
    "Achieving Sample and Computational Efficient": (
        "2306.12981",
        ["Yining Li", "Peizhong Ju", "Ness B. Shroff"],
        1,
        0,
        ["reinforcement learning", "action space reduction", "sample efficiency"],
        None,
        None,
    ),
}

# A few items carry Hugging Face's generated one-line summary, as live days do.
AI_SUMMARIES = {
    "2310.06110": "Grokking arises when a network moves from lazy training dynamics to rich feature learning, "
    "shown exactly for polynomial regression with a two-layer network.",
    "2302.04265": "PFGM++ unifies diffusion models and Poisson flow generative models through an augmented "
    "dimension D, trading robustness against rigidity and improving FID on CIFAR-10 and FFHQ.",
    "2509.21519": "A mathematical framework, Li2, explains which features emerge during grokking and how "
    "scaling laws follow from gradient dynamics in two-layer networks.",
    "2312.02780": "Controlling a few activations lets an attacker dictate many subsequent tokens, with attack "
    "strength scaling linearly in the number of controlled dimensions.",
}

_ENTRY = re.compile(
    r"\n\n(?P<title>[^\n]+)\n\n(?P<abstract>[^\n]+)\n\n\s*•\s*(?P<n>\d+) authors?\n·\n"
    r"(?P<date>[A-Z][a-z]{2} \d{1,2}, \d{4})"
)


def build(seed: str) -> list[dict[str, object]]:
    """Turn the seed page into Daily Papers API items."""
    items: list[dict[str, object]] = []
    for rank, match in enumerate(_ENTRY.finditer(seed)):
        title = match["title"]
        key = next(k for k in METADATA if title.startswith(k))
        arxiv_id, authors, upvotes, comments, keywords, repo, project = METADATA[key]
        if len(authors) != int(match["n"]):
            raise SystemExit(f"{key}: page says {match['n']} authors, table has {len(authors)}")
        published = datetime.strptime(match["date"], "%b %d, %Y").strftime("%Y-%m-%dT%H:%M:%S.000Z")
        paper: dict[str, object] = {
            "id": arxiv_id,
            "authors": [
                {"_id": f"{rank:02d}{i:02d}a1b2c3d4e5f6a7b8c9d0", "name": n, "hidden": False}
                for i, n in enumerate(authors)
            ],
            "publishedAt": published,
            "submittedOnDailyAt": f"{DAY}T{6 + rank % 12:02d}:{rank * 7 % 60:02d}:00.000Z",
            "title": title,
            "summary": match["abstract"],
            "upvotes": upvotes,
            "discussionId": f"6771c0ffee{rank:02d}",
            "ai_keywords": keywords,
        }
        if arxiv_id in AI_SUMMARIES:
            paper["ai_summary"] = AI_SUMMARIES[arxiv_id]
        if repo:
            paper["githubRepo"] = repo
        if project:
            paper["projectPage"] = project
        items.append(
            {
                "paper": paper,
                "publishedAt": published,
                "title": title,
                "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png",
                "numComments": comments,
                "submittedBy": {
                    "_id": "60f1abe7544c2adfd699860c",
                    "user": "akhaliq",
                    "fullname": "AK",
                },
                "isAuthorParticipating": False,
            }
        )
    if len(items) != len(METADATA):
        raise SystemExit(f"parsed {len(items)} papers, expected {len(METADATA)}")
    return items


def main() -> None:
    """Read the seed path and write the JSON path given on the command line."""
    seed_path, out_path = (Path(a) for a in sys.argv[1:3])
    items = build("\n\n" + seed_path.read_text(encoding="utf-8"))
    out_path.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(items)} papers to {out_path}")


if __name__ == "__main__":
    main()
