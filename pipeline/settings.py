"""Settings from ``PAPERMAIL_*`` environment variables and ``.env`` (pydantic-settings).

Built once by the CLI and passed down explicitly; no module reads the environment on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import SettingsError

ENV_PREFIX = "PAPERMAIL_"
SmtpSecurity = Literal["ssl", "starttls", "none"]

#: The templates that ship with the checkout (``templates/`` beside ``pipeline/``).
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Settings(BaseSettings):
    """Every setting of SPEC.md, typed; see the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
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
    smtp_concurrency: int = Field(default=4, ge=1, le=64)
    smtp_rate: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    http_timeout: float = Field(default=30.0, gt=0)
    smtp_timeout: float = Field(default=60.0, gt=0)
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    semantic: bool = True  # PAPERMAIL_SEMANTIC=off: rank by keywords alone
    embedding_model: Path | None = None  # a local model folder instead of the pinned download

    @model_validator(mode="after")
    def _derive_security(self) -> Settings:
        """SPEC: without an explicit value, the port decides (465 ssl, 587 starttls, else none)."""
        if self.smtp_security is None:
            derived: SmtpSecurity = {465: "ssl", 587: "starttls"}.get(self.smtp_port, "none")  # type: ignore[assignment]
            object.__setattr__(self, "smtp_security", derived)
        if self.unsubscribe_url and "{email}" not in self.unsubscribe_url:
            raise ValueError("PAPERMAIL_UNSUBSCRIBE_URL must contain {email}")
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
    def security(self) -> SmtpSecurity:
        """The effective SMTP security mode (never None after validation)."""
        return self.smtp_security or "none"


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one message per bad variable.

    The message names the environment variable and what is wrong, never the value of a secret.
    """
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
