"""Webhook acceptance: how fast ``bot serve`` (Redis mode) says 200 to LINE.

Runs, against 127.0.0.1 only:

1. ``bot serve`` (REDIS_URL set, so no worker: only verify, parse and enqueue) and a bare
   FastAPI endpoint that only reads the body (``bare_app.py``), both as uvicorn
   subprocesses;
2. closed loop (C keep-alive connections) against each, three rounds, alternating, best run
   kept: events/s and the ratio bot/bare (target >= 0.7 with wrk). ``--client wrk`` (the
   default when ``wrk`` is installed): wrk with a Lua script (``wrk_webhooks.lua``) that
   sends pre-made signed LINE webhook bodies from a file, each once (a fresh file per bot
   run, so the bot never takes the cheaper duplicate path), for ``--wrk-seconds`` after a
   short warm-up. ``--client aiohttp``: the Python generator below, a fixed number of
   requests per run (its own per-request cost caps the bare app, so its ratio is lower);
3. open loop at a fixed rate (default 1,000 events/s for 10 s) against the bot:
   acknowledgement latency measured from each request's *planned* send time (so a slow
   server cannot hide its queueing: no coordinated omission), p50/p95/p99/max
   (target p99 <= 20 ms) and the number of non-200 answers;
4. a burst: 4,000 requests over 400 connections at once (more requests in flight than the
   bot's Redis connection pool has connections); every one should get a 200.

The load generator is a separate (spawned) process using aiohttp on uvloop; it shares the
machine's cores with the servers, so absolute figures are machine-bound. Redis keys under
the run's unique prefix are deleted at the end.

Usage: ``.venv/bin/python benchmarks/webhook_accept.py [--client wrk|aiohttp] [--requests N]
[--concurrency C] [--rate R] [--seconds S]``
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import _common as c

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_webhooks.lua"


@dataclass
class WrkResult:
    """One timed wrk run (the ``WRK`` line ``wrk_webhooks.lua`` prints when it is done)."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def write_bodies(path: Path, n: int) -> None:
    """``n`` signed webhook bodies (unique webhookEventIds), one ``signature<TAB>body`` a line.

    Compact JSON never holds a raw tab or newline (they are escaped in strings), so the
    line format is unambiguous.
    """
    with path.open("wb") as f:
        for shot in c.make_shots(n):
            f.write(shot.signature.encode() + b"\t" + shot.body + b"\n")


