"""Shape checks for the blind quality set, the graders' template and the graders' consensus.

The set (see RUBRIC.md): ``papers.json`` (real arXiv papers, abstracts paraphrased),
``profiles.yaml`` (subscriber files), ``profiles_intent.yaml`` (what each researcher wants, for
graders only), ``split.yaml`` (dev / heldout halves) and ``grades/<grader>.yaml`` (profile e-mail →
paper id → 0/1/2, every pair). This module checks shapes only; it never ranks anything.

    python -m tests.quality.blind.validate               # check everything, print a summary
    python -m tests.quality.blind.validate --template    # print an empty grades file to fill in
    python -m tests.quality.blind.validate --consensus   # print the graders' consensus grades
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from pipeline.models import Paper
from pipeline.subscribers import load_subscribers

HERE = Path(__file__).resolve().parent
PAPER_KEYS = {
    "abstract",
    "authors",
    "id",
    "pdf_url",
    "published",
    "source",
    "title",
    "upvotes",
    "url",
}
ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})$")
GRADES = {"0": 0, "1": 1, "2": 2}
MIN_WORDS, MAX_WORDS = 80, 200


def _yaml(path: Path) -> Any:
    """Load YAML keeping every scalar a string (so an id such as 2310.06110 is not a float)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def check_papers(root: Path = HERE) -> list[str]:
    """Problems with papers.json: keys, unique well-formed ids, dates in 2026, abstract lengths."""
    problems: list[str] = []
    raw = json.loads((root / "papers.json").read_text(encoding="utf-8"))
    ids = Counter(p.get("id") for p in raw)
    problems += [f"papers.json: id {i} appears {n} times" for i, n in ids.items() if n > 1]
    days: set[date] = set()
    for n, item in enumerate(raw):
        where = f"papers.json[{n}] {item.get('id')}"
        if set(item) != PAPER_KEYS:
            problems.append(f"{where}: keys {sorted(set(item) ^ PAPER_KEYS)} differ")
            continue
        if not ARXIV_ID.match(item["id"]):
            problems.append(f"{where}: not an arXiv id")
        paper = Paper.from_json(item)
        days.add(paper.published)
        if paper.published.year != 2026:
            problems.append(f"{where}: published {paper.published} is not in 2026")
        words = len(paper.abstract.split())
        if not MIN_WORDS <= words <= MAX_WORDS:
            problems.append(f"{where}: abstract has {words} words")
        if not paper.title.strip() or not paper.authors:
            problems.append(f"{where}: empty title or authors")
    if not 4 <= len(days) <= 6:
        problems.append(f"papers.json: {len(days)} publication days, expected 4 to 6")
    return problems


def paper_ids(root: Path = HERE) -> list[str]:
    """The papers' ids in file order."""
    return [p["id"] for p in json.loads((root / "papers.json").read_text(encoding="utf-8"))]


def profile_emails(root: Path = HERE) -> list[str]:
    """The profiles' e-mails, loaded by papermail's subscriber loader (a problem is an error)."""
    loaded = load_subscribers(root / "profiles.yaml")
    if loaded.problems:
        raise ValueError("; ".join(str(p) for p in loaded.problems))
    return [s.email for s in loaded.subscribers]


def check_profiles(root: Path = HERE) -> list[str]:
    """Problems with the profiles, their intents and the split."""
    try:
        emails = profile_emails(root)
    except ValueError as error:
        return [f"profiles.yaml: {error}"]
    problems: list[str] = []
    intents = _yaml(root / "profiles_intent.yaml") or {}
    if set(intents) != set(emails):
        problems.append(
            f"profiles_intent.yaml: missing {sorted(set(emails) - set(intents))}, "
            f"unknown {sorted(set(intents) - set(emails))}"
        )
    problems += [
        f"profiles_intent.yaml: {e}: empty description"
        for e, text in intents.items()
        if not str(text).strip()
    ]
    split = _yaml(root / "split.yaml") or {}
    if set(split) != {"dev", "heldout"}:
        problems.append(f"split.yaml: keys {sorted(split)}, expected dev and heldout")
        return problems
    listed = Counter([*split["dev"], *split["heldout"]])
    problems += [f"split.yaml: {e} listed {n} times" for e, n in listed.items() if n > 1]
    if set(listed) != set(emails):
        problems.append(
            f"split.yaml: missing {sorted(set(emails) - set(listed))}, "
            f"unknown {sorted(set(listed) - set(emails))}"
        )
    return problems


