"""Memory: peak RSS of ``bot serve`` (and ``bot worker``) under a short load.

Two deployments, one after the other, each answering through the in-process fake LINE API:

* embedded: ``bot serve`` alone, no REDIS_URL, SQLite file (the worker runs inside);
* redis: ``bot serve`` plus one ``bot worker``, Redis queue (unique prefix), SQLite file.

Each gets an open-loop load (default 40 events/s for 10 s, 50 rotating users), then up to
``--drain-seconds`` for the replies. RSS is polled every 100 ms and the kernel's high-water
mark (``VmHWM`` in ``/proc/PID/status``) is read at the end: that is the figure printed as
``*_peak_rss_mb``. Acknowledgement and reply latencies are printed alongside for context.

Usage: ``.venv/bin/python benchmarks/memory.py [--rate R] [--seconds S]``
"""

from __future__ import annotations

import argparse
import random
import secrets
import threading
import time
from pathlib import Path

import _common as c

c.ensure_root_on_path()
from tests.fakeline import FakeLine  # noqa: E402


class RssPoller:
    """Poll VmRSS of some processes in a thread; remembers each one's maximum."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.max_kb: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                kb = c.proc_status_kb(pid, "VmRSS") or 0
                self.max_kb[name] = max(self.max_kb[name], kb)

    def stop(self) -> dict[str, int]:
        """Stop polling; the maxima seen, in kB."""
        self._stop.set()
        self._thread.join(2)
        return self.max_kb


def run_mode(
    mode: str, fake: FakeLine, gen: c.Generator, wd: Path, args: argparse.Namespace
) -> None:
    """Start the deployment, load it, print its memory figures, stop it."""
    prefix = f"bench-mem-{secrets.token_hex(4)}"
    overrides: dict[str, str | None] = {
        "DATABASE_URL": f"sqlite:///{wd / f'{mode}.db'}",
        "LINE_API_BASE_URL": fake.base_url,
        "REDIS_URL": c.REDIS_URL if mode == "redis" else None,
        "REDIS_PREFIX": prefix,
    }
    env = c.bot_env(**overrides)
    procs: list[c.Proc] = []
    try:
        serve = c.start_bot_serve(env, wd, name=f"{mode}-serve")
        procs.append(serve)
        pids = {"serve": serve.pid}
        if mode == "redis":
            worker = c.spawn(f"{mode}-worker", [str(c.BOT), "worker"], env, wd)
            procs.append(worker)
            pids["worker"] = worker.pid
        time.sleep(2.0)  # let the worker finish importing before the idle reading
        for name, pid in pids.items():
            c.emit(f"mem.{mode}.{name}_idle_rss_mb", (c.proc_status_kb(pid, "VmRSS") or 0) / 1024)

        rnd = random.Random()
        users = [c.user_id(rnd) for _ in range(args.users)]
        shots = c.make_shots(int(args.rate * args.seconds), users=users)
        poller = RssPoller(pids)
        res = gen.open(serve.url + "/callback", shots, args.rate)
        tokens = {s.reply_token for s in shots}
        deadline = time.monotonic() + args.drain_seconds
        got: dict[str, float] = {}
        while time.monotonic() < deadline:
            got = {
                r.body["replyToken"]: r.at
                for r in fake.calls("reply")
                if isinstance(r.body, dict) and r.body.get("replyToken") in tokens
            }
            if len(got) >= len(tokens):
                break
            time.sleep(0.1)
        polled = poller.stop()

        ack = res.latencies_ms()
        planned = {s.reply_token: p for s, p in zip(shots, res.planned, strict=True)}
        reply = [(at - planned[t]) * 1000 for t, at in got.items()]
        c.emit(f"mem.{mode}.events", len(shots))
        c.emit(f"mem.{mode}.replies", len(got))
        c.emit(f"mem.{mode}.ack_p99_ms", c.percentile(ack, 99))
        c.emit(f"mem.{mode}.reply_p50_ms", c.percentile(reply, 50))
        c.emit(f"mem.{mode}.reply_p95_ms", c.percentile(reply, 95))
        for name, pid in pids.items():
            c.emit(f"mem.{mode}.{name}_max_polled_rss_mb", polled[name] / 1024)
            c.emit(f"mem.{mode}.{name}_peak_rss_mb", (c.proc_status_kb(pid, "VmHWM") or 0) / 1024)
        if len(got) < len(tokens):
            c.note(f"{mode}: {len(tokens) - len(got)} replies still missing when measuring stopped")
    finally:
        try:
            c.stop_all(f"mem.{mode}", procs)
        finally:
            if mode == "redis":
                c.redis_cleanup(prefix)


def main() -> int:
    """Measure both modes and print one figure per line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=40.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration")
    parser.add_argument("--users", type=int, default=50, help="rotating senders")
    parser.add_argument("--drain-seconds", type=float, default=40.0)
    parser.add_argument("--modes", default="embedded,redis", help="comma-separated modes to run")
    args = parser.parse_args()

    c.note("memory; 127.0.0.1 only")
    c.emit("mem.background_busy_cores", c.background_load())
    fake = FakeLine(c.HOST, 0).start()
    try:
        with c.workdir("mem") as wd, c.Generator() as gen:
            for mode in (m.strip() for m in args.modes.split(",") if m.strip()):
                run_mode(mode, fake, gen, wd, args)
        errors = fake.errors
        c.emit("mem.fake_line_rejections", len(errors))
        for e in errors[:5]:
            c.note(f"fake LINE rejected: {e[:300]}")
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
