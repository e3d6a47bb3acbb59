"""Shared pieces of the benchmarks: LINE-like webhook bodies, process control, load generation.

Everything targets 127.0.0.1 only. Load generators run in a separate process (spawned,
see :class:`Generator`) so they do not share a GIL with whatever the benchmark script
itself hosts (the in-process fake LINE API). Times are ``time.monotonic()`` values, which
on Linux is CLOCK_MONOTONIC and therefore comparable across processes on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = ROOT / ".venv" / "bin" / "python"
BOT = ROOT / ".venv" / "bin" / "bot"
HOST = "127.0.0.1"
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

SECRET = "bench-channel-secret-0123456789ab"
TOKEN = "bench-channel-access-token-0123456789abcdef"

#: What Thai users type to a government skills bot. Nothing here hands the chat to staff: a
#: handed-off chat is (by design) not answered by the bot, which would read as lost replies.
THAI_TEXTS = (
    "สวัสดีครับ",
    "สวัสดีค่ะ",
    "หวัดดีจ้า",
    "มีคอร์สอบรมขายของออนไลน์ฟรีไหมคะ",
    "อยากส่งออกทุเรียนไปจีน ต้องเริ่มยังไงครับ",
    "ศูนย์ดิจิทัลชุมชนใกล้บ้านอยู่ที่ไหน",
    "จดทะเบียนพาณิชย์ออนไลน์ต้องใช้เอกสารอะไรบ้างคะ",
    "สมัครเรียนการตลาดออนไลน์ได้ที่ไหนครับ",
    "ร้านกาแฟเล็ก ๆ อยากขายผ่านไลน์แมน ทำยังไงดี",
    "ขอบคุณมากครับ",
)


# -- figures ----------------------------------------------------------------------------------


def emit(name: str, value: float | int | str) -> None:
    """Print one figure as ``name value`` (floats with one decimal, or more when small)."""
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    else:
        text = str(value)
    print(f"{name} {text}", flush=True)


def target(name: str, ok: bool, description: str) -> None:
    """Print whether a target was met (never fails the run)."""
    if ok:
        print(f"TARGET MET {name}: {description}", flush=True)
    else:
        print(f"TARGET MISSED {name}: {description}", flush=True)


def note(text: str) -> None:
    """A comment line (prefixed with #, so figures stay grep-able)."""
    print(f"# {text}", flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- LINE webhook bodies ----------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int, rnd: random.Random) -> str:
    """A ULID-shaped id, the format of LINE's webhookEventId."""
    head = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(rnd.choice(_CROCKFORD) for _ in range(16))


def user_id(rnd: random.Random) -> str:
    """A LINE user id: ``U`` and 32 hex digits."""
    return "U" + f"{rnd.getrandbits(128):032x}"


@dataclass(frozen=True)
class Shot:
    """One webhook request ready to send."""

    body: bytes
    signature: str
    reply_token: str
    user: str


def make_shots(
    n: int,
    *,
    users: Sequence[str] | None = None,
    secret: str = SECRET,
    seed: int | None = None,
    timestamp_ms: int | None = None,
) -> list[Shot]:
    """``n`` signed webhook bodies, one text message event each, with unique ids and tokens.

    ``users`` rotates over a fixed set of senders; without it every event has its own.
    """
    import base64

    ensure_root_on_path()
    from bot.web.app import sign

    rnd = random.Random(seed if seed is not None else secrets.randbits(64))
    destination = user_id(rnd)
    now = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    out: list[Shot] = []
    for i in range(n):
        ts = now + i
        sender = users[i % len(users)] if users else user_id(rnd)
        reply_token = f"{rnd.getrandbits(128):032x}"
        quote = base64.urlsafe_b64encode(rnd.randbytes(96)).decode().rstrip("=")
        event = {
            "type": "message",
            "message": {
                "type": "text",
                "id": str(rnd.randrange(10**17, 10**18)),
                "quoteToken": quote,
                "text": THAI_TEXTS[i % len(THAI_TEXTS)],
            },
            "webhookEventId": ulid(ts, rnd),
            "deliveryContext": {"isRedelivery": False},
            "timestamp": ts,
            "source": {"type": "user", "userId": sender},
            "replyToken": reply_token,
            "mode": "active",
        }
        body = json.dumps(
            {"destination": destination, "events": [event]},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        out.append(Shot(body, sign(secret, body), reply_token, sender))
    return out


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def bot_env(**overrides: str | None) -> dict[str, str]:
    """Environment for a ``bot`` process: test credentials, nothing inherited that matters."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LINE_", "REDIS_", "DATABASE_", "WORKER_", "EVENT_", "BOT_"))
    }
    env.update(
        {
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
            "BOT_ENV": "development",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                note(f"{self.name} ignored SIGTERM for {timeout}s; killing it")
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def spawn(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int | None = None
) -> Proc:
    """Start ``argv`` in the repository root with its output in ``workdir/name.log``."""
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    popen = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    log.close()
    return Proc(name, popen, log_path, port)


def wait_http(proc: Proc, path: str = "/healthz", timeout: float = 60.0) -> None:
    """Wait until ``proc`` answers 200 on ``path``; raise with its log if it dies or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_text()}"
            )
        try:
            with urllib.request.urlopen(proc.url + path, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {path} within {timeout}s:\n{proc.log_text()}")


def start_bot_serve(env: dict[str, str], workdir: Path, name: str = "bot-serve") -> Proc:
    """``bot serve`` on a free port, ready to take webhooks."""
    port = free_port()
    proc = spawn(name, [str(BOT), "serve", "--host", HOST, "--port", str(port)], env, workdir, port)
    wait_http(proc)
    return proc


def start_bare(workdir: Path) -> Proc:
    """The bare FastAPI endpoint (``bare_app.py``) under uvicorn, on a free port."""
    port = free_port()
    argv = [str(PYTHON), str(BENCH_DIR / "bare_app.py"), "--host", HOST, "--port", str(port)]
    proc = spawn("bare", argv, bot_env(), workdir, port)
    wait_http(proc)
    return proc


def start_echo_peer(line_api_base_url: str, workdir: Path) -> Proc:
    """The echo peer (``echo_peer.py``: LINE's fastapi-echo, replying inline) on a free port,
    replying through ``line_api_base_url``."""
    port = free_port()
    argv = [str(PYTHON), str(BENCH_DIR / "echo_peer.py"), "--host", HOST, "--port", str(port)]
    argv += ["--line-api-base-url", line_api_base_url]
    proc = spawn("echo-peer", argv, bot_env(), workdir, port)
    wait_http(proc)
    return proc


def proc_status_kb(pid: int, field_name: str) -> int | None:
    """A ``kB`` field (VmRSS, VmHWM...) of ``/proc/PID/status``; None if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def cpu_of_commands(names: Sequence[str]) -> float:
    """CPU seconds used by every process whose command name is in ``names``, plus their
    reaped children (PostgreSQL forks a backend per connection; their time lands in the
    postmaster's ``cutime`` when they exit)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        if comm in names:
            f = text.rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / ticks


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return (sum(f[:8]) - idle) / ticks, sum(f[:8]) / ticks


def background_load(seconds: float = 1.0) -> float:
    """Average busy cores over ``seconds`` before the benchmark starts anything (other jobs)."""
    busy0, _ = machine_cpu()
    t0 = time.monotonic()
    time.sleep(seconds)
    busy1, _ = machine_cpu()
    return (busy1 - busy0) / (time.monotonic() - t0)


class CpuMeter:
    """CPU used during a stretch of time, per named process and machine-wide."""

    def __init__(self, pids: dict[str, int], commands: dict[str, Sequence[str]]) -> None:
        self.pids = pids
        self.commands = commands
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}
        out.update({name: cpu_of_commands(cmds) for name, cmds in self.commands.items()})
        out["self"] = time.process_time()
        busy, total = machine_cpu()
        out["_busy"], out["_total"], out["_wall"] = busy, total, time.monotonic()
        return out

    def stop(self) -> dict[str, float]:
        """CPU seconds per name since construction; ``machine_busy_cores`` is the average
        number of busy cores over the stretch (everything on the machine, ours or not) and
        ``others_cores`` the part of it not used by the measured processes (other jobs)."""
        end = self._read()
        used = {k: end[k] - self.start[k] for k in end if not k.startswith("_")}
        wall = end["_wall"] - self.start["_wall"]
        used["machine_busy_cores"] = (
            (end["_busy"] - self.start["_busy"]) / wall if wall > 0 else 0.0
        )
        ours = sum(v for k, v in used.items() if k != "machine_busy_cores")
        used["others_cores"] = (
            max(0.0, used["machine_busy_cores"] - ours / wall) if wall > 0 else 0.0
        )
        used["wall"] = wall
        return used


def server_counters(redis_url: str = REDIS_URL, dbname: str = "test") -> dict[str, float]:
    """Counters of Redis (commands run, those inside scripts too, in all and per command)
    and of one PostgreSQL database (transactions, sessions opened): diffs
    over a phase give per-event costs. Exact with a private Redis (``own_redis``) and
    database (``pg_database``); otherwise anything else using the servers is counted too."""
    import psycopg
    import redis

    out: dict[str, float] = {}
    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
        out["redis_commands"] = float(sum(int(v["calls"]) for v in stats.values()))
        for name, v in stats.items():  # per command, e.g. ``redis:evalsha`` (script calls)
            out["redis:" + name.removeprefix("cmdstat_")] = float(v["calls"])
    finally:
        client.close()
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute("SELECT pg_stat_force_next_flush()")
        row = c.execute(
            "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = %s",
            (dbname,),
        ).fetchone()
    if row is not None:
        out["pg_transactions"] = float(row[0])
        out["pg_sessions"] = float(row[1])
    return out


def pg_backend_pids(dbname: str) -> list[int]:
    """The PostgreSQL backends connected to ``dbname`` right now (for their CPU)."""
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        rows = c.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return [int(r[0]) for r in rows]


@contextlib.contextmanager
def own_redis(wd: Path) -> Iterator[tuple[str, int | None]]:
    """A private ``redis-server`` on a free port (no persistence): its command counts and CPU
    are this run's alone. Yields (url, pid); falls back to the shared server (pid None) when
    no ``redis-server`` binary is installed."""
    import shutil

    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        note("no redis-server binary: using the shared Redis (counts include other users)")
        yield REDIS_URL, None
        return
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*argv, "--dir", str(wd)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://{HOST}:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def pg_database(tag: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database (its statistics are this run's alone); yields (url, name)."""
    import psycopg

    name = f"bench_{tag}_{secrets.token_hex(4)}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name, name
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


LOG_PROBLEMS = ("Traceback", "ERROR", "CRITICAL", "Exception", "WARNING")


def stop_all(prefix: str, procs: Sequence[Proc]) -> None:
    """Stop ``procs`` (last started first), report odd exit codes and their logs' problems.

    uvicorn re-raises the SIGTERM it handled after a graceful shutdown, so ``bot serve``
    (and ``bare_app.py``) exiting with -15 is normal; ``bot worker`` should exit 0.
    """
    for proc in reversed(procs):
        code = proc.stop()
        if code not in (0, -signal.SIGTERM) or ("worker" in proc.name and code != 0):
            note(f"{proc.name} exited with {code}")
    for proc in procs:
        text = proc.log_text().splitlines()
        bad = [ln for ln in text if any(p in ln for p in LOG_PROBLEMS)]
        emit(f"{prefix}.{proc.name}.log_problem_lines", len(bad))
        for ln in bad[:5]:
            note(f"{proc.name}: {ln[:300]}")


def redis_cleanup(prefix: str, url: str = REDIS_URL) -> int:
    """Delete every key under ``prefix:``; returns how many."""
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted


def stream_pending(prefix: str, url: str = REDIS_URL) -> int:
    """Work tokens read but not acknowledged in the bot's Redis stream (``P:stream``)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.xpending(f"{prefix}:stream", "workers")
        return int(info["pending"])
    except redis.ResponseError:
        return 0
    finally:
        client.close()


@contextlib.contextmanager
def workdir(tag: str) -> Iterator[Path]:
    """A temporary directory for logs and SQLite files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tag}-") as d:
        yield Path(d)


