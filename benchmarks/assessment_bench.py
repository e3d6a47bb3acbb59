"""The skills assessment by buttons alone: how many turns, and how fast each answer comes.

``bot serve`` (embedded: SQLite, no Redis; or ``--shared``: Redis + PostgreSQL with a
``bot worker``) runs as a subprocess against the fake LINE API in this process. Each
simulated user starts the assessment by typing, then always presses the first quick-reply
button of the last answer (a postback or a message action, as a phone would send it)
until the result carousel arrives. Users run concurrently (``--users``), one turn at a time
each, like people tapping.

Prints the turns to finish (target: the same for everyone, 9 or fewer), the p50/p95/max
time from the signed webhook POST to the reply reaching LINE during the assessment, and the
same for a greeting measured in the same run as the baseline (ratio = assessment / greeting).

Usage: ``.venv/bin/python benchmarks/assessment_bench.py [--users N] [--shared]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from typing import Any

import _common as c
import httpx

c.ensure_root_on_path()
from tests.fakeline import FakeLine  # noqa: E402

MAX_TURNS = 20
#: Pause between a reply and the next tap (people read before they tap).
THINK_SECONDS = 0.5


def _sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(c.SECRET.encode(), body, hashlib.sha256).digest()).decode()


def _event(user: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": "01" + uuid.uuid4().hex[:24].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        **extra,
    }


def _text(user: str, text: str) -> dict[str, Any]:
    return _event(
        user,
        "message",
        message={
            "id": str(uuid.uuid4().int)[:18],
            "type": "text",
            "text": text,
            "quoteToken": uuid.uuid4().hex,
        },
    )


class Client:
    """One simulated user: post an event, wait for the reply with its token."""

    def __init__(self, url: str, fake: FakeLine, user: str) -> None:
        self.url = url
        self.fake = fake
        self.user = user
        self.http = httpx.Client(timeout=10)

    def send(self, event: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
        body = json.dumps(
            {"destination": "U" + "f" * 32, "events": [event]}, ensure_ascii=False
        ).encode()
        sent = time.monotonic()
        r = self.http.post(
            f"{self.url}/callback",
            content=body,
            headers={"X-Line-Signature": _sign(body), "Content-Type": "application/json"},
        )
        r.raise_for_status()
        token = event["replyToken"]
        deadline = sent + 15
        while time.monotonic() < deadline:
            time.sleep(0.01)  # arrival time is the fake's own record; polling only collects it
            for rec in reversed(self.fake.calls("reply")):
                if rec.body.get("replyToken") == token:
                    return rec.body["messages"], (rec.at - sent) * 1000
        raise RuntimeError(f"no reply for {self.user} within 15 s")

    def press_first(self, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
        for m in reversed(messages):
            items = (m.get("quickReply") or {}).get("items") or []
            for item in items:
                a = item["action"]
                if a["type"] == "postback":
                    return _event(self.user, "postback", postback={"data": a["data"]})
                if a["type"] == "message":
                    return _text(self.user, a["text"])
        return None


def _finished(messages: list[dict[str, Any]]) -> bool:
    return any(m["type"] == "flex" and m["contents"].get("type") == "carousel" for m in messages)


def one_user(url: str, fake: FakeLine, n: int, out: dict[str, Any]) -> None:
    client = Client(url, fake, "U" + uuid.uuid5(uuid.NAMESPACE_OID, f"bench-{n}").hex)
    _, hello_ms = client.send(_text(client.user, "สวัสดีครับ"))
    messages, ms = client.send(_text(client.user, "อยากทำแบบประเมินทักษะ"))
    latencies = [ms]
    turns = 1
    while not _finished(messages) and turns < MAX_TURNS:
        event = client.press_first(messages)
        if event is None:
            break
        time.sleep(THINK_SECONDS)
        messages, ms = client.send(event)
        latencies.append(ms)
        turns += 1
    out[client.user] = {
        "turns": turns,
        "finished": _finished(messages),
        "latencies": latencies,
        "hello": hello_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--shared", action="store_true", help="Redis + PostgreSQL + bot worker")
    args = parser.parse_args()
    c.note(f"machine busy cores before start: {c.background_load():.2f}")
    with c.workdir("assessment") as work, FakeLine(max_records=None) as fake:
        env = c.bot_env(
            LINE_CHANNEL_SECRET=c.SECRET,
            LINE_API_BASE_URL=fake.base_url,
            DATA_DIR=str(work / "data"),
            DATABASE_URL=f"sqlite:///{work}/bot.db",
            KB_WATCH="false",
            LOADING_AFTER_SECONDS="5",
        )
        procs: list[c.Proc] = []
        schema = None
        try:
            if args.shared:
                schema = c.pg_schema("assess")
                url = schema.__enter__()
                env.update(
                    REDIS_URL=c.REDIS_URL,
                    REDIS_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
                    DATABASE_URL=url,
                )
                c.bot_db_upgrade(env)
                procs.append(c.spawn("worker", [str(c.BOT), "worker"], env, work))
            serve = c.start_bot_serve(env, work)
            procs.append(serve)
            results: dict[str, Any] = {}
            threads = [
                threading.Thread(target=one_user, args=(serve.url, fake, i, results))
                for i in range(args.users)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
        finally:
            for p in procs:
                p.stop()
            if schema is not None:
                schema.__exit__(None, None, None)
    turns = [r["turns"] for r in results.values()]
    done = sum(1 for r in results.values() if r["finished"])
    lat = [ms for r in results.values() for ms in r["latencies"]]
    hello = [r["hello"] for r in results.values()]
    c.note(
        f"{args.users} users, {'shared (Redis+PostgreSQL)' if args.shared else 'embedded (SQLite)'}"
    )
    c.emit("assessment.users_finished", done)
    c.emit("assessment.turns_by_buttons", max(turns) if turns else 0)
    c.emit("assessment.turns_min", min(turns) if turns else 0)
    c.emit("assessment.turns_measured", len(lat))
    c.emit("assessment.p50_ms", c.percentile(lat, 50))
    c.emit("assessment.p95_ms", c.percentile(lat, 95))
    c.emit("assessment.max_ms", max(lat) if lat else 0.0)
    c.emit("greeting.p50_ms", c.percentile(hello, 50))
    c.emit("greeting.p95_ms", c.percentile(hello, 95))
    c.emit("assessment.p95_ratio_vs_greeting", c.percentile(lat, 95) / c.percentile(hello, 95))
    c.emit("wall_s", wall)
    c.emit("rejected_by_fake_line", len(fake.errors))
    c.target("assessment.finished", done == args.users, "every user reached the result")
    c.target("assessment.turns", bool(turns) and max(turns) <= 9, "9 turns or fewer by buttons")


if __name__ == "__main__":
    main()
