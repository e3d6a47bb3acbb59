"""PostgreSQL: a decided answer and its turn's counted writes in one statement.

Most answers write only rows that add up: the turn's counters (``TurnCount``), a guide's
counters (``GuideCount``) and the insight moments (``Moments``, which take the person's
latest assessment as their profile). The general way stores them as BEGIN, the event
row's move to ``sending``, the profile read, one statement per kind, COMMIT: six round
trips, about 1.7 ms of a worker's CPU (``benchmarks/event_log_bench.py``). Here the move
to ``sending`` is a CTE every other write waits on (nothing is written when another try
stored its answer first), the profile is a CTE joined into the insight rows, and each
kind's rows arrive as arrays (``unnest``), so one statement text serves every answer: one
autocommitted round trip.

Locks: the turn counters' rows are written before the guide counters' (the guide CTE
reads the turn CTE's result first), each kind's rows in the order its ``rows`` gives:
the order ``bot.storage.merged.run_together`` takes them in a shared transaction, so the
two never wait for each other crosswise.

Anything else (a handler's own write, a moment about the last notice, moments of two
people) goes the general way: ``params`` returns None for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, TextClause, bindparam, text

from bot.dialogue.router import Write
from bot.insights.capture import SECTOR_CHARS, Moments
from bot.insights.records import KEY_CHARS
from bot.storage.daily import TurnCount
from bot.storage.queries import GUIDE_COUNTERS, GuideCount

_GUIDE_SUMS = ", ".join(f"{c} = guide_stats.{c} + excluded.{c}" for c in GUIDE_COUNTERS)
_GUIDE_ARRAYS = ", ".join(f"CAST(:g_{c} AS integer[])" for c in GUIDE_COUNTERS)

STATEMENT: TextClause = text(
    f"""
WITH sent AS (
    UPDATE event_log
    SET status = 'sending', outbox = :outbox, delivery = :delivery,
        retry_key = :retry_key, updated_at = :now
    WHERE webhook_event_id = :event_id AND status = 'processing'
    RETURNING 1
), profile AS (
    SELECT province_code, stage,
           CASE WHEN json_typeof(answers -> 'sector') = 'string'
                THEN answers ->> 'sector' END AS sector
    FROM assessments
    WHERE line_user_id = :user_id
    ORDER BY created_at DESC, id DESC
    LIMIT 1
), moments AS (
    INSERT INTO insight_events (day, line_user_id, kind, province, sector, stage, key, at)
    SELECT :moments_day, :user_id, m.kind,
           left(coalesce(m.province, nullif(:named, ''), p.province_code, ''), 2),
           left(coalesce(m.sector, p.sector, ''), {SECTOR_CHARS}),
           coalesce(m.stage, p.stage, 0),
           left(m.key, {KEY_CHARS}),
           :now
    FROM unnest(CAST(:m_kind AS text[]), CAST(:m_key AS text[]), CAST(:m_province AS text[]),
                CAST(:m_sector AS text[]), CAST(:m_stage AS integer[]))
         AS m(kind, key, province, sector, stage)
    LEFT JOIN profile p ON true
    WHERE EXISTS (SELECT FROM sent)
    RETURNING 1
), turns AS (
    INSERT INTO daily_counts (day, kind, key, count)
    SELECT t.day, t.kind, t.key, t.count
    FROM unnest(CAST(:t_day AS date[]), CAST(:t_kind AS text[]), CAST(:t_key AS text[]),
                CAST(:t_count AS integer[])) AS t(day, kind, key, count)
    WHERE EXISTS (SELECT FROM sent)
    ON CONFLICT (day, kind, key) DO UPDATE SET count = daily_counts.count + excluded.count
    RETURNING 1
), guides AS (
    INSERT INTO guide_stats (guide_id, day, {", ".join(GUIDE_COUNTERS)})
    SELECT g.*
    FROM unnest(CAST(:g_guide_id AS text[]), CAST(:g_day AS date[]), {_GUIDE_ARRAYS})
         AS g(guide_id, day, {", ".join(GUIDE_COUNTERS)})
    WHERE EXISTS (SELECT FROM sent) AND (SELECT count(*) FROM turns) >= 0
    ON CONFLICT (guide_id, day) DO UPDATE SET {_GUIDE_SUMS}
    RETURNING 1
)
SELECT (SELECT count(*) FROM sent) AS stored,
       (SELECT count(*) FROM moments) AS moments,
       (SELECT count(*) FROM guides) AS guides
"""
).bindparams(bindparam("outbox", type_=JSON))


def params(writes: Sequence[Write]) -> dict[str, Any] | None:
    """The statement's parameters for these writes (besides the event row's), or None when
    one of them needs the general way."""
    moments: list[Moments] = []
    turns: list[TurnCount] = []
    guides: list[GuideCount] = []
    for change in writes:
        if type(change) not in (Moments, TurnCount, GuideCount):
            return None  # (exactly these kinds: a subclass may write something else)
        if isinstance(change, Moments):
            if change.cancelled or not change.items:
                continue
            if any(m.last_notice for m in change.items):
                return None
            moments.append(change)
        elif isinstance(change, TurnCount):
            turns.append(change)
        elif isinstance(change, GuideCount):
            guides.append(change)
    if len(moments) > 1:  # (a turn's moments are one change: a second is unusual)
        return None
    found = moments[0] if moments else None
    items = found.items if found else []
    counts = TurnCount.rows(turns)
    guide_rows = GuideCount.rows(guides)
    values: dict[str, Any] = {
        "user_id": found.user_id if found else "",
        "moments_day": found.day if found else dt.date.min,
        "named": found.named_province if found else "",
        "m_kind": [m.kind for m in items],
        "m_key": [m.key for m in items],
        "m_province": [m.province for m in items],
        "m_sector": [m.sector for m in items],
        "m_stage": [m.stage for m in items],
        "t_day": [r["day"] for r in counts],
        "t_kind": [r["kind"] for r in counts],
        "t_key": [r["key"] for r in counts],
        "t_count": [r["count"] for r in counts],
        "g_guide_id": [r["guide_id"] for r in guide_rows],
        "g_day": [r["day"] for r in guide_rows],
    }
    for counter in GUIDE_COUNTERS:
        values[f"g_{counter}"] = [r[counter] for r in guide_rows]
    return values
