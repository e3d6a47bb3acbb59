"""A local fake of LINE's Messaging API for tests and benchmarks.

Why: the bot reaches LINE only through the SDK, whose host is configurable
(``Configuration(host=fake.base_url)``); pointing it here lets tests see exactly what the
bot would have sent, and be told when LINE would have refused it. Every request is
recorded, then checked against LINE's OpenAPI spec and documented limits
(:mod:`.validate`); a request that fails is answered 400 with a LINE-style error body and
its description is appended to :attr:`FakeLine.errors`, so a test can end with
``assert fake.errors == []``.

The server is aiohttp's low-level server on its own event loop in a daemon thread, so
tests stay synchronous and one hanging request does not block the others. Shared state
is guarded by one lock; everything public is safe to call from the test thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web

from .validate import (
    RICH_MENU_IMAGE_MAX_BYTES,
    SPEC_PATH,
    USER_ID_RE,
    Issue,
    Operation,
    load_validator,
    rich_menu_image_issues,
    summarize,
)

KIND_BY_OPERATION: Final = {
    "replyMessage": "reply",
    "pushMessage": "push",
    "multicast": "multicast",
    "narrowcast": "narrowcast",
    "broadcast": "broadcast",
    "showLoadingAnimation": "loading",
    "getProfile": "profile",
    "getMessageQuota": "quota",
    "getMessageQuotaConsumption": "quota_consumption",
    "validateRichMenuObject": "richmenu_validate",
    "createRichMenu": "richmenu_create",
    "getRichMenu": "richmenu_get",
    "getRichMenuList": "richmenu_list",
    "deleteRichMenu": "richmenu_delete",
    "setRichMenuImage": "richmenu_image",
    "getRichMenuImage": "richmenu_image_get",
    "setDefaultRichMenu": "richmenu_default",
    "getDefaultRichMenuId": "richmenu_default_get",
    "cancelDefaultRichMenu": "richmenu_default_cancel",
    "createRichMenuAlias": "richmenu_alias_create",
    "updateRichMenuAlias": "richmenu_alias_update",
    "getRichMenuAlias": "richmenu_alias_get",
    "getRichMenuAliasList": "richmenu_alias_list",
    "deleteRichMenuAlias": "richmenu_alias_delete",
    "linkRichMenuIdToUser": "richmenu_user_link",
    "unlinkRichMenuIdFromUser": "richmenu_user_unlink",
    "getRichMenuIdOfUser": "richmenu_user_get",
    "linkRichMenuIdToUsers": "richmenu_bulk_link",
}
"""Operations with behaviour get a short kind; every other request is ``"other"``."""

KINDS: Final = frozenset(KIND_BY_OPERATION.values()) | {"other"}
ANY: Final = "*"
DEFAULT_PROFILE: Final[dict[str, Any]] = {"displayName": "ผู้ใช้ทดสอบ", "language": "th"}
CONTROL_PREFIX: Final = "/__fakeline/"
DATA_PREFIX: Final = "/api-data"
"""Requests for LINE's data host (``https://api-data.line.me``) come to the same port
under this prefix: ``FakeLine.data_url`` is ``base_url + DATA_PREFIX``."""
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""What the server reads; LINE's own limits (a 1 MB rich menu image) are checked after."""
RICH_MENU_LIMIT: Final = 1000
RICH_MENU_ALIAS_LIMIT: Final = 1000

_REASONS: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Recorded:
    """One request the fake received, and what it answered."""

    kind: str  # "reply", "push", "multicast", ..., or "other"
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    status: int  # status the fake answered; 0 while the request is still pending (hang)
    at: float  # time.monotonic() when received
    operation: str | None = None  # the spec's operationId, None for unknown paths
    query: str = ""  # raw query string
    request_id: str = ""  # the x-line-request-id the fake answered with
    response: Any = None  # JSON body the fake answered with
    data_host: bool = False  # came to the data host (``FakeLine.data_url``)


class _Countdown(Protocol):
    remaining: int


