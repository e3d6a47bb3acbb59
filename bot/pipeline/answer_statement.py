"""PostgreSQL: decided answers and their turns' counted writes in one statement.

Most answers write only rows that add up: the turn's counters (``TurnCount``), a guide's
counters (``GuideCount``), the insight moments (``Moments``, which take the person's
latest assessment as their profile) and a text the bot could not answer
(``UnansweredText``, cut to its columns when it was made). The general way stores them as
BEGIN, the event rows' move to ``sending`` (and, for several answers, their outboxes), the
profile read, one statement per kind, COMMIT: six to eight round trips, about 1.7 ms of a
worker's CPU for one answer and 0.5–0.7 ms each for eight decided at once
(``benchmarks/event_log_bench.py``). Here the move to ``sending`` is a CTE every other
write joins (an answer another try stored first writes nothing), each person's profile is
a lateral join into their insight rows, and each kind's rows arrive as one JSON document
(``json_to_recordset``: one parameter for the driver to adapt; an array per column cost
the worker ~0.1 ms more per answer), every row tagged with its answer's event id: one
autocommitted round trip for one answer or many.

PostgreSQL runs every data-modifying CTE to completion whether or not the main query reads
it, so the statement returns only the answers stored.

Locks: the turn counters' rows are written before the guide counters' (the guide CTE
reads the turn CTE's result first), each kind's rows in the order its ``rows`` sorts
them (code-point order: ``COLLATE "C"``), the order ``bot.storage.merged.run_together``
takes them in a transaction of the general way, so the two never wait for each other
crosswise.

Anything else (a handler's own write, a moment about the last notice, a NUL character in
an answer) goes the general way: ``params`` returns None for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, text

from bot.insights.capture import SECTOR_CHARS, Moments
from bot.insights.records import KEY_CHARS
from bot.storage.daily import ROUTE, TurnCount
from bot.storage.queries import GUIDE_COUNTERS, GuideCount, UnansweredText

if TYPE_CHECKING:
    from bot.pipeline.event_log import Decided

#: How ``json.dumps`` writes a NUL character (a text the bot made could hold one).
NUL_ESCAPE = "\\u0000"
_COUNTERS = ", ".join(GUIDE_COUNTERS)
_SUMS = ", ".join(f"sum(g.{c})" for c in GUIDE_COUNTERS)
_ADDED = ", ".join(f"{c} = guide_stats.{c} + excluded.{c}" for c in GUIDE_COUNTERS)
_COUNTER_TYPES = ", ".join(f"{c} integer" for c in GUIDE_COUNTERS)

STATEMENT: TextClause = text(
    f"""
