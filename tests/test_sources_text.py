"""Cleaning upstream text: whitespace, entities once, LaTeX made readable, ids and links."""

from __future__ import annotations

import pytest

from pipeline.sources.text import (
    bare_arxiv_id,
    clean_text,
    clean_title,
    github_url,
    http_url,
    is_arxiv_id,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "Finite-Time-Path Out-of-Equilibrium $φ^3$ QFT",
            "Finite-Time-Path Out-of-Equilibrium φ³ QFT",
        ),
        (
            "$\\pi_0$: A Vision-Language-Action Flow Model",
            "π₀: A Vision-Language-Action Flow Model",
        ),
        ("Sorting in $\\mathcal{O}(n \\log n)$", "Sorting in 𝒪(n log n)"),
        ("$x_{ij}^{T}$ and $\\sum_{i=1}^{n} x_i$", "xᵢⱼᵀ and ∑ᵢ₌₁ⁿ xᵢ"),
        ("$L_{\\mathrm{max}}$ in $\\mathbb{R}^d$", "Lₘₐₓ in ℝᵈ"),
        ("$\\ell_1$ vs $\\ell_{2}$ penalties", "ℓ₁ vs ℓ₂ penalties"),
        ("$k$-NN with $\\epsilon=0.1$", "k-NN with ϵ=0.1"),
        ("An $O(1/\\sqrt{T})$ rate", "An O(1/√(T)) rate"),
        ("$x^{\\mathcal{D}}$ has no superscript glyph", "x^𝒟 has no superscript glyph"),
        ("$ \\alpha $-divergences", "α-divergences"),
        ('Schr\\"odinger bridges', "Schrödinger bridges"),
        ("\\textit{Nested \\textbf{emphasis}} and \\texttt{code}", "Nested emphasis and code"),
        ("$$E=mc^2$$ and \\(a_1\\)", "E=mc² and a₁"),
        ("GPT-4$^\\dagger$", "GPT-4†"),
    ],
)
def test_latex_in_titles_becomes_unicode(raw: str, clean: str) -> None:
    """Math and LaTeX commands in a title read as plain Unicode, sub/superscripts included."""
    assert clean_title(raw) == clean


@pytest.mark.parametrize(
    "title",
    [
        "Costs $5 and $10: pricing LLM calls",
        "100% accuracy & more on R&D tasks",
        "A plain title",
        "x^2 outside math stays as written",
    ],
)
def test_text_that_is_not_latex_is_left_alone(title: str) -> None:
    """Dollars as money, %, & and carets outside math are ordinary text."""
    assert clean_title(title) == title


@pytest.mark.parametrize(
    "raw",
    [
        "Broken $x^{$ math",
        "$\\href{one-argument-only}$ link",
        "$\\frac{1}{$ half",
        "$ \\alpha^{\\beta_{\\gamma}} $ deep",
        "$$ $$ $ $",
    ],
)
def test_odd_latex_never_crashes_nor_leaves_a_math_span(raw: str) -> None:
    """Malformed LaTeX still gives text, with no `$…$` span left that contains math."""
    cleaned = clean_title(raw)
    assert "\\" not in cleaned
    assert cleaned.count("$") < 2 or "{" not in cleaned


def test_entities_are_decoded_exactly_once() -> None:
    """`&amp;` → `&`, but `&amp;lt;` (escaped twice upstream) → `&lt;`, not `<`."""
    assert clean_text("Q&amp;A: Don&#39;t &quot;trust&quot;") == 'Q&A: Don\'t "trust"'
    assert clean_text("&amp;lt;Always&amp;gt;") == "&lt;Always&gt;"


def test_hard_wraps_and_control_characters_collapse() -> None:
    """Line breaks, tabs and control characters become single spaces; the ends are trimmed."""
    assert clean_text("  We study   the\tfinite-time-path\n\n formalism.\x1b[0m ") == (
        "We study the finite-time-path formalism. [0m"
    )
    assert clean_text(None) == ""
    assert clean_text(42) == "42"


@pytest.mark.parametrize(
    ("raw", "bare"),
    [
        ("2310.06110v2", "2310.06110"),
        ("2310.06110", "2310.06110"),
        ("arXiv:2310.06110v11", "2310.06110"),
        ("http://arxiv.org/abs/2601.00077v2", "2601.00077"),
        ("https://arxiv.org/pdf/2601.00077v1.pdf", "2601.00077"),
        ("http://arxiv.org/abs/hep-th/0101001v1", "hep-th/0101001"),
    ],
)
def test_bare_arxiv_id_drops_versions_prefixes_and_urls(raw: str, bare: str) -> None:
    """Every spelling of an arXiv id comes down to the bare id."""
    assert bare_arxiv_id(raw) == bare
    assert is_arxiv_id(bare)


def test_only_arxiv_ids_count_as_ids() -> None:
    """Ids go into URLs, so anything but an arXiv id is refused."""
    assert not is_arxiv_id("../../etc/passwd")
    assert not is_arxiv_id("2310.061")
    assert is_arxiv_id("math.AP/0601001")


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        (
            "https://github.com/Physical-Intelligence/openpi",
            "https://github.com/Physical-Intelligence/openpi",
        ),
        ("someone/qa-scaling", "https://github.com/someone/qa-scaling"),
        ("github.com/owner/repo/", "https://github.com/owner/repo"),
        ("javascript:alert(1)", None),
        ("", None),
        (None, None),
    ],
)
def test_github_repo_as_url_or_owner_repo(raw: str | None, url: str | None) -> None:
    """`githubRepo` comes as a URL or as owner/repo; anything else is dropped."""
    assert github_url(raw) == url


def test_only_http_links_survive() -> None:
    """A project page must be one http(s) URL: no javascript:, no spaces."""
    assert http_url("https://example.org/pi0") == "https://example.org/pi0"
    assert http_url("javascript:alert(1)") is None
    assert http_url("https://a.org/x https://b.org") is None
