"""Settings from ``PAPERMAIL_*`` environment variables and ``.env`` (pydantic-settings).

Built once by the CLI and passed down explicitly; no module reads the environment on its own.
Every value is checked here, at start: an invalid value, SMTP settings without a host, or an
unknown ``PAPERMAIL_*`` variable is a ``SettingsError`` (exit 78) that names the variable and never
shows a secret. An empty value means unset, for every variable.
"""

from __future__ import annotations

import difflib
import functools
import io
import ipaddress
import math
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from dotenv import dotenv_values  # pydantic-settings' own .env reader
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline import bundled
from pipeline.errors import SettingsError
from pipeline.retention import DEFAULT_REPORT_DAYS

ENV_PREFIX = "PAPERMAIL_"
ENV_FILE = ".env"
#: A ``.env`` line that sets a variable: ``NAME=…`` or ``export NAME=…``.
_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*=")
#: A line that starts with one of papermail's names but is no assignment ("PAPERMAIL_X value",
#: "PAPERMAIL_X: value", "PAPERMAIL_X" alone): python-dotenv skips it or reads no value.
_PAPERMAIL_LINE = re.compile(r"\s*(?:export\s+)?PAPERMAIL_[A-Za-z0-9_]*\b", re.IGNORECASE)
SmtpSecurity = Literal["ssl", "starttls", "none"]

#: The templates that ship with papermail (inside the installed package, or the checkout's).
DEFAULT_TEMPLATES = bundled.TEMPLATES
#: The files a templates folder must hold (the renderer's HTML_TEMPLATE and TEXT_TEMPLATE).
TEMPLATE_FILES = ("digest.mjml.j2", "digest.txt.j2")
#: Settings that only mean something when mail goes to an SMTP server.
SMTP_ONLY = ("smtp_port", "smtp_security", "smtp_username", "smtp_password")

