"""The README stays a newcomer's page that stands on its own, and its links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

README = REPO / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
#: Pages that other branches add to docs/ (listed in docs/README.md); once they are all merged,
#: this set is empty and every link is checked.
PENDING: set[str] = set()  # pages linked before they exist (none now)


def _relative_links(page: Path) -> list[str]:
    """The repository paths a Markdown page links to, relative to the checkout."""
    links = [m.group(1) for m in LINK.finditer(page.read_text())]
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    return [(page.parent / link).resolve().relative_to(REPO).as_posix() for link in local]


def test_the_readme_is_short() -> None:
    """At most about 15 KB: the details live in docs/."""
    assert len(README.read_bytes()) <= 15_000


def test_the_readme_refers_to_nothing_outside_the_repository() -> None:
    """No path above the checkout, no internal contract a reader cannot open."""
    text = README.read_text()
    assert "../" not in text
    assert "SPEC" not in text
    assert "shared/" not in text


def test_every_link_in_the_readme_and_docs_leads_to_a_file() -> None:
    """Relative links in README.md and docs/*.md name files that exist."""
    pages = [README, *sorted((REPO / "docs").glob("*.md"))]
    missing = {
        (page.name, target)
        for page in pages
        for target in _relative_links(page)
        if not (REPO / target).exists() and target not in PENDING
    }
    assert missing == set()


def test_the_docs_index_lists_every_page() -> None:
    """docs/README.md names every page in docs/."""
    index = (REPO / "docs" / "README.md").read_text()
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert {p for p in pages if f"]({p})" not in index} == set()
