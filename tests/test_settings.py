"""Every PAPERMAIL_* value is checked at start: exit 78 with a line naming the variable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.errors import SettingsError
from pipeline.settings import Settings, known_variables, load_settings
from tests.conftest import no_sleep

SECRET = "hunter2-very-secret"


def settings_error(capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``papermail check`` in the current environment; it must exit 78. Returns stderr."""
    assert main(["check"], sleep=no_sleep) == 78
    err = capsys.readouterr().err
    assert SECRET not in err
    return err


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo", "PAPERMAIL_FROM_ADDRESS: must be an e-mail address with a domain"),
        ("news@", "PAPERMAIL_FROM_ADDRESS: must be an e-mail address with a domain"),
        ("a@b.org, c@d.org", "PAPERMAIL_FROM_ADDRESS"),
        ("news@exa mple.org", "PAPERMAIL_FROM_ADDRESS"),
        ("news@example.org\r\nBcc: x@y.org", "PAPERMAIL_FROM_ADDRESS"),
    ],
)
def test_a_from_address_without_a_domain_exits_78(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
    expected: str,
) -> None:
    """A From that is not one address with a domain is refused at start, naming the variable."""
    monkeypatch.setenv("PAPERMAIL_FROM_ADDRESS", value)
    assert expected in settings_error(capsys)


