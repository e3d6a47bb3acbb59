"""End to end: from the signed webhook to the reply arriving at (fake) LINE.

One ``bot serve`` and ``--workers`` (2) ``bot worker`` processes against a private
``redis-server`` and a fresh PostgreSQL database (or a SQLite file), so the Redis command
and PostgreSQL transaction counts are this run's alone; the fake LINE Messaging API in this
process (``tests.fakeline.FakeLine``, its own thread), and a spawned load-generator process.
Latency is the fake's arrival time of the reply minus the event's *planned* send time
(both ``time.monotonic()``, one clock for every process on the machine), matched on the
reply token.

1. Open loop at 200 events/s for 10 s from 50 rotating users: p50/p95/p99/max latency
   (target p95 <= 50 ms); replies vs events, every reply token used exactly once; CPU,
   Redis commands and PostgreSQL transactions per event.
2. Peak: rate steps of a few seconds each; a step passes when every reply arrived within
   2 s of the step's last send and p95 < 1 s. The highest passing rate is printed as
   ``e2e.peak_sustained_events_per_s``; then the same steps against the echo peer
   (``echo_peer.py``: LINE's fastapi-echo, replying inline) and the ratio (target >= 0.4).
3. What the run left in Redis and PostgreSQL per event (for ``docs/capacity.md``).

Usage: ``.venv/bin/python benchmarks/end_to_end.py [--db postgres|sqlite] [--workers N]
[--rate R] [--seconds S] [--steps 20,30,...] [--no-peer] [--profile FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c

c.ensure_root_on_path()
from tests.fakeline import FakeLine  # noqa: E402

DEFAULT_STEPS = "20,30,40,50,60,80,100,150,200,300,400,600,800,1200"


@dataclass
class Phase:
    """What one load phase produced, matched against the fake's records."""

    events: int
    latencies_ms: list[float]
    missing: int
    duplicate_tokens: int
    extra_reply_calls: int
    ack_non_200: int
    completed_after_s: float
    #: Each answered event's planned send time, in seconds from the phase's first one
    #: (in the order of ``latencies_ms``): when in the phase the latency built up.
    sent_at_s: list[float]


class ReplyIndex:
    """Incremental view of the replies the fake received, by reply token."""

    def __init__(self, fake: FakeLine) -> None:
        self.fake = fake
        self.first_at: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.ok: set[str] = set()
        self.pushes = 0
        self.loading = 0
        self.other = 0
        self.other_kinds: dict[str, int] = {}
        self._seen = 0

    def refresh(self) -> None:
        """Take in the records that were answered since the last call (the fake lists a
        request as soon as it arrives, before its body is read: status 0 until answered)."""
        records = self.fake.requests
        seen = self._seen
        for rec in records[self._seen :]:
            if rec.status == 0:
                break  # still being handled: looked at again on the next call
            seen += 1
            if rec.kind == "reply" and isinstance(rec.body, dict):
                token = str(rec.body.get("replyToken"))
                self.count[token] = self.count.get(token, 0) + 1
                self.first_at.setdefault(token, rec.at)
                if rec.status == 200:
                    self.ok.add(token)
            elif rec.kind == "push":
                self.pushes += 1
            elif rec.kind == "loading":
                self.loading += 1
            else:
                self.other += 1
                self.other_kinds[rec.kind] = self.other_kinds.get(rec.kind, 0) + 1
        self._seen = seen

    def wait(self, tokens: Sequence[str], deadline: float) -> float:
        """Poll until every token has a reply or ``deadline``; returns when that happened."""
        wanted = set(tokens)
        while True:
            self.refresh()
            if wanted <= self.first_at.keys():
                return time.monotonic()
            if time.monotonic() >= deadline:
                return time.monotonic()
            time.sleep(0.02)


