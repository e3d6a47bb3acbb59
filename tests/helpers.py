"""Builders for tests: LINE-shaped events, signed posts, and the bot running for real.

``ServerThread`` runs the real app under uvicorn on a free loopback port, and
``WorkerThread`` runs a real queue worker, each on its own event loop, so
tests exercise the same code and network paths as production.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bot.services import Services
from bot.settings import Settings
from bot.web.app import create_app, sign
from bot.workers import run_worker_process

ROOT = Path(__file__).resolve().parent.parent


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


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables reproducing ``settings`` in a subprocess."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "REDIS_", "DATABASE_"))
    }
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
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"],
        env=settings_env(settings) | (extra_env or {}),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
