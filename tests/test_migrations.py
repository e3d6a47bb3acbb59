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


def test_an_events_updates_touch_no_index_on_postgres(pg_url: str) -> None:
    """An answered event's row is written three times (recorded, answer stored, done): the
    two updates change only unindexed columns, so PostgreSQL makes them heap-only (HOT) and
    writes no index entry (migration 0010)."""
    import psycopg

    def counts(conn: psycopg.Connection) -> tuple[int, int]:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'event_log'::regclass"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    with psycopg.connect(pg_url, autocommit=True) as conn:
        before = counts(conn)
        conn.execute(
            "INSERT INTO event_log (webhook_event_id, chat_id, event_type, event_ts, status,"
            " attempts, created_at, updated_at)"
            " VALUES ('e-hot', 'U1', 'message', 1, 'processing', 1, now(), now())"
        )
        conn.execute(
            "UPDATE event_log SET status = 'sending', delivery = 'reply', retry_key = 'k',"
            ' outbox = \'{"messages": [{"type": "text", "text": "สวัสดีครับ"}]}\','
            " updated_at = now() WHERE webhook_event_id = 'e-hot' AND status = 'processing'"
        )
        conn.execute(
            "UPDATE event_log SET status = 'done', outbox = NULL, updated_at = now()"
            " WHERE webhook_event_id = 'e-hot' AND status = 'sending'"
        )
        after = counts(conn)
    assert after[0] - before[0] == 2
    assert after[1] - before[1] == 2  # both heap-only: no index written
