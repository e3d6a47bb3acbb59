"""The web app: ``POST /callback`` for LINE, ``/healthz`` and ``/readyz``, the operators'
endpoints (``/admin``), the console and the read-only insights API (``/api/v1/insights/``).

The webhook does the least it safely can on LINE's clock (2 s): check the
size, check the signature (before anything else looks at the body), check
the envelope, store the events durably with de-duplication, answer. Workers
do everything else. If the queue cannot take the events the answer is 503,
so LINE's redelivery brings them back rather than a 200 that loses them.

``POST /callback`` is a plain ASGI handler that the app dispatches to before FastAPI's
middleware and router: with the console's and the APIs' routes in front of it, matching
the path cost more CPU than the webhook's own work (see ``benchmarks/webhook_accept.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import logs
from bot.console import web as console
from bot.line.events import EnvelopeError, parse_envelope
from bot.queue.base import QueueUnavailable
from bot.services import Services
from bot.settings import Settings
from bot.web import admin, go, insights_api
from bot.workers import start_background

if TYPE_CHECKING:
    from bot.line.calls import Messenger

#: Where LINE posts webhooks.
WEBHOOK_PATH = "/callback"

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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


#: Request ids for webhooks that bring none: a per-process random prefix and a counter
#: (unique like a uuid4 for the logs, without a system call per webhook).
_ids = itertools.count()
_id_prefix = os.urandom(4).hex()


class Webhook:
    """``POST /callback`` as a plain ASGI app: the least work per webhook that keeps every
    guarantee (signature on the raw body, envelope checks, durable de-duplicated enqueue).

    Answers: 200 ``{}`` once the events are stored (or were duplicates), 401 unsigned,
    403 badly signed, 413 too large, 400 not a LINE envelope, 503 queue unavailable (LINE
    redelivers), 500 for an unexpected error (logged).
    """

    def __init__(self, secret: str, limit: int, services: Services) -> None:
        self.secret = secret.encode()
        self.limit = limit
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        signature: bytes | None = None
        declared = b""
        rid = b""
        for name, value in scope["headers"]:
            if name == b"x-line-signature":
                signature = value
            elif name == b"content-length":
                declared = value
            elif name == b"x-request-id":
                rid = value[:64]
        if not rid:
            rid = f"{_id_prefix}{next(_ids):08x}".encode()
        token = logs.request_id.set(rid.decode("latin-1"))
        try:
            status, body = await self._handle(receive, signature, declared)
        except Exception:
            log.exception("webhook failed")
            status, body = 500, b'{"message":"internal error"}'
        finally:
            logs.request_id.reset(token)
        if status == 0:
            return  # the client went away before sending its whole body: nobody to answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", rid),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _read(self, receive: Receive, declared: bytes) -> bytes | None:
        """The body; None as soon as it is (or says it will be) past the limit; b"" with
        ``more_body`` unset never comes: a disconnect raises ``_Gone``."""
        if declared.isdigit() and int(declared) > self.limit:
            return None
        message: Message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= self.limit else None
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _handle(
        self, receive: Receive, signature: bytes | None, declared: bytes
    ) -> tuple[int, bytes]:
        """(status, JSON body) for one webhook; status 0 when the client disconnected."""
        try:
            body = await self._read(receive, declared)
        except _Gone:
            return 0, b""
        if body is None:
            return 413, b'{"message":"body too large"}'
        if signature is None:
            log.warning("webhook refused: bad or missing signature")
            return 401, b'{"message":"bad signature"}'
        digest = base64.b64encode(hmac.digest(self.secret, body, "sha256"))
        if not hmac.compare_digest(digest, signature):
            log.warning("webhook refused: bad or missing signature")
            return 403, b'{"message":"bad signature"}'
        try:
            events = parse_envelope(body)
        except EnvelopeError as exc:
            log.warning("webhook refused: not a LINE envelope", extra={"error": str(exc)[:120]})
            return 400, b'{"message":"not a LINE webhook envelope"}'
        if not events:
            return 200, b"{}"
        try:
            added = await self.services.queue.enqueue(events)
        except QueueUnavailable as exc:
            log.error("queue unavailable; LINE will redeliver", extra={"error": str(exc)})
            return 503, b'{"message":"queue unavailable, please redeliver"}'
        if added < len(events):
            log.info("duplicate events skipped", extra={"count": len(events) - added})
        return 200, b"{}"


class _Gone(Exception):
    """The client disconnected before its body was complete."""


class BotApp(FastAPI):
    """FastAPI, with ``POST /callback`` answered before FastAPI's middleware and routing.

    Everything else (``GET /callback`` too, answered 405) goes through FastAPI as usual.
    """

    webhook: Webhook | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.webhook is not None
            and scope["type"] == "http"
            and scope["path"] == WEBHOOK_PATH
            and scope["method"] == "POST"
        ):
            await self.webhook(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    messenger: Messenger | None = None,
    on_started: Callable[[Services], None] | None = None,
) -> FastAPI:
    """Build the app; with no REDIS_URL it also runs the embedded worker.

    With REDIS_URL this process only acknowledges webhooks and serves the console and
    APIs, so the intent engine and the handlers are loaded on first use (the console's
    inbox needs the engine), not at start. ``on_started`` runs once start-up is done
    (knowledge served, worker started), before the first request (``bot serve`` freezes
    the start-up heap there).
    """
    settings = settings or Settings()
    logs.configure(settings.log_level, settings.json_logs)
    services = Services.build(settings, lazy=settings.redis_url is not None)

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
            from bot.workers import run_worker

            target = messenger or services.line_client()
            worker = asyncio.create_task(run_worker(services, target, stop))
        app.state.services = services
        background = start_background(services, stop)
        if on_started is not None:
            on_started(services)
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            await asyncio.gather(*background, return_exceptions=True)
            await services.close()

    app = BotApp(
        title="Grassroots economy LINE bot", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.webhook = Webhook(settings.channel_secret, settings.max_body_bytes, services)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(admin.router)
    app.include_router(insights_api.router)
    app.include_router(go.router)
    console.mount(app)

    # Only reached when BotApp does not take the request itself (e.g. GET: 405).
    app.router.routes.append(Route(WEBHOOK_PATH, app.webhook, methods=["POST"]))

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