def read_grades(
    path: Path, emails: list[str], ids: list[str]
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """One grader's file: its grades and its problems (every pair must be graded 0, 1 or 2)."""
    data = _yaml(path)
    if not isinstance(data, dict):
        return {}, [f"{path.name}: expected a mapping of profile e-mail to grades"]
    problems: list[str] = []
    grades: dict[str, dict[str, int]] = {}
    problems += [f"{path.name}: unknown profile {e}" for e in sorted(set(data) - set(emails))]
    for email in emails:
        given = data.get(email)
        if not isinstance(given, dict):
            problems.append(f"{path.name}: {email}: no grades")
            continue
        problems += [
            f"{path.name}: {email}: unknown paper {i}" for i in sorted(set(given) - set(ids))
        ]
        missing = [i for i in ids if i not in given]
        if missing:
            problems.append(
                f"{path.name}: {email}: {len(missing)} papers ungraded, e.g. {missing[0]}"
            )
        bad = {i: g for i, g in given.items() if i in ids and g not in GRADES}
        problems += [
            f"{path.name}: {email}: {i}: grade {g!r} is not 0, 1 or 2" for i, g in bad.items()
        ]
        grades[email] = {i: GRADES[g] for i, g in given.items() if g in GRADES}
    return grades, problems


def grade_files(root: Path = HERE) -> list[Path]:
    """The graders' files, one per grader."""
    folder = root / "grades"
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def check_grades(root: Path = HERE) -> list[str]:
    """Problems with the graders' files (none present is not a problem)."""
    emails, ids = profile_emails(root), paper_ids(root)
    problems: list[str] = []
    for path in grade_files(root):
        problems += read_grades(path, emails, ids)[1]
    return problems


def combine(grades: list[int]) -> int:
    """The consensus of several graders: the median; between two grades, the lower one."""
    ordered = sorted(grades)
    return ordered[(len(ordered) - 1) // 2]


def consensus(root: Path = HERE) -> dict[str, dict[str, int]]:
    """Profile e-mail → paper id → consensus grade over all graders' files (all must be valid)."""
    emails, ids = profile_emails(root), paper_ids(root)
    per_grader = []
    for path in grade_files(root):
        grades, problems = read_grades(path, emails, ids)
        if problems:
            raise ValueError("; ".join(problems))
        per_grader.append(grades)
    if not per_grader:
        raise ValueError("no grades files in grades/")
    return {e: {i: combine([g[e][i] for g in per_grader]) for i in ids} for e in emails}


def template(root: Path = HERE) -> str:
    """An empty grades file listing every pair (ids quoted), for a grader to fill in."""
    raw = json.loads((root / "papers.json").read_text(encoding="utf-8"))
    titles = {p["id"]: " ".join(p["title"].split())[:70] for p in raw}
    lines = ["# grades/<your-name>.yaml: replace every null by 0, 1 or 2 (see RUBRIC.md)"]
    for email in profile_emails(root):
        lines.append(f"{email}:")
        lines += [f'  "{i}": null  # {t}' for i, t in titles.items()]
    return "\n".join(lines) + "\n"


def summary(root: Path = HERE) -> str:
    """Counts for the report: papers, profiles per half, and grade distribution when graded."""
    split = _yaml(root / "split.yaml")
    out = [
        f"papers: {len(paper_ids(root))}",
        f"profiles: {len(profile_emails(root))} "
        f"(dev {len(split['dev'])}, heldout {len(split['heldout'])})",
        f"grades files: {len(grade_files(root))}",
    ]
    if grade_files(root) and not check_grades(root):
        merged = consensus(root)
        counts = Counter(g for row in merged.values() for g in row.values())
        out.append(f"consensus grades: {dict(sorted(counts.items()))}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """Check the set (exit 1 on a problem), or print the template or the consensus."""
    if "--template" in argv:
        sys.stdout.write(template())
        return 0
    if "--consensus" in argv:
        sys.stdout.write(yaml.safe_dump(consensus(), sort_keys=False))
        return 0
    problems = check_papers() + check_profiles() + check_grades()
    for problem in problems:
        print(problem)
    print(summary())
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
