"""Subscriber files: strict validation, every problem as file:line: field: message, all at once."""

from __future__ import annotations

import gc
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.bundled import EXAMPLE_SUBSCRIBERS
from pipeline.cli import main
from pipeline.errors import SettingsError
from pipeline.subscribers import _compose, _plain, load_subscribers
from tests.conftest import SUBSCRIBERS, PapersServer, SmtpServer, no_sleep


def write(directory: Path, name: str, text: str) -> Path:
    """Write a subscriber file (dedented) and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """Every problem ``path`` has, as printed, with the directory left out."""
    found = load_subscribers(path).problems
    return [str(p).replace(f"{path.parent if path.is_file() else path}/", "") for p in found]


def test_the_example_subscribers_are_valid() -> None:
    """The shipped examples load without a problem, with Alan paused."""
    loaded = load_subscribers(EXAMPLE_SUBSCRIBERS)
    assert loaded.problems == ()
    by_email = {s.email: s for s in loaded.subscribers}
    assert set(by_email) == {"ada@example.org", "grace@example.org", "alan@example.org"}
    assert by_email["alan@example.org"].paused


def test_an_unknown_key_is_reported_with_a_did_you_mean_hint(tmp_path: Path) -> None:
    """Misspelt keys, at the top and inside a topic, name the key meant, on their own lines."""
    path = write(
        tmp_path,
        "a.yaml",
        """
        email: a@example.org
        topics:
          - name: X
            keywords: [x]
            wieght: 2
        max_paper: 3
        colour: blue
        """,
    )
    assert problems_of(path) == [
        "a.yaml:5: topics[0].wieght: unknown key (did you mean 'weight'?)",
        "a.yaml:6: max_paper: unknown key (did you mean 'max_papers'?)",
        "a.yaml:7: colour: unknown key; known: email, name, topics, authors, categories, "
        "exclude, max_papers, min_upvotes, send_empty, frequency, weekday, paused, like",
    ]


def test_wrong_types_are_each_reported_on_their_line(tmp_path: Path) -> None:
    """A string for a list, text for a number, a quoted yes for a boolean: all at once."""
    path = write(
        tmp_path,
        "b.yaml",
        """
        email: b@example.org
        topics:
          - name: X
            keywords: 42
            weight: heavy
        max_papers: ten
        paused: "yes"
        authors: {first: C., last: Pehlevan}
        min_upvotes: -1
        """,
    )
    assert problems_of(path) == [
        "b.yaml:4: topics[0].keywords: expected a list, e.g. [a, b], got 42",
        "b.yaml:5: topics[0].weight: expected a number, got 'heavy'",
        "b.yaml:6: max_papers: expected a whole number, got 'ten'",
        "b.yaml:7: paused: expected true or false, got 'yes'",
        "b.yaml:8: authors: expected a list, e.g. [a, b], got {'first': 'C.', 'last': 'Pehlevan'}",
        "b.yaml:9: min_upvotes: must be at least 0, got -1",
    ]


def test_an_invalid_email_address_is_reported(tmp_path: Path) -> None:
    """An address without an @ is named as such."""
    path = write(tmp_path, "c.yaml", "name: C\nemail: not-an-address\nauthors: [X Y]\n")
    (problem,) = problems_of(path)
    assert problem.startswith("c.yaml:2: email: not a valid e-mail address")


def test_the_same_email_in_two_files_is_reported_and_the_first_kept(tmp_path: Path) -> None:
    """A second file with the same address (in another case) is a problem naming the first."""
    write(tmp_path, "a.yaml", "email: same@example.org\nauthors: [X Y]\n")
    write(tmp_path, "b.yaml", "name: Again\nemail: Same@Example.org\nauthors: [X Y]\n")
    loaded = load_subscribers(tmp_path)
    assert [s.source_file for s in loaded.subscribers] == [tmp_path / "a.yaml"]
    (problem,) = loaded.problems
    assert str(problem) == (
        f"{tmp_path / 'b.yaml'}:1: email: Same@example.org is also in {tmp_path / 'a.yaml'}"
    )


def test_a_subscriber_needs_a_topic_or_an_author(tmp_path: Path) -> None:
    """Neither topics nor authors (or both empty) is a problem at the subscriber's line."""
    path = write(tmp_path, "e.yaml", "email: e@example.org\nname: Nobody\n")
    assert problems_of(path) == ["e.yaml:1: topics: needs at least one topic or one author"]
    path = write(tmp_path, "f.yaml", "email: f@example.org\ntopics: []\nauthors: []\n")
    assert problems_of(path) == ["f.yaml:2: topics: needs at least one topic or one author"]


