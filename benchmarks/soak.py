"""Soak: the bot under LINE-like traffic for ten minutes while its parts fail.

One ``bot serve`` and two ``bot worker`` processes, with a redis-server (append-only file
on) and a PostgreSQL cluster of this script's own, so they can be killed and restarted
without touching the shared services; the fake LINE API runs in this process, and a
spawned load generator behaves like LINE: a webhook answered with anything but 200 (or not
answered) is redelivered later, re-signed, with ``deliveryContext.isRedelivery: true``.
Reply tokens expire at the fake ``--reply-token-ttl`` seconds after the event, as LINE's
do, so a late answer has to go by push.

Faults (``--faults``, default all of them):

* ``kill``: SIGKILL worker 2 every ``--kill-every`` s and start it again at once (worker 1
  lives through the run, so its memory is measured over the whole of it);
* ``redis``: SIGKILL redis-server once, start it again ``--redis-down`` s later on the same
  append-only file;
* ``postgres``: stop PostgreSQL in immediate mode (a crash) once, start it again
  ``--pg-down`` s later;
* ``line``: the fake LINE API answers 5 % of calls 500 and 1 % 429 for
  ``--line-fault-seconds`` (no effect on those calls: nothing delivered).

Printed (``name value``, plus ``TARGET MET``/``TARGET MISSED``): webhooks accepted, on the
first try or after redelivery; events answered, lost (nothing reached the user), answered
twice, answered by push (the reply token had expired), offered "ดูผลลัพธ์"; dead letters
with their reasons; per fault kind the longest time until answers flowed again and until
everything users had sent up to the end of the fault was answered; RSS of every bot process
at the start and the end.

Usage: ``.venv/bin/python benchmarks/soak.py [--seconds 600] [--rate 100] [--users 5000]
[--faults kill,redis,postgres,line]``; the CI version is ``--seconds 60 --faults kill,redis``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing
import os
import pwd
import queue
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as c

c.ensure_root_on_path()
from tests.fakeline import FakeLine, Recorded  # noqa: E402

FAULTS = ("kill", "redis", "postgres", "line")
#: LINE's redelivery intervals are not published; these grow like a polite retrier's.
REDELIVERY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: The fake LINE API's bad minute: status -> share of calls.
LINE_FAULT_RATES = {500: 0.05, 429: 0.01}
#: Memory target: RSS at the end at most this much above the baseline.
RSS_GROWTH_LIMIT = 0.10


# -- services of our own ------------------------------------------------------------------


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready within {timeout}s")


class OwnRedis:
    """A redis-server on a free port with an append-only file, restartable on the same data."""

    def __init__(self, folder: Path, appendfsync: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = c.free_port()
        self.folder = folder
        self.argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            c.HOST,
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            appendfsync,
            "--save",
            "",
            "--logfile",
            str(folder / "redis.log"),
        ]
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{c.HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers PING."""
        import redis

        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def pings() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            _wait(pings, 30, "redis-server")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: what the append-only file is for."""
        if self.popen is not None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class OwnPostgres:
    """A PostgreSQL cluster in a temporary folder on a free port, restartable.

    PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user
    through ``runuser`` (the folder is handed to that user)."""

    def __init__(self, folder: Path) -> None:
        self.bindir = self.find_bindir()
        self.folder = folder
        self.data = folder / "data"
        self.port = c.free_port()
        self.prefix: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                entry = None
            if runuser is None or entry is None:
                raise RuntimeError("running as root, and no runuser or no postgres user")
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            self.prefix = [runuser, "-u", "postgres", "--"]

    @staticmethod
    def find_bindir() -> Path:
        """The newest ``initdb``/``pg_ctl`` pair: on PATH, or Debian's versioned folders."""
        found = shutil.which("pg_ctl")
        if found and shutil.which("initdb"):
            return Path(os.path.realpath(found)).parent
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if not candidates:
            raise RuntimeError("no pg_ctl/initdb found (PATH, /usr/lib/postgresql/*/bin)")
        return candidates[-1].parent

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{c.HOST}:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.prefix, *argv], capture_output=True, timeout=timeout, cwd=self.folder
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace')[-800:]}"
            )

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start and wait until it takes connections (after crash recovery, if any)."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={c.HOST}"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def crash(self) -> None:
        """Immediate shutdown: no checkpoint, crash recovery at the next start."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


# -- the load generator (a spawned process) -------------------------------------------------


@dataclass(frozen=True)
class LoadPlan:
    """What the generator sends: ``rate`` events/s for ``seconds`` from ``users`` senders."""

    url: str
    rate: float
    seconds: float
    users: int
    seed: int
    start: float  # time.monotonic() of the first send
    redeliver_until: float  # LINE stops redelivering after this (time.monotonic())
    connections: int = 256
    timeout: float = 10.0


def run_generator(plan: LoadPlan, out: Any) -> None:
    """Entry point of the generator process; notes go to ``out`` in batches:
    ``("sent", i, event_id, reply_token, user, planned, ts_ms)``,
    ``("ack", i, status, at)`` for every delivery of the webhook, ``("gave_up", i)``,
    and ``("end",)`` last."""
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_generate(plan, out))
    finally:
        loop.close()
        out.put([("end",)])


async def _generate(plan: LoadPlan, out: Any) -> None:
    import aiohttp

    from bot.web.app import sign

    rnd = random.Random(plan.seed)
    users = [c.user_id(rnd) for _ in range(plan.users)]
    destination = c.user_id(rnd)
    notes: list[tuple[Any, ...]] = []
    flushed = asyncio.Event()

    async def flusher() -> None:
        while not flushed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flushed.wait(), 0.2)
            if notes:
                batch = notes[:]
                notes.clear()
                out.put(batch)

    connector = aiohttp.TCPConnector(limit=plan.connections)
    timeout = aiohttp.ClientTimeout(total=plan.timeout)
    flush_task = asyncio.create_task(flusher())
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(envelope: dict[str, Any]) -> int:
            body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Line-Signature": sign(c.SECRET, body),
                "User-Agent": "LineBotWebhook/2.0",
            }
            try:
                async with session.post(plan.url, data=body, headers=headers) as r:
                    await r.read()
                    return r.status
            except (aiohttp.ClientError, TimeoutError, OSError):
                return -1

        async def deliver(i: int, envelope: dict[str, Any]) -> None:
            """Post like LINE: until a 200, redelivering with isRedelivery true."""
            delays = iter(REDELIVERY_DELAYS)
            while True:
                status = await post(envelope)
                notes.append(("ack", i, status, time.monotonic()))
                if status == 200:
                    return
                delay = next(delays, REDELIVERY_DELAYS[-1])
                if time.monotonic() + delay > plan.redeliver_until:
                    notes.append(("gave_up", i))
                    return
                await asyncio.sleep(delay)
                envelope["events"][0]["deliveryContext"] = {"isRedelivery": True}

        tasks: set[asyncio.Task[None]] = set()
        for i in range(int(plan.rate * plan.seconds)):
            planned = plan.start + i / plan.rate
            delay = planned - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            ts_ms = int(time.time() * 1000)
            user = users[rnd.randrange(len(users))]
            token = f"{rnd.getrandbits(128):032x}"
            event = {
                "type": "message",
                "message": {
                    "type": "text",
                    "id": str(rnd.randrange(10**17, 10**18)),
                    "quoteToken": f"{rnd.getrandbits(256):064x}",
                    "text": c.THAI_TEXTS[rnd.randrange(len(c.THAI_TEXTS))],
                },
                "webhookEventId": c.ulid(ts_ms, rnd),
                "deliveryContext": {"isRedelivery": False},
                "timestamp": ts_ms,
                "source": {"type": "user", "userId": user},
                "replyToken": token,
                "mode": "active",
            }
            notes.append(("sent", i, event["webhookEventId"], token, user, planned, ts_ms))
            envelope = {"destination": destination, "events": [event]}
            task = asyncio.create_task(deliver(i, envelope))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.wait(set(tasks))
    flushed.set()
    await flush_task


# -- what happened to every event -----------------------------------------------------------


@dataclass
class Event:
    """One user message: the generator's view and what reached LINE for it."""

    i: int
    event_id: str
    token: str
    user: str
    planned: float
    ts_ms: int
    statuses: list[int] = field(default_factory=list)
    accepted_at: float | None = None
    gave_up: bool = False
    answers: list[tuple[float, str]] = field(default_factory=list)  # (at, "reply"/"push")
    offer_at: float | None = None  # "ดูผลลัพธ์" offered instead (answer held for the tap)
    apology_at: float | None = None
    calls: list[str] = field(default_factory=list)  # every LINE call for it: "reply 400"...

    @property
    def reached_at(self) -> float | None:
        """When the user first got something for this message (answer or offer)."""
        times = [at for at, _how in self.answers]
        if self.offer_at is not None:
            times.append(self.offer_at)
        return min(times) if times else None