def test_a_display_name_in_from_is_accepted(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Name <a@b.org>`` is a valid From; the bare address is what the envelope uses."""
    monkeypatch.setenv("PAPERMAIL_FROM_ADDRESS", "Lab News <news@lab.example.org>")
    settings = load_settings()
    assert settings.from_email == "news@lab.example.org"
    assert settings.from_name == "Lab News"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.org/u?e={email}", "must be an https:// URL"),
        ("javascript:alert({email})", "must be an https:// URL"),
        ("https://example.org/u", "must contain {email}"),
        ("https://e.org/u?e={email}>, <https://evil/x", "must be one URI"),
        ("https://e.org/u?e={email} https://evil/x", "must be one URI"),
        ("https:///u?e={email}", "must be an https:// URL with a host"),
    ],
)
def test_unsubscribe_url_is_one_https_uri_with_the_placeholder(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    expected: str,
) -> None:
    """Only one https URI with ``{email}`` may go into List-Unsubscribe."""
    monkeypatch.setenv("PAPERMAIL_UNSUBSCRIBE_URL", url)
    err = settings_error(capsys)
    assert f"PAPERMAIL_UNSUBSCRIBE_URL: {expected}" in err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("javascript:alert(document.domain)", "must be an https:// URL"),
        ("data:text/html,<b>x</b>", "must be one URI"),
        ("http://example.org/prefs", "must be an https:// URL"),
        ("lab.example.org/prefs", "must be an https:// URL"),
    ],
)
def test_preferences_url_is_one_https_uri(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    expected: str,
) -> None:
    """The footer links the preferences URL: only one https URI may go there."""
    monkeypatch.setenv("PAPERMAIL_PREFERENCES_URL", url)
    err = settings_error(capsys)
    assert f"PAPERMAIL_PREFERENCES_URL: {expected}" in err


@pytest.mark.parametrize(
    "name", ["PAPERMAIL_HTTP_TIMEOUT", "PAPERMAIL_SMTP_TIMEOUT", "PAPERMAIL_SMTP_RATE"]
)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1", "1e999"])
def test_timeouts_and_rate_are_finite_and_positive(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    """``inf``, ``nan``, zero and negatives are refused for every timeout and the rate."""
    monkeypatch.setenv(name, value)
    assert f"{name}: " in settings_error(capsys)


def test_a_missing_templates_folder_exits_78(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A templates folder that does not exist, or lacks a template, is a settings error."""
    monkeypatch.setenv("PAPERMAIL_TEMPLATES", "/nonexistent")
    assert "PAPERMAIL_TEMPLATES: templates folder not found: /nonexistent" in settings_error(capsys)
    (env / "half").mkdir()
    (env / "half" / "digest.mjml.j2").write_text("x", encoding="utf-8")
    monkeypatch.setenv("PAPERMAIL_TEMPLATES", str(env / "half"))
    assert "lacks digest.txt.j2" in settings_error(capsys)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAPERMAIL_SMTP_PORT", "465"),
        ("PAPERMAIL_SMTP_SECURITY", "ssl"),
        ("PAPERMAIL_SMTP_USERNAME", "me"),
        ("PAPERMAIL_SMTP_PASSWORD", SECRET),
    ],
)
def test_smtp_settings_without_a_host_exit_78(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    """SMTP settings without PAPERMAIL_SMTP_HOST would silently fill the outbox: refused."""
    monkeypatch.setenv(name, value)
    if name == "PAPERMAIL_SMTP_PASSWORD":
        monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", "me")
    err = settings_error(capsys)
    assert name in err
    assert "PAPERMAIL_SMTP_HOST is not" in err


def test_an_unknown_variable_in_the_environment_exits_78_with_a_hint(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo'd variable is named, with the setting it probably meant."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOTS", "mail.example.org")
    err = settings_error(capsys)
    assert "PAPERMAIL_SMTP_HOTS: unknown setting; did you mean PAPERMAIL_SMTP_HOST?" in err


def test_an_unknown_variable_in_dotenv_exits_78_without_its_value(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``.env`` is checked the same way, and the (possibly secret) value is never shown."""
    (env / ".env").write_text(f"PAPERMAIL_SMTP_PASWORD={SECRET}\n", encoding="utf-8")
    err = settings_error(capsys)
    assert "PAPERMAIL_SMTP_PASWORD: unknown setting; did you mean PAPERMAIL_SMTP_PASSWORD?" in err


def test_a_far_off_unknown_variable_gets_no_hint(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No made-up hint when nothing is close."""
    monkeypatch.setenv("PAPERMAIL_ZZZ", "1")
    err = settings_error(capsys)
    assert "PAPERMAIL_ZZZ: unknown setting" in err
    assert "did you mean" not in err


def test_known_names_follow_the_model_fields() -> None:
    """A field added to Settings is a known variable without any other change."""
    assert known_variables() == {"PAPERMAIL_" + f.upper() for f in Settings.model_fields}
    assert "PAPERMAIL_SMTP_HOST" in known_variables()


@pytest.mark.parametrize(
    "name",
    [
        "PAPERMAIL_SMTP_HOST",
        "PAPERMAIL_SMTP_PASSWORD",
        "PAPERMAIL_SMTP_PORT",
        "PAPERMAIL_SMTP_RATE",
        "PAPERMAIL_UNSUBSCRIBE_URL",
        "PAPERMAIL_FROM_ADDRESS",
        "PAPERMAIL_TEMPLATES",
        "PAPERMAIL_DKIM_SELECTOR",
    ],
)
def test_an_empty_value_means_unset(env: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Every variable set to the empty string behaves as if it were not set at all."""
    monkeypatch.setenv(name, "")
    assert load_settings() == load_settings(environ={})
    field = name.removeprefix("PAPERMAIL_").lower()
    assert field not in load_settings().model_fields_set


def test_an_empty_value_in_dotenv_means_unset(env: Path) -> None:
    """The same holds in ``.env``: an empty password with no host is not an SMTP setting."""
    (env / ".env").write_text("PAPERMAIL_SMTP_PASSWORD=\nPAPERMAIL_SMTP_HOST=\n", encoding="utf-8")
    settings = load_settings()
    assert settings.smtp_host is None
    assert settings.smtp_password is None


def test_a_bad_port_names_the_variable_not_the_value(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message says what is wrong with which variable, never echoing a secret."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("PAPERMAIL_SMTP_USERNAME", "me")
    monkeypatch.setenv("PAPERMAIL_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("PAPERMAIL_SMTP_PORT", SECRET)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "PAPERMAIL_SMTP_PORT" in str(error.value)
    assert SECRET not in str(error.value)


SETTING_VALUES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(
        [
            "PAPERMAIL_FROM_ADDRESS",
            "PAPERMAIL_UNSUBSCRIBE_URL",
            "PAPERMAIL_SMTP_RATE",
            "PAPERMAIL_HTTP_TIMEOUT",
            "PAPERMAIL_SMTP_PORT",
            "PAPERMAIL_SMTP_SECURITY",
            "PAPERMAIL_SMTP_PASSWORD",
            "PAPERMAIL_TEMPLATES",
            "PAPERMAIL_HF_API_URL",
            "PAPERMAIL_SMTP_HOST",
            "PAPERMAIL_OUTBOX",
            "PAPERMAIL_SUBSCRIBERS",
        ]
    ),
    value=SETTING_VALUES,
)
def test_any_value_gives_settings_or_a_clear_settings_error(name: str, value: str) -> None:
    """Whatever a variable holds: valid settings, or a SettingsError naming it, never another
    exception, and never the value itself when it is a password."""
    environ = {name: value}
    if name == "PAPERMAIL_SMTP_PASSWORD":
        environ |= {"PAPERMAIL_SMTP_HOST": "mail.example.org", "PAPERMAIL_SMTP_USERNAME": "me"}
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as empty:
        patch.chdir(empty)  # no .env
        for key in [k for k in os.environ if k.upper().startswith("PAPERMAIL_")]:
            patch.delenv(key)
        for key, text in environ.items():
            patch.setenv(key, text)
        outcome: Settings | SettingsError
        try:
            outcome = load_settings()
        except SettingsError as exc:
            outcome = exc
    if isinstance(outcome, SettingsError):
        assert name in str(outcome)
        assert not {"\n", "\r"} & set(str(outcome))  # one line, always
        if name == "PAPERMAIL_SMTP_PASSWORD" and len(value) > 3:
            assert value not in str(outcome)
        return
    if name == "PAPERMAIL_FROM_ADDRESS" and value.strip():
        assert "@" in outcome.from_email
    if name == "PAPERMAIL_UNSUBSCRIBE_URL" and outcome.unsubscribe_url:
        assert outcome.unsubscribe_url.startswith("https://")
        assert "{email}" in outcome.unsubscribe_url
    if name == "PAPERMAIL_HF_API_URL":
        assert outcome.hf_api_url.lower().startswith(("http://", "https://"))
    if name == "PAPERMAIL_SMTP_HOST" and outcome.smtp_host:
        assert not any(c.isspace() or c in "/@" for c in outcome.smtp_host)


# --- hostile values (each was an exit 1, 69 or a hang before it was checked at start) -----------


@pytest.mark.parametrize("name", ["PAPERMAIL_HF_API_URL", "PAPERMAIL_ARXIV_API_URL"])
@pytest.mark.parametrize(
    "value",
    ["not a url", "ftp://example.org/x", "file:///etc/passwd", "http://[::1", "https://"],
)
def test_a_source_url_is_http_or_https_with_a_host(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    """A source URL that could never be fetched is a settings error at start, not 69 later."""
    monkeypatch.setenv(name, value)
    assert f"{name}: " in settings_error(capsys)


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:25", "smtp://127.0.0.1", "mail.example.org\nRCPT", "mail example.org", "a" * 300],
)
def test_the_smtp_host_is_a_host_name_or_address_only(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """A port, a scheme, whitespace or an endless name in the host is refused, on one line."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", value)
    err = settings_error(capsys)
    assert "PAPERMAIL_SMTP_HOST: " in err
    assert err.count("\n") == 1
    if ":" in value:
        assert "PAPERMAIL_SMTP_PORT" in err


@pytest.mark.parametrize("value", ["127.0.0.1", "::1", "localhost", "smtp.example.org"])
def test_host_names_and_addresses_are_accepted(
    env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """The host check refuses only what cannot be a host."""
    monkeypatch.setenv("PAPERMAIL_SMTP_HOST", value)
    assert load_settings().smtp_host == value


def test_an_outbox_that_is_a_file_exits_78(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outbox path holding a file is refused at start (not five attempts then 69)."""
    (env / "afile").write_text("x", encoding="utf-8")
    monkeypatch.setenv("PAPERMAIL_OUTBOX", str(env / "afile"))
    assert "PAPERMAIL_OUTBOX: " in settings_error(capsys)


@pytest.mark.parametrize("name", ["PAPERMAIL_HTTP_TIMEOUT", "PAPERMAIL_SMTP_TIMEOUT"])
def test_timeouts_have_an_upper_bound(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """1e308 seconds overflowed the clock arithmetic (exit 1): more than an hour is refused."""
    monkeypatch.setenv(name, "1e308")
    assert f"{name}: " in settings_error(capsys)
    monkeypatch.setenv(name, "3600")
    assert main(["check"]) == 0


def test_the_rate_is_at_least_one_message_an_hour(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rate of 1e-9 messages a second held the run (and its lock) for decades after the first
    message: a rate under one message an hour is refused."""
    monkeypatch.setenv("PAPERMAIL_SMTP_RATE", "1e-9")
    assert "PAPERMAIL_SMTP_RATE: " in settings_error(capsys)
    monkeypatch.setenv("PAPERMAIL_SMTP_RATE", str(1 / 3600))
    assert main(["check"]) == 0


@pytest.mark.parametrize(
    "name",
    ["PAPERMAIL_SUBSCRIBERS", "PAPERMAIL_TEMPLATES", "PAPERMAIL_STATE_DIR", "PAPERMAIL_OUTBOX"],
)
@pytest.mark.parametrize("value", ["x" * 5000, "/tmp/" + "d/" * 2100, "sub\nscribers"])
def test_unusable_paths_exit_78_on_one_line(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    """Too long a path or name (ENAMETOOLONG was exit 1), or a control character, is refused."""
    monkeypatch.setenv(name, value)
    err = settings_error(capsys)
    assert f"{name}: " in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", ["PAPERMAIL_HF_API_URL", "PAPERMAIL_UNSUBSCRIBE_URL"])
def test_a_line_break_in_a_url_exits_78_on_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A control character in a URL is refused and never echoed."""
    monkeypatch.setenv(name, "https://example.org/{email}\nBcc: x@y.org")
    err = settings_error(capsys)
    assert f"{name}: " in err
    assert err.count("\n") == 1


def test_the_unsubscribe_placeholder_is_not_in_the_host(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``https://{email}`` would make the subscriber's address a host name."""
    monkeypatch.setenv("PAPERMAIL_UNSUBSCRIBE_URL", "https://{email}")
    assert "PAPERMAIL_UNSUBSCRIBE_URL: must not have {email} in its host" in settings_error(capsys)


def test_dotenv_that_is_not_utf8_exits_78(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid UTF-8 in .env was a UnicodeDecodeError (exit 1)."""
    (env / ".env").write_bytes(b"PAPERMAIL_FROM_ADDRESS=caf\xe9@example.org\n")
    assert ".env is not valid UTF-8" in settings_error(capsys)


def test_dotenv_that_is_a_fifo_exits_78(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO named .env hung every command; a folder is no .env either."""
    os.mkfifo(env / ".env")
    assert ".env is not a regular file" in settings_error(capsys)


def test_a_dotenv_line_that_cannot_be_parsed_exits_78_naming_the_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python-dotenv only warned and left the value unset: an unclosed quote is refused."""
    (env / ".env").write_text(
        f'# mail\nPAPERMAIL_SMTP_PASSWORD="{SECRET}\nPAPERMAIL_FROM_ADDRESS=a@b.org\n',
        encoding="utf-8",
    )
    assert ".env line 2: cannot be parsed" in settings_error(capsys)


@pytest.mark.parametrize(
    "line",
    [
        "PAPERMAIL_SMTP_HOST smtp.example.org",
        "PAPERMAIL_SMTP_HOST: smtp.example.org",
        "PAPERMAIL_SMTP_HOST",
        "export PAPERMAIL_SMTP_HOST",
    ],
)
def test_a_dotenv_line_without_equals_exits_78_naming_the_line(
    env: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    """A papermail variable written without "=" was skipped (or read as no value) and the run
    went on without it: it is refused, naming the line."""
    (env / ".env").write_text(f"# mail\nPAPERMAIL_FROM_ADDRESS=a@b.org\n{line}\n", encoding="utf-8")
    assert ".env line 3: cannot be parsed" in settings_error(capsys)


def test_a_dotenv_value_over_several_lines_is_no_line_without_equals(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quoted value may span lines, even one that starts like a variable's name: the file is
    read, and the value is judged as a value (this one is no URL)."""
    (env / ".env").write_text(
        '# mail\nPAPERMAIL_UNSUBSCRIBE_URL="https://example.org/u\nPAPERMAIL_X"\n'
        "PAPERMAIL_FROM_ADDRESS=a@b.org\n",
        encoding="utf-8",
    )
    err = settings_error(capsys)
    assert "cannot be parsed" not in err
    assert "PAPERMAIL_UNSUBSCRIBE_URL: " in err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAPERMAIL_SUBSCRIBERS", "subscribers\u2028extra"),
        ("PAPERMAIL_STATE_DIR", "state\u200b"),
        ("PAPERMAIL_OUTBOX", "out\u202ebox"),
        ("PAPERMAIL_HF_API_URL", "https://huggingface.co/api/daily\u200b_papers"),
        ("PAPERMAIL_ARXIV_API_URL", "https://export.arxiv.org\u2029/api/query"),
        ("PAPERMAIL_UNSUBSCRIBE_URL", "https://example.org/u?e={email}\ufeff"),
        ("PAPERMAIL_PREFERENCES_URL", "https://example.org/\u2060prefs"),
    ],
)
def test_paths_and_urls_with_invisible_or_line_breaking_characters_exit_78(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    """A line separator broke the one-line messages; a zero-width space or a direction override
    made a path or URL other than it looks: both are refused, naming the character."""
    monkeypatch.setenv(name, value)
    err = settings_error(capsys)
    assert f"{name}: contains an invisible or line-breaking character (U+" in err


@pytest.mark.parametrize("name", ["PAPERMAIL_HF_API_URL", "PAPERMAIL_ARXIV_API_URL"])
@pytest.mark.parametrize("userinfo", ["reader:s3cret@", "reader@", ":s3cret@"])
def test_a_source_url_with_login_details_exits_78_without_showing_them(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    userinfo: str,
) -> None:
    """Login details in a source URL showed in every warning about that source: refused."""
    monkeypatch.setenv(name, f"https://{userinfo}mirror.example.org/api")
    err = settings_error(capsys)
    assert f"{name}: must not hold a user name or password" in err
    assert "s3cret" not in err
