"""`check` in papermail's voice: causes before consequences, friendly spellings, the arXiv
taxonomy, bounded values and nesting, and the files a directory holds (or cannot show)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.sources.sample import SAMPLE_DAY
from pipeline.subscribers import MAX_DEPTH, load_subscribers
from tests.conftest import PapersServer, no_sleep
from tests.test_subscribers import problems_of, write


def test_a_misspelt_key_comes_before_what_it_causes_with_what_is_inside_it(
    tmp_path: Path,
) -> None:
    """`topic:` is reported first, with the problems inside its value, then the missing topic."""
    path = write(
        tmp_path,
        "a.yaml",
        """
        email: a@example.org
        topic:
          - name: X
            keywords: [the]
            wieght: -2
        max_paper: 0
        """,
    )
    assert problems_of(path) == [
        "a.yaml:2: topic: unknown key (did you mean 'topics'?)",
        "a.yaml:4: topic[0].keywords[0]: 'the' is too common a word: it would match almost "
        "every paper",
        "a.yaml:5: topic[0].wieght: unknown key (did you mean 'weight'?)",
        "a.yaml:5: topic[0].wieght: must be more than 0, got -2",
        "a.yaml:6: max_paper: unknown key (did you mean 'max_papers'?)",
        "a.yaml:6: max_paper: must be at least 1, got 0",
        "a.yaml:1: topics: needs at least one topic or one author",
    ]


def test_a_missing_field_comes_after_the_misspelling_that_explains_it(tmp_path: Path) -> None:
    """`keyword:` inside a topic: the unknown key first, then "keywords is required"."""
    path = write(
        tmp_path, "a.yaml", "email: a@example.org\ntopics:\n  - name: X\n    keyword: [x]\n"
    )
    assert problems_of(path) == [
        "a.yaml:4: topics[0].keyword: unknown key (did you mean 'keywords'?)",
        "a.yaml:3: topics[0].keywords: is required",
    ]


def test_friendly_spellings_are_read_as_meant(tmp_path: Path) -> None:
    """Capitalised weekday and frequency, one keyword or author or category as plain text."""
    path = write(
        tmp_path,
        "a.yaml",
        """
        email: a@example.org
        frequency: Weekly
        weekday: Friday
        topics:
          - name: Diffusion
            keywords: diffusion model
        authors: Ada Lovelace
        categories: cs.LG
        exclude: survey
        """,
    )
    (subscriber,) = load_subscribers(path).subscribers
    assert (subscriber.frequency, subscriber.weekday) == ("weekly", "friday")
    assert subscriber.topics[0].keywords == ("diffusion model",)
    assert subscriber.authors == ("Ada Lovelace",)
    assert subscriber.categories == ("cs.LG",)
    assert subscriber.exclude == ("survey",)


@pytest.mark.parametrize(
    ("category", "message"),
    [
        ("cs.lg", "'cs.lg' is not an arXiv category (did you mean 'cs.LG'?)"),
        ("cs.ML", "'cs.ML' is not an arXiv category (did you mean 'stat.ML'?)"),
        ("hep_th", "'hep_th' is not an arXiv category (did you mean 'hep-th'?)"),
        ("cooking", "'cooking' is not an arXiv category (see https://arxiv.org/category_taxonomy)"),
    ],
)
def test_a_category_arxiv_does_not_have_is_refused_with_a_hint(
    tmp_path: Path, category: str, message: str
) -> None:
    """Categories are checked against the arXiv taxonomy shipped with papermail."""
    path = write(
        tmp_path, "a.yaml", f"email: a@example.org\nauthors: [X]\ncategories: [{category}]\n"
    )
    assert problems_of(path) == [f"a.yaml:3: categories[0]: {message}"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("name: " + "N" * 100_000, "name: is too long: at most 200 characters"),
        (
            "topics: [{name: X, keywords: [x], weight: .inf}]",
            "topics[0].weight: expected a finite number, got inf",
        ),
        (
            "topics: [{name: X, keywords: [x], weight: 1000.0}]",
            "topics[0].weight: must be at most 100, got 1000.0",
        ),
        (
            "exclude: [a, x]",
            "exclude[0]: 'a' is too common a word: it would match almost every paper",
        ),
        ("authors: ['" + "A" * 300 + "']", "authors[0]: is too long: at most 200 characters"),
    ],
)
def test_values_are_bounded(tmp_path: Path, line: str, message: str) -> None:
    """A name that would make the message unsendable, an infinite weight, a stopword: refused."""
    path = write(
        tmp_path,
        "a.yaml",
        f"email: a@example.org\nauthors: [X]\n{line}\n".replace("authors: [X]\nauthors", "authors"),
    )
    assert [p.split(": ", 1)[1] for p in problems_of(path)] == [message]


def test_no_message_is_in_pydantic_s_voice(tmp_path: Path) -> None:
    """Every bound and type a subscriber can break is said in papermail's words."""
    path = write(
        tmp_path,
        "a.yaml",
        """
        email: a@example.org
        name: [x]
        topics: [{name: '', keywords: [], weight: 0}, {name: X, keywords: [x], weight: true}]
        max_papers: 1000
        min_upvotes: -5
        send_empty: 1
        frequency: hourly
        weekday: someday
        """,
    )
    assert problems_of(path) == [
        "a.yaml:2: name: expected text, got ['x']",
        "a.yaml:3: topics[0].name: must not be empty",
        "a.yaml:3: topics[0].keywords: must not be empty",
        "a.yaml:3: topics[0].weight: must be more than 0, got 0",
        "a.yaml:3: topics[1].weight: expected a number, got True",
        "a.yaml:4: max_papers: must be at most 100, got 1000",
        "a.yaml:5: min_upvotes: must be at least 0, got -5",
        "a.yaml:6: send_empty: expected true or false, got 1",
        "a.yaml:7: frequency: expected one of daily, weekly; got 'hourly'",
        "a.yaml:8: weekday: expected one of monday, tuesday, wednesday, thursday, friday, "
        "saturday, sunday; got 'someday'",
    ]


