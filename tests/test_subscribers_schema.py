"""`papermail schema`: the JSON Schema editors validate with agrees with `check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline.cli import main
from pipeline.subscribers import load_subscribers, subscriber_schema
from tests.conftest import SUBSCRIBERS, no_sleep

VALIDATOR = jsonschema.Draft202012Validator(subscriber_schema())

#: Files `check` accepts; the schema must accept them too.
ACCEPTED = [
    "email: a@example.org\nauthors: [Ada Lovelace]\n",
    "email: a@example.org\nfrequency: Weekly\nweekday: FRIDAY\nauthors: Ada Lovelace\n",
    "email: a@example.org\ntopics: [{name: D, keywords: diffusion model, weight: 2}]\n",
    "- email: a@example.org\n  authors: [X]\n  categories: cs.LG\n"
    "- email: b@example.org\n  topics: [{name: D, keywords: [x]}]\n  categories: [hep-th]\n",
]

#: Files `check` refuses; the schema must refuse them too.
REFUSED = [
    "email: a@example.org\n",  # neither topics nor authors
    "email: a@example.org\ntopic: [{name: D, keywords: [x]}]\n",  # a misspelt key
    "email: a@example.org\nauthors: [X]\nmax_papers: 0\n",
    "email: a@example.org\nauthors: [X]\nmin_upvotes: -1\n",
    "email: a@example.org\nauthors: [X]\nfrequency: weekly\n",  # no weekday
    "email: a@example.org\nauthors: [X]\nweekday: someday\n",
    "email: a@example.org\nauthors: [X]\ncategories: [cs.lg]\n",
    "email: a@example.org\nauthors: [X]\nname: " + "N" * 201 + "\n",
    "email: a@example.org\ntopics: [{name: D, keywords: []}]\n",
    "email: a@example.org\ntopics: [{name: D, keywords: [x], weight: 0}]\n",
    "email: a@example.org\ntopics: [{name: D, keywords: [x], wieght: 2}]\n",
    "email: a@example.org\nauthors: [X]\npaused: 'yes'\n",
    "authors: [X]\n",  # no email
    "[]\n",
]


def schema_accepts(data: Any) -> bool:
    """Whether the schema finds nothing wrong with ``data``."""
    return not list(VALIDATOR.iter_errors(data))


def check_accepts(tmp_path: Path, text: str) -> bool:
    """Whether `check` finds nothing wrong with ``text`` as a subscriber file."""
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return load_subscribers(path).problems == ()


def test_the_schema_is_a_valid_json_schema() -> None:
    """Draft 2020-12, as editors' YAML language servers read it."""
    jsonschema.Draft202012Validator.check_schema(subscriber_schema())


@pytest.mark.parametrize("path", sorted(SUBSCRIBERS.glob("*.yaml")), ids=str)
def test_the_examples_pass_both(path: Path) -> None:
    """Every shipped example passes `check` and the schema."""
    assert load_subscribers(path).problems == ()
    assert schema_accepts(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("text", ACCEPTED)
def test_what_check_accepts_the_schema_accepts(tmp_path: Path, text: str) -> None:
    """Friendly spellings (Friday, one keyword as text) are valid for both."""
    assert check_accepts(tmp_path, text)
    assert schema_accepts(yaml.safe_load(text))


@pytest.mark.parametrize("text", REFUSED)
def test_what_check_refuses_the_schema_refuses(tmp_path: Path, text: str) -> None:
    """Missing, misspelt, out-of-range and unknown values are errors for both."""
    assert not check_accepts(tmp_path, text)
    assert not schema_accepts(yaml.safe_load(text))


def test_papermail_schema_prints_it(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`papermail schema` prints the schema as JSON on stdout, exit 0."""
    assert main(["schema"], sleep=no_sleep) == 0
    assert json.loads(capsys.readouterr().out) == subscriber_schema()
