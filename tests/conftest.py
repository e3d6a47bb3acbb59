"""Shared fixtures: real Redis, real PostgreSQL, SQLite, and the fake LINE API.

With ``CI=true`` a missing Redis or PostgreSQL fails the run; elsewhere the
tests that need it are skipped with the reason. Each test gets its own Redis
key prefix and clean tables, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from sqlalchemy import create_engine, text

from bot.content.replies import Replies
from bot.kb.loader import Knowledge, load_knowledge, load_replies
from bot.nlu import IntentEngine, build_engine
from bot.settings import Settings
from bot.storage.migrate import upgrade
from bot.storage.tables import metadata as schema
from tests.fakeline import FakeLine
from tests.helpers import ROOT, ServerThread, user_id

if TYPE_CHECKING:
    from tests.conversation import Chat

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "test-channel-secret-0123456789abcdef"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable: {type(exc).__name__}: {exc}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fake_line_server() -> Iterator[FakeLine]:
    with FakeLine() as fake:
        yield fake


@pytest.fixture
def fake_line(fake_line_server: FakeLine) -> Iterator[FakeLine]:
    """The fake LINE API, emptied for this test; the test fails if LINE would reject a call.
    A quota limit or profiles a test sets are taken back after it (``reset`` keeps them), so
    no later test meets them."""
    limit, profiles = fake_line_server.quota_limit, dict(fake_line_server.profiles)
    fake_line_server.reset()
    yield fake_line_server
    fake_line_server.quota_limit = limit
    fake_line_server.profiles.clear()
    fake_line_server.profiles.update(profiles)
    assert fake_line_server.errors == [], f"requests LINE would reject: {fake_line_server.errors}"


@pytest.fixture(scope="session")
def redis_server() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_server: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_server)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """PostgreSQL with a schema of this test run's own (runs in parallel never collide)."""
    schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = PG_URL.replace("postgresql://", "postgresql+psycopg://")
    try:
        engine = create_engine(admin_url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    upgrade(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    yield url
    engine = create_engine(admin_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """PostgreSQL with every table emptied for this test."""
    engine = create_engine(pg_server.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        names = ", ".join(t.name for t in schema.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    engine.dispose()
    return pg_server


@pytest.fixture
def make_settings(fake_line: FakeLine, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a bot that talks to the fake LINE API; tests override what they need."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bot_env": "test",
            "line_channel_secret": SECRET,
            "line_channel_access_token": "test-access-token",
            "line_api_base_url": fake_line.base_url,
            "data_dir": tmp_path / "data",
            "knowledge_dir": ROOT / "knowledge",
            "intents_dir": ROOT / "intents",
            "log_level": "INFO",
            "event_retry_seconds": 1.0,
            "event_lock_seconds": 5.0,
            "handler_timeout_seconds": 4.0,
            "line_timeout_seconds": 2.0,
            "line_backoff_seconds": 0.05,
            "loading_after_seconds": 0.8,
            # No notice run at worker start (tests of notices ask for one).
            "notify_interval_seconds": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def make_shared_settings(
    make_settings: Callable[..., Settings], redis_prefix: str, pg_url: str
) -> Callable[..., Settings]:
    """``make_settings`` for the shared deployment: Redis (with this test's own key prefix)
    and PostgreSQL (emptied for this test)."""

    def build(**overrides: Any) -> Settings:
        return make_settings(
            redis_url=REDIS_URL, redis_prefix=redis_prefix, database_url=pg_url, **overrides
        )

    return build


@pytest.fixture(params=["sqlite", "postgresql"])
def each_db_settings(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> Settings:
    """The bot's settings on each database: a migrated SQLite file, an emptied PostgreSQL."""
    if request.param == "sqlite":
        built = make_settings()
        upgrade(built)
        return built
    return make_settings(database_url=request.getfixturevalue("pg_url"))


@pytest.fixture(params=["embedded", "shared"])
def mode_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    """Both deployments: SQLite without Redis, and Redis with PostgreSQL."""
    if request.param == "embedded":
        return make_settings()
    settings: Settings = request.getfixturevalue("make_shared_settings")()
    return settings


def run(coro: Any) -> Any:
    """Run a coroutine to completion from a synchronous test."""
    return asyncio.run(coro)


@pytest.fixture
def chat_bot(mode_settings: Settings) -> Iterator[ServerThread]:
    """The running bot for conversation scripts, in both deployments."""
    from tests.conversation import serving

    yield from serving(mode_settings)


@pytest.fixture
def chat(chat_bot: ServerThread, fake_line: FakeLine) -> Iterator[Callable[[str], Chat]]:
    """``chat("a")``: a conversation with the running bot as user "a"."""
    from tests.conversation import Chat

    opened: list[Chat] = []

    def open_chat(name: str) -> Chat:
        c = Chat(chat_bot, fake_line, user_id(name))
        opened.append(c)
        return c

    yield open_chat
    for c in opened:
        c.close()


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    """The shipped knowledge, as the bot loads it."""
    result = load_knowledge(ROOT / "knowledge")
    assert result.knowledge is not None, result.problems
    return result.knowledge


@pytest.fixture(scope="module")
def replies() -> Replies:
    """Every shipped reply text (tests compare with these, never with copied wording)."""
    return load_replies(ROOT / "knowledge")


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    """The shipped knowledge (with the intent folder in its version), loaded once a module."""
    result = load_knowledge(ROOT / "knowledge", also=(ROOT / "intents",))
    assert result.problems == []
    assert result.knowledge is not None
    return result.knowledge


@pytest.fixture(scope="module")
def engine(knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory) -> IntentEngine:
    """The shipped intent engine: intents and guides learned together."""
    return build_engine(ROOT / "intents", knowledge, tmp_path_factory.mktemp("nlu-cache"))


def _chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module: Debian's, through its executable path (nothing
    downloads a browser build)."""
    path = _chromium()
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing browser is a failure)", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()