@contextlib.contextmanager
def pg_schema(tag: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL ``test`` database; yields a DATABASE_URL using it."""
    import psycopg

    name = f"bench_{tag}_{secrets.token_hex(4)}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def bot_db_upgrade(env: dict[str, str]) -> None:
    """``bot db upgrade`` (needed before a worker runs against a database serve never migrated)."""
    subprocess.run(
        [str(BOT), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )


# -- load generation (runs in a spawned child process) ----------------------------------------


@dataclass
class ClosedResult:
    """Closed-loop run: how long the timed part took and what came back."""

    requests: int
    elapsed: float
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else math.nan


@dataclass
class OpenResult:
    """Open-loop run: per request (planned send time, actual send time, done time, status)."""

    planned: list[float]
    sent: list[float]
    done: list[float]
    status: list[int]

    def latencies_ms(self, ok_only: bool = False) -> list[float]:
        """Acknowledgement latency from the *planned* send time (no coordinated omission)."""
        return [
            (d - p) * 1000
            for p, d, s in zip(self.planned, self.done, self.status, strict=True)
            if not ok_only or s == 200
        ]

    def lag_ms(self) -> list[float]:
        """How late the generator actually sent, relative to plan."""
        return [(s - p) * 1000 for p, s in zip(self.planned, self.sent, strict=True)]


def _headers(shot: Shot) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "X-Line-Signature": shot.signature,
        "User-Agent": "LineBotWebhook/2.0",
    }


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


async def _closed(url: str, shots: Sequence[Shot], concurrency: int, warmup: int) -> ClosedResult:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(shot: Shot) -> int:
            try:
                async with session.post(url, data=shot.body, headers=_headers(shot)) as r:
                    await r.read()
                    return r.status
            except (aiohttp.ClientError, TimeoutError, OSError):
                return -1

        async def run(items: Sequence[Shot], record: bool) -> None:
            it = iter(items)

            async def worker() -> None:
                for shot in it:
                    status = await post(shot)
                    if record:
                        statuses[status] = statuses.get(status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await run(shots[:warmup], record=False)
        timed = shots[warmup:]
        t0 = time.perf_counter()
        await run(timed, record=True)
        elapsed = time.perf_counter() - t0
    return ClosedResult(len(timed), elapsed, statuses)


async def _open(url: str, shots: Sequence[Shot], rate: float, max_conns: int) -> OpenResult:
    import aiohttp

    n = len(shots)
    planned = [0.0] * n
    sent = [0.0] * n
    done = [0.0] * n
    status = [0] * n
    connector = aiohttp.TCPConnector(limit=max_conns)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Open a few keep-alive connections before the clock starts.
        health = url.rsplit("/", 1)[0] + "/healthz"

        async def warm() -> None:
            async with session.get(health) as r:
                await r.read()

        await asyncio.gather(*(warm() for _ in range(min(8, max_conns))), return_exceptions=True)

        async def one(i: int) -> None:
            shot = shots[i]
            sent[i] = time.monotonic()
            try:
                async with session.post(url, data=shot.body, headers=_headers(shot)) as r:
                    await r.read()
                    status[i] = r.status
            except (aiohttp.ClientError, TimeoutError, OSError):
                status[i] = -1
            done[i] = time.monotonic()

        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic() + 0.05
        for i in range(n):
            planned[i] = start + i / rate
            delay = planned[i] - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return OpenResult(planned, sent, done, status)


def closed_loop_job(url: str, shots: Sequence[Shot], concurrency: int, warmup: int) -> ClosedResult:
    """Entry point in the generator process: closed loop with ``concurrency`` connections."""
    loop = _new_loop()
    try:
        return loop.run_until_complete(_closed(url, shots, concurrency, warmup))
    finally:
        loop.close()


def open_loop_job(url: str, shots: Sequence[Shot], rate: float, max_conns: int = 256) -> OpenResult:
    """Entry point in the generator process: send ``shots`` at ``rate`` per second."""
    loop = _new_loop()
    try:
        return loop.run_until_complete(_open(url, shots, rate, max_conns))
    finally:
        loop.close()


class Generator:
    """A spawned process that runs load jobs (so the load has its own interpreter and GIL)."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        self.pid: int = self._pool.submit(_ping).result(timeout=60)  # start-up paid before timing

    def closed(
        self, url: str, shots: Sequence[Shot], concurrency: int, warmup: int = 0
    ) -> ClosedResult:
        return self._pool.submit(closed_loop_job, url, list(shots), concurrency, warmup).result()

    def open(
        self, url: str, shots: Sequence[Shot], rate: float, max_conns: int = 256
    ) -> OpenResult:
        return self._pool.submit(open_loop_job, url, list(shots), rate, max_conns).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def _ping() -> int:
    import aiohttp  # noqa: F401  (import cost paid up front)

    return os.getpid()


def ensure_root_on_path() -> None:
    """Let the scripts import ``bot`` and ``tests`` from the repository."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
