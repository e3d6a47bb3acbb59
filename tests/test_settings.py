"""Settings: local mode, production refusals, database URL handling."""

from __future__ import annotations

import pytest

from bot.settings import LOCAL_DEV_SECRET, ConfigurationError, Settings, to_async_url


def test_without_credentials_the_bot_runs_in_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "BOT_ENV", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.local_mode
    assert settings.channel_secret == LOCAL_DEV_SECRET
    assert settings.sqlalchemy_url.startswith("sqlite+aiosqlite:///")
    assert settings.line_api_base_url == "https://api.line.me"
    assert settings.line_api_data_url == "https://api-data.line.me"


@pytest.mark.parametrize(
    "secret",
    [None, "", "changeme", "your-channel-secret", "<channel secret>", "xxxxxxxx", LOCAL_DEV_SECRET],
)
def test_production_refuses_missing_or_placeholder_secrets(secret: str | None) -> None:
    with pytest.raises(ConfigurationError, match="LINE_CHANNEL_SECRET"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            bot_env="production",
            line_channel_secret=secret,
            line_channel_access_token="a" * 40 + "realtoken",
            admin_token="an-admin-token-of-some-length",
        )


def test_production_starts_with_real_secrets() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        bot_env="production",
        line_channel_secret="8c1f0d5e7a4b4f2c9e6d3a1b0c9d8e7f",
        line_channel_access_token="Zk3q" * 20,
        admin_token="op-7f3a9c1e5b2d4e6f",
    )
    assert not settings.local_mode and settings.json_logs


def test_cli_refuses_to_start_in_production_with_placeholders(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("BOT_ENV", "production")
    monkeypatch.setenv("LINE_CHANNEL_SECRET", "changeme")
    with pytest.raises(SystemExit) as exc:
        main(["db", "upgrade"])
    assert exc.value.code == 2
    assert "LINE_CHANNEL_SECRET" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///data/bot.db", "sqlite+aiosqlite:///data/bot.db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_urls_get_async_drivers(given: str, expected: str) -> None:
    assert to_async_url(given) == expected