def run_wrk(
    url: str, bodies: Path, start: int, seconds: float, connections: int, threads: int
) -> WrkResult:
    """wrk against ``url`` for ``seconds``, sending the bodies from line ``start`` on."""
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(WRK_SCRIPT), url,
        "--", str(bodies), str(start), str(threads),
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    m = re.search(r"^WRK (.*)$", out.stdout, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    f = dict(kv.split("=", 1) for kv in m.group(1).split())
    return WrkResult(
        requests=int(f["requests"]),
        seconds=int(f["duration_us"]) / 1e6,
        non_2xx=int(f["non2xx"]),
        socket_errors=sum(int(f[k]) for k in ("connect", "read", "write", "timeout")),
        p50_ms=int(f["p50_us"]) / 1000,
        p99_ms=int(f["p99_us"]) / 1000,
    )


def wrk_round(
    rnd: int, name: str, proc: c.Proc, wd: Path, args: argparse.Namespace, expect: float
) -> tuple[float, float, int]:
    """One closed-loop run with wrk: (events/s, server CPU ms per event, non-200 answers).

    The bot gets a fresh body file every run: a body it has seen is only a duplicate to
    skip, which is cheaper than a new event and would flatter it. The file holds at least
    ``--wrk-bodies`` and 1.5 times what ``expect`` events/s (the bare app's rate) would use.
    """
    bodies = wd / "bodies.txt"
    seconds = args.wrk_warmup_seconds + args.wrk_seconds
    need = max(args.wrk_bodies, int(1.5 * expect * seconds))
    if name == "bot" or not bodies.exists():
        write_bodies(bodies, need)
    warm = run_wrk(proc.url + "/callback", bodies, 0, args.wrk_warmup_seconds,
                   args.concurrency, args.wrk_threads)  # fmt: skip
    start = warm.requests + args.concurrency  # past any body in flight when warm-up stopped
    meter = c.CpuMeter({"server": proc.pid}, {})
    res = run_wrk(proc.url + "/callback", bodies, start, args.wrk_seconds,
                  args.concurrency, args.wrk_threads)  # fmt: skip
    used = meter.stop()
    sent = start + res.requests + args.concurrency
    if name == "bot" and sent > need:
        c.note(f"round {rnd + 1} bot: {sent - need} bodies sent twice (raise --wrk-bodies)")
    c.note(
        f"round {rnd + 1} {name} (wrk): {res.per_second:.0f} events/s over {res.seconds:.1f}s, "
        f"non-2xx {res.non_2xx}, socket errors {res.socket_errors}, latency p50 "
        f"{res.p50_ms:.1f} ms p99 {res.p99_ms:.1f} ms; cores used: server "
        f"{used['server'] / used['wall']:.2f}, machine {used['machine_busy_cores']:.2f}"
    )
    ms = used["server"] * 1000 / res.requests if res.requests else 0.0
    return res.per_second, ms, res.non_2xx + res.socket_errors


def aiohttp_round(
    rnd: int, name: str, proc: c.Proc, gen: c.Generator, args: argparse.Namespace
) -> tuple[float, float, int]:
    """One closed-loop run with the Python generator: (events/s, CPU ms per event, non-200)."""
    per_run = args.warmup + args.requests
    shots = c.make_shots(per_run)
    meter = c.CpuMeter({"server": proc.pid, "generator": gen.pid}, {})
    res = gen.closed(proc.url + "/callback", shots, args.concurrency, args.warmup)
    used_by = meter.stop()
    c.note(
        f"round {rnd + 1} {name}: {res.per_second:.0f} events/s, "
        f"{res.elapsed:.2f}s, statuses {res.statuses}; cores used incl. warm-up: "
        f"server {used_by['server'] / used_by['wall']:.2f}, generator "
        f"{used_by['generator'] / used_by['wall']:.2f}, machine "
        f"{used_by['machine_busy_cores']:.2f}"
    )
    return (
        res.per_second,
        used_by["server"] * 1000 / per_run,
        res.requests - res.statuses.get(200, 0),
    )


def main() -> int:
    """Run the benchmark and print one figure per line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--client",
        choices=("wrk", "aiohttp"),
        default="wrk" if shutil.which("wrk") else "aiohttp",
        help="closed-loop load generator (default: wrk when installed)",
    )
    parser.add_argument("--wrk-seconds", type=float, default=8.0, help="timed seconds per wrk run")
    parser.add_argument(
        "--wrk-warmup-seconds", type=float, default=1.0, help="untimed wrk seconds before each run"
    )
    parser.add_argument(
        "--wrk-bodies",
        type=int,
        default=50_000,
        help="signed bodies pre-made per bot wrk run, at least (more when the last rates need)",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--requests", type=int, default=6000, help="timed requests per closed-loop run (aiohttp)"
    )
    parser.add_argument(
        "--warmup", type=int, default=600, help="untimed requests before each run (aiohttp)"
    )
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
    parser.add_argument(
        "--phases", default="closed,open,burst", help="comma-separated phases to run"
    )
    args = parser.parse_args()
    phases = {p.strip() for p in args.phases.split(",")}

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
            best: dict[str, float] = {"bot": 0.0, "bare": 0.0}
            cpu: dict[str, float] = {}
            last: dict[str, float] = {"bot": 0.0, "bare": 0.0}
            bad = 0
            for rnd in range(args.rounds if "closed" in phases else 0):
                for name, proc in (("bare", bare), ("bot", bot)):
                    if args.client == "wrk":
                        expect = max(last.values())
                        rate, ms_per_event, non200 = wrk_round(rnd, name, proc, wd, args, expect)
                    else:
                        rate, ms_per_event, non200 = aiohttp_round(rnd, name, proc, gen, args)
                    bad += non200 if name == "bot" else 0
                    last[name] = rate
                    if rate > best[name]:
                        best[name] = rate
                        cpu[name] = ms_per_event
            if "closed" in phases:
                c.emit("accept.client", args.client)
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
                want = 0.7 if args.client == "wrk" else 0.5
                c.target(
                    "accept.ratio_bot_to_bare", ratio >= want, f"{ratio:.2f} (target >= {want})"
                )
                c.target(
                    "accept.closed_loop_non_200", bad == 0, f"{bad} non-200 answers (target 0)"
                )

            # (b) open loop at a fixed rate against the bot.
            if "open" in phases:
                n = int(args.rate * args.seconds)
                shots = c.make_shots(n)
                time.sleep(1.0)  # let the machine settle after the closed loop
                meter = c.CpuMeter(
                    {"bot": bot.pid, "generator": gen.pid}, {"redis": ["redis-server"]}
                )
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
            if "burst" in phases and args.burst_concurrency > 0:
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
