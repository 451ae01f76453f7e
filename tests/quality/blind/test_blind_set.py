"""The blind quality set keeps its shape: the real files pass, and broken copies are caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.quality.blind import validate

FILES = ("papers.json", "profiles.yaml", "profiles_intent.yaml", "split.yaml")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the set without grades, to break on purpose."""
    for name in FILES:
        shutil.copy(validate.HERE / name, tmp_path / name)
    return tmp_path


def _write_grades(root: Path, name: str, grade: int, skip: int = 0) -> None:
    """A grader's file giving every pair the same grade, leaving out the first `skip` papers."""
    ids = validate.paper_ids(root)[skip:]
    data = {e: dict.fromkeys(ids, grade) for e in validate.profile_emails(root)}
    (root / "grades").mkdir(exist_ok=True)
    (root / "grades" / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def test_the_committed_set_is_well_formed() -> None:
    assert validate.check_papers() == []
    assert validate.check_profiles() == []
    assert validate.check_grades() == []
    assert len(validate.paper_ids()) >= 200
    assert len(validate.profile_emails()) >= 15


def test_a_repeated_id_and_a_short_abstract_are_caught(copy: Path) -> None:
    papers = json.loads((copy / "papers.json").read_text(encoding="utf-8"))
    papers[1]["id"] = papers[0]["id"]
    papers[2]["abstract"] = "Too short."
    (copy / "papers.json").write_text(json.dumps(papers), encoding="utf-8")
    problems = validate.check_papers(copy)
    assert any("appears 2 times" in p for p in problems)
    assert any("abstract has 2 words" in p for p in problems)


def test_a_profile_missing_from_the_split_or_listed_twice_is_caught(copy: Path) -> None:
    split = yaml.safe_load((copy / "split.yaml").read_text(encoding="utf-8"))
    dropped = split["dev"].pop()
    split["heldout"].append(split["heldout"][0])
    (copy / "split.yaml").write_text(yaml.safe_dump(split), encoding="utf-8")
    problems = validate.check_profiles(copy)
    assert any(dropped in p and "missing" in p for p in problems)
    assert any("listed 2 times" in p for p in problems)


def test_grades_must_cover_every_pair_with_0_1_or_2(copy: Path) -> None:
    _write_grades(copy, "ada", 1)
    assert validate.check_grades(copy) == []
    _write_grades(copy, "bob", 1, skip=1)
    _write_grades(copy, "cy", 3)
    problems = validate.check_grades(copy)
    assert any(p.startswith("bob.yaml") and "1 papers ungraded" in p for p in problems)
    assert any(p.startswith("cy.yaml") and "is not 0, 1 or 2" in p for p in problems)


def test_an_unquoted_id_stays_a_string(copy: Path) -> None:
    email = validate.profile_emails(copy)[0]
    paper = next(i for i in validate.paper_ids(copy) if i.endswith("0"))
    (copy / "grades").mkdir()
    (copy / "grades" / "ada.yaml").write_text(f"{email}:\n  {paper}: 2\n", encoding="utf-8")
    grades, _ = validate.read_grades(
        copy / "grades" / "ada.yaml", validate.profile_emails(copy), validate.paper_ids(copy)
    )
    assert grades[email] == {paper: 2}


def test_consensus_is_the_median_and_the_lower_middle_between_two() -> None:
    assert validate.combine([0, 2, 2]) == 2
    assert validate.combine([0, 1, 2]) == 1
    assert validate.combine([1, 2]) == 1
    assert validate.combine([2]) == 2


def test_the_template_lists_every_pair_and_loads_back(copy: Path) -> None:
    data = yaml.safe_load(validate.template(copy))
    ids = validate.paper_ids(copy)
    assert list(data) == validate.profile_emails(copy)
    assert all(list(row) == ids for row in data.values())
