"""The arXiv category taxonomy: every id a subscriber may list under ``categories``.

The ids of https://arxiv.org/category_taxonomy, shipped with the package as data, so that
``check`` can refuse a category arXiv does not have (``cs.lg``, ``cs.ML``) with a did-you-mean
instead of a subscriber silently getting no arXiv papers. arXiv adds a category every few
years; a new one goes in this list.
"""

from __future__ import annotations

import difflib

_ARCHIVES = {
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE "
    "NI OH OS PF PL RO SC SD SE SI SY",
    "econ": "EM GN TH",
    "eess": "AS IV SP SY",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA "
    "RT SG SP ST",
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an "
    "ed-ph flu-dyn gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "stat": "AP CO ME ML OT TH",
}
_UNDIVIDED = "gr-qc hep-ex hep-lat hep-ph hep-th math-ph nucl-ex nucl-th quant-ph"  # no subjects

#: Every arXiv category id, sorted.
ARXIV_CATEGORIES: tuple[str, ...] = tuple(
    sorted(
        [f"{archive}.{sub}" for archive, subs in _ARCHIVES.items() for sub in subs.split()]
        + _UNDIVIDED.split()
    )
)
_KNOWN = frozenset(ARXIV_CATEGORIES)
_BY_FOLDED = {c.casefold(): c for c in ARXIV_CATEGORIES}


def is_category(value: str) -> bool:
    """Whether ``value`` is an arXiv category id, exactly as arXiv writes it."""
    return value in _KNOWN


def closest_category(value: str) -> str | None:
    """The category ``value`` most likely means, or None: the same id in other letter case
    (``cs.lg`` → ``cs.LG``), the same subject in another archive (``cs.ML`` → ``stat.ML``), or a
    near spelling (``hep_th`` → ``hep-th``)."""
    folded = value.casefold()
    if (same := _BY_FOLDED.get(folded)) is not None:
        return same
    subject = folded.rpartition(".")[2]
    if "." in folded and (moved := [c for f, c in _BY_FOLDED.items() if f.endswith("." + subject)]):
        return moved[0]
    close = difflib.get_close_matches(value.casefold(), _BY_FOLDED, n=1, cutoff=0.75)
    return _BY_FOLDED[close[0]] if close else None
