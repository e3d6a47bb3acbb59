"""The web app: ``POST /callback`` for LINE, ``/healthz`` and ``/readyz``, the operators'
endpoints (``/admin``), the console and the read-only insights API (``/api/v1/insights/``).

The webhook does the least it safely can on LINE's clock (2 s): check the
size, check the signature (before anything else looks at the body), check
the envelope, store the events durably with de-duplication, answer. Workers
do everything else. If the queue cannot take the events the answer is 503,
so LINE's redelivery brings them back rather than a 200 that loses them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import logs
from bot.console import web as console
from bot.line.client import Messenger
from bot.line.events import EnvelopeError, parse_envelope
from bot.queue.base import QueueUnavailable
from bot.services import Services
from bot.settings import Settings
from bot.web import admin, go, insights_api
from bot.workers import run_worker, start_background

log = logging.getLogger(__name__)


def signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """LINE's scheme: base64(HMAC-SHA256(channel secret, raw body)), compared in constant time."""
    if not signature:
        return False
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.encode())


def sign(secret: str, body: bytes) -> str:
    """The X-Line-Signature LINE would send for ``body`` (for tests and ``bot chat``)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class RequestIdMiddleware:
    """Give every request an id (the caller's X-Request-ID or a new one) for the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:64]
        rid = rid or uuid.uuid4().hex[:16]
        token = logs.request_id.set(rid)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                # A new list: the response's own header list must not grow per request.
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def create_app(settings: Settings | None = None, messenger: Messenger | None = None) -> FastAPI:
    """Build the app; with no REDIS_URL it also runs the embedded worker."""
    settings = settings or Settings()
    logs.configure(settings.log_level, settings.json_logs)
    services = Services.build(settings)
    secret = settings.channel_secret
    limit = settings.max_body_bytes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.local_mode:
            log.warning(
                "LOCAL MODE: no LINE credentials; the webhook accepts bodies signed with the "
                "development secret and replies go to LINE_API_BASE_URL",
                extra={"line_api": settings.line_api_base_url},
            )
        if settings.uses_sqlite:
            from bot.storage.migrate import upgrade

            await asyncio.to_thread(upgrade, settings)
        await services.start_knowledge()
        stop = asyncio.Event()
        worker: asyncio.Task[None] | None = None
        if settings.redis_url is None:
            target = messenger or services.line_client()
            worker = asyncio.create_task(run_worker(services, target, stop))
        app.state.services = services
        background = start_background(services, stop)
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            await asyncio.gather(*background, return_exceptions=True)
            await services.close()

    app = FastAPI(
        title="Grassroots economy LINE bot", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.add_middleware(RequestIdMiddleware)
    app.include_router(admin.router)
    app.include_router(insights_api.router)
    app.include_router(go.router)
    console.mount(app)

    async def callback(request: Request) -> Response:
        """LINE's webhook; a plain Starlette route (no FastAPI dependency solving per event)."""
        body = await _read_limited(request, limit)
        if body is None:
            return _error(413, "body too large")
        if not signature_ok(secret, body, request.headers.get("x-line-signature")):
            log.warning("webhook refused: bad or missing signature")
            return _error(
                401 if "x-line-signature" not in request.headers else 403, "bad signature"
            )
        try:
            events = parse_envelope(body)
        except EnvelopeError as exc:
            log.warning("webhook refused: not a LINE envelope", extra={"error": str(exc)[:120]})
            return _error(400, "not a LINE webhook envelope")
        if not events:
            return Response(b"{}", media_type="application/json")
        try:
            added = await services.queue.enqueue(events)
        except QueueUnavailable as exc:
            log.error("queue unavailable; LINE will redeliver", extra={"error": str(exc)})
            return _error(503, "queue unavailable, please redeliver")
        if added < len(events):
            log.info("duplicate events skipped", extra={"count": len(events) - added})
        return Response(b"{}", media_type="application/json")

    app.router.add_route("/callback", callback, methods=["POST"])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        checks: dict[str, str] = {}
        for name, probe in (("database", services.db.ping), ("queue", services.queue.ping)):
            try:
                await asyncio.wait_for(probe(), 2.0)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
        )

    return app
