"""Push notices at national scale: 100,000 subscribers and 20 new courses on PostgreSQL.

Prints, from one real notice run against the fake LINE API (spec-checked, in this
process) and a fresh PostgreSQL schema:

- ``notices.selection_s``: reading subscribers and deliveries and matching them
  (target <= 2 s), against ``notices.naive_selection_s``, a plain loop over every
  (subscriber, course) pair measured in the same run on the same data;
- ``notices.calls`` against ``notices.minimum_calls`` = the sum over distinct messages of
  ceil(recipients / 500), computed here independently of the bot (target: equal);
- ``notices.calls_per_s`` against the configured rate limit (target >= 0.8 of it), and
  against ``notices.bare_calls_per_s``: the same calls (a real digest, 500 recipients)
  posted with no database and no rate limit by a separate process, just before and just
  after the run (the better of the two); ``notices.bare_sdk_calls_per_s`` is the same
  through the SDK's request models (how notices were sent before), for comparison;
- ``notices.calls_per_s_first_to_last``: the calls alone, from the first to the last
  call the fake received (``calls_per_s`` is over the whole send step, which ends when
  the last calls' deliveries are recorded);
- ``notices.cores_while_sending.<party>`` and ``notices.cpu_ms_per_call.<party>``: the CPU
  that ``bot notify``, the fake LINE API (this process), PostgreSQL and the whole machine
  (``machine_busy``) used from the first call to the last, as cores and per call: where
  the machine's two cores went while the calls went out;
- ``notices.delivery_rows`` and ``notices.delivery_inserts``: rows logged per statement;
- every subscriber that matched got exactly one delivery (checked on the fake's records).

The table of deliveries starts with ``--history`` rows of earlier notices (2,000,000 by
default, over the last 180 days): a running service keeps every notice it ever sent, and a
run's reads of it must not grow with that.

Usage: ``.venv/bin/python benchmarks/notices_bench.py [--subscribers N] [--courses N]
[--rate R] [--concurrency N] [--history N]``
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import json
import math
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _common as c
import yaml

c.ensure_root_on_path()
from sqlalchemy import create_engine, insert, text  # noqa: E402

from bot.line.calls import RetryPolicy  # noqa: E402
from bot.line.client import LineClient  # noqa: E402
from bot.line.messages import Message  # noqa: E402
from bot.notices.message import digest_messages  # noqa: E402
from bot.notices.runner import NoticeRunner  # noqa: E402
from bot.notices.select import Offer, plan  # noqa: E402
from bot.notices.send import LineTransport, RateLimiter, body, messages_json  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.settings import Settings, to_sync_url  # noqa: E402
from bot.storage.db import NoticeCourse, Subscription, User  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402
from tests.fakeline import FakeLine  # noqa: E402

#: Calls each bare sender makes (a sample of the run's).
BARE_CALLS = 150


def make_courses(kb: Any, n: int, rnd: random.Random) -> list[Any]:
    """``n`` new courses cloned from shipped ones: varied topics, provinces and stages."""
    base = list(kb.courses)
    topics = sorted(kb.topics)
    provinces = sorted(kb.places.provinces)
    out = []
    for i in range(n):
        src = base[i % len(base)]
        local = rnd.random() < 0.4
        places = src.places.model_copy(
            update={
                "nationwide": not local,
                "province_codes": rnd.sample(provinces, 3) if local else [],
            }
        )
        schedule = src.schedule.model_copy(
            update={"status": "open", "apply_to": None, "end_date": None, "start_date": None}
        )
        out.append(
            src.model_copy(
                update={
                    "id": f"course-bench-{i:02d}",
                    "topics": rnd.sample(topics, rnd.choice((1, 1, 2))),
                    "format": "onsite" if local else "online",
                    "places": places,
                    "schedule": schedule,
                    "stage": rnd.randint(1, 5),
                }
            )
        )
    return out


def add_history(conn: Any, course_ids: list[str], users: int, rows: int) -> None:
    """``rows`` deliveries of earlier notices (the shipped courses, done long ago), spread
    over the last 180 days: the table keeps every notice ever sent."""
    rows = min(rows, users * len(course_ids))
    conn.execute(
        text(
            "INSERT INTO notice_deliveries (line_user_id, course_id, retry_key, status, at)"
            " SELECT 'U' || lpad(to_hex(g % :users), 32, '0'),"
            " (CAST(:courses AS text[]))[1 + (g / :users) % cardinality(CAST(:courses AS text[]))],"
            " gen_random_uuid()::text, 'sent',"
            " now() - interval '180 days' + (g::float / :rows) * interval '179 days'"
            " FROM generate_series(0, :rows - 1) AS g"
        ),
        {"users": users, "courses": course_ids, "rows": rows},
    )


def naive(
    courses: list[Any], subs: list[tuple[str, list[str], list[str], int | None]], spread: int
) -> dict[tuple[str, ...], list[str]]:
    """Every (subscriber, course) pair checked one by one: the baseline and the oracle."""
    digests: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for user, topics, provinces, stage in subs:
        got = []
        for cc in courses:
            if not set(topics) & set(cc.topics):
                continue
            anywhere = cc.format == "online" or cc.places.nationwide
            if not (anywhere or not provinces or set(provinces) & set(cc.places.province_codes)):
                continue
            if stage is not None and abs(cc.stage - stage) > spread:
                continue
            got.append(cc.id)
        if got:
            digests[tuple(sorted(got))].append(user)
    return digests


async def run(args: argparse.Namespace, url: str, fake: FakeLine, folder: Path) -> None:
    rnd = random.Random(7)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_env="test",
        line_channel_secret=c.SECRET,
        line_channel_access_token=c.TOKEN,
        line_api_base_url=fake.base_url,
        database_url=url,
        notify_quiet_hours="",
        notify_rate_per_second=args.rate,
        notify_interval_seconds=0,
        log_level="WARNING",
    )
    upgrade(settings)
    base = Services.build(settings)
    kb = base.knowledge
    await base.close()
    new = make_courses(kb, args.courses, rnd)
    # The bench's courses go into a copy of the knowledge folder, as an operator would add them.
    shutil.copytree(c.ROOT / "knowledge", folder)
    doc = yaml.safe_load((folder / "courses.yaml").read_text(encoding="utf-8"))
    doc["items"] += [x.model_dump(mode="json", exclude_none=True) for x in new]
    (folder / "courses.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    settings = settings.model_copy(update={"knowledge_dir": folder})
    services = Services.build(settings)
    topics = sorted(kb.topics)
    provinces = sorted(kb.places.provinces)
    subs = []
    for i in range(args.subscribers):
        chosen = rnd.sample(topics, rnd.choice((1, 1, 2, 3)))
        where = [] if rnd.random() < 0.6 else [rnd.choice(provinces)]
        stage = None if rnd.random() < 0.3 else rnd.randint(1, 5)
        subs.append((f"U{i:032x}", chosen, where, stage))
    engine = create_engine(to_sync_url(settings.sqlalchemy_url))
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(NoticeCourse),
            [{"course_id": x.id, "first_seen_at": old, "done_at": old} for x in kb.courses],
        )
        for start in range(0, len(subs), 20_000):
            part = subs[start : start + 20_000]
            conn.execute(insert(User), [{"line_user_id": s[0], "following": True} for s in part])
            conn.execute(
                insert(Subscription),
                [
                    {
                        "line_user_id": s[0],
                        "topics": s[1],
                        "provinces": s[2],
                        "stage": s[3],
                        "active": True,
                    }
                    for s in part
                ],
            )
        if args.history:
            add_history(conn, [x.id for x in kb.courses], len(subs), args.history)
    if args.history:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE notice_deliveries"))
    engine.dispose()
    c.note(
        f"{len(subs)} subscribers, {len(new)} new courses, rate limit {args.rate}/s, "
        f"{args.concurrency} calls in flight, {args.history} past deliveries"
    )

    t0 = time.perf_counter()
    oracle = naive(new, subs, settings.notify_stage_spread)
    naive_s = time.perf_counter() - t0
    minimum = sum(math.ceil(len(u) / 500) for u in oracle.values())
    expected = {u for users in oracle.values() for u in users}

    runner = NoticeRunner(services, services.line_client())
    # The parts of the selection, timed alone first (the run below times them together).
    now = runner.clock()
    _, since = await runner._candidates(now, record=False)
    t = time.perf_counter()
    found = await runner._subscribers()
    c.emit("notices.part.read_subscribers_s", time.perf_counter() - t)
    t = time.perf_counter()
    await runner._delivered([x.id for x in new], since)
    await runner._capped(now)
    c.emit("notices.part.read_deliveries_s", time.perf_counter() - t)
    t = time.perf_counter()
    plan((Offer.of(x) for x in new), found, set(), set(), settings.notify_stage_spread)
    c.emit("notices.part.match_s", time.perf_counter() - t)
    await services.close()
    # What the fake and the machine allow right now: the transport alone, no database.
    # The bare senders' calls: a sample of the run's own (digest, up to 500 users) calls.
    calls = [d for d, users in oracle.items() for _ in range(math.ceil(len(users) / 500))]
    sample = rnd.sample(calls, min(len(calls), 2 * BARE_CALLS))
    (folder.parent / "bare.json").write_text(json.dumps(sample), encoding="utf-8")
    bare = [await bare_rate(fake, folder, args.concurrency)]
    fake.reset()
    # The real run: ``bot notify`` in its own process, so the fake LINE API in this one
    # does not share an interpreter lock with the sender.
    env = c.bot_env(
        LINE_API_BASE_URL=fake.base_url,
        DATABASE_URL=url,
        KNOWLEDGE_DIR=str(folder),
        DATA_DIR=str(folder.parent / "data"),
        NOTIFY_QUIET_HOURS="",
        NOTIFY_RATE_PER_SECOND=str(args.rate),
        NOTIFY_CONCURRENCY=str(args.concurrency),
        KB_WATCH="false",
    )
    out, sampler = await asyncio.to_thread(notify_sampled, env)
    report = SimpleNamespace(**json.loads(out))
    sent_at = [rec.at for rec in fake.calls("multicast", status=None)]

    got: Counter[str] = Counter()
    for rec in fake.calls("multicast"):
        got.update(rec.body["to"])
    for rec in fake.calls("push"):
        got[rec.body["to"]] += 1
    rejected = len(fake.errors)
    fake.reset()
    bare.append(await bare_rate(fake, folder, args.concurrency))
    best = max(b["prepared"] for b in bare)

    c.emit("notices.subscribers", len(subs))
    c.emit("notices.recipients", report.sent)
    c.emit("notices.distinct_digests", len(oracle))
    c.emit("notices.selection_s", report.selection_seconds)
    c.emit("notices.naive_selection_s", naive_s)
    c.emit("notices.selection_ratio_vs_naive", report.selection_seconds / naive_s)
    c.emit("notices.calls", report.calls)
    c.emit("notices.minimum_calls", minimum)
    c.emit("notices.send_s", report.send_seconds)
    rate = report.calls / report.send_seconds if report.send_seconds else 0.0
    c.emit("notices.calls_per_s", rate)
    c.emit("notices.rate_ratio", rate / args.rate)
    c.emit("notices.bare_calls_per_s", best)
    c.emit("notices.bare_sdk_calls_per_s", max(b["sdk"] for b in bare))
    c.emit("notices.bare_prepared_vs_sdk", best / max(b["sdk"] for b in bare))
    c.emit("notices.rate_ratio_vs_bare", rate / min(best, args.rate))
    if len(sent_at) > 1:
        # Who used the machine while the calls went out (first to last call at the fake).
        window = max(sent_at) - min(sent_at)
        used = sampler.between(min(sent_at), max(sent_at))
        c.emit("notices.send_window_s", window)
        # The calls alone, first to last; ``calls_per_s`` also counts the time after the
        # last call that recording its deliveries took.
        c.emit("notices.calls_per_s_first_to_last", (len(sent_at) - 1) / window)
        for party, seconds in used.items():
            c.emit(f"notices.cores_while_sending.{party}", seconds / window)
            c.emit(f"notices.cpu_ms_per_call.{party}", seconds / len(sent_at) * 1000)
    c.emit("notices.delivery_rows", report.delivery_rows)
    c.emit("notices.delivery_inserts", report.delivery_inserts)
    c.emit(
        "notices.recipients_per_s", report.sent / report.send_seconds if report.send_seconds else 0
    )
    c.emit("notices.duplicates", sum(1 for n in got.values() if n > 1))
    c.emit("notices.missing", len(expected - set(got)))
    c.emit("notices.rejected_by_fake_line", rejected)
    c.target("notices.selection", report.selection_seconds <= 2.0, "selection <= 2 s")
    c.target("notices.calls", report.calls == minimum, "LINE calls equal the minimum possible")
    c.target("notices.rate", rate >= 0.8 * args.rate, "send rate >= 0.8 of the limit")
    c.target(
        "notices.rate_vs_bare",
        rate >= 0.8 * min(best, args.rate),
        "send rate >= 0.8 of what a bare sender reached in this run (capped at the limit)",
    )
    c.target(
        "notices.exactly_once",
        set(got) == expected and all(n == 1 for n in got.values()),
        "every matched subscriber got exactly one notice",
    )


def notify_sampled(env: dict[str, str]) -> tuple[bytes, CpuSampler]:
    """``bot notify --json`` in its own process, its CPU (and the others') sampled."""
    notify = subprocess.Popen(
        [str(c.BOT), "notify", "--json"],
        env=env,
        cwd=c.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sampler = CpuSampler(notify.pid)
    sampler.start()
    try:
        out, err = notify.communicate(timeout=900)
    finally:
        sampler.stop()
    if notify.returncode != 0:
        raise RuntimeError(err.decode()[-2000:])
    return out, sampler


class CpuSampler:
    """CPU seconds used so far, every 50 ms, by ``bot notify``, by this process but the
    sampler's thread (the fake LINE API's thread; the main thread only waits), by every
    PostgreSQL process, and by the whole machine, so the send window's share of each can
    be read off afterwards."""

    PARTIES = ("notify", "fake_line", "postgres", "machine_busy")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last_notify = 0.0
        while not self._stop.is_set():
            notify = c.cpu_seconds(self.pid)
            last_notify = notify if notify is not None else last_notify
            self.samples.append(
                (
                    time.monotonic(),
                    last_notify,
                    # this process less this thread: the sampler's own /proc reading
                    # (~0.05 cores) is not the fake's
                    time.process_time() - time.thread_time(),
                    c.cpu_of_commands(["postgres"]),
                    c.machine_cpu()[0],
                )
            )
            self._stop.wait(0.05)

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each party used from ``start`` to ``end`` (interpolated)."""
        times = [s[0] for s in self.samples]

        def at(when: float, i: int) -> float:
            k = bisect.bisect_left(times, when)
            if k <= 0:
                return self.samples[0][i]
            if k >= len(times):
                return self.samples[-1][i]
            (t0, *a), (t1, *b) = self.samples[k - 1], self.samples[k]
            share = (when - t0) / (t1 - t0) if t1 > t0 else 0.0
            return a[i - 1] + (b[i - 1] - a[i - 1]) * share

        return {party: at(end, i) - at(start, i) for i, party in enumerate(self.PARTIES, start=1)}


async def bare_rate(fake: FakeLine, folder: Path, concurrency: int) -> dict[str, float]:
    """Calls per second of the bare senders (:func:`bare`), in their own process."""
    done = await asyncio.to_thread(
        subprocess.run,
        [str(c.PYTHON), __file__, "--bare", fake.base_url, str(folder), str(concurrency)],
        cwd=c.ROOT,
        capture_output=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode()[-2000:])
    result: dict[str, float] = json.loads(done.stdout)
    return result


async def bare(base_url: str, folder: Path, concurrency: int, calls: int = BARE_CALLS) -> None:
    """Post ``calls`` multicasts to 500 made-up users, ``concurrency`` at a time, without
    any rate limit or database: once through the SDK's models (``LineClient.multicast``,
    how notices were sent before) and once as prepared bytes (``LineTransport``). Each
    call carries a digest as in the run (a sample of the run's calls: the fake LINE API
    validates a message it has not seen before in full, a bigger carousel longer)."""
    from bot.kb.loader import load_knowledge, load_replies

    kb = load_knowledge(folder).knowledge
    assert kb is not None
    replies = load_replies(folder)
    by_id = {x.id: x for x in kb.courses}
    sample = json.loads((folder.parent / "bare.json").read_text(encoding="utf-8"))
    digests: list[list[Message]] = [
        digest_messages([by_id[i] for i in ids], kb, replies) for ids in sample
    ]
    calls = min(calls, len(digests) // 2)
    users = [f"U{0xFFFF0000 + i:032x}" for i in range(500)]
    policy = RetryPolicy(attempts=1, timeout=30)
    gate = asyncio.Semaphore(concurrency)
    out: dict[str, float] = {}

    client = LineClient(base_url, c.TOKEN, policy)

    async def sdk(i: int) -> None:
        async with gate:
            await client.multicast(users, digests[i], str(uuid.uuid4()))

    transport = LineTransport(base_url, c.TOKEN, policy, RateLimiter(1e9), concurrency)
    prepared = [messages_json([m.to_line() for m in d]) for d in digests[calls:]]

    async def raw(i: int) -> None:
        async with gate:
            await transport.send(*body(users, prepared[i]), str(uuid.uuid4()))

    for name, one in (("sdk", sdk), ("prepared", raw)):
        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        out[name] = calls / (time.perf_counter() - t)
    await client.close()
    await transport.close()
    print(json.dumps(out))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--bare":
        asyncio.run(bare(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--courses", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--history",
        type=int,
        default=2_000_000,
        help="delivery rows of earlier notices already in the table (0: an empty table)",
    )
    args = parser.parse_args()
    c.note(f"machine busy cores before start: {c.background_load():.2f}")
    with (
        c.pg_schema("notices") as url,
        FakeLine(max_records=None) as fake,
        c.workdir("notices") as work,
    ):
        asyncio.run(run(args, url, fake, work / "knowledge"))


if __name__ == "__main__":
    main()