_C = TypeVar("_C", bound=_Countdown)


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: float | None


@dataclass
class _Rates:
    """Random faults (``FakeLine.fail_rate``): one seeded draw per matching request."""

    kind: str
    cumulative: list[tuple[float, int]]  # (upper bound of the draw, status)
    until: float | None  # time.monotonic() when the mode ends; None: until changed
    rnd: random.Random
    retry_after: float | None


@dataclass
class _Hang:
    seconds: float
    remaining: int
    after_effect: bool


@dataclass
class _Reply:
    status: int
    body: Any  # JSON, or bytes (a downloaded image)
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # LINE refuses a request it should not have had: an error


# Ids need to be unique, not secret; os.urandom costs ~20 us a call in some sandboxes.
_ids = random.Random()


def _new_request_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


def _new_sent_message() -> dict[str, str]:
    # LINE message ids are decimal strings; quote tokens are opaque URL-safe strings.
    return {
        "id": str(_ids.randrange(10**17, 10**18)),
        "quoteToken": f"{_ids.getrandbits(192):048x}",
    }


class FakeLine:
    """Fake LINE Messaging API server. Use as ``with FakeLine() as fake: ...``.

    Configuration (plain attributes, read on every request):
      ``quota_limit``: monthly message limit reported by ``GET /v2/bot/message/quota``
      and enforced like LINE (429 "You have reached your monthly limit.") on push and
      multicast; ``None`` (default) means no limit.
      ``profiles``: ``user_id -> profile dict`` for ``GET /v2/bot/profile/{userId}``
      (``userId`` is filled in); ``None`` as the value makes that user 404.

    Rich menus live in the fake like on LINE (menus, their images, the default menu,
    aliases) until :meth:`reset`; :attr:`rich_menus`, :attr:`rich_menu_images`,
    :attr:`default_rich_menu` and :attr:`rich_menu_aliases` show them. Images go to the
    data host, :attr:`data_url`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_records: int | None = None,
        spec_path: Path = SPEC_PATH,
    ) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        self.data_url = ""
        self.quota_limit: int | None = None
        self.profiles: dict[str, dict[str, Any] | None] = {}
        self._validator = load_validator(spec_path)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._max_records = max_records
        self._requests: list[Recorded] = []  # a list: copying it for snapshots is cheap
        self._errors: list[str] = []
        self._counts: Counter[tuple[str, int]] = Counter()
        self._faults: dict[str, list[_Fault]] = {}
        self._hangs: dict[str, list[_Hang]] = {}
        self._rates: _Rates | None = None
        self._listeners: list[Callable[[Recorded], None]] = []
        self._used_tokens: set[str] = set()
        self._expired_tokens: set[str] = set()
        self._retry_keys: dict[str, tuple[str, list[dict[str, str]]]] = {}
        self._quota_usage = 0
        self._menus: dict[str, dict[str, Any]] = {}
        self._images: dict[str, tuple[str, bytes]] = {}
        self._default_menu: str | None = None
        self._aliases: dict[str, str] = {}
        self._user_menus: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.ServerRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeLine:
        """Bind the port and serve from a background thread; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("FakeLine already started")
        self._start_error = None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        shown_host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.base_url = f"http://{shown_host}:{self.port}"
        self.data_url = self.base_url + DATA_PREFIX
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sock, ready), name=f"fakeline:{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeLine did not start within 10 s")
        if self._start_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("FakeLine failed to start") from self._start_error
        return self

    def stop(self) -> None:
        """Stop serving (cuts short any injected hang) and join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                fut.result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeLine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        try:
            import uvloop  # faster loop when available (uvicorn[standard] brings it)

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - depends on the environment
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup(sock))
        except BaseException as exc:  # reported to start() in the caller's thread
            self._start_error = exc
            sock.close()
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self, sock: socket.socket) -> None:
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()

        def make_request(*args: Any) -> web.BaseRequest:
            return web.BaseRequest(*args, loop, client_max_size=MAX_BODY_BYTES)

        server = web.Server(self._handle, request_factory=make_request, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ test API
    @property
    def requests(self) -> list[Recorded]:
        """Every request received, in arrival order (a snapshot; with ``max_records``,
        the newest that many)."""
        with self._lock:
            cap = self._max_records
            return self._requests[-cap:] if cap is not None else list(self._requests)

    @property
    def errors(self) -> list[str]:
        """One line per request LINE would have rejected (400/401/404/405/413); a
        snapshot. Normal LINE refusals (used reply token, retry-key 409, quota 429) and
        injected faults are not errors."""
        with self._lock:
            return list(self._errors)

    @property
    def quota_usage(self) -> int:
        """Messages counted against the quota so far (push: 1, multicast: len(to))."""
        with self._lock:
            return self._quota_usage

    def take_errors(self) -> list[str]:
        """The errors so far, forgotten (for a test that provokes refusals on purpose);
        records and state stay."""
        with self._lock:
            errors = list(self._errors)
            self._errors.clear()
            return errors

    def assert_no_errors(self) -> None:
        """Raise AssertionError listing every rejected request, if any."""
        errors = self.errors
        if errors:
            raise AssertionError(
                f"fake LINE rejected {len(errors)} request(s):\n  " + "\n  ".join(errors)
            )

    def calls(self, kind: str, status: int | None = 200) -> list[Recorded]:
        """Requests of ``kind`` ("*" for all) answered with ``status`` (None: any)."""
        with self._lock:
            return self._select(kind, status)

    def _select(self, kind: str, status: int | None) -> list[Recorded]:
        cap = self._max_records
        return [
            r
            for r in (self._requests[-cap:] if cap is not None else self._requests)
            if (kind == ANY or r.kind == kind) and (status is None or r.status == status)
        ]

    def delivered(self) -> list[tuple[str, dict[str, Any]]]:
        """``(recipient, message)`` for every message LINE would have delivered:
        successful replies keyed by reply token, pushes by ``to``, and multicasts once
        per recipient per message, in arrival order."""
        out: list[tuple[str, dict[str, Any]]] = []
        for rec in self.requests:
            if rec.status != 200 or not isinstance(rec.body, dict):
                continue
            messages = rec.body.get("messages") or []
            if rec.kind == "reply":
                out.extend((rec.body["replyToken"], m) for m in messages)
            elif rec.kind == "push":
                out.extend((rec.body["to"], m) for m in messages)
            elif rec.kind == "multicast":
                out.extend((uid, m) for uid in rec.body["to"] for m in messages)
        return out

    def wait_for(
        self, kind: str, count: int, timeout: float = 5.0, status: int | None = 200
    ) -> list[Recorded]:
        """Block until at least ``count`` matching calls were answered (for work the bot
        does in the background); raises AssertionError with a summary on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._select(kind, status)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            seen = [
                f"{r.method} {r.path} [{r.kind}] -> {r.status or 'pending'}"
                for r in self._requests[-20:]
            ]
            errors = list(self._errors)
        want = f"status {status}" if status is not None else "any status"
        raise AssertionError(
            f"expected >= {count} {kind!r} call(s) with {want} within {timeout}s, "
            f"got {len(found)}.\n"
            f"last requests:\n  "
            + ("\n  ".join(seen) or "(none)")
            + ("\nerrors:\n  " + "\n  ".join(errors) if errors else "")
        )

    @property
    def rich_menus(self) -> dict[str, dict[str, Any]]:
        """Rich menus by id, as ``GET /v2/bot/richmenu/{id}`` answers (a snapshot)."""
        with self._lock:
            return {k: dict(v) for k, v in self._menus.items()}

    @property
    def rich_menu_images(self) -> dict[str, tuple[str, bytes]]:
        """``menu id -> (content type, bytes)`` of the uploaded images."""
        with self._lock:
            return dict(self._images)

    @property
    def default_rich_menu(self) -> str | None:
        """The default rich menu's id."""
        with self._lock:
            return self._default_menu

    @property
    def user_rich_menus(self) -> dict[str, str]:
        """``user id -> menu id`` of the per-user links."""
        with self._lock:
            return dict(self._user_menus)

    @property
    def rich_menu_aliases(self) -> dict[str, str]:
        """``alias id -> menu id``."""
        with self._lock:
            return dict(self._aliases)

    def reset(self) -> None:
        """Forget records, errors, injected faults (``fail_rate`` too), used/expired reply
        tokens, accepted retry keys, quota usage and rich menus (``quota_limit``,
        ``profiles`` and subscribers are kept)."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()
            self._counts.clear()
            self._faults.clear()
            self._hangs.clear()
            self._rates = None
            self._used_tokens.clear()
            self._expired_tokens.clear()
            self._retry_keys.clear()
            self._quota_usage = 0
            self._menus.clear()
            self._images.clear()
            self._default_menu = None
            self._aliases.clear()
            self._user_menus.clear()

    def expire_reply_token(self, token: str) -> None:
        """From now on ``token`` answers 400 "Invalid reply token" (as after ~1 minute)."""
        with self._lock:
            self._expired_tokens.add(token)

    def fail_next(
        self, kind: str, status: int, times: int = 1, retry_after: float | None = None
    ) -> None:
        """The next ``times`` valid requests of ``kind`` ("*": any) answer ``status``
        before any effect (no delivery, retry key not accepted, token not used)."""
        self._check_kind(kind)
        if times < 1 or not 100 <= status <= 599:
            raise ValueError("times must be >= 1 and status an HTTP status")
        with self._lock:
            self._faults.setdefault(kind, []).append(_Fault(status, times, retry_after))

    def fail_rate(
        self,
        rates: Mapping[int, float],
        *,
        kind: str = ANY,
        seconds: float | None = None,
        seed: int = 0,
        retry_after: float | None = None,
    ) -> None:
        """From now on, answer a random share of the valid requests of ``kind`` ("*": any)
        with an error, as an unwell LINE does for a while: ``rates`` maps a status to the
        fraction of requests that get it (``{500: 0.05, 429: 0.01}``), the rest are served
        normally. Like ``fail_next`` the error comes before any effect (nothing delivered,
        no token used, no retry key accepted), and a pending ``fail_next`` goes first.

        Why seeded: one draw from ``random.Random(seed)`` per matching request, so the
        same sequence of requests meets the same faults. The mode ends after ``seconds``
        (None: until ``fail_rate({})``, another ``fail_rate`` or ``reset``).
        """
        self._check_kind(kind)
        total = 0.0
        cumulative: list[tuple[float, int]] = []
        for status, fraction in rates.items():
            if not 100 <= status <= 599 or not 0.0 <= fraction <= 1.0:
                raise ValueError("rates map HTTP statuses to fractions between 0 and 1")
            total += fraction
            cumulative.append((total, status))
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fractions add up to {total}, more than 1")
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be > 0 (or None)")
        until = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._rates = (
                _Rates(kind, cumulative, until, random.Random(seed), retry_after)
                if cumulative
                else None
            )

    def subscribe(self, listener: Callable[[Recorded], None]) -> None:
        """Call ``listener(record)`` for every request once it is answered.

        Why: a long benchmark can follow every call as it happens with a small
        ``max_records``, instead of keeping (and re-reading) every record. The listener
        runs on the fake's thread, so it must be quick; an exception it raises is
        recorded in :attr:`errors`.
        """
        with self._lock:
            self._listeners.append(listener)

    def hang_next(
        self, kind: str, seconds: float, times: int = 1, *, after_effect: bool = False
    ) -> None:
        """The next ``times`` valid requests of ``kind`` wait ``seconds`` before being
        handled (``after_effect=True``: handled first, then the answer is delayed, as
        when LINE accepted a push but the client timed out). Other requests are served
        meanwhile."""
        self._check_kind(kind)
        if times < 1 or seconds < 0:
            raise ValueError("times must be >= 1 and seconds >= 0")
        with self._lock:
            self._hangs.setdefault(kind, []).append(_Hang(seconds, times, after_effect))

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind != ANY and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {sorted(KINDS)} or '*'")

    def stats(self) -> dict[str, Any]:
        """Counts per kind and status, errors and quota usage (also served at
        ``GET /__fakeline/stats`` for a fake running in another process)."""
        with self._lock:
            by_kind: dict[str, dict[str, int]] = {}
            for (kind, status), n in self._counts.items():
                by_kind.setdefault(kind, {})[str(status)] = n
            return {
                "requests": sum(self._counts.values()),
                "by_kind": by_kind,
                "errors": list(self._errors),
                "quota_usage": self._quota_usage,
            }

    # ------------------------------------------------------------------ serving
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Entry point: a bug in the fake must fail the test, not vanish into a log."""
        try:
            return await self._serve(request)
        except Exception as exc:
            with self._lock:
                self._errors.append(
                    f"{request.method} {request.path} -> 500: fake LINE bug: {exc!r}"
                )
            return web.Response(
                status=500,
                content_type="application/json",
                text='{"message":"fake LINE internal error"}',
            )

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        at = time.monotonic()
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return self._control(request)
        data_host = path.startswith(DATA_PREFIX + "/")
        if data_host:
            path = path[len(DATA_PREFIX) :]
        method = request.method
        headers = {k.lower(): v for k, v in request.headers.items()}
        request_id = _new_request_id()
        match = self._validator.match(method, path)
        op = match.operation
        kind = KIND_BY_OPERATION.get(op.operation_id, "other") if op is not None else "other"
        rec = Recorded(
            kind,
            method,
            path,
            headers,
            None,
            0,
            at,
            operation=op.operation_id if op is not None else None,
            query=request.query_string,
            request_id=request_id,
            data_host=data_host,
        )
        with self._lock:
            self._requests.append(rec)
            cap = self._max_records
            if cap is not None and len(self._requests) > 2 * cap:  # amortised trimming
                del self._requests[:-cap]
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject(rec, 413, [Issue("", "request body too large")])

        if op is None:
            rec.body = _try_json(raw)
            if match.path_known:
                return self._reject(rec, 405, [Issue("", f"{method} is not allowed on this path")])
            return self._reject(rec, 404, [Issue("", "no such path in the Messaging API spec")])
        if op.data_host != data_host:
            rec.body = _try_json(raw)
            where = (
                "the data host https://api-data.line.me (FakeLine.data_url)"
                if op.data_host
                else "https://api.line.me (FakeLine.base_url), not the data host"
            )
            return self._reject(rec, 404, [Issue("", f"{op.operation_id} is served by {where}")])

        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            rec.body = _try_json(raw)
            return self._reject(
                rec,
                401,
                [Issue("Authorization", "must be 'Bearer <channel access token>'")],
                message="Authentication failed. Confirm that the access token in the "
                "authorization header is valid.",
            )

        query = {k: request.query.getall(k) for k in request.query} if request.query_string else {}
        body, issues = self._validator.validate(
            op, match.path_params, query, headers, headers.get("content-type"), raw
        )
        rec.body = body
        if issues:
            return self._reject(rec, 400, issues)

        hang = self._take(self._hangs, kind)
        if hang is not None and not hang.after_effect:
            await self._sleep(hang.seconds)
        fault = self._take(self._faults, kind)
        if fault is None:
            fault = self._draw(kind)
        if fault is not None:
            answer = _fault_reply(fault)
        else:
            answer = self._behave(op, kind, match.path_params, body, headers, request_id, raw)
        if answer.error is not None:
            with self._lock:
                self._errors.append(f"{rec.method} {rec.path} -> {answer.status}: {answer.error}")
        response = self._respond(rec, answer)  # recorded now: the effect has happened
        if hang is not None and hang.after_effect:
            await self._sleep(hang.seconds)
        return response

    def _behave(
        self,
        op: Operation,
        kind: str,
        path_params: dict[str, str],
        body: Any,
        headers: dict[str, str],
        request_id: str,
        raw: bytes = b"",
    ) -> _Reply:
        """LINE's behaviour for a valid request (runs without awaiting: atomic)."""
        if kind.startswith("richmenu_"):
            with self._lock:
                return self._rich_menu(kind, path_params, body, headers, raw)
        if kind == "reply":
            token = body["replyToken"]
            with self._lock:
                if token in self._used_tokens or token in self._expired_tokens:
                    return _Reply(400, {"message": "Invalid reply token"})
                self._used_tokens.add(token)
            return _Reply(200, {"sentMessages": [_new_sent_message() for _ in body["messages"]]})
        if kind in ("push", "multicast", "narrowcast", "broadcast"):
            key = headers["x-line-retry-key"]  # required by validation
            with self._lock:
                accepted = self._retry_keys.get(key)
                if accepted is not None:
                    conflict: dict[str, Any] = {"message": "The retry key is already accepted"}
                    if kind == "push":
                        conflict["sentMessages"] = accepted[1]
                    return _Reply(409, conflict, {"x-line-accepted-request-id": accepted[0]})
                cost = 1 if kind == "push" else len(body["to"]) if kind == "multicast" else 0
                if (
                    cost
                    and self.quota_limit is not None
                    and self._quota_usage + cost > self.quota_limit
                ):
                    return _Reply(429, {"message": "You have reached your monthly limit."})
                sent = [_new_sent_message() for _ in body["messages"]] if kind == "push" else []
                self._retry_keys[key] = (request_id, sent)
                self._quota_usage += cost
            if kind == "push":
                return _Reply(200, {"sentMessages": sent})
            return _Reply(op.success_status, {})
        if kind == "profile":
            user_id = path_params.get("userId", "")
            if USER_ID_RE.match(user_id) is None:
                return _Reply(404, {"message": "Not found"})
            profiles = self.profiles
            if user_id in profiles:
                configured = profiles[user_id]
                if configured is None:
                    return _Reply(404, {"message": "Not found"})
                return _Reply(200, {"userId": user_id, **configured})
            return _Reply(200, {"userId": user_id, **DEFAULT_PROFILE})
        if kind == "quota":
            limit = self.quota_limit
            return _Reply(
                200, {"type": "none"} if limit is None else {"type": "limited", "value": limit}
            )
        if kind == "quota_consumption":
            with self._lock:
                return _Reply(200, {"totalUsage": self._quota_usage})
        return _Reply(op.success_status, {})  # "loading" (202) and everything else

    def _rich_menu(
        self,
        kind: str,
        path_params: dict[str, str],
        body: Any,
        headers: dict[str, str],
        raw: bytes,
    ) -> _Reply:
        """Rich menus, images, the default menu and aliases (called under the lock).

        A refusal the bot should have avoided (an unknown menu, a second image, a menu
        without image made default or aliased, a duplicate alias) is an error; looking
        up something absent (GET) is not."""
        menus, images, aliases = self._menus, self._images, self._aliases
        menu_id = path_params.get("richMenuId", "")
        alias_id = path_params.get("richMenuAliasId", "")

        def refuse(status: int, message: str) -> _Reply:
            return _Reply(status, {"message": message}, error=message)

        def usable(target: Any) -> _Reply | None:
            if target not in menus:
                return refuse(400, f"richmenu not found: {target}")
            if target not in images:
                return refuse(400, "must upload richmenu image before applying it")
            return None

        if kind == "richmenu_validate":
            return _Reply(200, {})
        if kind == "richmenu_create":
            if len(menus) >= RICH_MENU_LIMIT:
                return refuse(400, f"at most {RICH_MENU_LIMIT} rich menus per channel")
            new_id = f"richmenu-{_ids.getrandbits(128):032x}"
            menus[new_id] = {"richMenuId": new_id, **body}
            return _Reply(200, {"richMenuId": new_id})
        if kind == "richmenu_list":
            return _Reply(200, {"richmenus": [dict(m) for m in menus.values()]})
        if kind == "richmenu_alias_list":
            listed = [{"richMenuAliasId": a, "richMenuId": m} for a, m in aliases.items()]
            return _Reply(200, {"aliases": listed})
        if kind == "richmenu_default_get":
            if self._default_menu is None:
                return _Reply(404, {"message": "no default richmenu"})
            return _Reply(200, {"richMenuId": self._default_menu})
        if kind == "richmenu_default_cancel":
            self._default_menu = None
            return _Reply(200, {})
        if kind == "richmenu_get":
            if menu_id not in menus:
                return _Reply(404, {"message": "Not found"})
            return _Reply(200, dict(menus[menu_id]))
        if kind == "richmenu_image_get":
            if menu_id not in images:
                return _Reply(404, {"message": "Not found"})
            media, data = images[menu_id]
            return _Reply(200, data, {"Content-Type": media})
        if kind == "richmenu_alias_get":
            if alias_id not in aliases:
                return _Reply(404, {"message": "Not found"})
            return _Reply(200, {"richMenuAliasId": alias_id, "richMenuId": aliases[alias_id]})
        if kind == "richmenu_delete":
            if menus.pop(menu_id, None) is None:
                return refuse(404, f"richmenu not found: {menu_id}")
            images.pop(menu_id, None)
            if self._default_menu == menu_id:
                self._default_menu = None
            for user in [u for u, m in self._user_menus.items() if m == menu_id]:
                del self._user_menus[user]  # they see the default menu again
            return _Reply(200, {})
        if kind == "richmenu_image":
            if menu_id not in menus:
                return refuse(404, f"richmenu not found: {menu_id}")
            if menu_id in images:
                return refuse(400, "An image has already been uploaded to the richmenu")
            issues = rich_menu_image_issues(
                headers.get("content-type"), raw, menus[menu_id]["size"]
            )
            if issues:
                too_big = len(raw) > RICH_MENU_IMAGE_MAX_BYTES
                message = summarize(issues)
                return _Reply(
                    413 if too_big else 400,
                    {
                        "message": "Request Entity Too Large" if too_big else message,
                        "details": [{"message": i.message, "property": i.property} for i in issues],
                    },
                    error=message,
                )
            images[menu_id] = (headers.get("content-type", "").split(";")[0].strip(), raw)
            return _Reply(200, {})
        if kind == "richmenu_default":
            if menu_id not in menus:
                return refuse(404, f"richmenu not found: {menu_id}")
            problem = usable(menu_id)
            if problem is not None:
                return problem
            self._default_menu = menu_id
            return _Reply(200, {})
        if kind == "richmenu_alias_create":
            new_alias = body["richMenuAliasId"]
            if new_alias in aliases:
                return refuse(400, f"conflict richmenu alias id: {new_alias}")
            if len(aliases) >= RICH_MENU_ALIAS_LIMIT:
                return refuse(400, f"at most {RICH_MENU_ALIAS_LIMIT} rich menu aliases")
            problem = usable(body["richMenuId"])
            if problem is not None:
                return problem
            aliases[new_alias] = body["richMenuId"]
            return _Reply(200, {})
        if kind == "richmenu_alias_update":
            if alias_id not in aliases:
                return refuse(404, f"richmenu alias not found: {alias_id}")
            problem = usable(body["richMenuId"])
            if problem is not None:
                return problem
            aliases[alias_id] = body["richMenuId"]
            return _Reply(200, {})
        if kind == "richmenu_alias_delete":
            if aliases.pop(alias_id, None) is None:
                return refuse(404, f"richmenu alias not found: {alias_id}")
            return _Reply(200, {})
        user_id = path_params.get("userId", "")
        per_user = ("richmenu_user_link", "richmenu_user_unlink", "richmenu_user_get")
        if kind in per_user and USER_ID_RE.match(user_id) is None:
            return refuse(400, f"invalid user id: {user_id}")
        if kind == "richmenu_user_link":
            problem = usable(menu_id)
            if problem is not None:
                return problem
            self._user_menus[user_id] = menu_id
            return _Reply(200, {})
        if kind == "richmenu_bulk_link":
            problem = usable(body["richMenuId"])
            if problem is not None:
                return problem
            bad = [u for u in body["userIds"] if USER_ID_RE.match(u) is None]
            if bad:
                return refuse(400, f"invalid user ids: {bad[:3]}")
            for user in body["userIds"]:
                self._user_menus[user] = body["richMenuId"]
            return _Reply(202, {})
        if kind == "richmenu_user_unlink":
            self._user_menus.pop(user_id, None)
            return _Reply(200, {})
        if kind == "richmenu_user_get":
            if user_id not in self._user_menus:
                return _Reply(404, {"message": "the user has no richmenu"})
            return _Reply(200, {"richMenuId": self._user_menus[user_id]})
        raise AssertionError(f"unhandled rich menu kind {kind}")

    def _reject(
        self, rec: Recorded, status: int, issues: list[Issue], message: str | None = None
    ) -> web.Response:
        with self._lock:
            self._errors.append(f"{rec.method} {rec.path} -> {status}: {summarize(issues)}")
        body: dict[str, Any] = {
            "message": message
            or (
                f"The request body has {len(issues)} error(s)"
                if status == 400
                else _REASONS.get(status, "Error")
            )
        }
        if status == 400:
            body["details"] = [{"message": i.message, "property": i.property} for i in issues]
        return self._respond(rec, _Reply(status, body))

    def _respond(self, rec: Recorded, answer: _Reply) -> web.Response:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-line-request-id": rec.request_id,
        }
        headers.update(answer.headers)
        with self._changed:
            rec.status = answer.status
            rec.response = answer.body
            self._counts[(rec.kind, answer.status)] += 1
            self._changed.notify_all()
        for listener in self._listeners:
            try:
                listener(rec)
            except Exception as exc:
                with self._lock:
                    self._errors.append(f"{rec.method} {rec.path}: subscriber failed: {exc!r}")
        raw = answer.body
        if not isinstance(raw, bytes):
            raw = json.dumps(raw, ensure_ascii=False).encode("utf-8")
        return web.Response(status=answer.status, headers=headers, body=raw)

    def _draw(self, kind: str) -> _Fault | None:
        """The ``fail_rate`` mode's verdict on one request (None: serve it normally)."""
        with self._lock:
            rates = self._rates
            if rates is None:
                return None
            if rates.until is not None and time.monotonic() >= rates.until:
                self._rates = None
                return None
            if rates.kind not in (ANY, kind):
                return None
            x = rates.rnd.random()
            for bound, status in rates.cumulative:
                if x < bound:
                    return _Fault(status, 1, rates.retry_after)
        return None

    def _take(self, queues: dict[str, list[_C]], kind: str) -> _C | None:
        """Consume one unit of an injected fault/hang for ``kind`` (specific before "*")."""
        with self._lock:
            for key in (kind, ANY):
                queue = queues.get(key)
                if queue:
                    item = queue[0]
                    item.remaining -= 1
                    if item.remaining <= 0:
                        queue.pop(0)
                    return item
        return None

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _control(self, request: web.BaseRequest) -> web.Response:
        """Introspection for a fake in another process (benchmarks); never recorded."""
        if request.path == CONTROL_PREFIX + "stats" and request.method == "GET":
            payload: Any = self.stats()
        elif request.path == CONTROL_PREFIX + "reset" and request.method == "POST":
            self.reset()
            payload = {}
        else:
            return web.Response(
                status=404, content_type="application/json", text='{"message":"Not found"}'
            )
        return web.Response(
            status=200,
            content_type="application/json",
            text=json.dumps(payload, ensure_ascii=False),
        )


def _fault_reply(fault: _Fault) -> _Reply:
    body = {"message": _REASONS.get(fault.status, "Error")}
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        ra = fault.retry_after
        headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
    return _Reply(fault.status, body, headers)


def _try_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