class Ledger:
    """Joins the generator's notes with the calls the fake LINE API answered.

    The fake's listener only queues small tuples (it runs on the fake's thread); the
    bookkeeping thread folds them in, together with the generator's notes."""

    def __init__(self, apology: str, retry_key: Any) -> None:
        self.apology = apology
        self.retry_key = retry_key
        self.events: dict[int, Event] = {}
        self.by_token: dict[str, int] = {}
        self.by_key: dict[str, tuple[int, str]] = {}
        self.calls: collections.deque[tuple[str, str, int, float, str]] = collections.deque()
        self.waiting: list[tuple[str, str, int, float, str]] = []  # calls before their note
        self.replied_tokens: set[str] = set()
        self.reply_rejected = 0
        self.push_conflicts = 0
        self.ended = False
        self.new_tokens: collections.deque[tuple[int, str]] = collections.deque()

    # fake LINE's thread
    def on_call(self, rec: Recorded) -> None:
        if rec.kind not in ("reply", "push") or not isinstance(rec.body, dict):
            return
        messages = rec.body.get("messages") or []
        what = "answer"
        for m in messages:
            if m.get("type") == "text" and m.get("text") == self.apology:
                what = "apology"
            for item in (m.get("quickReply") or {}).get("items") or []:
                data = str((item.get("action") or {}).get("data", ""))
                if data.startswith("action=later"):
                    what = "offer"
        ref = (
            rec.body.get("replyToken")
            if rec.kind == "reply"
            else rec.headers.get("x-line-retry-key")
        )
        self.calls.append((rec.kind, str(ref), rec.status, rec.at, what))

    # bookkeeping thread
    def take_notes(self, batch: Sequence[tuple[Any, ...]]) -> None:
        for note in batch:
            if note[0] == "sent":
                _, i, event_id, token, user, planned, ts_ms = note
                self.events[i] = Event(i, event_id, token, user, planned, ts_ms)
                self.by_token[token] = i
                self.by_key[self.retry_key(event_id)] = (i, "answer")
                self.by_key[self.retry_key("apology:" + event_id)] = (i, "apology")
                self.new_tokens.append((ts_ms, token))
            elif note[0] == "ack":
                ev = self.events[note[1]]
                ev.statuses.append(note[2])
                if note[2] == 200 and ev.accepted_at is None:
                    ev.accepted_at = note[3]
            elif note[0] == "gave_up":
                self.events[note[1]].gave_up = True
            elif note[0] == "end":
                self.ended = True

    def fold_calls(self) -> None:
        pending = self.waiting
        self.waiting = []
        while self.calls:
            pending.append(self.calls.popleft())
        for call in pending:
            kind, ref, status, at, what = call
            if kind == "reply":
                if status == 200:
                    self.replied_tokens.add(ref)
                elif status == 400:
                    self.reply_rejected += 1
                i = self.by_token.get(ref)
            else:
                if status == 409:
                    self.push_conflicts += 1
                found = self.by_key.get(ref)
                i = found[0] if found else None
                if found and found[1] == "apology":
                    what = "apology"
            if i is None:
                if status == 200 and (kind == "push" or not self.ended):
                    self.waiting.append(call)  # its note has not arrived yet
                continue
            ev = self.events[i]
            ev.calls.append(f"{kind} {status} {what}")
            if status != 200:
                continue
            if what == "answer":
                ev.answers.append((at, kind))
            elif what == "offer":
                ev.offer_at = ev.offer_at or at
            else:
                ev.apology_at = ev.apology_at or at