def run_phase(
    gen: c.Generator,
    url: str,
    index: ReplyIndex,
    shots: Sequence[c.Shot],
    rate: float,
    grace: float,
) -> Phase:
    """Send ``shots`` at ``rate``/s and wait up to ``grace`` s after the last planned send."""
    res = gen.open(url, shots, rate)
    last_planned = max(res.planned)
    tokens = [s.reply_token for s in shots]
    finished = index.wait(tokens, last_planned + grace)
    index.refresh()
    planned = dict(zip(tokens, res.planned, strict=True))
    answered = [t for t in tokens if t in index.first_at]
    lat = [(index.first_at[t] - planned[t]) * 1000 for t in answered]
    start = min(res.planned)
    counts = [index.count.get(t, 0) for t in tokens]
    return Phase(
        events=len(shots),
        latencies_ms=lat,
        missing=sum(1 for t in tokens if t not in index.ok),
        duplicate_tokens=sum(1 for n in counts if n > 1),
        extra_reply_calls=sum(n - 1 for n in counts if n > 1),
        ack_non_200=sum(1 for s in res.status if s != 200),
        completed_after_s=finished - last_planned,
        sent_at_s=[planned[t] - start for t in answered],
    )


def peak_search(
    gen: c.Generator,
    url: str,
    index: ReplyIndex,
    rates: Sequence[float],
    args: argparse.Namespace,
    users: Sequence[str],
    deadline: float,
    sent: list[str],
    label: str = "",
) -> float:
    """Step through ``rates`` until one fails; returns the highest passing rate. A step
    passes when every reply arrived within 2 s of its last send, p95 < 1 s and every
    webhook got a 200. ``sent`` collects the reply tokens used."""
    peak = 0.0
    tag = f"{label}_" if label else ""
    for rate in rates:
        if time.monotonic() > deadline:
            c.note(f"time budget ({args.budget_seconds:.0f} s) used up; stopping")
            break
        time.sleep(0.5)
        shots = c.make_shots(int(rate * args.step_seconds), users=users)
        sent += [shot.reply_token for shot in shots]
        st = run_phase(gen, url, index, shots, rate, 2.0)
        sp95 = c.percentile(st.latencies_ms, 95)
        ok = st.missing == 0 and sp95 < 1000 and st.ack_non_200 == 0
        c.note(
            f"{label or 'bot'} step {rate:.0f}/s: {st.events} events, "
            f"missing after 2 s {st.missing}, "
            f"p50 {c.percentile(st.latencies_ms, 50):.1f} ms, p95 {sp95:.1f} ms, "
            f"non-200 {st.ack_non_200}, duplicates {st.duplicate_tokens} -> "
            f"{'pass' if ok else 'fail'}"
        )
        c.emit(f"e2e.{tag}step_{rate:.0f}_p95_ms", sp95)
        if not ok:
            break
        peak = rate
    return peak


def _connect(db_name: str) -> Any:
    """An autocommitted psycopg connection to the run's database."""
    import psycopg

    return psycopg.connect(
        f"host=127.0.0.1 port=5432 user=postgres dbname={db_name}", autocommit=True
    )


def _history(db_name: str, count: int) -> None:
    """``count`` answered events of 5,000 users in the event log, one a second back from now
    (200,000: the last 2.3 days; never older than 6, so the workers' prune, at 7 days by
    default, deletes none during the run), then ANALYZE: the planner sees a table of the
    size it has in service, not an empty one (which it reads whole rather than by id)."""
    started = time.monotonic()
    with _connect(db_name) as conn:
        conn.execute(
            "INSERT INTO event_log (webhook_event_id, chat_id, event_type, event_ts, status,"
            " delivery, attempts, created_at, updated_at)"
            " SELECT 'history-' || g, 'Uhistory' || (g %% 5000), 'message', 0, 'done', 'reply',"
            " 1, t, t FROM generate_series(1, %s) AS g,"
            " LATERAL (SELECT now() - (g %% 518400) * interval '1 second' AS t) AS at",
            (count,),
        )
        conn.execute("VACUUM ANALYZE")
    c.note(f"{count} answered events in the event log first ({time.monotonic() - started:.1f} s)")


