"""Webhook acceptance: how fast ``bot serve`` (Redis mode) says 200 to LINE.

Runs, against 127.0.0.1 only:

1. ``bot serve`` (REDIS_URL set, so no worker: only verify, parse and enqueue) and a bare
   FastAPI endpoint that only reads the body (``bare_app.py``), both as uvicorn
   subprocesses;
2. closed loop (C keep-alive connections, a fixed number of signed LINE webhook bodies)
   against each, three rounds, alternating, best run kept: events/s and the ratio bot/bare
   (target >= 0.5);
3. open loop at a fixed rate (default 1,000 events/s for 10 s) against the bot:
   acknowledgement latency measured from each request's *planned* send time (so a slow
   server cannot hide its queueing: no coordinated omission), p50/p95/p99/max
   (target p99 <= 20 ms) and the number of non-200 answers;
4. a burst: 4,000 requests over 400 connections at once (more requests in flight than the
   bot's Redis connection pool has connections); every one should get a 200.

The load generator is a separate (spawned) process using aiohttp on uvloop; it shares the
machine's cores with the servers, so absolute figures are machine-bound. Redis keys under
the run's unique prefix are deleted at the end.

Usage: ``.venv/bin/python benchmarks/webhook_accept.py [--requests N] [--concurrency C]
[--rate R] [--seconds S]``
"""

from __future__ import annotations

import argparse
import secrets
import time

import _common as c


