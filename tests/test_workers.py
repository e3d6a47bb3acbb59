"""Workers under stress: several of them, crashes, Redis restarts, dead letters.

These use real processes where it matters: ``bot worker`` subprocesses that
the test kills with SIGKILL, and a private redis-server (with an append-only
file, as production Redis must have) that the test kills and restarts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from bot.kb.loader import Knowledge, load_replies
from bot.line.messages import postback_data
from bot.pipeline.process import TEST_CRASH_AFTER_HANDLER
from bot.settings import Settings
from bot.storage.db import Assessment, Subscription
from bot.storage.migrate import upgrade
from tests.conftest import SECRET
from tests.conversation import Chat, find_action
from tests.fakeline import FakeLine, Recorded
from tests.helpers import (
    ROOT,
    ServerThread,
    WorkerThread,
    bot_database,
    envelope,
    event_of,
    free_port,
    post_signed,
    run_bot,
    settings_env,
    spawn_bot,
    spawn_worker,
    text_event,
    user_id,
    wait_until,
)

REPLIES = load_replies(ROOT / "knowledge")
#: Seconds a freshly spawned worker process may take to answer its first event: imports, the
#: knowledge, the intent engine from its cache, on a CI machine that runs other tests too.
WORKER_START = 45


@pytest.fixture
def shared(make_shared_settings: Callable[..., Settings]) -> Settings:
    """Redis + PostgreSQL settings with short retry and lock times."""
    return make_shared_settings(event_retry_seconds=1.0, event_lock_seconds=3.0)


def _reply_counts(fake: FakeLine) -> Counter[str]:
    return Counter(to for to, _m in fake.delivered())


def test_two_workers_one_event_one_reply(shared: Settings, fake_line: FakeLine) -> None:
    with ServerThread(shared) as server, WorkerThread(shared), WorkerThread(shared):
        event = text_event("สวัสดี")
        post_signed(server.base_url, SECRET, envelope(event))
        fake_line.wait_for("reply", 1)
        time.sleep(1.5)
        assert len(fake_line.calls("reply", status=None)) == 1


def test_two_workers_share_many_events_each_answered_once(
    shared: Settings, fake_line: FakeLine
) -> None:
    with ServerThread(shared) as server, WorkerThread(shared), WorkerThread(shared):
        events = [text_event("สวัสดี", user_id(i % 7)) for i in range(60)]
        for i in range(0, 60, 3):
            assert (
                post_signed(server.base_url, SECRET, envelope(*events[i : i + 3])).status_code
                == 200
            )
        fake_line.wait_for("reply", 60, timeout=20)
        time.sleep(1.0)
        counts = _reply_counts(fake_line)
        assert len(counts) == 60 and set(counts.values()) == {1}


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_worker_killed_mid_event_is_handled_after_restart_once(
    shared: Settings, fake_line: FakeLine
) -> None:
    settings = shared
    with ServerThread(settings) as server:
        worker = spawn_worker(settings)
        try:
            # The welcome handler asks LINE for the display name; LINE is slow, so the
            # worker sits mid-event (before any answer was decided) when it is killed.
            fake_line.hang_next("profile", 30)
            event = event_of("follow", user_id("new-friend"))
            post_signed(server.base_url, SECRET, envelope(event))
            wait_until(lambda: fake_line.calls("profile", status=0), WORKER_START)
            _kill(worker)
            assert fake_line.calls("reply", status=None) == []
            worker = spawn_worker(settings)
            (reply,) = fake_line.wait_for("reply", 1, timeout=WORKER_START)
            time.sleep(1.5)
            assert reply.body["replyToken"] == event["replyToken"]
            assert len(fake_line.calls("reply", status=None)) == 1
            assert "ผู้ใช้ทดสอบ" in reply.body["messages"][0]["text"]
        finally:
            _kill(worker)


def test_a_worker_process_runs_lean_and_still_answers(
    shared: Settings, fake_line: FakeLine
) -> None:
    """``bot worker`` starts itself again under ``python -OO`` in the same process (about
    7 MB less memory) and answers as before; ``LEAN_BYTECODE=false`` keeps it as started."""
    with ServerThread(shared) as server:
        for lean in (True, False):
            extra = {"LEAN_BYTECODE": str(lean).lower()}
            worker = spawn_worker(shared, extra)
            try:
                event = text_event("สวัสดี", user_id(f"lean-{lean}"))
                post_signed(server.base_url, SECRET, envelope(event))
                wait_until(
                    lambda e=event: any(
                        c.body["replyToken"] == e["replyToken"]
                        for c in fake_line.calls("reply", status=None)
                    ),
                    WORKER_START,
                )
                argv = Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0")
                assert (b"-OO" in argv) is lean, argv
                assert b"bot.cli" in argv and b"worker" in argv
            finally:
                _kill(worker)


def _training_children(parent: int) -> list[int]:
    """Processes ``parent`` started with multiprocessing's spawn (the intent engine's training)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(proc.name))
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_process_killed_while_training_leaves_no_child_behind(
    make_settings: Callable[..., Settings],
) -> None:
    """With no trained intent engine yet (new phrases, a fresh machine) a bot process trains
    it in a child process, so it never loads scikit-learn itself. Killed meanwhile (a
    restart during a deploy, the OOM killer), it leaves no child behind: the child, about
    200 MB, would otherwise wait for work for ever."""
    settings = make_settings()  # its own data folder: no engine trained yet
    upgrade(settings)
    serve = spawn_bot(settings, "serve", "--port", str(free_port()), stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        children = wait_until(lambda: _training_children(serve.pid), WORKER_START, 0.02)
        _kill(serve)
        wait_until(lambda: all(_gone(c) for c in children), 10)
    finally:
        serve.kill()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def test_worker_killed_while_line_answers_does_not_answer_twice(
    shared: Settings, fake_line: FakeLine
) -> None:
    with ServerThread(shared) as server:
        worker = spawn_worker(shared)
        try:
            fake_line.hang_next(
                "reply", 1.0
            )  # LINE takes the reply, our process dies before the answer
            event = text_event("สวัสดี")
            post_signed(server.base_url, SECRET, envelope(event))
            wait_until(lambda: fake_line.calls("reply", status=0), WORKER_START)
            _kill(worker)
            time.sleep(1.2)  # LINE finished delivering the first reply
            worker = spawn_worker(shared)
            wait_until(lambda: len(fake_line.calls("reply", status=None)) >= 2, WORKER_START)
            time.sleep(1.0)
            assert len(fake_line.delivered()) == 1
            assert fake_line.calls("push", status=None) == []
        finally:
            _kill(worker)


def _fills(template: str, text: str) -> bool:
    """``text`` is ``template`` with its placeholders filled in."""
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.fullmatch("(?s)" + "(.+?)".join(re.escape(p) for p in parts), text) is not None


def _rows(settings: Settings, model: type[Assessment] | type[Subscription], user: str) -> int:
    with bot_database(settings) as engine, engine.connect() as conn:
        query = select(func.count()).select_from(model).where(model.line_user_id == user)
        return int(conn.scalar(query) or 0)


def test_worker_dying_after_the_handler_saves_the_assessment_once_and_answers_once(
    shared: Settings, fake_line: FakeLine, kb: Knowledge
) -> None:
    """The last answer of an assessment writes its result (and the opt-in's subscription)
    with the answer it sends. A worker that dies after the handler ran, before that
    commit, leaves neither; the next worker writes one row and sends one reply."""
    user = user_id("dies-after-the-handler")
    last_event = "01" + uuid.uuid4().hex[:24].upper()
    a = kb.assessment

    def option(qid: str, oid: str) -> str:
        found = a.question(qid).option(oid)
        assert found is not None
        return found.label

    with ServerThread(shared) as server:
        # Test-only hook (bot.pipeline.process): this worker dies right after the handler
        # of ``last_event`` ran, before the answer and the handler's writes are stored.
        worker = spawn_worker(shared, {TEST_CRASH_AFTER_HANDLER: last_event})
        c = Chat(server, fake_line, user)
        try:
            answer = c.postback(postback_data("go", i="start_assessment"), timeout=WORKER_START)
            answer = c.press(answer, option("business_stage", "running"))
            answer = c.press(answer, option("sector", "food"))
            answer = c.press(answer, option("sales_channels", "social"))
            answer = c.press(answer, REPLIES.text("assessment.button_done"))
            answer = c.press(answer, option("digital_skill", "basic"))
            answer = c.press(answer, option("goal", "sell_online"))
            answer = c.postback(postback_data("asm", q="province", o="76"))
            yes = find_action(answer, option("notify", "yes"))
            event = event_of("postback", user, postback={"data": yes["data"]})
            event["webhookEventId"] = last_event
            assert post_signed(server.base_url, SECRET, envelope(event)).status_code == 200
            assert worker.wait(30) == 1  # died in the window, by the hook
            token = event["replyToken"]

            def replies_for_it() -> list[Recorded]:
                calls = fake_line.calls("reply", None)
                return [r for r in calls if (r.body or {}).get("replyToken") == token]

            assert replies_for_it() == []
            assert _rows(shared, Assessment, user) == 0  # nothing committed before the answer

            worker = spawn_worker(shared)
            wait_until(replies_for_it, timeout=WORKER_START)
            time.sleep(1.5)  # time for a second answer or write, if there were one
            (reply,) = replies_for_it()
            said = [m.get("text", "") for m in reply.body["messages"]]
            assert any(_fills(v, t) for v in REPLIES.texts["assessment.result"] for t in said)
            assert any(_fills(v, t) for v in REPLIES.texts["assessment.notify_saved"] for t in said)
            assert fake_line.calls("push", status=None) == []
            assert _rows(shared, Assessment, user) == 1
            assert _rows(shared, Subscription, user) == 1
        finally:
            c.close()
            _kill(worker)


def test_failing_event_goes_to_dead_letters_and_replay_answers_once(
    shared: Settings, fake_line: FakeLine
) -> None:
    settings = shared.model_copy(update={"event_max_attempts": 2, "line_max_attempts": 1})
    env = settings_env(settings)
    with ServerThread(settings) as server, WorkerThread(settings):
        fake_line.fail_next("reply", 500, times=2)
        event = text_event("สวัสดี")
        post_signed(server.base_url, SECRET, envelope(event))

        def listed() -> str:
            out = run_bot("events", "dead", env=env, check=True).stdout
            return out if event["webhookEventId"] in out else ""

        listing = wait_until(listed, timeout=20, interval=0.5)
        assert "TransientLineError" in listing
        # LINE was down for the reply; the user is told, politely, once LINE answers again.
        apology = REPLIES.text("errors.apology")
        wait_until(lambda: fake_line.delivered(), timeout=10)
        assert [m["text"] for _to, m in fake_line.delivered()] == [apology]
        replay = run_bot("events", "replay", event["webhookEventId"], env=env)
        assert replay.returncode == 0, replay.stderr
        wait_until(lambda: len(fake_line.delivered()) == 2, timeout=15)
        time.sleep(1.0)
        texts = [m["text"] for _to, m in fake_line.delivered()]
        assert (
            len(texts) == 2 and texts[0] == apology and texts[1] in REPLIES.texts["greeting.hello"]
        )
        again = run_bot("events", "dead", env=env, check=True).stdout
        assert event["webhookEventId"] not in again


def test_embedded_mode_replay_through_the_cli(
    make_settings: Callable[..., Settings], fake_line: FakeLine
) -> None:
    settings = make_settings(event_max_attempts=1, line_max_attempts=1)
    env = settings_env(settings)
    with ServerThread(settings) as server:
        fake_line.fail_next("reply", 500)
        event = text_event("สวัสดี")
        post_signed(server.base_url, SECRET, envelope(event))
        listing = wait_until(
            lambda: (
                (out := run_bot("events", "dead", env=env).stdout)
                and event["webhookEventId"] in out
                and out
            ),
            timeout=15,
            interval=0.3,
        )
        assert "TransientLineError" in listing
        run_bot("events", "replay", event["webhookEventId"], env=env, check=True)
        wait_until(lambda: len(fake_line.delivered()) == 2, timeout=15)
        time.sleep(0.5)
        texts = [m["text"] for _to, m in fake_line.delivered()]
        assert texts[0] == REPLIES.text("errors.apology")
        assert texts[1] in REPLIES.texts["greeting.hello"] and len(texts) == 2


@pytest.fixture
def private_redis() -> Iterator[Callable[[], None]]:
    """A redis-server of this test's own, with an fsync-always append-only file.

    Yields a function that SIGKILLs the server and starts it again on the
    same port and data folder.
    """
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the restart test") if os.environ.get(
            "CI"
        ) else pytest.skip("no redis-server")
    folder = Path(tempfile.mkdtemp(prefix="bot-redis-"))
    port = free_port()
    cmd = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--logfile",
        str(folder / "log"),
    ]
    proc: list[subprocess.Popen[bytes]] = [subprocess.Popen(cmd)]
    client = redis.Redis(port=port)
    wait_until(lambda: _pings(client), 10)

    def restart() -> None:
        proc[0].send_signal(signal.SIGKILL)
        proc[0].wait(10)
        time.sleep(0.5)
        proc[0] = subprocess.Popen(cmd)
        wait_until(lambda: _pings(client), 10)

    restart.url = f"redis://127.0.0.1:{port}/0"  # type: ignore[attr-defined]
    try:
        yield restart
    finally:
        proc[0].send_signal(signal.SIGKILL)
        proc[0].wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_redis_restarted_under_traffic_loses_no_acknowledged_event(
    make_settings: Callable[..., Settings],
    fake_line: FakeLine,
    pg_url: str,
    private_redis: Callable[[], None],
) -> None:
    url = private_redis.url  # type: ignore[attr-defined]
    settings = make_settings(
        redis_url=url, database_url=pg_url, event_retry_seconds=1.0, event_lock_seconds=3.0
    )
    events = [text_event("สวัสดี", user_id(i % 5)) for i in range(80)]
    accepted: list[str] = []
    refused = 0

    def line_platform() -> None:
        """Posts like LINE: a non-2xx answer (or no answer) is redelivered later."""
        nonlocal refused
        for event in events:
            body = envelope(event)
            for _ in range(100):
                try:
                    status = post_signed(server.base_url, SECRET, body).status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    accepted.append(event["replyToken"])
                    break
                refused += 1
                time.sleep(0.1)
            time.sleep(0.02)

    with ServerThread(settings) as server, WorkerThread(settings):
        sender = threading.Thread(target=line_platform)
        sender.start()
        wait_until(lambda: len(accepted) >= 25, 20)
        private_redis()
        sender.join(60)
        assert len(accepted) == len(events)
        wait_until(lambda: len(fake_line.delivered()) >= len(events), timeout=40, interval=0.2)
        time.sleep(1.5)
    counts = _reply_counts(fake_line)
    assert set(counts) == {e["replyToken"] for e in events}
    assert set(counts.values()) == {1}, "an event was answered twice"