# -- faults -------------------------------------------------------------------------------


@dataclass
class Fault:
    """One injected fault: when it began and when the broken part was back."""

    kind: str
    start: float
    end: float
    detail: str = ""


def plan_faults(
    seconds: float, faults: Sequence[str], kill_every: float
) -> list[tuple[float, str]]:
    """Offsets (s into the load) of every fault: kills every ``kill_every`` s (the first
    no later than a quarter of the run), the others spread evenly and 15 s clear of kills."""
    kills: list[float] = []
    if "kill" in faults:
        t = min(kill_every, seconds / 4)
        while t < seconds - 5:
            kills.append(t)
            t += kill_every
    out = [(t, "kill") for t in kills]
    others = [f for f in FAULTS if f != "kill" and f in faults]
    for n, kind in enumerate(others):
        at = seconds * (n + 1) / (len(others) + 1)
        while any(abs(at - k) < 15 for k in kills):
            at += 5
        out.append((at, kind))
    return sorted(out)


class Bot:
    """The bot's processes: serve, worker 1 (never killed), worker 2 (killed and restarted)."""

    def __init__(self, env: dict[str, str], wd: Path) -> None:
        self.env = env
        self.wd = wd
        self.serve = c.start_bot_serve(env, wd)
        self.worker1 = c.spawn("bot-worker-1", [str(c.BOT), "worker"], env, wd)
        self.incarnation = 1
        self.worker2 = c.spawn("bot-worker-2.1", [str(c.BOT), "worker"], env, wd)
        self.all: list[c.Proc] = [self.serve, self.worker1, self.worker2]

    def kill_worker2(self) -> None:
        """SIGKILL worker 2 and start a new one (its log under a new name)."""
        self.worker2.popen.send_signal(signal.SIGKILL)
        self.worker2.popen.wait(10)
        self.incarnation += 1
        self.worker2 = c.spawn(
            f"bot-worker-2.{self.incarnation}", [str(c.BOT), "worker"], self.env, self.wd
        )
        self.all.append(self.worker2)

    def alive(self) -> list[str]:
        """Names of the processes that died unasked."""
        return [p.name for p in (self.serve, self.worker1, self.worker2) if not p.alive()]