_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_URI_UNSAFE = re.compile(r"[\s<>,\"'\\\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Characters that draw nothing though they are not format characters: the Hangul fillers, the
#: combining grapheme joiner, Khmer's inherent vowels, the braille blank, a musical null notehead.
_BLANKS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0\U0001d159")
#: Format characters that draw a sign (the Arabic number signs and end of ayah).
_DRAWN = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd")


def _is_selector(c: str) -> bool:
    """Whether ``c`` is a variation selector (emoji's, ideographs', Mongolian's)."""
    return (
        "\ufe00" <= c <= "\ufe0f" or "\U000e0100" <= c <= "\U000e01ef" or "\u180b" <= c <= "\u180f"
    )


def _check_visible(value: str) -> None:
    """``ValueError`` naming the first character of ``value`` that breaks a line (U+2028,
    U+2029) or cannot be seen (a format character: zero-width, direction marks and overrides,
    the BOM, soft hyphen; or a blank): a path or URL holding one is not what it looks like.
    What emoji and scripts need inside a name is allowed where they need it: the zero-width
    joiners between two non-ASCII characters (a family emoji, Persian, Devanagari), variation
    selectors after one (an emoji's presentation) or in a keycap, tag characters after the black
    flag (the flags of Scotland, England, Wales)."""
    for i, c in enumerate(value):
        before = value[i - 1] if i else "a"
        after = value[i + 1] if i + 1 < len(value) else "a"
        if c in "\u200c\u200d":
            seen = not before.isascii() and not after.isascii()
        elif _is_selector(c):  # "1\ufe0f\u20e3" is the keycap emoji 1️⃣
            seen = not before.isascii() or after == "\u20e3"
        elif "\U000e0020" <= c <= "\U000e007f":
            seen = before == "\U0001f3f4" or "\U000e0020" <= before <= "\U000e007f"
        else:
            kind = unicodedata.category(c)
            seen = c in _DRAWN or not (kind in {"Zl", "Zp", "Cf"} or c in _BLANKS)
        if not seen:
            raise ValueError(f"contains an invisible or line-breaking character (U+{ord(c):04X})")


#: The longest timeout accepted: beyond an hour a number of seconds is a typo (and 1e308 overflows).
MAX_TIMEOUT = 3600.0
#: Linux's limits on a path and on one of its names (PATH_MAX, NAME_MAX).
MAX_PATH, MAX_NAME = 4096, 255
#: The longest host name DNS allows.
MAX_HOST = 253


class Settings(BaseSettings):
    """Every setting of SPEC.md, typed and checked; see docs/settings.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    hf_api_url: str = "https://huggingface.co/api/daily_papers"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    subscribers: Path = Path("subscribers")
    state_dir: Path = Path("var")
    outbox: Path = Path("outbox")
    templates: Path = DEFAULT_TEMPLATES
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: SmtpSecurity | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    from_address: str = "papermail@localhost"
    unsubscribe_url: str | None = None
    preferences_url: str | None = None  # the email's footer: where subscribers change topics
    smtp_concurrency: int = Field(default=4, ge=1, le=64)
    smtp_rate: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_attempts: int = Field(default=5, ge=1, le=20)
    http_timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    smtp_timeout: float = Field(default=60.0, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    report_days: int = Field(default=DEFAULT_REPORT_DAYS, ge=1, le=36500)
    semantic: bool = True  # PAPERMAIL_SEMANTIC=off: rank by keywords alone
    embedding_model: Path | None = None  # a local model folder instead of the pinned download

    @field_validator("from_address")
    @classmethod
    def _from_address(cls, value: str) -> str:
        """An address with a domain (``a@b.org`` or ``Name <a@b.org>``); kept as written."""
        from_address_parts(value)
        return value

    @field_validator("unsubscribe_url")
    @classmethod
    def _unsubscribe_url(cls, value: str | None) -> str | None:
        """One https URI with ``{email}``: it goes into List-Unsubscribe between ``<`` and ``>``."""
        if value is None:
            return None
        if "{email}" not in value:
            raise ValueError("must contain {email} (where the subscriber's address goes)")
        if "{email}" in urlsplit(value).netloc:
            raise ValueError("must not have {email} in its host: it goes in the path or query")
        _check_https_uri(value.replace("{email}", "x"))
        return value

    @field_validator("preferences_url")
    @classmethod
    def _preferences_url(cls, value: str | None) -> str | None:
        """One https URI: the footer links it (no ``javascript:`` or ``http:`` there either)."""
        if value is not None:
            _check_https_uri(value)
        return value

    @field_validator("hf_api_url", "arxiv_api_url")
    @classmethod
    def _source_url(cls, value: str) -> str:
        """An http or https URL with a host: anything else fails only at fetch time otherwise."""
        _check_http_url(value)
        return value

    @field_validator("smtp_host")
    @classmethod
    def _smtp_host(cls, value: str | None) -> str | None:
        """A host name or an IP address, nothing more (the port has its own setting)."""
        if value is not None:
            _check_host(value)
        return value

    @field_validator(
        "subscribers", "state_dir", "outbox", "templates", "dkim_key_file", "embedding_model"
    )
    @classmethod
    def _path(cls, value: Path | None) -> Path | None:
        """A path the system can open: no control characters, within PATH_MAX and NAME_MAX."""
        if value is not None:
            check_path(value)
        return value

    @field_validator("outbox")
    @classmethod
    def _outbox(cls, value: Path) -> Path:
        """A folder, or a path where one can be made: an existing file is refused at start."""
        try:
            is_file = value.exists() and not value.is_dir()
        except OSError:  # cannot look (permission): the commands that deliver check it then
            return value
        if is_file:
            raise ValueError(f"{value} exists and is not a folder")
        return value

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: Path) -> Path:
        """A folder holding both template files."""
        if not value.is_dir():
            raise ValueError(f"templates folder not found: {value}")
        missing = [name for name in TEMPLATE_FILES if not (value / name).is_file()]
        if missing:
            raise ValueError(f"{value} lacks {' and '.join(missing)}")
        return value

    @field_validator("smtp_rate", "http_timeout", "smtp_timeout")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        """Belt and braces beside ``allow_inf_nan``: a number of seconds or a rate is finite."""
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("smtp_rate")
    @classmethod
    def _hourly_at_least(cls, value: float | None) -> float | None:
        """At least one message an hour (the longest wait, like the timeouts'): a smaller rate
        would hold the run, and its lock, for days between two messages."""
        if value is not None and value < 1 / MAX_TIMEOUT:
            raise ValueError(f"must be at least 1/{MAX_TIMEOUT:g} (one message an hour)")
        return value

    @model_validator(mode="after")
    def _derive_security(self) -> Settings:
        """SPEC: without an explicit value, the port decides (465 ssl, 587 starttls, else none)."""
        if self.smtp_host is None:
            given = [f for f in SMTP_ONLY if f in self.model_fields_set]
            if given:
                names = ", ".join(ENV_PREFIX + f.upper() for f in given)
                raise ValueError(
                    f"{names} set but PAPERMAIL_SMTP_HOST is not: mail would silently go to the "
                    "outbox; set PAPERMAIL_SMTP_HOST, or unset these"
                )
        if self.smtp_security is None:
            derived: SmtpSecurity = {465: "ssl", 587: "starttls"}.get(self.smtp_port, "none")  # type: ignore[assignment]
            object.__setattr__(self, "smtp_security", derived)
        if self.smtp_password is not None and not self.smtp_username:
            raise ValueError("PAPERMAIL_SMTP_PASSWORD is set but PAPERMAIL_SMTP_USERNAME is not")
        dkim = (self.dkim_key_file, self.dkim_selector, self.dkim_domain)
        if any(dkim) and not all(dkim):
            raise ValueError(
                "DKIM signing needs all of PAPERMAIL_DKIM_KEY_FILE, PAPERMAIL_DKIM_SELECTOR "
                "and PAPERMAIL_DKIM_DOMAIN"
            )
        return self

    @property
    def from_email(self) -> str:
        """The bare address of ``from_address`` (envelope sender, From, Message-ID domain)."""
        return from_address_parts(self.from_address)[1]

    @property
    def from_name(self) -> str:
        """The display name written in ``from_address`` (``Name <a@b.org>``), or ``""``."""
        return from_address_parts(self.from_address)[0]

    @property
    def security(self) -> SmtpSecurity:
        """The effective SMTP security mode (never None after validation)."""
        return self.smtp_security or "none"


def _check_https_uri(value: str) -> None:
    """``ValueError`` (the setting's message) unless ``value`` is one https URI with a host."""
    _check_visible(value)
    if _URI_UNSAFE.search(value):
        raise ValueError("must be one URI: no spaces, quotes, commas, '<' or '>'")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL with a host")
    _check_no_login(parts)


def _check_no_login(parts: SplitResult) -> None:
    """``ValueError`` when a URL holds a user name or password: it would show in logs, or go to
    every subscriber in the email; the message never repeats them."""
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold a user name or password (user:password@)")


def _check_http_url(value: str) -> None:
    """``ValueError`` unless ``value`` is one http or https URL with a host (and a valid port)."""
    _check_visible(value)
    if _CONTROL.search(value) or any(c.isspace() or c in '<>"' for c in value):
        raise ValueError("must be one URL: no spaces, control characters, quotes, '<' or '>'")
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    _check_no_login(parts)
    if parts.query or parts.fragment:
        raise ValueError(
            "must not hold a query or fragment (?... #...): papermail adds its own parameters, "
            "and a token there would show in logs"
        )


def _check_host(value: str) -> None:
    """``ValueError`` unless ``value`` is a host name or an IP address, without port or scheme."""
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        raise ValueError("must be a host name or IP address: no spaces or control characters")
    if len(value) > MAX_HOST:
        raise ValueError(f"is longer than {MAX_HOST} characters: not a host name")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return
    if ":" in value or "/" in value:
        raise ValueError(
            "must be a host name or IP address only (no scheme; put the port in "
            "PAPERMAIL_SMTP_PORT)"
        )
    if not _DOMAIN.fullmatch(value):
        raise ValueError("must be a host name or IP address, e.g. smtp.example.org")


def check_path(value: Path) -> None:
    """``ValueError`` unless the system can open ``value``: no control character (it would also
    break a one-line message), at most PATH_MAX long, no name longer than NAME_MAX."""
    text = str(value)
    if _CONTROL.search(text):
        raise ValueError("contains a control character (a line break?)")
    _check_visible(text)
    if len(os.fsencode(text)) >= MAX_PATH:
        raise ValueError(f"is longer than {MAX_PATH - 1} bytes: not a usable path")
    if any(len(os.fsencode(name)) > MAX_NAME for name in value.parts):
        raise ValueError(f"has a name longer than {MAX_NAME} bytes: not a usable path")


def from_address_warning(settings: Settings) -> str | None:
    """A warning when mail goes to a real SMTP host from an address at ``localhost``: receivers
    score such a From and Message-ID domain as spam (and cannot answer it)."""
    domain = settings.from_email.rpartition("@")[2].lower()
    if settings.smtp_host and domain in ("localhost", "localhost.localdomain", ""):
        return (
            f"PAPERMAIL_FROM_ADDRESS is {settings.from_address} while sending through "
            f"{settings.smtp_host}: set an address at a real domain, or receivers may file "
            "the digests as spam"
        )
    return None


@functools.lru_cache(maxsize=64)
def from_address_parts(value: str) -> tuple[str, str]:
    """Split a From setting into (display name, address); ``ValueError`` unless it has a domain.

    Cached: every message's composing asks for the same setting's parts."""
    name, address = parseaddr(value)
    if len(getaddresses([value])) != 1:
        raise ValueError("must be one e-mail address, not a list")
    bracket = re.search(r"<([^<>]*)>\s*$", value)
    if (bracket.group(1) if bracket else value.strip()) != address:  # parseaddr mends too much
        raise ValueError("must be an e-mail address with a domain, e.g. news@example.org")
    if not address or "@" not in address or any(c in value for c in "\r\n\x00"):
        raise ValueError("must be an e-mail address with a domain, e.g. news@example.org")
    local, _, domain = address.rpartition("@")
    if not _LOCAL.fullmatch(local) or local.startswith(".") or local.endswith("."):
        raise ValueError(f"{address!r} is not a valid address (the part before @)")
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"{address!r} has no valid domain after @")
    return name, address


def known_variables() -> frozenset[str]:
    """Every ``PAPERMAIL_*`` name a setting answers to, derived from the model's fields."""
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def unknown_variables(names: Iterable[str]) -> list[str]:
    """The ``PAPERMAIL_*`` names among ``names`` that no setting answers to, each with a hint."""
    known = known_variables()
    lines = []
    for name in sorted({n.upper() for n in names if n.upper().startswith(ENV_PREFIX)}):
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{name}: unknown setting{hint}")
    return lines


def _env_file_names(path: Path) -> list[str]:
    """The variable names a ``.env`` file sets (python-dotenv's reading, as pydantic-settings').

    Refused (exit 78) before pydantic-settings reads it: a ``.env`` that is not a regular file
    (a FIFO would hang every command), is not UTF-8, or has a line python-dotenv cannot parse
    (it would only warn and leave the value silently unset), or a line naming a ``PAPERMAIL_``
    variable without ``=`` (read as no value at all).
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise SettingsError(f"{path} is not a regular file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path} is not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    values = dotenv_values(stream=io.StringIO(text))
    quote, opened = "", 0  # the quote a value opened on line ``opened`` and has not closed yet
    lines = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))  # as an editor counts them
    for number, line in enumerate(lines, start=1):
        bad, where = False, number
        if quote:  # a line of a quoted value: what follows its closing quote must be nothing
            end = _closing(line, quote)
            quote, bad = ("", not _nothing_after(line, end)) if end >= 0 else (quote, False)
            where = opened  # a statement is named by its first line
        elif (match := _ASSIGNMENT.match(line)) is not None:
            # python-dotenv skips a statement it cannot parse (with a warning)
            bad = match["name"] not in values or _invisible_in(line[: match.end()])
            rest = line[match.end() :].lstrip()
            if rest[:1] in {'"', "'"} and _closing(rest[1:], rest[0]) < 0:
                quote, opened = rest[0], number
        else:  # a papermail name without "=" (skipped, or read as no value), or one after an
            # invisible character (read as another name: the setting silently unset)
            bad = _PAPERMAIL_LINE.match(line) is not None or (
                not line.lstrip().startswith("#") and _invisible_in(line)
            )
        if bad:
            raise SettingsError(
                f"{path} line {where}: cannot be parsed (an unclosed quote, or an invisible "
                "character? write NAME=value)"
            )
    return list(values)


def _closing(text: str, quote: str) -> int:
    """Where ``text`` holds the closing ``quote`` (one no backslash escapes), or -1."""
    escaped = False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == quote:
            return i
    return -1


def _nothing_after(line: str, end: int) -> bool:
    """Whether only white space or a comment follows position ``end`` of ``line``."""
    rest = line[end + 1 :].strip()
    return not rest or rest.startswith("#")


def _invisible_in(text: str) -> bool:
    """Whether ``text`` (a name, before "=") holds a character that is not printable ASCII: a
    BOM or a zero-width character there makes python-dotenv read another name."""
    return any(not (c.isascii() and (c.isprintable() or c in " \t")) for c in text)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings, turning every problem into one line per bad variable (exit 78).

    The message names the environment variable and what is wrong, never the value of a secret.
    """
    environ = os.environ if environ is None else environ
    unknown = unknown_variables([*environ, *_env_file_names(Path(ENV_FILE))])
    if unknown:
        raise SettingsError("invalid settings: " + "; ".join(unknown))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"]
            name = ENV_PREFIX + str(loc[0]).upper() if loc else "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            lines.append(message if not loc else f"{name}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None