def test_weekly_needs_a_weekday(tmp_path: Path) -> None:
    """frequency: weekly without a weekday is reported at the frequency line; a bad day too."""
    path = write(tmp_path, "w.yaml", "email: w@example.org\nauthors: [X Y]\nfrequency: weekly\n")
    assert problems_of(path) == [
        "w.yaml:3: weekday: frequency: weekly needs a weekday (monday … sunday)"
    ]
    path = write(
        tmp_path,
        "v.yaml",
        "email: v@example.org\nauthors: [X Y]\nfrequency: weekly\nweekday: funday\n",
    )
    assert problems_of(path) == [
        "v.yaml:4: weekday: expected one of monday, tuesday, wednesday, thursday, friday, "
        "saturday, sunday; got 'funday'"
    ]


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    """An unclosed flow list is reported where the parser noticed it."""
    path = write(
        tmp_path,
        "g.yaml",
        """
        email: g@example.org
        topics:
          - name: X
            keywords: [x, y
        authors: ["X Y"]
        """,
    )
    assert problems_of(path) == ["g.yaml:5: yaml: expected ',' or ']', but got ':'"]


def test_an_empty_file_is_reported(tmp_path: Path) -> None:
    """An empty file (or one of only comments) is a problem, not a silent skip."""
    path = write(tmp_path, "h.yaml", "# nothing yet\n")
    assert problems_of(path) == ["h.yaml:1: file: is empty; expected a subscriber or a list"]


def test_in_a_list_the_good_entry_survives_the_bad_one(tmp_path: Path) -> None:
    """One bad entry of a list is reported at its lines; the good one beside it is served."""
    path = write(
        tmp_path,
        "i.yaml",
        """
        - email: bad@example.org
          topics:
            - name: Empty
              keywords: []
          frequency: sometimes
        - email: good@example.org
          topics:
            - name: Good
              keywords: [grokking]
        """,
    )
    loaded = load_subscribers(path)
    assert [s.email for s in loaded.subscribers] == ["good@example.org"]
    assert loaded.rejected == 1, "two problems, one rejected subscriber"
    assert problems_of(path) == [
        "i.yaml:4: topics[0].keywords: must not be empty",
        "i.yaml:5: frequency: expected one of daily, weekly; got 'sometimes'",
    ]


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    """A Python tag is refused, an alias bomb is stopped, a repeated key is reported."""
    tag = write(tmp_path, "t.yaml", "email: !!python/object/apply:os.system [x]\n")
    assert problems_of(tag)[0].startswith("t.yaml:1: yaml: could not determine a constructor")
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    bomb = write(tmp_path, "k.yaml", "\n".join([*levels, "email: k@example.org"]) + "\n")
    assert problems_of(bomb) == ["k.yaml:1: subscriber: more than 10000 values"]
    repeated = write(
        tmp_path, "l.yaml", "email: l@example.org\nemail: m@example.org\nauthors: [X Y]\n"
    )
    assert problems_of(repeated) == ["l.yaml:2: email: duplicate key"]


def test_a_bad_tagged_value_or_a_list_as_a_key_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """``!!int "x"`` and a list used as a key name their file and line; the good file survives."""
    good = "topics:\n  - name: X\n    keywords: [x]\n"
    write(tmp_path, "a.yaml", "email: a@example.org\n" + good + 'max_papers: !!int "x"\n')
    write(tmp_path, "b.yaml", "email: b@example.org\n" + good + "? [a, b]\n: 1\n")
    write(tmp_path, "c.yaml", "email: c@example.org\n" + good)
    assert problems_of(tmp_path) == [
        "a.yaml:5: yaml: 'x' is not a valid int",
        "b.yaml:5: yaml: a key must be a name, not a list or mapping",
    ]
    assert [s.email for s in load_subscribers(tmp_path).subscribers] == ["c@example.org"]


def test_quoted_scalars_stay_text_and_plain_ones_are_typed(tmp_path: Path) -> None:
    """A quoted 123 is a name; a plain yes is true and 0x0A is ten; a quoted yes or 5 is text."""
    good = write(
        tmp_path,
        "q.yaml",
        """
        email: q@example.org
        name: "123"
        authors: ['no']
        paused: yes
        max_papers: 0x0A
        """,
    )
    (subscriber,) = load_subscribers(good).subscribers
    assert (subscriber.name, subscriber.authors) == ("123", ("no",))
    assert (subscriber.paused, subscriber.max_papers) == (True, 10)
    bad = write(
        tmp_path,
        "r.yaml",
        "email: r@example.org\nauthors: [X, no]\nmax_papers: '5'\nsend_empty: \"true\"\n",
    )
    assert problems_of(bad) == [
        "r.yaml:2: authors[1]: expected text, got False",
        "r.yaml:3: max_papers: expected a whole number, got '5'",
        "r.yaml:4: send_empty: expected true or false, got 'true'",
    ]