# -- the run ---------------------------------------------------------------------------------


class Bookkeeper:
    """Background thread: folds notes and calls in, expires reply tokens at the fake,
    samples RSS and prints progress."""

    def __init__(
        self,
        ledger: Ledger,
        notes: Any,
        fake: FakeLine,
        bot: Bot,
        ttl: float,
        t0: float,
        progress_every: float,
    ) -> None:
        self.ledger = ledger
        self.notes = notes
        self.fake = fake
        self.bot = bot
        self.ttl = ttl
        self.t0 = t0
        self.progress_every = progress_every
        self.rss: dict[str, list[tuple[float, int]]] = collections.defaultdict(list)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bookkeeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_rss = next_progress = time.monotonic()
        while not self._stop.is_set():
            try:
                batch = self.notes.get(timeout=0.1)
            except queue.Empty:
                batch = []
            with self.lock:
                self.ledger.take_notes(batch)
                self.ledger.fold_calls()
            self._expire()
            now = time.monotonic()
            if now >= next_rss:
                next_rss = now + 2.0
                self.sample_rss()
            if now >= next_progress and now > self.t0:
                next_progress = now + self.progress_every
                self.progress()

    def _expire(self) -> None:
        """LINE's reply tokens live about a minute: the fake refuses older ones."""
        cutoff_ms = (time.time() - self.ttl) * 1000
        tokens = self.ledger.new_tokens
        while tokens and tokens[0][0] < cutoff_ms:
            self.fake.expire_reply_token(tokens.popleft()[1])

    def sample_rss(self) -> None:
        now = time.monotonic()
        for name, proc in (
            ("serve", self.bot.serve),
            ("worker1", self.bot.worker1),
            (f"worker2.{self.bot.incarnation}", self.bot.worker2),
        ):
            kb = c.proc_status_kb(proc.pid, "VmRSS")
            if kb:
                self.rss[name].append((now, kb))

    def progress(self) -> None:
        with self.lock:
            evs = list(self.ledger.events.values())
        accepted = sum(1 for e in evs if e.accepted_at is not None)
        reached = sum(1 for e in evs if e.reached_at is not None)
        pushed = sum(1 for e in evs if any(how == "push" for _at, how in e.answers))
        non200 = sum(1 for e in evs for s in e.statuses if s != 200)
        mb = {k: v[-1][1] / 1024 for k, v in self.rss.items() if v}
        c.note(
            f"t={time.monotonic() - self.t0:5.0f}s sent {len(evs)} accepted {accepted} "
            f"answered {reached} backlog {accepted - reached} pushed {pushed} "
            f"webhook non-200 {non200} rss MB "
            + " ".join(f"{k} {v:.0f}" for k, v in mb.items() if not k.startswith("worker2."))
            + f" worker2 {mb.get(f'worker2.{self.bot.incarnation}', 0):.0f}"
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self.lock:
            while True:
                try:
                    self.ledger.take_notes(self.notes.get_nowait())
                except queue.Empty:
                    break
            self.ledger.fold_calls()


def warm_up(url: str, ledger: Ledger, timeout: float) -> None:
    """A few events at 10/s until both workers answer (imports, knowledge, NLU loaded)."""
    rnd = random.Random()
    shots = c.make_shots(30, users=[c.user_id(rnd) for _ in range(30)])
    for shot in shots:
        request = urllib.request.Request(
            url,
            data=shot.body,
            headers={"Content-Type": "application/json", "X-Line-Signature": shot.signature},
        )
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(request, timeout=10).close()
        time.sleep(0.1)
    wanted = {s.reply_token for s in shots}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ledger.fold_calls()
        if wanted <= ledger.replied_tokens:
            return
        time.sleep(0.2)
    missing = len(wanted - ledger.replied_tokens)
    raise RuntimeError(f"warm-up: {missing} of {len(wanted)} events unanswered after {timeout}s")


def inject(
    kind: str,
    bot: Bot,
    redis_srv: OwnRedis,
    pg: OwnPostgres | None,
    args: Any,
    fake: FakeLine,
    seed: int,
) -> Fault:
    """Break one part, bring it back; returns when it is back (the LINE fault: at once)."""
    start = time.monotonic()
    if kind == "kill":
        old = bot.worker2.pid
        bot.kill_worker2()
        return Fault(kind, start, time.monotonic(), f"pid {old} -> {bot.worker2.pid}")
    if kind == "redis":
        redis_srv.kill()
        time.sleep(args.redis_down)
        redis_srv.start()
        return Fault(kind, start, time.monotonic(), f"down {args.redis_down:.0f} s")
    if kind == "postgres":
        assert pg is not None
        pg.crash()
        time.sleep(args.pg_down)
        pg.start()
        return Fault(kind, start, time.monotonic(), f"down {args.pg_down:.0f} s")
    fake.fail_rate(LINE_FAULT_RATES, seconds=args.line_fault_seconds, seed=seed)
    return Fault(kind, start, start + args.line_fault_seconds, "5% 500, 1% 429")


@contextlib.contextmanager
def own_postgres(wd: Path) -> Iterator[tuple[str, OwnPostgres | None]]:
    """Our own cluster when possible; else (printed) a schema on the shared server, and no
    PostgreSQL restart."""
    pg: OwnPostgres | None = None
    # A folder of its own in the temp dir: the work dir is private to this user, and the
    # cluster may run as another one (postgres, when we are root).
    folder = Path(tempfile.mkdtemp(prefix="soak-pg-"))
    try:
        pg = OwnPostgres(folder)
        pg.init()
        pg.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        c.note(f"NOTE: no PostgreSQL of our own ({exc}); using a schema on the shared one")
        c.note("NOTE: the postgres fault (restart) is skipped")
        pg = None
    try:
        if pg is not None:
            try:
                yield pg.url, pg
            finally:
                pg.stop()
            return
        with c.pg_schema("soak") as url:
            yield url, None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pct(values: Sequence[float], q: float) -> float:
    return c.percentile(values, q) if values else float("nan")


def report(
    ledger: Ledger,
    faults: list[Fault],
    rss: dict[str, list[tuple[float, int]]],
    t0: float,
    baseline_at: float,
    db: dict[str, Any],
    fake: FakeLine,
) -> tuple[dict[str, float], list[Event]]:
    """Print every figure and target; returns them and the events lost or answered twice."""
    evs = sorted(ledger.events.values(), key=lambda e: e.i)
    accepted = [e for e in evs if e.accepted_at is not None]
    first_try = sum(1 for e in evs if e.statuses[:1] == [200])
    answered = [e for e in accepted if e.answers]
    twice = [e for e in accepted if len(e.answers) > 1]
    pushed = [e for e in answered if e.answers[0][1] == "push"]
    offered = [e for e in accepted if not e.answers and e.offer_at is not None]
    apologised = [e for e in accepted if e.apology_at is not None]
    lost = [e for e in accepted if e.reached_at is None and e.apology_at is None]
    unanswered = [e for e in accepted if e.reached_at is None]
    latency = [e.reached_at - e.planned for e in accepted if e.reached_at is not None]
    statuses = collections.Counter(s for e in evs for s in e.statuses)

    f: dict[str, float] = {}

    def put(name: str, value: float) -> None:
        f[name] = value
        c.emit(f"soak.{name}", value)

    put("events_sent", len(evs))
    put("webhooks_accepted", len(accepted))
    put("webhooks_accepted_first_try", first_try)
    put("webhooks_accepted_after_redelivery", len(accepted) - first_try)
    put("webhooks_never_accepted", len(evs) - len(accepted))
    put("webhook_non_200_answers", sum(n for s, n in statuses.items() if s != 200))
    for s, n in sorted(statuses.items()):
        if s != 200:
            c.note(f"webhook answered {s if s > 0 else 'no answer'}: {n} times")
    put("answered", len(answered))
    put("answered_by_reply", len(answered) - len(pushed))
    put("answered_by_push", len(pushed))
    put("offered_result_button", len(offered))
    put("apologised", len(apologised))
    put("lost", len(lost))
    put("unanswered", len(unanswered))
    put("answered_twice", len(twice))
    put("reply_token_rejected_calls", ledger.reply_rejected)
    put("push_retry_key_conflicts", ledger.push_conflicts)
    for q in (50, 95, 99):
        put(f"answer_latency_p{q}_s", _pct(latency, q))
    put("answer_latency_max_s", max(latency) if latency else float("nan"))
    for e in (lost + twice)[:10]:
        c.note(
            f"{'LOST' if e in lost else 'TWICE'} event {e.event_id} user {e.user} token "
            f"{e.token} sent at {e.planned - t0:.1f} s, webhook statuses {e.statuses}, "
            f"LINE calls {e.calls}"
        )

    put("dead_letters", db.get("dead_letters", float("nan")))
    for reason, n in db.get("dead_reasons", []):
        c.note(f"dead letter x{n}: {reason}")
    for status, n in sorted(db.get("event_log", {}).items()):
        put(f"event_log.{status}", n)

    stats = fake.stats()["by_kind"]
    injected = {s: sum(int(v.get(str(s), 0)) for v in stats.values()) for s in LINE_FAULT_RATES}
    for s, n in injected.items():
        put(f"line_calls_answered_{s}", n)
    put("fake_line_rejections", len(fake.errors))
    for err in fake.errors[:5]:
        c.note(f"fake LINE rejected: {err[:300]}")

    # Recovery: per fault, until answers flowed again (the first answer to a message accepted
    # after the fault began) and until everything sent up to the fault's end was answered.
    worst: dict[str, tuple[float, float]] = {}
    for fault in faults:
        after = [
            e.reached_at
            for e in accepted
            if e.accepted_at is not None and e.accepted_at >= fault.start and e.reached_at
        ]
        resume = (min(after) - fault.start) if after else float("inf")
        # Messages never answered at all are counted as lost above, not as an endless drain.
        upto = [e.reached_at for e in accepted if e.planned < fault.end and e.reached_at]
        drain = max(max(upto, default=fault.start) - fault.start, 0.0)
        never = sum(
            1 for e in accepted if fault.start <= e.planned < fault.end and e.reached_at is None
        )
        before = [
            e.reached_at - e.planned
            for e in accepted
            if e.reached_at is not None and fault.start - 10 <= e.planned < fault.start
        ]
        c.note(
            f"fault {fault.kind} at {fault.start - t0:.0f} s "
            f"({fault.detail}; back after {fault.end - fault.start:.1f} s): answers resumed "
            f"{resume:.1f} s, all sent until its end answered {drain:.1f} s after it began "
            f"(median answer time just before: {_pct(before, 50):.1f} s)"
            + (f"; {never} sent during it never answered" if never else "")
        )
        r0, d0 = worst.get(fault.kind, (0.0, 0.0))
        worst[fault.kind] = (max(r0, resume), max(d0, drain))
    for kind, (resume, drain) in worst.items():
        put(f"recovery.{kind}.count", sum(1 for x in faults if x.kind == kind))
        put(f"recovery.{kind}.answers_resumed_max_s", resume)
        put(f"recovery.{kind}.backlog_drained_max_s", drain)

    # Memory: baseline after the first minute of load (or a quarter of a shorter run).
    growth_ok = True
    ends = []

    def order(item: tuple[str, Any]) -> tuple[str, int]:
        head, _, n = item[0].partition(".")
        return head, int(n or 0)

    for name, samples in sorted(rss.items(), key=order):
        if not samples:
            continue
        if name.startswith("worker2."):  # killed every minute: only its size before the kill
            ends.append(samples[-1][1] / 1024)
            c.note(f"{name}: RSS {samples[0][1] / 1024:.0f} MB first, {ends[-1]:.0f} MB last")
            continue
        base = next((kb for t, kb in samples if t >= baseline_at), samples[0][1])
        first, last = samples[0][1], samples[-1][1]
        put(f"rss_mb.{name}.first", first / 1024)
        put(f"rss_mb.{name}.start", base / 1024)
        put(f"rss_mb.{name}.end", last / 1024)
        put(f"rss_mb.{name}.max", max(kb for _t, kb in samples) / 1024)
        growth = (last - base) / base * 100
        put(f"rss_growth_pct.{name}", growth)
        if name in ("serve", "worker1"):
            growth_ok = growth_ok and growth <= RSS_GROWTH_LIMIT * 100

    if ends:
        put("rss_mb.worker2.last_incarnation_end", ends[-1])
        put("rss_mb.worker2.max_end", max(ends))
    c.target("soak.lost", not lost, f"{len(lost)} accepted messages never reached the user")
    c.target("soak.answered_twice", not twice, f"{len(twice)} messages answered more than once")
    c.target(
        "soak.webhooks_accepted",
        len(accepted) == len(evs),
        f"{len(accepted)} of {len(evs)} webhooks got a 200 (first try or redelivered)",
    )
    c.target(
        "soak.dead_letters",
        db.get("dead_letters", 0) == 0,
        f"{db.get('dead_letters', '?')} well-formed events dead-lettered",
    )
    growth_text = ", ".join(
        f"{k} {f.get(f'rss_growth_pct.{k}', float('nan')):+.1f}%" for k in ("serve", "worker1")
    )
    c.target(
        "soak.memory_growth",
        growth_ok,
        f"RSS at the end vs after the first stretch of load: {growth_text} (limit +10%)",
    )
    return f, lost + twice


def explain(
    suspects: Sequence[Event], procs: Sequence[c.Proc], db_url: str, most: int = 10
) -> None:
    """The bot's event-log row and log lines about the first lost or twice-answered events
    (evidence for a bug report)."""
    if not suspects:
        return
    import psycopg

    with contextlib.suppress(psycopg.Error), psycopg.connect(db_url, autocommit=True) as conn:
        for e in suspects[:most]:
            row = conn.execute(
                "SELECT status, delivery, attempts, error FROM event_log"
                " WHERE webhook_event_id = %s",
                (e.event_id,),
            ).fetchone()
            c.note(f"event_log row of {e.event_id}: {row}")
    logs = {p.name: p.log_text().splitlines() for p in procs}
    for e in suspects[:most]:
        for name, lines in logs.items():
            for line in [ln for ln in lines if e.event_id in ln][:4]:
                c.note(f"log of {e.event_id} in {name}: {line[:240]}")


def db_figures(url: str) -> dict[str, Any]:
    """Dead letters (with reasons) and event-log rows per status, from the bot's database."""
    import psycopg

    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute("SELECT status, count(*) FROM event_log GROUP BY status").fetchall()
        out["event_log"] = {str(s): int(n) for s, n in rows}
        rows = conn.execute(
            "SELECT error, count(*) FROM dead_letters GROUP BY error ORDER BY 2 DESC"
        ).fetchall()
        out["dead_reasons"] = [(str(e), int(n)) for e, n in rows]
        out["dead_letters"] = sum(n for _e, n in out["dead_reasons"])
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="load duration")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--users", type=int, default=5000, help="distinct senders")
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated, of {FAULTS}; 'none'"
    )
    parser.add_argument("--kill-every", type=float, default=60.0)
    parser.add_argument("--redis-down", type=float, default=5.0, help="seconds Redis stays down")
    parser.add_argument("--pg-down", type=float, default=5.0, help="seconds PostgreSQL is down")
    parser.add_argument("--line-fault-seconds", type=float, default=60.0)
    parser.add_argument("--appendfsync", default="everysec", choices=("always", "everysec", "no"))
    parser.add_argument(
        "--reply-token-ttl", type=float, default=60.0, help="the fake refuses older tokens"
    )
    parser.add_argument(
        "--redeliver-seconds",
        type=float,
        default=120.0,
        help="LINE keeps redelivering this long after the last message",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=600.0,
        help="after the load, wait at most this long for the last answers",
    )
    parser.add_argument(
        "--drain-idle-seconds",
        type=float,
        default=90.0,
        help="stop draining when no answer arrived for this long",
    )
    parser.add_argument(
        "--rss-baseline-seconds",
        type=float,
        default=60.0,
        help="memory baseline this far into the load (at most a quarter of it)",
    )
    parser.add_argument("--progress-seconds", type=float, default=30.0)
    parser.add_argument(
        "--keep-logs",
        default=None,
        metavar="DIR",
        help="copy every log here at the end (default: to a new /tmp/soak-logs-* folder "
        "only when a message was lost, answered twice or dead-lettered)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the bot processes (e.g. EVENT_LOCK_SECONDS=30); repeatable",
    )
    args = parser.parse_args(argv)
    chosen = [x.strip() for x in args.faults.split(",") if x.strip() and x.strip() != "none"]
    if args.faults.strip() == "all":
        chosen = list(FAULTS)
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {FAULTS}")
    args.fault_list = chosen
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and print its figures."""
    args = parse_args(argv)
    from bot.kb.loader import load_replies
    from bot.pipeline.process import retry_key

    seed = args.seed if args.seed is not None else secrets.randbits(32)
    c.note(
        f"soak: {args.seconds:.0f} s at {args.rate:.0f} events/s from {args.users} users, "
        f"2 workers, faults {args.fault_list or 'none'}; seed {seed}; 127.0.0.1 only"
    )
    c.emit("soak.background_busy_cores", c.background_load())
    ledger = Ledger(load_replies(c.ROOT / "knowledge").text("errors.apology"), retry_key)
    fake = FakeLine(c.HOST, 0, max_records=2000)
    fake.subscribe(ledger.on_call)
    fake.start()
    t_start = time.monotonic()
    faults_done: list[Fault] = []
    figures: dict[str, float] = {}
    with c.workdir("soak") as wd:
        redis_srv = OwnRedis(wd / "redis", args.appendfsync)
        redis_srv.start()
        try:
            with own_postgres(wd) as (db_url, pg):
                if pg is None and "postgres" in args.fault_list:
                    args.fault_list.remove("postgres")
                figures = run(args, seed, ledger, fake, wd, redis_srv, pg, db_url, faults_done)
        finally:
            redis_srv.stop()
            fake.stop()
    c.emit("soak.wall_seconds", time.monotonic() - t_start)
    return 0 if figures else 1


def run(
    args: argparse.Namespace,
    seed: int,
    ledger: Ledger,
    fake: FakeLine,
    wd: Path,
    redis_srv: OwnRedis,
    pg: OwnPostgres | None,
    db_url: str,
    faults_done: list[Fault],
) -> dict[str, float]:
    """Start the bot, warm it up, load it while the faults happen, drain, report."""
    env = c.bot_env(
        REDIS_URL=redis_srv.url,
        REDIS_PREFIX=f"soak-{secrets.token_hex(3)}",
        DATABASE_URL=db_url,
        LINE_API_BASE_URL=fake.base_url,
        **dict(item.split("=", 1) for item in args.env),
    )
    c.bot_db_upgrade(env)
    bot = Bot(env, wd)
    keeper: Bookkeeper | None = None
    gen: multiprocessing.process.BaseProcess | None = None
    try:
        url = bot.serve.url + "/callback"
        warm_up(url, ledger, timeout=120)
        c.note(f"warm-up answered; worker 2 pid {bot.worker2.pid}")
        ctx = multiprocessing.get_context("spawn")
        notes = ctx.Queue()
        t0 = time.monotonic() + 5.0  # the generator process needs a moment to start
        plan = LoadPlan(
            url,
            args.rate,
            args.seconds,
            args.users,
            seed,
            t0,
            t0 + args.seconds + args.redeliver_seconds,
        )
        gen = ctx.Process(target=run_generator, args=(plan, notes), name="soak-generator")
        gen.start()
        keeper = Bookkeeper(
            ledger, notes, fake, bot, args.reply_token_ttl, t0, args.progress_seconds
        )
        schedule = plan_faults(args.seconds, args.fault_list, args.kill_every)
        c.note("fault plan: " + ", ".join(f"{k} at {t:.0f}s" for t, k in schedule))
        for offset, kind in schedule:
            delay = t0 + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            fault = inject(kind, bot, redis_srv, pg, args, fake, seed)
            faults_done.append(fault)
            c.note(
                f"fault {kind} at {fault.start - t0:.1f}s: {fault.detail}; back after "
                f"{fault.end - fault.start:.1f} s"
            )
            died = bot.alive()
            if died:
                c.note(f"process(es) died unasked: {died}")
        gen.join(args.seconds + args.redeliver_seconds + 60)
        # Drain: wait until every accepted message reached its user, or nothing more has
        # arrived for --drain-idle-seconds (longer than a chat lock and a retry), or the deadline.
        deadline = time.monotonic() + args.drain_seconds
        last_left, changed = -1, time.monotonic()
        while time.monotonic() < deadline:
            with keeper.lock:
                ledger.fold_calls()
                left = sum(
                    1
                    for e in ledger.events.values()
                    if e.accepted_at is not None and e.reached_at is None and e.apology_at is None
                )
            if ledger.ended and left == 0:
                break
            if left != last_left:
                last_left, changed = left, time.monotonic()
            elif ledger.ended and time.monotonic() - changed > args.drain_idle_seconds:
                c.note(
                    f"{left} messages still unanswered after {args.drain_idle_seconds:.0f} s idle"
                )
                break
            time.sleep(0.5)
        c.note(f"drained {time.monotonic() - t0 - args.seconds:.0f} s after the last message")
        time.sleep(3.0)  # a late second answer would arrive now
        keeper.sample_rss()
        keeper.stop()
        try:
            db = db_figures(db_url)
        except Exception as exc:  # report what we can
            c.note(f"database figures unavailable: {exc!r}")
            db = {}
        baseline = t0 + min(args.rss_baseline_seconds, args.seconds / 4)
        figures, suspects = report(ledger, faults_done, keeper.rss, t0, baseline, db, fake)
        explain(suspects, bot.all, db_url)
        if args.keep_logs or suspects or db.get("dead_letters"):
            keep = Path(args.keep_logs or tempfile.mkdtemp(prefix="soak-logs-"))
            keep.mkdir(parents=True, exist_ok=True)
            for log in [*wd.glob("*.log"), wd / "redis" / "redis.log"]:
                if log.exists():
                    shutil.copy(log, keep / log.name)
            if pg is not None and (pg.folder / "postgres.log").exists():
                shutil.copy(pg.folder / "postgres.log", keep / "postgres.log")
            c.note(f"bot, Redis and PostgreSQL logs kept in {keep}")
    finally:
        if keeper is not None:
            keeper.stop()
        if gen is not None and gen.is_alive():
            gen.terminate()
        c.stop_all("soak", [p for p in bot.all if p.alive()])
        for proc in bot.all:
            if not proc.alive() and proc.popen.returncode == -signal.SIGKILL:
                lines = proc.log_text().splitlines()
                bad = [ln for ln in lines if any(p in ln for p in c.LOG_PROBLEMS)]
                c.note(f"{proc.name} (killed): {len(bad)} problem log lines")
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
