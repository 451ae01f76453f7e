"""The checkout keeps the user's own subscriber files apart from the examples and the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.bundled import EXAMPLE_SUBSCRIBERS
from pipeline.cli import main
from tests.conftest import REPO, SUBSCRIBERS, no_sleep


def _ignored(path: str) -> bool:
    """Whether git ignores ``path`` (relative to the checkout)."""
    done = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path], cwd=REPO, check=False
    )
    assert done.returncode in (0, 1), f"git check-ignore failed for {path}"
    return done.returncode == 0


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout"
)
def test_personal_subscriber_files_are_ignored_and_the_examples_are_not() -> None:
    """A file such as subscribers/me.yaml cannot be committed by accident; the examples and the
    folder's README are tracked."""
    assert _ignored("subscribers/me.yaml")
    assert _ignored("subscribers/lab/list.yml")
    assert not _ignored("subscribers/README.md")
    assert not _ignored("examples/subscribers/ada.yaml")
    assert not _ignored("tests/fixtures/subscribers/ada.yaml")


def test_the_tests_read_their_own_subscribers(env: Path) -> None:
    """The test environment points at the tests' fixtures, never at subscribers/ or the examples."""
    configured = Path(os.environ["PAPERMAIL_SUBSCRIBERS"])
    assert configured == SUBSCRIBERS
    assert not configured.is_relative_to(REPO / "subscribers")
    assert not configured.is_relative_to(EXAMPLE_SUBSCRIBERS)


def test_the_demo_serves_the_examples_whatever_the_subscribers_setting(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """papermail demo mails the shipped examples into the outbox, not the user's list."""
    mine = env / "mine"
    mine.mkdir()
    (mine / "me.yaml").write_text("email: me@example.org\nauthors: [Ada Lovelace]\n")
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(mine))
    assert main(["demo"], sleep=no_sleep) == 0
    emails = sorted(p.name for p in (env / "outbox").glob("*.eml"))
    assert [e.rpartition("-")[0] for e in emails] == [
        "2026-01-01-ada_example.org",
        "2026-01-01-grace_example.org",
    ]
    assert "me@example.org" not in capsys.readouterr().out
