"""Builders for tests: LINE-shaped events, signed posts, and the bot running for real.

``ServerThread`` runs the real app under uvicorn on a free loopback port, and
``WorkerThread`` runs a real queue worker, each on its own event loop, so
tests exercise the same code and network paths as production.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from bot.settings import Settings, to_sync_url
from bot.storage.db import Unanswered
from bot.web.app import create_app, sign
from bot.workers import run_worker_process

ROOT = Path(__file__).resolve().parent.parent


async def add_unanswered(s: AsyncSession, text: str) -> None:
    """A handler's own write (a plain function, not a merged kind): an unanswered text row."""
    s.add(Unanswered(text=text))


def user_id(n: int | str) -> str:
    """A LINE-shaped user id (U + 32 hex), stable for a given ``n``."""
    return "U" + uuid.uuid5(uuid.NAMESPACE_OID, f"user-{n}").hex


def text_event(
    text: str,
    user: str | None = None,
    *,
    ts: int | None = None,
    event_id: str | None = None,
    reply_token: str | None = None,
    mode: str = "active",
    redelivery: bool = False,
) -> dict[str, Any]:
    """A text message event as LINE sends it."""
    return {
        "type": "message",
        "mode": mode,
        "timestamp": ts if ts is not None else int(time.time() * 1000),
        "source": {"type": "user", "userId": user or user_id(1)},
        "webhookEventId": event_id or "01" + uuid.uuid4().hex[:24].upper(),
        "deliveryContext": {"isRedelivery": redelivery},
        "replyToken": reply_token or uuid.uuid4().hex,
        "message": {
            "id": str(uuid.uuid4().int)[:18],
            "type": "text",
            "quoteToken": uuid.uuid4().hex,
            "text": text,
        },
    }


def event_of(kind: str, user: str | None = None, **extra: Any) -> dict[str, Any]:
    """A non-text event (follow, unfollow, postback, join ...) with LINE's common fields."""
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user or user_id(1)},
        "webhookEventId": "01" + uuid.uuid4().hex[:24].upper(),
        "deliveryContext": {"isRedelivery": False},
    }
    if kind not in ("unfollow", "leave"):
        event["replyToken"] = uuid.uuid4().hex
    event.update(extra)
    return event


def envelope(*events: dict[str, Any]) -> bytes:
    """A webhook body with the given events."""
    return json.dumps(
        {"destination": "U" + "f" * 32, "events": list(events)}, ensure_ascii=False
    ).encode()


def post_signed(
    base_url: str, secret: str, body: bytes, signature: str | None = "auto"
) -> httpx.Response:
    """POST a body to /callback signed as LINE does (``signature=None``: unsigned)."""
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Line-Signature"] = sign(secret, body)
    elif signature is not None:
        headers["X-Line-Signature"] = signature
    return httpx.post(f"{base_url}/callback", content=body, headers=headers, timeout=10)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class ServerThread:
    """The real app under uvicorn in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=20)
        return self

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class WorkerThread:
    """A real queue worker (its own Services and event loop) in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.services: Services | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            self.services = Services.build(self.settings)
            self.ready.set()
            try:
                await run_worker_process(
                    self.services, self.services.line_client(), self.stop_event
                )
            finally:
                await self.services.close()

        self.loop.run_until_complete(main())

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        self.ready.wait(20)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=40)


def environment(*drop: str, **extra: str) -> dict[str, str]:
    """This process's environment without the variables whose names start with one of
    ``drop``, plus ``extra``: for a subprocess that must not see the caller's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def run_command(
    command: Sequence[str], *, cwd: Path = ROOT, stdin: str | None = None, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end with its output captured as text; ``options`` as for
    ``subprocess.run`` (``env``, ``timeout``, ``check``). ``stdin`` None: this process's input."""
    return subprocess.run(
        list(command), cwd=cwd, input=stdin, capture_output=True, text=True, **options
    )


def run_bot(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """The ``bot`` command of this checkout (``python -m bot.cli ARGS``), run to its end;
    ``options`` as for :func:`run_command`."""
    return run_command([sys.executable, "-m", "bot.cli", *args], **options)


def run_bot_with(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``bot ARGS`` configured as ``settings`` (a minute at the most)."""
    return run_bot(*args, env=settings_env(settings), timeout=60)


@contextmanager
def bot_database(settings: Settings) -> Iterator[Engine]:
    """An engine on the database of a bot configured as ``settings`` (SQLite or PostgreSQL),
    disposed of afterwards."""
    engine = create_engine(to_sync_url(settings.sqlalchemy_url))
    try:
        yield engine
    finally:
        engine.dispose()


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables reproducing ``settings`` in a subprocess."""
    env = environment("LINE_", "REDIS_", "DATABASE_")
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


def spawn_worker(
    settings: Settings, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``bot worker`` as a separate OS process (so a test can kill -9 it)."""
    return spawn_bot(settings, "worker", extra_env=extra_env)


def spawn_bot(
    settings: Settings,
    *args: str,
    extra_env: dict[str, str] | None = None,
    stderr: int = subprocess.PIPE,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """``bot ARGS`` configured as ``settings`` (plus ``extra_env``) as a separate OS process,
    its output dropped (``new_session``: in a process group of its own, to kill it whole)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        env=settings_env(settings) | (extra_env or {}),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=new_session,
    )


def sphere_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance by Vincenty's formula on a sphere of the mean Earth radius
    (6371.0088 km): a different route to what haversine computes, to check it against."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lng2 - lng1)
    y = math.hypot(
        math.cos(p2) * math.sin(dl),
        math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl),
    )
    x = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.atan2(y, x)


def json_dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON value (a LINE message, a Flex bubble ...), each before the
    objects inside it, in document order."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from json_dicts(value)
    elif isinstance(node, list):
        for item in node:
            yield from json_dicts(item)