SCALARS = """
quoted: ["10", '1.5', "yes", 'null', "~", "2026-01-01", ""]
ints: [10, -3, 0x1F, 017, 0b101, 1_000, 1:30]
floats: [1.5, 1.0e+3, -.inf, 190:20:30.15, 1.]
text: [1e3, yesno, nulll, a:b, 10 km, 0x, "]"]
bools: [yes, Yes, NO, on, Off, true, FALSE]
nulls: [null, Null, ~, ""]
empty:
times: [2026-01-01, 2026-01-01 10:00:00, 2026-01-01T10:00:00Z]
tagged: [!!str 12, ! 12, !!binary aGVsbG8=, !!float 3, !!int "7", !!bool "on", !!null ""]
literal: |
  two
  lines
folded: >
  folded
  text
"""


def typed(value: object) -> object:
    """``value`` with the type of every scalar beside it (1, 1.0 and True are equal otherwise)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value), value)


def test_scalars_are_the_values_the_safe_loader_gives() -> None:
    """Every kind of scalar (quoted, plain, tagged, a repeat served from the resolver's cache)
    has the same value and type as libyaml's own safe loader gives it."""
    expected = yaml.load(SCALARS, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for _ in range(2):
        node = _compose(SCALARS)
        assert isinstance(node, yaml.MappingNode)
        data, _lines, duplicates = _plain(node)
        assert typed(data) == typed(expected)
        assert duplicates == []


def test_loading_leaves_the_garbage_collector_as_it_was(tmp_path: Path) -> None:
    """The collector is held off only while loading: on again after, still off if it was."""
    write(tmp_path, "a.yaml", "email: a@example.org\nauthors: [X Y]\n")
    write(tmp_path, "b.yaml", "email: [nope\n")
    assert gc.isenabled()
    load_subscribers(tmp_path)
    assert gc.isenabled()
    gc.disable()
    try:
        load_subscribers(tmp_path)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_missing_path_is_a_settings_error(tmp_path: Path) -> None:
    """A subscribers path that does not exist stops everything (exit 78), naming the path."""
    with pytest.raises(SettingsError, match="subscribers path not found"):
        load_subscribers(tmp_path / "nope")


def test_check_exits_0_only_when_every_file_is_valid(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """papermail check: exit 0 on the examples; 65 with every problem listed on a broken dir."""
    assert main(["check"], sleep=no_sleep) == 0
    assert "3 valid subscriber(s)" in capsys.readouterr().err
    broken = env / "broken"
    broken.mkdir()
    write(broken, "good.yaml", "email: good@example.org\nauthors: [X Y]\n")
    write(broken, "bad.yaml", "email: nope\nauthors: 7\nmax_paper: 3\n")
    write(broken, "empty.yml", "")
    assert main(["check", str(broken)], sleep=no_sleep) == 65
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{broken / 'bad.yaml'}:1: email: not a valid e-mail address: "
        "An email address must have an @-sign.",
        f"{broken / 'bad.yaml'}:2: authors: expected a list, e.g. [a, b], got 7",
        f"{broken / 'bad.yaml'}:3: max_paper: unknown key (did you mean 'max_papers'?)",
        f"{broken / 'empty.yml'}:1: file: is empty; expected a subscriber or a list",
    ]
    assert "4 problem(s); 1 valid subscriber(s)" in captured.err


def test_run_serves_every_valid_subscriber_when_another_file_is_invalid(
    env: Path,
    papers_server: PapersServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A broken file beside the examples: Ada and Grace still get their digests; exit 65."""
    directory = env / "subscribers"
    shutil.copytree(SUBSCRIBERS, directory)
    write(directory, "broken.yaml", "email: broken@example.org\ntopics: grokking\n")
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(directory))
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("PAPERMAIL_SMTP_SECURITY", "none")
    assert main(["run", "--date", "2026-01-01"], sleep=no_sleep) == 65
    captured = capsys.readouterr()
    assert "sent                         2" in captured.out
    assert "invalid subscribers          1" in captured.out
    assert f"{directory / 'broken.yaml'}:2: topics: expected a list" in captured.err
    recipients = sorted(r for rcpts, _ in smtp_server.inbox.messages for r in rcpts)
    assert recipients == ["ada@example.org", "grace@example.org"]


def test_example_papers_are_arxiv_ids_as_written(tmp_path: Path) -> None:
    """``like``: ids kept as written (2310.06110 is not the number 2310.0611), a version dropped,
    old-style ids accepted; anything else is a problem naming the item."""
    path = write(
        tmp_path,
        "a.yaml",
        """
        email: a@example.org
        topics: [{name: X, keywords: [x]}]
        like: [2310.06110, 2401.01234v2, hep-th/9901001]
        """,
    )
    (sub,) = load_subscribers(path).subscribers
    assert sub.like == ("2310.06110", "2401.01234", "hep-th/9901001")
    bad = write(
        tmp_path,
        "b.yaml",
        """
        email: b@example.org
        topics: [{name: X, keywords: [x]}]
        like: [2310.06110, grokking]
        """,
    )
    assert problems_of(bad) == [
        "b.yaml:3: like[1]: expected an arXiv id, e.g. 2310.06110, got 'grokking'"
    ]
