"""Messages sent per Thai day, by how they went: free replies against paid pushes.

LINE charges pushes (answers sent after the reply token expired, notices, staff replies)
against the channel's monthly quota; replies are free. ``bot quota`` shows this month from
two sides: LINE's own quota and consumption, and this bot's records per day:

* answers by reply and by push: ``daily_counts`` kind ``delivery`` (counted once, when the
  event's row leaves ``sending``: ``bot.pipeline.event_log``);
* staff replies from the console: ``delivery``/``staff_push`` (``bot.storage.handoff_messages``);
* notices: one per person and digest push (``notice_deliveries``: distinct retry keys).

The forecast is the month's consumption so far at the same pace to the month's end.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.daily import (
    BANGKOK,
    DELIVERY,
    PUSH,
    REPLY,
    STAFF_PUSH,
    DailyCount,
    day_start,
    local_day,
)
from bot.storage.db import NoticeDelivery

#: Columns of the per-day table, in order.
KINDS = (REPLY, PUSH, "notice", STAFF_PUSH)
#: The kinds LINE charges.
PAID = (PUSH, "notice", STAFF_PUSH)


@dataclass
class MonthUsage:
    """One month (Thai time) of messages by day and kind, and where the month stands."""

    first: dt.date
    last: dt.date
    days: dict[dt.date, dict[str, int]] = field(default_factory=dict)

    def total(self, kind: str) -> int:
        return sum(d[kind] for d in self.days.values())

    @property
    def paid(self) -> int:
        return sum(self.total(k) for k in PAID)

    @property
    def reply_share(self) -> float | None:
        """Answers by reply among answers (None: no answers yet)."""
        answers = self.total(REPLY) + self.total(PUSH)
        return self.total(REPLY) / answers if answers else None


def month_of(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of ``today``'s month."""
    return today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1])


async def month_usage(s: AsyncSession, today: dt.date | None = None) -> MonthUsage:
    """This month's messages per day, every day up to ``today`` (zeros included)."""
    today = today or local_day()
    first, _ = month_of(today)
    usage = MonthUsage(first, today)
    day = first
    while day <= today:
        usage.days[day] = dict.fromkeys(KINDS, 0)
        day += dt.timedelta(days=1)
    rows = await s.execute(
        select(DailyCount.day, DailyCount.key, DailyCount.count).where(
            DailyCount.kind == DELIVERY, DailyCount.day.between(first, today)
        )
    )
    for day, key, count in rows.all():
        if day in usage.days and key in usage.days[day]:
            usage.days[day][key] += int(count)
    # Notices: one charged message per person and push (a digest's retry key).
    sent = (
        select(NoticeDelivery.line_user_id, NoticeDelivery.retry_key, func.min(NoticeDelivery.at))
        .where(
            NoticeDelivery.status == "sent",
            NoticeDelivery.at >= day_start(first),
            NoticeDelivery.at < day_start(today + dt.timedelta(days=1)),
        )
        .group_by(NoticeDelivery.line_user_id, NoticeDelivery.retry_key)
    )
    for _user, _key, at in (await s.execute(sent)).all():
        moment = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
        local = moment.astimezone(BANGKOK).date()
        if local in usage.days:
            usage.days[local]["notice"] += 1
    return usage


def forecast(used: int, now: dt.datetime) -> int:
    """The month's consumption if it goes on at the pace of the month so far."""
    local = now.astimezone(BANGKOK)
    first, last = month_of(local.date())
    start = dt.datetime.combine(first, dt.time(), tzinfo=BANGKOK)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=BANGKOK)
    elapsed = max((local - start).total_seconds(), 3600.0)  # the first hour says little
    return round(used * (end - start).total_seconds() / elapsed)