WITH sent AS (
    UPDATE event_log AS e
    SET status = 'sending', outbox = a.outbox, delivery = a.delivery,
        retry_key = a.retry_key, updated_at = :now
    FROM json_to_recordset(CAST(:answers AS json))
         AS a(event_id text, outbox json, delivery text, retry_key text)
    WHERE e.webhook_event_id = a.event_id AND e.status = 'processing'
    RETURNING e.webhook_event_id AS event_id
), moments AS (
    INSERT INTO insight_events (day, line_user_id, kind, province, sector, stage, key, at)
    SELECT m.day, m.user_id, m.kind,
           left(coalesce(m.province, nullif(m.named, ''), p.province_code, ''), 2),
           left(coalesce(m.sector, p.sector, ''), {SECTOR_CHARS}),
           coalesce(m.stage, p.stage, 0),
           left(m.key, {KEY_CHARS}),
           :now
    FROM json_to_recordset(CAST(:moments AS json))
         AS m(event_id text, user_id text, day date, named text, kind text, key text,
              province text, sector text, stage integer)
    JOIN sent ON sent.event_id = m.event_id
    LEFT JOIN LATERAL (
        SELECT province_code, stage,
               CASE WHEN json_typeof(answers -> 'sector') = 'string'
                    THEN answers ->> 'sector' END AS sector
        FROM assessments
        WHERE line_user_id = m.user_id
        ORDER BY created_at DESC, id DESC
        LIMIT 1
    ) p ON true
), turns AS (
    INSERT INTO daily_counts (day, kind, key, count)
    SELECT t.day, t.kind, t.key, sum(t.count)
    FROM json_to_recordset(CAST(:turns AS json))
         AS t(event_id text, ord integer, day date, kind text, key text, count integer)
    JOIN sent ON sent.event_id = t.event_id
    GROUP BY t.ord, t.day, t.kind, t.key
    ORDER BY t.ord, t.day, t.key COLLATE "C"
    ON CONFLICT (day, kind, key) DO UPDATE SET count = daily_counts.count + excluded.count
    RETURNING 1
), guides AS (
    INSERT INTO guide_stats (guide_id, day, {_COUNTERS})
    SELECT g.guide_id, g.day, {_SUMS}
    FROM json_to_recordset(CAST(:guides AS json))
         AS g(event_id text, guide_id text, day date, {_COUNTER_TYPES})
    JOIN sent ON sent.event_id = g.event_id
    WHERE (SELECT count(*) FROM turns) >= 0
    GROUP BY g.guide_id, g.day
    ORDER BY g.guide_id COLLATE "C", g.day
    ON CONFLICT (guide_id, day) DO UPDATE SET {_ADDED}
), kept AS (
    INSERT INTO unanswered (text, best_intent, confidence, best_guide, created_at)
    SELECT u.text, u.best_intent, u.confidence, u.best_guide, :now
    FROM json_to_recordset(CAST(:unanswered AS json))
         AS u(event_id text, text text, best_intent text, confidence double precision,
              best_guide text)
    JOIN sent ON sent.event_id = u.event_id
)
SELECT event_id FROM sent
"""
)


def params(answers: Sequence[Decided]) -> dict[str, str] | None:
    """The statement's parameters for these answers (each kind's rows as one JSON
    document: one parameter for the driver to adapt, not one per column), or None when
    one of their writes needs the general way."""
    stored: list[dict[str, Any]] = []
    moments: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    guides: list[dict[str, Any]] = []
    unanswered: list[dict[str, Any]] = []
    for answer in answers:
        event_id = answer.event_id
        counted: list[TurnCount] = []
        guided: list[GuideCount] = []
        for change in answer.writes:
            if type(change) not in (Moments, TurnCount, GuideCount, UnansweredText):
                return None  # (exactly these kinds: a subclass may write something else)
            if isinstance(change, UnansweredText):
                unanswered.append({**change.row(), "event_id": event_id})
            elif isinstance(change, TurnCount):
                counted.append(change)
            elif isinstance(change, GuideCount):
                guided.append(change)
            elif isinstance(change, Moments) and not change.cancelled:
                if any(m.last_notice for m in change.items):
                    return None
                day = str(change.day)
                moments.extend(
                    {
                        "event_id": event_id,
                        "user_id": change.user_id,
                        "day": day,
                        "named": change.named_province,
                        "kind": m.kind,
                        "key": m.key,
                        "province": m.province,
                        "sector": m.sector,
                        "stage": m.stage,
                    }
                    for m in change.items
                )
        stored.append(
            {
                "event_id": event_id,
                "outbox": answer.outbox,
                "delivery": answer.delivery,
                "retry_key": answer.retry_key,
            }
        )
        turns.extend(
            {**row, "event_id": event_id, "ord": int(row["kind"] != ROUTE), "day": str(row["day"])}
            for row in TurnCount.rows(counted)
        )
        guides.extend(
            {**row, "event_id": event_id, "day": str(row["day"])} for row in GuideCount.rows(guided)
        )
    # Event rows are locked in id order, the order the general way's claim takes them in.
    stored.sort(key=lambda row: row["event_id"])
    documents = {
        name: json.dumps(rows, ensure_ascii=False)
        for name, rows in (
            ("answers", stored),
            ("moments", moments),
            ("turns", turns),
            ("guides", guides),
            ("unanswered", unanswered),
        )
    }
    if any(NUL_ESCAPE in document for document in documents.values()):
        return None  # json_to_recordset cannot decode a NUL; a json parameter keeps it
    return documents
