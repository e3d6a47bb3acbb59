"""Pipeline housekeeping: old event-log rows and dead letters are forgotten."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select

from bot.pipeline.process import Pipeline
from bot.services import Services
from bot.settings import Settings
from bot.storage.db import DeadLetter, EventLog, utcnow
from bot.storage.migrate import upgrade
from tests.conftest import run


def test_prune_keeps_recent_and_pending_records(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(event_log_days=7, dead_letter_days=30)
    upgrade(settings)
    services = Services.build(settings)
    old = utcnow() - dt.timedelta(days=8)
    ancient = utcnow() - dt.timedelta(days=31)

    def row(event_id: str, status: str, updated: dt.datetime) -> EventLog:
        return EventLog(
            webhook_event_id=event_id,
            chat_id="U1",
            event_type="message",
            event_ts=1,
            status=status,
            attempts=1,
            created_at=updated,
            updated_at=updated,
        )

    async def scenario() -> tuple[set[str], set[str]]:
        async with services.db.session() as s, s.begin():
            s.add_all(
                [
                    row("old-done", "done", old),
                    row("old-sending", "sending", old),  # still in flight: must survive
                    row("new-done", "done", utcnow()),
                ]
            )
            s.add_all(
                [
                    DeadLetter(
                        webhook_event_id="dead-old",
                        chat_id="U1",
                        event_type="message",
                        payload={},
                        attempts=5,
                        died_at=ancient,
                    ),
                    DeadLetter(
                        webhook_event_id="dead-new",
                        chat_id="U1",
                        event_type="message",
                        payload={},
                        attempts=5,
                        died_at=old,
                    ),
                ]
            )
        await Pipeline(services, messenger=None).prune()  # type: ignore[arg-type]
        async with services.db.session() as s:
            logs = set((await s.scalars(select(EventLog.webhook_event_id))).all())
            dead = set((await s.scalars(select(DeadLetter.webhook_event_id))).all())
        await services.close()
        return logs, dead

    logs, dead = run(scenario())
    assert logs == {"old-sending", "new-done"}
    assert dead == {"dead-new"}
