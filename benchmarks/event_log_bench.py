"""The event log's cost per event, measured in round trips of the worker's own CPU.

Every event a worker answers passes three event-log steps on the bot's database
(``bot.pipeline.event_log``): record it (with the user's visit and the hand-off check),
store the decided answer with the turn's writes (a counted route and outcome, an insight
row, which reads the person's profile), and mark it done (counting the delivery). Below
full load each step runs alone, and its CPU in the worker is mostly the database
driver's and SQLAlchemy's work per round trip, not the database's.

This script runs those steps for ``--events`` events one at a time (the idle worker's
case) on a fresh PostgreSQL database, and on a SQLite file, and prints per event:

- ``event_log.<db>.cpu_us_per_event`` and per step (``.record``, ``.sending``, ``.finish``);
- ``event_log.<db>.statements_per_event`` (SQLAlchemy's cursor executions),
  ``transactions_per_event`` (BEGIN .. COMMIT blocks and autocommitted statements) and
  ``round_trips_per_event`` (statements, plus a BEGIN and a COMMIT per transaction block);
- ``server_cpu_us_per_event``: PostgreSQL's own CPU for those events (its backends);
- ``batch_of_<B>.sending_cpu_us_per_answer`` and ``.statements_per_answer``: storing ``--batch``
  answers decided at once (a busy worker's case: one waits while the others share the next
  commit), per answer;
- the baseline, measured in the same run on the same engine: ``bare_round_trip_us``, the
  CPU of one autocommitted ``SELECT 1``, and the ratio ``cpu_in_round_trips``
  (cpu per event / one bare round trip): a machine-independent figure to compare commits.

Usage: ``.venv/bin/python benchmarks/event_log_bench.py [--events N] [--batch B]``. For a
before and after, copy it into a worktree of the older commit and run it there: it imports
the tree it sits in.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from typing import Any

import _common as c

c.ensure_root_on_path()


def server_cpu(dbname: str | None) -> float:
    """CPU seconds the PostgreSQL backends serving ``dbname`` have used (0 for SQLite)."""
    if dbname is None:
        return 0.0
    return sum(c.cpu_seconds(pid) or 0.0 for pid in c.pg_backend_pids(dbname))


def settings_for(url: str) -> Any:
    from bot.settings import Settings

    return Settings(_env_file=None, database_url=url, bot_env="test")


async def measure(url: str, events: int, batch: int, dbname: str | None = None) -> dict[str, float]:
    import sqlalchemy
    from sqlalchemy import text

    from bot.insights import capture, records
    from bot.line.events import InboundEvent
    from bot.line.messages import Text
    from bot.pipeline.event_log import EventLogStore
    from bot.storage import daily
    from bot.storage.db import Database
    from tests.helpers import text_event, user_id

    db = Database(settings_for(url).sqlalchemy_url)
    store = EventLogStore(db)
    # Counted in the client: statements (cursor executions), transactions (BEGIN .. COMMIT
    # blocks), and autocommitted blocks, whose statements need no BEGIN and COMMIT.
    tally = {"statements": 0, "transactions": 0, "autocommitted": 0}

    def on_statement(*_args: Any) -> None:
        tally["statements"] += 1

    def on_begin(conn: Any) -> None:
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        tally["autocommitted" if autocommit else "transactions"] += 1

    sqlalchemy.event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    sqlalchemy.event.listen(db.engine.sync_engine, "begin", on_begin)
    users = [user_id(f"bench-{i}") for i in range(50)]
    day = daily.local_day()
    bare = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def one_round_trip() -> None:
        async with bare.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def one_event(i: int, cpu: dict[str, float]) -> None:
        user = users[i % len(users)]
        event = InboundEvent.from_dict(text_event(c.THAI_TEXTS[0], user))
        t0 = time.process_time()
        await store.record(event, 1)
        t1 = time.process_time()
        writes = [
            daily.TurnCount(day, "greeting", daily.ANSWERED),
            capture.moments(user, [capture.Moment(records.INTENT, "greeting")], day),
        ]
        outbox = {"messages": [Text(c.THAI_TEXTS[0]).to_line()], "state": None}
        await store.sending(event.id, outbox, "reply", f"key-{i}", writes)
        t2 = time.process_time()
        await store.finish(event.id, delivery="reply")
        t3 = time.process_time()
        cpu["record"] += t1 - t0
        cpu["sending"] += t2 - t1
        cpu["finish"] += t3 - t2

    try:
        warm = {"record": 0.0, "sending": 0.0, "finish": 0.0}
        for i in range(100):
            await one_event(i, warm)
            await one_round_trip()
        # Bare round trips, before and after (the better: the machine is shared).
        bares = []
        for _ in range(2):
            t0 = time.process_time()
            for _ in range(events):
                await one_round_trip()
            bares.append((time.process_time() - t0) / events)
        cpu = {"record": 0.0, "sending": 0.0, "finish": 0.0}
        before = dict(tally)
        server_before = server_cpu(dbname)
        for i in range(events):
            await one_event(100 + i, cpu)
        counted = {k: (v - before[k]) / events for k, v in tally.items()}
        server_s = server_cpu(dbname) - server_before
        # Answers decided at once (a busy worker): ``batch`` stored while one is under way.
        batch_cpu, batch_statements, rounds = 0.0, 0, max(1, events // batch)
        for r in range(rounds):
            base = 100_000 + r * batch
            events_now = [
                InboundEvent.from_dict(text_event(c.THAI_TEXTS[0], users[k % len(users)]))
                for k in range(batch)
            ]
            for event in events_now:
                await store.record(event, 1)
            t0, statements_then = time.process_time(), tally["statements"]
            await asyncio.gather(
                *(
                    store.sending(
                        event.id,
                        {"messages": [Text(c.THAI_TEXTS[0]).to_line()], "state": None},
                        "reply",
                        f"key-{base + k}",
                        [
                            daily.TurnCount(day, "greeting", daily.ANSWERED),
                            capture.moments(
                                event.user_id or "", [capture.Moment(records.INTENT, "x")], day
                            ),
                        ],
                    )
                    for k, event in enumerate(events_now)
                )
            )
            batch_cpu += time.process_time() - t0
            batch_statements += tally["statements"] - statements_then
            for event in events_now:
                await store.finish(event.id, delivery="reply")
        t0 = time.process_time()
        for _ in range(events):
            await one_round_trip()
        bares.append((time.process_time() - t0) / events)
    finally:
        await db.close()
    bare_s = min(bares)
    total = sum(cpu.values()) / events
    out = {
        "cpu_us_per_event": total * 1e6,
        "cpu_us_per_event.record": cpu["record"] / events * 1e6,
        "cpu_us_per_event.sending": cpu["sending"] / events * 1e6,
        "cpu_us_per_event.finish": cpu["finish"] / events * 1e6,
        "statements_per_event": counted["statements"],
        "transactions_per_event": counted["transactions"] + counted["autocommitted"],
        # a transaction's BEGIN and COMMIT are a round trip each
        "round_trips_per_event": counted["statements"] + 2 * counted["transactions"],
        "bare_round_trip_us": bare_s * 1e6,
        "bare_round_trip_spread": statistics.pstdev(bares) / bare_s,
        "cpu_in_round_trips": total / bare_s,
        # PostgreSQL's own CPU for the same events (its backends for this database)
        **({"server_cpu_us_per_event": server_s / events * 1e6} if dbname else {}),
        f"batch_of_{batch}.sending_cpu_us_per_answer": batch_cpu / (rounds * batch) * 1e6,
        f"batch_of_{batch}.statements_per_answer": batch_statements / (rounds * batch),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8, help="answers decided at once")
    args = parser.parse_args()
    import uvloop

    from bot.storage.migrate import upgrade

    with c.pg_database("eventlog") as (url, name):
        upgrade(settings_for(url))
        figures = uvloop.run(measure(url, args.events, args.batch, name))
        for key, value in figures.items():
            c.emit(f"event_log.postgresql.{key}", round(value, 3))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(settings_for(url))
        figures = uvloop.run(measure(url, args.events, args.batch))
        for key, value in figures.items():
            c.emit(f"event_log.sqlite.{key}", round(value, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