def storage_figures(
    prefix: str, redis_url: str, db_name: str | None, answered: int, history: int = 0
) -> None:
    """What the run left in Redis and PostgreSQL, per key and per answered event: the
    inputs of docs/capacity.md (de-duplication markers, dialogue states, table growth)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for kind in ("seen", "dlg"):
            keys = list(client.scan_iter(match=f"{prefix}:{kind}:*", count=1000))[:200]
            sizes = [client.memory_usage(k) or 0 for k in keys]
            if sizes:
                c.emit(f"e2e.redis_bytes_per_{kind}_key", sum(sizes) / len(sizes))
                c.emit(f"e2e.redis_{kind}_keys", len(keys))
    finally:
        client.close()
    if db_name is None or not answered:
        return
    with _connect(db_name) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        stats = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, seq_tup_read FROM pg_stat_user_tables"
            " WHERE relname = 'event_log'"
        ).fetchone()
        if stats is not None:
            # Updates PostgreSQL made in place (no index written), and rows read by whole-table
            # scans (an empty, never analysed table is scanned rather than looked up by id).
            c.emit("e2e.pg_event_log_hot_update_share", stats[1] / max(1, stats[0]))
            c.emit("e2e.pg_event_log_rows_scanned_per_event", stats[2] / answered)
        for table in ("event_log", "insight_events", "users", "daily_counts"):
            if history and table == "event_log":
                continue  # mostly the history's rows
            row = conn.execute(
                "SELECT count(*), pg_total_relation_size(%s) FROM " + table,
                (table,),
            ).fetchone()
            if row is not None:
                c.emit(f"e2e.pg_rows_per_event.{table}", row[0] / answered)
                c.emit(f"e2e.pg_bytes_per_event.{table}", row[1] / answered)


@contextlib.contextmanager
def database(kind: str, wd: Path) -> Iterator[tuple[str, str | None]]:
    """(DATABASE_URL, PostgreSQL database name) for the run: a fresh PostgreSQL database
    (its statistics count this run only) or a temp SQLite file (name None)."""
    if kind == "postgres":
        with c.pg_database("e2e") as (url, name):
            yield url, name
    else:
        yield f"sqlite:///{wd / 'bot.db'}", None


def main() -> int:
    """Run both phases and print one figure per line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--rate", type=float, default=200.0, help="phase 1 events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="phase 1 duration")
    parser.add_argument("--users", type=int, default=50, help="rotating senders in phase 1")
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=60.0,
        help="phase 1: wait this long for the last replies",
    )
    parser.add_argument(
        "--steps", default=DEFAULT_STEPS, help="comma-separated rates for the peak search"
    )
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument(
        "--step-users", type=int, default=500, help="rotating senders in the peak search"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=200_000,
        help="answered events already in the event log (PostgreSQL), analysed before the run "
        "(0: an empty table, which PostgreSQL scans whole instead of looking rows up by id)",
    )
    parser.add_argument("--no-peak", action="store_true", help="skip the peak search")
    parser.add_argument("--workers", type=int, default=2, help="bot worker processes")
    parser.add_argument("--no-peer", action="store_true", help="skip the echo peer's peak search")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the first worker with py-spy (PY_SPY or py-spy on PATH) during phase 1 "
        "into FILE (py-spy's raw collapsed stacks)",
    )
    parser.add_argument(
        "--budget-seconds", type=float, default=150.0, help="start no new step after this long"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for both bot processes (e.g. WORKER_CONCURRENCY=8); repeatable",
    )
    args = parser.parse_args()

    rnd = random.Random()
    prefix = f"bench-e2e-{secrets.token_hex(4)}"
    c.note(f"end to end; db {args.db}; redis prefix {prefix}; 127.0.0.1 only; extra env {args.env}")
    c.emit("e2e.background_busy_cores", c.background_load())
    fake = FakeLine(c.HOST, 0).start()
    procs: list[c.Proc] = []
    t_start = time.monotonic()
    try:
        with (
            c.workdir("e2e") as wd,
            database(args.db, wd) as (db_url, db_name),
            c.own_redis(wd) as (redis_url, redis_pid),
            c.Generator() as gen,
        ):
            env = c.bot_env(
                REDIS_URL=redis_url,
                REDIS_PREFIX=prefix,
                DATABASE_URL=db_url,
                LINE_API_BASE_URL=fake.base_url,
                **dict(item.split("=", 1) for item in args.env),
            )
            try:
                if args.db == "postgres":
                    c.bot_db_upgrade(env)
                    if args.history:
                        _history(db_name, args.history)
                serve = c.start_bot_serve(env, wd)
                procs.append(serve)
                workers = [
                    c.spawn(f"bot-worker-{i + 1}", [str(c.BOT), "worker"], env, wd)
                    for i in range(args.workers)
                ]
                procs += workers
                url = serve.url + "/callback"
                index = ReplyIndex(fake)

                # Warm-up: the worker is ready once it answers these.
                warm = c.make_shots(40, users=[c.user_id(rnd) for _ in range(10)])
                ph = run_phase(gen, url, index, warm, 20.0, 60.0)
                if ph.missing:
                    c.note(f"warm-up: {ph.missing} of {ph.events} events got no reply within 60 s")
                    for worker in workers:
                        if not worker.alive():
                            raise RuntimeError(f"worker died:\n{worker.log_text()}")

                # Phase 1: fixed rate.
                users = [c.user_id(rnd) for _ in range(args.users)]
                shots = c.make_shots(int(args.rate * args.seconds), users=users)
                pids = {"serve": serve.pid, "generator": gen.pid}
                pids.update({f"worker_{i + 1}": w.pid for i, w in enumerate(workers)})
                commands: dict[str, list[str]] = {"postgres_all": ["postgres"]}
                if redis_pid is not None:
                    pids["redis"] = redis_pid
                else:
                    commands["redis"] = ["redis-server"]
                if db_name is not None:  # this run's own backends (not other jobs' queries)
                    pids.update({f"pg_{pid}": pid for pid in c.pg_backend_pids(db_name)})
                spy = None
                if args.profile:
                    exe = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
                    spy_argv = ["record", "-p", str(workers[0].pid), "-r", "250", "-f", "raw"]
                    spy = subprocess.Popen(
                        [exe, *spy_argv, "--nonblocking", "-o", str(args.profile)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                meter = c.CpuMeter(pids, commands)
                counters0 = c.server_counters(redis_url, db_name or "test")
                ph = run_phase(gen, url, index, shots, args.rate, args.drain_seconds)
                cpu = meter.stop()
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                    spy.wait(30)
                counters = {
                    k: v - counters0.get(k, 0.0)
                    for k, v in c.server_counters(redis_url, db_name or "test").items()
                }
                lat = ph.latencies_ms
                c.emit("e2e.rate_per_s", args.rate)
                c.emit("e2e.users", args.users)
                c.emit("e2e.events", ph.events)
                c.emit("e2e.replies", ph.events - ph.missing)
                c.emit("e2e.missing_replies", ph.missing)
                c.emit("e2e.duplicate_reply_tokens", ph.duplicate_tokens)
                c.emit("e2e.webhook_non_200", ph.ack_non_200)
                for q in (50, 95, 99):
                    c.emit(f"e2e.p{q}_ms", c.percentile(lat, q))
                c.emit("e2e.max_ms", max(lat) if lat else float("nan"))
                c.emit("e2e.over_50ms", sum(1 for x in lat if x > 50))
                c.emit("e2e.completed_s_after_last_send", ph.completed_after_s)
                by_second: dict[int, list[float]] = {}
                for at, ms in zip(ph.sent_at_s, lat, strict=True):
                    by_second.setdefault(int(at), []).append(ms)
                c.note(
                    "p50 by second of the phase (ms): "
                    + ", ".join(f"{c.percentile(v, 50):.0f}" for _, v in sorted(by_second.items()))
                )
                c.emit("e2e.machine_busy_cores", cpu.pop("machine_busy_cores"))
                c.emit("e2e.other_jobs_cores", cpu.pop("others_cores"))
                cpu.pop("wall")
                cpu["fake_line_and_harness"] = cpu.pop("self")
                own_pg = sum(v for k, v in cpu.items() if k.startswith("pg_"))
                cpu = {k: v for k, v in cpu.items() if not k.startswith("pg_")}
                if db_name is not None:
                    cpu["postgres"] = own_pg
                cpu["worker"] = sum(v for k, v in cpu.items() if k.startswith("worker_"))
                for name, used in cpu.items():
                    c.emit(f"e2e.cpu_ms_per_event.{name}", used * 1000 / ph.events)
                bot_cpu = sum(cpu.get(k, 0.0) for k in ("serve", "worker", "postgres", "redis"))
                c.emit("e2e.cpu_ms_per_event.bot_total", bot_cpu * 1000 / ph.events)
                c.emit("e2e.redis_commands_per_event", counters["redis_commands"] / ph.events)
                per_command = sorted(
                    ((k[6:], v / ph.events) for k, v in counters.items() if k.startswith("redis:")),
                    key=lambda kv: -kv[1],
                )
                c.note(
                    "redis commands per event: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in per_command if v >= 0.01)
                )
                c.emit("e2e.stream_tokens_pending_after", c.stream_pending(prefix, redis_url))
                if args.db == "postgres":
                    c.emit("e2e.pg_transactions_per_event", counters["pg_transactions"] / ph.events)
                    c.emit("e2e.pg_sessions_opened", counters["pg_sessions"])
                p95 = c.percentile(lat, 95)
                c.target("e2e.p95_ms", p95 <= 50, f"p95 {p95:.1f} ms (target <= 50 ms)")
                exact = ph.missing == 0 and ph.duplicate_tokens == 0
                c.target(
                    "e2e.exactly_once",
                    exact,
                    f"{ph.events - ph.missing} replies for {ph.events} events, "
                    f"{ph.duplicate_tokens} tokens replied more than once",
                )

                bot_answered = len(index.ok)
                # Phase 2: peak sustained rate, then the same for the echo peer.
                if not args.no_peak:
                    rates = [float(x) for x in args.steps.split(",") if x.strip()]
                    step_users = [c.user_id(rnd) for _ in range(args.step_users)]
                    sent = [shot.reply_token for shot in warm + shots]
                    deadline = t_start + args.budget_seconds
                    peak = peak_search(gen, url, index, rates, args, step_users, deadline, sent)
                    c.emit("e2e.peak_sustained_events_per_s", peak)
                    # Let the backlog of a failed step drain, so the counts cover every event.
                    index.wait(sent, time.monotonic() + 20)
                    time.sleep(1.0)  # a late duplicate would arrive now
                    index.refresh()
                    c.emit("e2e.total_events", len(sent))
                    c.emit("e2e.total_missing_replies", sum(1 for t in sent if t not in index.ok))
                    c.emit(
                        "e2e.total_duplicate_reply_tokens",
                        sum(1 for n in index.count.values() if n > 1),
                    )
                    bot_answered = len(index.ok)
                    if not args.no_peer:
                        peer = c.start_echo_peer(fake.base_url, wd)
                        procs.append(peer)
                        peer_sent: list[str] = []
                        c.note("echo peer (benchmarks/echo_peer.py, replies inline): same steps")
                        peer_peak = peak_search(
                            gen,
                            peer.url + "/callback",
                            index,
                            rates,
                            args,
                            step_users,
                            time.monotonic() + args.budget_seconds,
                            peer_sent,
                            label="peer",
                        )
                        c.emit("e2e.peer_peak_sustained_events_per_s", peer_peak)
                        ratio = peak / peer_peak if peer_peak else float("nan")
                        c.emit("e2e.peak_ratio_bot_to_peer", ratio)
                        c.target(
                            "e2e.peak_ratio_bot_to_peer",
                            ratio >= 0.4,
                            f"bot peak {peak:.0f}/s = {ratio:.2f} of the echo peer's "
                            f"{peer_peak:.0f}/s (target >= 0.4)",
                        )

                c.emit("e2e.push_calls", index.pushes)
                c.emit("e2e.loading_calls", index.loading)
                c.emit("e2e.other_calls", index.other)
                if index.other_kinds:
                    c.note(f"other LINE calls: {index.other_kinds}")
                errors = fake.errors
                c.emit("e2e.fake_line_rejections", len(errors))
                for e in errors[:5]:
                    c.note(f"fake LINE rejected: {e[:300]}")
                c.emit("e2e.serve_peak_rss_mb", (c.proc_status_kb(serve.pid, "VmHWM") or 0) / 1024)
                for worker in workers:
                    c.emit(
                        f"e2e.{worker.name}_peak_rss_mb",
                        (c.proc_status_kb(worker.pid, "VmHWM") or 0) / 1024,
                    )
                storage_figures(prefix, redis_url, db_name, bot_answered, args.history)
            finally:
                c.stop_all("e2e", procs)
                c.emit("e2e.redis_keys_deleted", c.redis_cleanup(prefix, redis_url))
    finally:
        fake.stop()
        c.emit("e2e.wall_seconds", time.monotonic() - t_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
