"""Typed settings read from the environment (and an optional `.env`).

Built inside `create_app()` and the CLI rather than at import time, so every
test can point the bot at its own fake LINE host, Redis prefix and database.
Without LINE credentials the bot runs in *local mode* with a development
secret; with ``BOT_ENV=production`` it refuses to start on missing or
placeholder secrets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.paths import default_folder

#: Secret used to sign webhook bodies in local mode (documented in README; never valid on LINE).
LOCAL_DEV_SECRET = "local-development-secret"
LOCAL_DEV_TOKEN = "local-development-token"
LINE_API = "https://api.line.me"
LINE_DATA_API = "https://api-data.line.me"

_PLACEHOLDERS = {
    "",
    "changeme",
    "change-me",
    "changethis",
    "placeholder",
    "secret",
    "token",
    "xxx",
    "todo",
    "your-channel-secret",
    "your-channel-access-token",
    "your_channel_secret",
    "your_channel_access_token",
    LOCAL_DEV_SECRET,
    LOCAL_DEV_TOKEN,
}


def is_placeholder(value: str | None) -> bool:
    """True when a secret is unset or obviously a template value."""
    if value is None:
        return True
    v = value.strip().lower()
    return v in _PLACEHOLDERS or v.startswith("<") or set(v) <= {"x", "*", "-", "0"}


class ConfigurationError(RuntimeError):
    """Raised when the settings cannot run the bot safely."""


class Settings(BaseSettings):
    """Every setting the bot reads; names are the environment variables (upper-case)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_env: Literal["development", "production", "test"] = "development"
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = LINE_API
    #: LINE's data host, where rich menu images are uploaded (tests point it at the fake
    #: LINE API's ``data_url``, as LINE_API_BASE_URL at its ``base_url``).
    line_api_data_url: str = LINE_DATA_API
    redis_url: str | None = None
    redis_prefix: str = "bot"
    data_dir: Path = Path("data")
    database_url: str | None = None
    #: ./knowledge and ./intents when the working directory has them, else the copies an
    #: installed package carries (see bot/paths.py).
    knowledge_dir: Path = Field(default_factory=lambda: default_folder("knowledge"))
    intents_dir: Path = Field(default_factory=lambda: default_folder("intents"))
    admin_token: SecretStr | None = None

    log_level: str = "INFO"
    log_format: Literal["json", "text", "auto"] = "auto"

    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    dedupe_seconds: int = Field(default=86_400, ge=60)
    event_max_attempts: int = Field(default=5, ge=1)
    event_retry_seconds: float = Field(default=10.0, gt=0)
    event_lock_seconds: float = Field(default=15.0, gt=0)
    handler_timeout_seconds: float = Field(default=25.0, gt=0)
    worker_concurrency: int = Field(default=32, ge=1)
    #: ``bot serve`` and ``bot worker`` run under ``python -OO`` (no docstrings, no asserts).
    lean_bytecode: bool = True
    reply_token_max_age_seconds: float = Field(default=50.0, gt=0)
    loading_after_seconds: float = Field(default=0.8, ge=0)
    #: An answer still not ready when the reply token is this old is offered by a
    #: ``help.button_result`` quick reply (its tap brings a fresh token) instead of a paid push
    #: later.
    reply_later_after_seconds: float = Field(default=40.0, gt=0)
    line_timeout_seconds: float = Field(default=5.0, gt=0)
    line_max_attempts: int = Field(default=4, ge=1)
    line_backoff_seconds: float = Field(default=0.5, ge=0)
    dialogue_ttl_seconds: int = Field(default=1800, ge=10)
    kb_watch: bool | None = None
    kb_poll_seconds: float = Field(default=5.0, gt=0)
    #: Seconds a hand-off's messages are kept after it ends (0: deleted when it ends).
    handoff_keep_seconds: int = Field(default=7 * 86_400, ge=0)
    #: Folds of the cross-validation the console shows after an example is added.
    console_cv_folds: int = Field(default=5, ge=2, le=10)
    #: Key that signs the console's session cookies (default: derived from the channel secret).
    console_secret: SecretStr | None = None
    #: Mark the console's session cookie Secure even when no proxy says the request was HTTPS.
    console_secure_cookie: bool = False
    #: Publish this process's knowledge files at start-up when they were never published.
    #: Default: on without Redis (one process, its files are the source), off with it.
    kb_publish_on_start: bool | None = None
    #: The bot's public address (https://...): official-page buttons in chats then go
    #: through its /go/ redirect, which counts the click (insights' funnel). Unset: direct.
    public_base_url: str | None = None
    #: Cells of the insights built from fewer people than this are hidden (issue 13).
    insights_min_count: int = Field(default=10, ge=2)
    #: Bearer token of the read-only insights API (/api/v1/insights/); closed when unset.
    insights_api_token: SecretStr | None = None
    #: Days the raw insight moments are kept (the rollup keeps the counts after that).
    insights_raw_days: int = Field(default=400, ge=30)
    #: Seconds between the worker's incremental rollups.
    insights_rollup_seconds: float = Field(default=3600.0, ge=0)
    event_log_days: int = Field(default=7, ge=2)
    dead_letter_days: int = Field(default=30, ge=1)
    handoff_seconds: int = Field(default=4 * 3600, ge=60)
    unanswered_days: int = Field(default=90, ge=1)
    notify_quiet_hours: str = "21-08"
    notify_timezone: str = "Asia/Bangkok"
    notify_max_per_day: int = Field(default=1, ge=1)
    notify_rate_per_second: float = Field(default=200.0, gt=0)
    notify_concurrency: int = Field(default=8, ge=1)
    notify_interval_seconds: float = Field(default=900.0, ge=0)
    notify_stage_spread: int = Field(default=1, ge=0, le=4)

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.bot_env == "production":
            bad = [
                name
                for name, value in (
                    ("LINE_CHANNEL_SECRET", self.line_channel_secret),
                    ("LINE_CHANNEL_ACCESS_TOKEN", self.line_channel_access_token),
                    ("ADMIN_TOKEN", self.admin_token),
                )
                if is_placeholder(value.get_secret_value() if value else None)
            ]
            # Optional, but when given it must be real (a blank one keeps the API closed).
            token = (self.insights_api_token or SecretStr("")).get_secret_value()
            if token.strip() and is_placeholder(token):
                bad.append("INSIGHTS_API_TOKEN")
            if bad:
                raise ConfigurationError(
                    "BOT_ENV=production needs real values for: " + ", ".join(bad)
                )
        return self

    @property
    def local_mode(self) -> bool:
        """No LINE credentials: the webhook accepts the development secret only."""
        return self.line_channel_secret is None or self.line_channel_access_token is None

    @property
    def channel_secret(self) -> str:
        """The secret webhook signatures are checked against."""
        if self.line_channel_secret is None:
            return LOCAL_DEV_SECRET
        return self.line_channel_secret.get_secret_value()

    @property
    def access_token(self) -> str:
        """The channel access token sent to LINE (a dummy one in local mode)."""
        if self.line_channel_access_token is None:
            return LOCAL_DEV_TOKEN
        return self.line_channel_access_token.get_secret_value()

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with an async driver; default a SQLite file under DATA_DIR."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'bot.db'}"
        return to_async_url(url)

    @property
    def uses_sqlite(self) -> bool:
        """The embedded default: migrations run at start-up instead of a release step."""
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def kb_watch_enabled(self) -> bool:
        """Reload knowledge when files change: on in development unless KB_WATCH says otherwise."""
        if self.kb_watch is None:
            return self.bot_env == "development"
        return self.kb_watch

    @property
    def kb_publish_on_start_enabled(self) -> bool:
        """See ``kb_publish_on_start``."""
        if self.kb_publish_on_start is None:
            return self.redis_url is None
        return self.kb_publish_on_start

    @property
    def json_logs(self) -> bool:
        """JSON log lines in production unless told otherwise."""
        if self.log_format == "auto":
            return self.bot_env == "production"
        return self.log_format == "json"


def to_async_url(url: str) -> str:
    """Map the usual DATABASE_URL spellings onto SQLAlchemy's async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def to_sync_url(url: str) -> str:
    """The same database through a synchronous driver (Alembic runs synchronously)."""
    return url.replace("sqlite+aiosqlite://", "sqlite://")