def main() -> int:
    """Run the benchmark and print one figure per line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=6000, help="timed requests per closed-loop run"
    )
    parser.add_argument("--warmup", type=int, default=600, help="untimed requests before each run")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument(
        "--rounds", type=int, default=3, help="closed-loop runs per server (best kept)"
    )
    parser.add_argument(
        "--burst-concurrency", type=int, default=400, help="connections in the burst (0: skip)"
    )
    parser.add_argument("--burst-requests", type=int, default=4000, help="requests in the burst")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop duration")
    args = parser.parse_args()

    prefix = f"bench-accept-{secrets.token_hex(4)}"
    c.note(f"webhook acceptance; redis prefix {prefix}; 127.0.0.1 only")
    c.emit("accept.background_busy_cores", c.background_load())
    with c.workdir("accept") as wd, c.Generator() as gen:
        env = c.bot_env(
            REDIS_URL=c.REDIS_URL,
            REDIS_PREFIX=prefix,
            DATABASE_URL=f"sqlite:///{wd / 'bot.db'}",
            LINE_API_BASE_URL=f"http://{c.HOST}:{c.free_port()}",  # nothing listens there
        )
        procs: list[c.Proc] = []
        try:
            bot = c.start_bot_serve(env, wd)
            procs.append(bot)
            bare = c.start_bare(wd)
            procs.append(bare)
            c.emit("accept.bot_serve_rss_idle_mb", (c.proc_status_kb(bot.pid, "VmRSS") or 0) / 1024)

            # (a) closed loop, alternating so drift on a shared machine hits both alike.
            per_run = args.warmup + args.requests
            best: dict[str, float] = {"bot": 0.0, "bare": 0.0}
            cpu: dict[str, float] = {}
            bad = 0
            for rnd in range(args.rounds):
                for name, proc in (("bare", bare), ("bot", bot)):
                    shots = c.make_shots(per_run)
                    meter = c.CpuMeter({"server": proc.pid, "generator": gen.pid}, {})
                    res = gen.closed(proc.url + "/callback", shots, args.concurrency, args.warmup)
                    used_by = meter.stop()
                    used = used_by["server"]
                    non200 = res.requests - res.statuses.get(200, 0)
                    bad += non200 if name == "bot" else 0
                    c.note(
                        f"round {rnd + 1} {name}: {res.per_second:.0f} events/s, "
                        f"{res.elapsed:.2f}s, statuses {res.statuses}; cores used incl. warm-up: "
                        f"server {used_by['server'] / used_by['wall']:.2f}, generator "
                        f"{used_by['generator'] / used_by['wall']:.2f}, machine "
                        f"{used_by['machine_busy_cores']:.2f}"
                    )
                    if res.per_second > best[name]:
                        best[name] = res.per_second
                        cpu[name] = used * 1000 / per_run
            c.emit("accept.concurrency", args.concurrency)
            c.emit("accept.bare_events_per_s", best["bare"])
            c.emit("accept.bot_events_per_s", best["bot"])
            ratio = best["bot"] / best["bare"] if best["bare"] else 0.0
            c.emit("accept.ratio_bot_to_bare", ratio)
            c.emit("accept.bare_cpu_ms_per_event", cpu.get("bare", 0.0))
            c.emit("accept.bot_cpu_ms_per_event", cpu.get("bot", 0.0))
            if cpu.get("bot"):
                # Same comparison without the load generator in the way: server CPU per event.
                c.emit("accept.cpu_ratio_bare_to_bot", cpu.get("bare", 0.0) / cpu["bot"])
            c.emit("accept.closed_loop_bot_non_200", bad)
            c.target("accept.ratio_bot_to_bare", ratio >= 0.5, f"{ratio:.2f} (target >= 0.5)")
            c.target("accept.closed_loop_non_200", bad == 0, f"{bad} non-200 answers (target 0)")

            # (b) open loop at a fixed rate against the bot.
            n = int(args.rate * args.seconds)
            shots = c.make_shots(n)
            time.sleep(1.0)  # let the machine settle after the closed loop
            meter = c.CpuMeter({"bot": bot.pid, "generator": gen.pid}, {"redis": ["redis-server"]})
            res_open = gen.open(bot.url + "/callback", shots, args.rate)
            used_by = meter.stop()
            lat = res_open.latencies_ms()
            non200 = sum(1 for s in res_open.status if s != 200)
            span = max(res_open.done) - min(res_open.planned)
            c.emit("accept.open_rate_per_s", args.rate)
            c.emit("accept.open_events", n)
            c.emit("accept.open_achieved_per_s", n / span if span > 0 else 0.0)
            for q in (50, 95, 99):
                c.emit(f"accept.open_p{q}_ms", c.percentile(lat, q))
            c.emit("accept.open_max_ms", max(lat))
            c.emit("accept.open_non_200", non200)
            lag = res_open.lag_ms()
            c.emit("accept.open_generator_lag_p99_ms", c.percentile(lag, 99))
            for name in ("bot", "generator", "redis"):
                c.emit(f"accept.open_cores.{name}", used_by[name] / used_by["wall"])
            c.emit("accept.open_cores.other_jobs", used_by["others_cores"])
            slow = sum(1 for x in lat if x > 20)
            c.emit("accept.open_over_20ms", slow)
            p99 = c.percentile(lat, 99)
            c.target("accept.open_p99_ms", p99 <= 20, f"p99 {p99:.1f} ms (target <= 20 ms)")
            c.target("accept.open_non_200", non200 == 0, f"{non200} non-200 answers (target 0)")
            peak_rss = (c.proc_status_kb(bot.pid, "VmHWM") or 0) / 1024
            c.emit("accept.bot_serve_peak_rss_mb", peak_rss)

            # (c) burst: more requests in flight than the bot's Redis pool has connections
            # (last, so the error logging it may cause cannot disturb the open loop).
            if args.burst_concurrency > 0:
                shots = c.make_shots(args.burst_requests)
                res = gen.closed(bot.url + "/callback", shots, args.burst_concurrency, 0)
                burst_bad = res.requests - res.statuses.get(200, 0)
                c.emit("accept.burst_concurrency", args.burst_concurrency)
                c.emit("accept.burst_events_per_s", res.per_second)
                c.emit("accept.burst_non_200", burst_bad)
                c.target(
                    "accept.burst_non_200",
                    burst_bad == 0,
                    f"{burst_bad} of {res.requests} non-200 answers with "
                    f"{args.burst_concurrency} connections, statuses {res.statuses} (target 0)",
                )
        finally:
            try:
                c.stop_all("accept", procs)
            finally:
                c.emit("accept.redis_keys_deleted", c.redis_cleanup(prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
