"""Bad input at volume (issue 14): thousands of webhook bodies from LINE's spec, and mutations.

Draws ``--bodies`` (default 10,000) ``CallbackRequest`` bodies from LINE's webhook OpenAPI
schema (``tests/webhook_corpus.py``: hypothesis-jsonschema, deterministic), makes
``--mutations`` broken copies of each (wrong types, huge strings, deep nesting, invalid UTF-8,
duplicate keys, lone surrogates, huge numbers, truncation, other shapes, long ids, NUL), and
sends them to the real app (uvicorn in this process, the fake LINE API answering the bot):

* every well-formed body signed: must be 200, and every event handled to the end;
* every mutated body signed: must never be a 5xx;
* every body unsigned and with a wrong signature: must be 401 and 403.

Prints the counts by status, the 5xx count (target 0), events unfinished and dead letters
(target 0), and the rates. ``--shared`` uses Redis and PostgreSQL (database ``test``, a
unique Redis prefix) with a separate worker thread; the default is the embedded SQLite mode.

The bodies are drawn in seeded batches of ``--batch`` by ``--jobs`` processes (drawing is
the slow part: about 0.07 s of CPU a body) and sent over ``--senders`` connections.

Usage: ``.venv/bin/python benchmarks/webhook_fuzz.py [--bodies N] [--mutations M] [--shared]
[--batch B] [--jobs J] [--senders S]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import _common as c

c.ensure_root_on_path()

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.settings import Settings  # noqa: E402
from bot.storage.db import DeadLetter, EventLog  # noqa: E402
from tests.fakeline import FakeLine  # noqa: E402
from tests.helpers import ServerThread, WorkerThread, bot_database  # noqa: E402
from tests.webhook_corpus import mutated, post_body, well_formed  # noqa: E402

SECRET = "fuzz-channel-secret-0123456789abcdef"


def post(client: httpx.Client, server: ServerThread, body: bytes, signature: str | None) -> int:
    return post_body(client, server, SECRET, body, signature)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=10_000)
    parser.add_argument("--mutations", type=int, default=1)
    parser.add_argument("--shared", action="store_true", help="Redis + PostgreSQL")
    parser.add_argument(
        "--batch", type=int, default=500, help="bodies drawn per process (seeded batches)"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="drawing processes")
    parser.add_argument("--senders", type=int, default=8, help="concurrent connections")
    args = parser.parse_args()

    t0 = time.perf_counter()
    sizes = [min(args.batch, args.bodies - start) for start in range(0, args.bodies, args.batch)]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        parts = pool.map(well_formed, sizes, range(1, len(sizes) + 1))
        good = [body for part in parts for body in part]
    bad = [m for seed in range(args.mutations) for m in mutated(good, seed=seed)]
    generated = time.perf_counter() - t0
    events = sum(len(json.loads(b)["events"]) for b in good)
    c.emit("fuzz.bodies_well_formed", len(good))
    c.emit("fuzz.events_well_formed", events)
    c.emit("fuzz.bodies_mutated", len(bad))
    c.emit("fuzz.generation_s", round(generated, 1))
    with contextlib.ExitStack() as stack:
        return run(args, good, bad, stack)


def run(
    args: argparse.Namespace, good: list[bytes], bad: list[bytes], stack: contextlib.ExitStack
) -> int:

    fake = FakeLine(c.HOST, 0).start()
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    values: dict[str, object] = {
        "bot_env": "test",
        "line_channel_secret": SECRET,
        "line_channel_access_token": "fuzz-access-token",
        "line_api_base_url": fake.base_url,
        "data_dir": work,
        "log_level": "WARNING",
        "notify_interval_seconds": 0,
    }
    prefix = "fuzz" + secrets.token_hex(4)
    if args.shared:
        values |= {
            "redis_url": c.REDIS_URL,
            "redis_prefix": prefix,
            "database_url": stack.enter_context(c.pg_schema("fuzz")),
        }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    if args.shared:
        from bot.storage.migrate import upgrade

        upgrade(settings)
        stack.callback(c.redis_cleanup, prefix)
    worker = WorkerThread(settings).__enter__() if args.shared else None
    try:
        with ServerThread(settings) as server, httpx.Client(timeout=30) as client:
            t1 = time.perf_counter()

            def send(bodies: list[bytes], signature: str | None) -> Counter[int]:
                with ThreadPoolExecutor(args.senders) as senders:
                    return Counter(
                        senders.map(lambda b: post(client, server, b, signature), bodies)
                    )

            good_status = send(good, "auto")
            statuses = send(bad, "auto")
            unsigned = send(good + bad, None) + send(good + bad, "AAAA" + "=" * 40)
            sent = time.perf_counter() - t1
            ids = {e["webhookEventId"] for b in good for e in json.loads(b)["events"]}
            deadline = time.monotonic() + 600
            with bot_database(settings) as engine:
                while True:
                    with engine.connect() as conn:
                        finished = conn.scalar(
                            select(func.count()).where(
                                EventLog.webhook_event_id.in_(ids),
                                EventLog.status.in_(("done", "standby", "held")),
                            )
                        )
                        dead = conn.scalar(select(func.count()).select_from(DeadLetter))
                    if finished == len(ids) or time.monotonic() > deadline:
                        break
                    time.sleep(1)
            handled = time.perf_counter() - t1
    finally:
        if worker is not None:
            worker.__exit__(None, None, None)
        refused = fake.take_errors()
        fake.stop()

    c.emit("fuzz.well_formed_status", json.dumps(dict(sorted(good_status.items()))))
    c.emit("fuzz.mutated_status", json.dumps(dict(sorted(statuses.items()))))
    c.emit("fuzz.bad_signature_status", json.dumps(dict(sorted(unsigned.items()))))
    fives = sum(n for s, n in (statuses + good_status + unsigned).items() if s >= 500)
    c.emit("fuzz.responses_5xx", fives)
    c.target("fuzz.responses_5xx", fives == 0, "no answer is a 5xx (or none at all)")
    signature_ok = all(400 <= s < 500 for s in unsigned)
    c.target("fuzz.bad_signature", signature_ok, "a missing or wrong signature is always a 4xx")
    unfinished = len(ids) - int(finished or 0)
    c.emit("fuzz.events_unfinished", unfinished)
    c.emit("fuzz.dead_letters", int(dead or 0))
    c.target("fuzz.handled", unfinished == 0 and not dead, "every well-formed event handled")
    c.emit("fuzz.line_requests_refused", len(refused))
    requests = len(good) + len(bad) + 2 * (len(good) + len(bad))
    c.emit("fuzz.requests_per_s", round(requests / sent))
    c.emit("fuzz.all_events_handled_s", round(handled, 1))
    return 0 if fives == 0 and signature_ok and unfinished == 0 and not dead else 1


if __name__ == "__main__":
    raise SystemExit(main())
