"""Bad input at volume: webhook bodies generated from LINE's webhook spec, then mutated.

The short version of ``benchmarks/webhook_fuzz.py`` (which sends 10,000 and more), in both
deployments: no answer is ever a 5xx (LINE would redeliver a 5xx for ever: a poison message),
a missing or wrong signature always gets a 4xx, and every well-formed event is handled to the
end (done, or standby for a standby channel) with no dead letter and the worker still going.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from bot.storage.db import DeadLetter, EventLog
from tests.conftest import SECRET
from tests.helpers import ServerThread, bot_database, post_signed
from tests.webhook_corpus import mutated, post_body, well_formed

#: Bodies in the CI version (the benchmark sends many more).
N = 200


@pytest.fixture(scope="module")
def corpus() -> tuple[list[bytes], list[bytes]]:
    good = well_formed(N)
    return good, mutated(good, seed=1) + mutated(good, seed=2)


def _post(client: httpx.Client, server: ServerThread, body: bytes, signature: str | None) -> int:
    status = post_body(client, server, SECRET, body, signature)
    assert status != 599, f"no answer to a body of {len(body)} bytes: {body[:300]!r}"
    return status


def test_no_5xx_signatures_always_checked_and_every_good_event_handled(
    chat_bot: ServerThread, corpus: tuple[list[bytes], list[bytes]]
) -> None:
    good, bad = corpus
    base = chat_bot.base_url
    statuses: Counter[int] = Counter()
    with httpx.Client(timeout=30) as client:
        for body in good:
            assert _post(client, chat_bot, body, "auto") == 200
        for body in bad:
            statuses[_post(client, chat_bot, body, "auto")] += 1
        for body in good[:50]:
            assert _post(client, chat_bot, body, None) == 401
            assert _post(client, chat_bot, body, "AAAA" + "=" * 40) == 403
        for body in bad[:100]:  # 401/403, or 413 first for a body past the size limit
            assert _post(client, chat_bot, body, None) in (401, 413)
            assert _post(client, chat_bot, body, "AAAA" + "=" * 40) in (403, 413)
    assert all(s < 500 for s in statuses), statuses
    assert statuses[200] > 0 and sum(n for s, n in statuses.items() if 400 <= s < 500) > 0

    ids = {e["webhookEventId"] for b in good for e in json.loads(b)["events"]}
    deadline = time.monotonic() + 120
    with bot_database(chat_bot.settings) as engine:
        while True:
            with engine.connect() as conn:
                rows = dict(
                    conn.execute(
                        select(EventLog.webhook_event_id, EventLog.status).where(
                            EventLog.webhook_event_id.in_(ids)
                        )
                    ).all()
                )
                dead = conn.scalar(select(func.count()).select_from(DeadLetter))
            finished = {i for i, s in rows.items() if s in ("done", "standby", "held")}
            if finished == ids or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    unfinished = {i: rows.get(i) for i in ids - finished}
    assert not unfinished, f"{len(unfinished)} events not handled: {list(unfinished.items())[:5]}"
    assert dead == 0
    # Still serving: a plain message is answered after all that.
    assert post_signed(base, SECRET, good[0].replace(b"01", b"02", 1)).status_code == 200