def test_nesting_deeper_than_a_subscriber_needs_is_that_file_s_problem(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """500 nested lists (and 100,000) make their file invalid at its line; others are served."""
    directory = env / "subs"
    directory.mkdir()
    write(directory, "good.yaml", "email: good@example.org\nauthors: [X Y]\n")
    write(directory, "deep.yaml", "email: a@example.org\ntopics: " + "[" * 500 + "]" * 500 + "\n")
    write(directory, "deeper.yaml", "email: b@example.org\nauthors: " + "[" * 100_000 + "\n")
    assert main(["check", str(directory)], sleep=no_sleep) == 65
    assert capsys.readouterr().out.splitlines() == [
        f"{directory / 'deep.yaml'}:2: topics: nested more than {MAX_DEPTH} deep",
        f"{directory / 'deeper.yaml'}:2: yaml: nested more than {MAX_DEPTH} deep",
    ]
    assert [s.email for s in load_subscribers(directory).subscribers] == ["good@example.org"]


def test_no_subscriber_found_is_exit_65_for_check_and_run(
    env: Path,
    papers_server: PapersServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An empty directory, or one with only other files: a clear line and exit 65."""
    empty = env / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a subscriber\n")
    assert main(["check", str(empty)], sleep=no_sleep) == 65
    assert capsys.readouterr().out == (
        f"{empty}: subscribers: no subscribers found "
        "(expected *.yaml or *.yml files with at least one entry)\n"
    )
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(empty))
    assert main(["run", "--dry-run", "--date", SAMPLE_DAY.isoformat()], sleep=no_sleep) == 65


def test_suffixes_count_in_any_letter_case(tmp_path: Path) -> None:
    """`ME.YAML` and `you.Yml` are subscriber files like `me.yaml`."""
    write(tmp_path, "ME.YAML", "email: me@example.org\nauthors: [X]\n")
    write(tmp_path, "you.Yml", "email: you@example.org\nauthors: [X]\n")
    loaded = load_subscribers(tmp_path)
    assert loaded.problems == ()
    assert sorted(s.email for s in loaded.subscribers) == ["me@example.org", "you@example.org"]


def test_what_is_not_a_regular_file_is_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A FIFO, a directory and a broken link named *.yaml are skipped, each with a warning; a
    link to a real file is read."""
    write(tmp_path, "real.data", "email: real@example.org\nauthors: [X]\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.data")
    (tmp_path / "broken.yaml").symlink_to(tmp_path / "nowhere")
    (tmp_path / "folder.yaml").mkdir()
    os.mkfifo(tmp_path / "pipe.yml")
    with caplog.at_level(logging.WARNING):
        loaded = load_subscribers(tmp_path)
    assert [s.email for s in loaded.subscribers] == ["real@example.org"]
    assert loaded.problems == ()
    assert sorted(r.getMessage() for r in caplog.records) == [
        f"skipping {tmp_path / 'broken.yaml'}: a broken symbolic link",
        f"skipping {tmp_path / 'folder.yaml'}: a directory",
        f"skipping {tmp_path / 'pipe.yml'}: a named pipe (FIFO)",
    ]


@contextmanager
def unprivileged() -> Iterator[None]:
    """Run the body as user `nobody` when the tests run as root (root reads any file)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's tmp_path is private to its owner)."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


def test_an_unreadable_directory_or_file_is_exit_65_not_0_valid(
    shared_dir: Path,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A directory that cannot be listed, a file that cannot be read: a problem line, exit 65."""
    locked = shared_dir / "locked"
    locked.mkdir()
    write(locked, "a.yaml", "email: a@example.org\nauthors: [X]\n")
    locked.chmod(0o311)  # enter, but not list
    mixed = shared_dir / "mixed"
    mixed.mkdir(mode=0o755)
    write(mixed, "ok.yaml", "email: ok@example.org\nauthors: [X]\n").chmod(0o644)
    write(mixed, "secret.yaml", "email: s@example.org\nauthors: [X]\n").chmod(0o200)
    monkeypatch.chdir(shared_dir)
    try:
        with unprivileged():
            assert main(["check", str(locked)], sleep=no_sleep) == 65
            assert main(["check", str(mixed)], sleep=no_sleep) == 65
    finally:
        locked.chmod(0o755)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{locked}: subscribers: cannot be read (Permission denied)",
        f"{mixed / 'secret.yaml'}: file: cannot be read (Permission denied)",
    ]


@pytest.mark.parametrize("keyword", ["+++", "[", ".*", "🚀", "\u200b"])
def test_a_keyword_without_letters_or_digits_is_refused_for_that_reason(
    tmp_path: Path, keyword: str
) -> None:
    """A pattern, an emoji or a zero-width space was refused as "too common a word": the reason
    is that it has no word to match. (``(a+)+$`` keeps its reason: its one word is "a".)"""
    path = write(
        tmp_path,
        "a.yaml",
        "email: a@example.org\ntopics:\n  - name: X\n    keywords: ["
        + json.dumps(keyword, ensure_ascii=False)
        + "]\n",
    )
    (problem,) = problems_of(path)
    assert problem.startswith("a.yaml:4: topics[0].keywords[0]: ")
    assert problem.endswith("has no letters or digits to match")
