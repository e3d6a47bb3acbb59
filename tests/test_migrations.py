"""`bot db upgrade` creates the schema on SQLite and PostgreSQL, repeatably."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from bot.settings import Settings
from bot.storage.migrate import alembic_config, current
from bot.storage.tables import metadata as schema
from tests.helpers import environment, run_bot


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_on_a_fresh_sqlite_file_twice(tmp_path: Path) -> None:
    env = environment("REDIS_", "DATABASE_", DATABASE_URL=f"sqlite:///{tmp_path}/fresh.db")
    for _ in range(2):
        result = run_bot("db", "upgrade", env=env)
        assert result.returncode == 0, result.stderr
    assert set(schema.tables) <= _tables(f"sqlite:///{tmp_path}/fresh.db")


def test_postgres_is_at_the_latest_revision(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, _env_file=None)  # type: ignore[call-arg]
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    assert head is not None and current(settings) == head
    assert set(schema.tables) <= _tables(pg_url.replace("postgresql://", "postgresql+psycopg://"))


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """Every model change has its migration: autogenerate finds nothing left to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.storage.migrate import upgrade

    settings = Settings(database_url=f"sqlite:///{tmp_path}/m.db", _env_file=None)  # type: ignore[call-arg]
    upgrade(settings)
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), schema)
    finally:
        engine.dispose()
    assert diff == []
