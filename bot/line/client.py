"""The LINE Messaging API client: the only module that imports the LINE SDK (``linebot.v3``).

Everything else speaks the bot's own types (``bot.line.messages``), so SDK
upgrades stay contained here. Every call has a timeout; 5xx answers and
timeouts are retried with exponential backoff, 429 backs off (honouring
``Retry-After``), and any other 4xx is raised at once as a permanent error.
The hosts are configurable (``LINE_API_BASE_URL``, and ``LINE_API_DATA_URL`` for the
data host that takes rich menu images) so tests and benchmarks reach a local fake LINE
API.

The calls a worker makes (reply, push, multicast, the loading animation, a profile, the
quota before a notice run, linking and unlinking one user's rich menu) are LINE's JSON over
``bot.line.http``; the SDK, whose import is about 34 MB of a process, is imported on the first
call that deploys rich menus (``bot richmenu``), so a worker and ``bot serve`` never load it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from bot.line.calls import (
    InvalidReplyToken,
    PermanentLineError,
    RetryPolicy,
    TransientLineError,
)
from bot.line.http import (
    LineHttp,
    LineStatus,
    detail,
    dumps,
    environment_names_a_proxy,
    seconds,
)
from bot.line.messages import MAX_MESSAGES, Message

if TYPE_CHECKING:
    from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, AsyncMessagingApiBlob

log = logging.getLogger(__name__)
T = TypeVar("T")

#: LINE's data host (rich menu images, message contents); see ``LINE_API_DATA_URL``.
LINE_DATA_API = "https://api-data.line.me"


def _payload(messages: Sequence[Message]) -> list[dict[str, Any]]:
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise ValueError(f"LINE takes 1 to {MAX_MESSAGES} messages per call, got {len(messages)}")
    return [m.to_line() for m in messages]


def _quoted(segment: str) -> str:
    """One path segment, every reserved character escaped (as the SDK does)."""
    return urllib.parse.quote(segment, safe="")


async def _sdk(call: Awaitable[T]) -> T:
    """An SDK call, its refusals as :class:`LineStatus` (what ``LineClient._call`` reads)."""
    from linebot.v3.messaging.exceptions import ApiException

    try:
        return await call
    except ApiException as exc:
        retry_after = None
        for k, v in dict(exc.headers or {}).items():
            if str(k).lower() == "retry-after":
                retry_after = seconds(str(v))
        raise LineStatus(int(exc.status or 0), detail(exc.body), retry_after) from None


class LineClient:
    """Async LINE Messaging API client with timeouts, retries and backoff."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        policy: RetryPolicy,
        data_url: str = LINE_DATA_API,
    ) -> None:
        self._host = base_url.rstrip("/")
        self._data_host = data_url.rstrip("/")
        self._token = access_token
        self._http = LineHttp(self._host, access_token)
        self._clients: list[AsyncApiClient] = []
        self._sdk_api: AsyncMessagingApi | None = None
        self._sdk_blob: AsyncMessagingApiBlob | None = None
        self.policy = policy

    async def close(self) -> None:
        """Release the HTTP connection pools."""
        await self._http.close()
        for client in self._clients:
            await client.close()
        self._clients.clear()
        self._sdk_api = self._sdk_blob = None

    def _sdk_client(self, host: str) -> AsyncApiClient:
        from linebot.v3.messaging import AsyncApiClient, Configuration

        client = AsyncApiClient(Configuration(host=host, access_token=self._token))
        session = getattr(client.rest_client, "pool_manager", None)
        if isinstance(session, aiohttp.ClientSession) and hasattr(session, "_trust_env"):
            # the SDK opens its session with trust_env=True: the same rule as ours
            session._trust_env = environment_names_a_proxy()
        self._clients.append(client)
        return client

    @property
    def _api(self) -> AsyncMessagingApi:
        """The SDK's API for operator calls (imported and opened on first use)."""
        if self._sdk_api is None:
            from linebot.v3.messaging import AsyncMessagingApi

            self._sdk_api = AsyncMessagingApi(self._sdk_client(self._host))
        return self._sdk_api

    def _blob(self) -> AsyncMessagingApiBlob:
        """The data host's API (its connection pool opened on first use)."""
        if self._sdk_blob is None:
            from linebot.v3.messaging import AsyncMessagingApiBlob

            self._sdk_blob = AsyncMessagingApiBlob(self._sdk_client(self._data_host))
        return self._sdk_blob

    async def _call(
        self,
        kind: str,
        make: Callable[[], Awaitable[T]],
        on_status: Callable[[int, str], T | None] | None = None,
        on_transient: Callable[[TransientLineError], None] | None = None,
    ) -> T:
        """Run one LINE call under the retry policy.

        ``on_status`` may turn a specific error status into a result (a push
        whose retry key LINE already accepted answers 409: that is success).
        """
        policy = self.policy
        last: TransientLineError | None = None
        for attempt in range(policy.attempts):
            retry_after: float | None = None
            try:
                return await asyncio.wait_for(make(), policy.timeout)
            except LineStatus as exc:
                status, why = exc.status, exc.detail
                if on_status is not None:
                    handled = on_status(status, why)
                    if handled is not None:
                        return handled
                if status == 429:
                    retry_after = exc.retry_after
                    last = TransientLineError(kind, status, why)
                elif status >= 500 or status == 0:
                    last = TransientLineError(kind, status, why)
                elif kind == "reply" and status == 400 and "reply token" in why.lower():
                    raise InvalidReplyToken(kind, status, why) from None
                else:
                    log.warning(
                        "LINE rejected a call",
                        extra={"kind": kind, "status": status, "detail": why},
                    )
                    raise PermanentLineError(kind, status, why) from None
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = TransientLineError(kind, None, type(exc).__name__)
            if on_transient is not None:
                on_transient(last)
            if attempt + 1 < policy.attempts:
                delay = policy.delay(attempt, retry_after)
                log.info(
                    "LINE call will be retried",
                    extra={
                        "kind": kind,
                        "status": last.status,
                        "attempt": attempt + 1,
                        "delay": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)
        assert last is not None
        raise last

    async def _post(self, path: str, body: dict[str, Any], retry_key: str | None = None) -> None:
        """POST a body that is already LINE's JSON, without the SDK's request models.

        Why: the messages are LINE JSON from the start (``Message.to_line``, the stored
        outbox); building SDK models from them and serialising those back cost about a
        quarter of a worker's CPU per event (42 model builds, ~200 ``.dict()`` calls). LINE's
        rules are kept by ``bot.line.messages`` and checked in tests by the fake LINE API
        against the OpenAPI spec.
        """
        await self._http.call("POST", path, dumps(body), retry_key)

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        """Answer with a reply token (free of charge; single use, valid about a minute).

        If an earlier attempt in this call may have reached LINE (a timeout
        or a 5xx) and a later one finds the token used, the first one was
        delivered: report success rather than let the caller push again.
        """
        body = {"replyToken": reply_token, "messages": _payload(messages)}
        reached = False

        async def send() -> None:
            await self._post("/v2/bot/message/reply", body)

        def may_have_reached(err: TransientLineError) -> None:
            nonlocal reached
            # A timeout or a 5xx may have been delivered; a refused connection was not.
            reached = reached or err.status is not None or err.detail == "TimeoutError"

        def already_used(status: int, detail: str) -> bool | None:
            if status == 400 and "reply token" in detail.lower() and reached:
                log.warning("reply token used by an earlier timed-out attempt; not resending")
                return True
            return None

        try:
            await self._call("reply", send, already_used, may_have_reached)
        except TransientLineError as exc:
            exc.may_have_reached = reached
            raise

    async def push(self, to: str, messages: Sequence[Message], retry_key: str) -> bool:
        """Push with an ``X-Line-Retry-Key``; returns False when LINE had it already (409)."""
        body = {"to": to, "messages": _payload(messages)}

        async def send() -> bool:
            await self._post("/v2/bot/message/push", body, retry_key)
            return True

        return await self._call("push", send, lambda s, _d: False if s == 409 else None)

    async def multicast(
        self, to: Sequence[str], messages: Sequence[Message], retry_key: str
    ) -> bool:
        """Multicast to at most 500 users; False when the retry key was accepted before."""
        if not 1 <= len(to) <= 500:
            raise ValueError("multicast takes 1 to 500 user ids")
        body = {"to": list(to), "messages": _payload(messages)}

        async def send() -> bool:
            await self._post("/v2/bot/message/multicast", body, retry_key)
            return True

        return await self._call("multicast", send, lambda s, _d: False if s == 409 else None)

    async def show_loading(self, chat_id: str, seconds: int = 20) -> None:
        """Show the typing animation in a one-to-one chat (5-60 s, multiples of 5)."""
        seconds = max(5, min(60, 5 * round(seconds / 5)))
        body = dumps({"chatId": chat_id, "loadingSeconds": seconds})

        async def send() -> None:
            await self._http.call("POST", "/v2/bot/chat/loading/start", body)

        await self._call("loading", send)

    async def profile(self, user_id: str) -> dict[str, Any]:
        """The user's display name and language, as LINE reports them (LINE's JSON:
        ``displayName``, ``language``, ...)."""
        path = "/v2/bot/profile/" + _quoted(user_id)

        return await self._call("profile", lambda: self._get(path))

    async def _get(self, path: str) -> dict[str, Any]:
        found = json.loads(await self._http.call("GET", path))
        return found if isinstance(found, dict) else {}

    async def quota(self) -> int | None:
        """This month's message quota (None when unlimited)."""

        async def get() -> int | None:
            found = await self._get("/v2/bot/message/quota")
            return None if found.get("type") == "none" else int(found["value"])

        return await self._call("quota", get)

    async def quota_consumption(self) -> int:
        """Messages counted against the quota so far this month."""

        async def get() -> int:
            return int((await self._get("/v2/bot/message/quota/consumption"))["totalUsage"])

        return await self._call("quota_consumption", get)

    # ------------------------------------------------------------------ rich menus
    # Bodies and answers are LINE's JSON as plain dicts (``bot.richmenu.definitions``
    # builds them); the SDK's models stay in this module.

    async def validate_rich_menu(self, body: dict[str, Any]) -> None:
        """Ask LINE whether a rich menu object is valid (PermanentLineError if not)."""
        from linebot.v3.messaging import RichMenuRequest

        request = RichMenuRequest.from_dict(body)

        async def send() -> None:
            await _sdk(self._api.validate_rich_menu_object(request))

        await self._call("richmenu_validate", send)

    async def create_rich_menu(self, body: dict[str, Any]) -> str:
        """Create a rich menu (without its image yet); returns its id.

        Not idempotent: a retried timeout may leave an extra menu on LINE, which
        ``bot richmenu deploy`` deletes later (it owns every menu with its name prefix).
        """
        from linebot.v3.messaging import RichMenuRequest

        request = RichMenuRequest.from_dict(body)

        async def send() -> str:
            result = await _sdk(self._api.create_rich_menu(request))
            return str(result.rich_menu_id)

        return await self._call("richmenu_create", send)

    async def set_rich_menu_image(
        self, rich_menu_id: str, image: bytes, content_type: str = "image/png"
    ) -> None:
        """Upload a menu's image to the data host (once per menu: LINE refuses a second)."""

        async def send() -> None:
            await _sdk(
                self._blob().set_rich_menu_image(
                    rich_menu_id, image, _headers={"Content-Type": content_type}
                )
            )

        await self._call("richmenu_image", send)

    async def set_default_rich_menu(self, rich_menu_id: str) -> None:
        """Show this menu to every user without a menu of their own (it needs its image)."""

        async def send() -> None:
            await _sdk(self._api.set_default_rich_menu(rich_menu_id))

        await self._call("richmenu_default", send)

    async def default_rich_menu(self) -> str | None:
        """The default rich menu's id, or None when there is none (LINE answers 404)."""

        async def get() -> str | None:
            result = await _sdk(self._api.get_default_rich_menu_id())
            return str(result.rich_menu_id)

        return (
            await self._call("richmenu_default_get", get, lambda s, _d: "" if s == 404 else None)
            or None
        )

    async def rich_menus(self) -> list[dict[str, Any]]:
        """Every rich menu of the channel (LINE's ``RichMenuResponse`` JSON)."""

        async def get() -> list[dict[str, Any]]:
            result = await _sdk(self._api.get_rich_menu_list())
            return [m.to_dict() for m in result.richmenus]

        return await self._call("richmenu_list", get)

    async def delete_rich_menu(self, rich_menu_id: str) -> None:
        """Delete a rich menu (users who had it see the default again)."""

        async def send() -> None:
            await _sdk(self._api.delete_rich_menu(rich_menu_id))

        await self._call("richmenu_delete", send)

    async def create_rich_menu_alias(self, alias_id: str, rich_menu_id: str) -> None:
        """Point a new alias (1-32 of ``[a-z0-9_-]``) at a menu that has its image."""
        from linebot.v3.messaging import CreateRichMenuAliasRequest

        request = CreateRichMenuAliasRequest(richMenuAliasId=alias_id, richMenuId=rich_menu_id)

        async def send() -> None:
            await _sdk(self._api.create_rich_menu_alias(request))

        await self._call("richmenu_alias_create", send)

    async def update_rich_menu_alias(self, alias_id: str, rich_menu_id: str) -> None:
        """Point an existing alias at another menu."""
        from linebot.v3.messaging import UpdateRichMenuAliasRequest

        request = UpdateRichMenuAliasRequest(richMenuId=rich_menu_id)

        async def send() -> None:
            await _sdk(self._api.update_rich_menu_alias(alias_id, request))

        await self._call("richmenu_alias_update", send)

    async def rich_menu_aliases(self) -> dict[str, str]:
        """Every alias of the channel and the menu it points at."""

        async def get() -> dict[str, str]:
            result = await _sdk(self._api.get_rich_menu_alias_list())
            return {str(a.rich_menu_alias_id): str(a.rich_menu_id) for a in result.aliases}

        return await self._call("richmenu_alias_list", get)

    async def rich_menu_of_alias(self, alias_id: str) -> str | None:
        """The menu an alias points at; None when there is no such alias (LINE: 404).
        (Without the SDK: a worker asks this when it links a user's menu.)"""
        path = "/v2/bot/richmenu/alias/" + _quoted(alias_id)

        async def get() -> str | None:
            return str((await self._get(path))["richMenuId"])

        found = await self._call("richmenu_alias_get", get, lambda s, _d: "" if s == 404 else None)
        return found or None

    async def link_rich_menu(self, user_id: str, rich_menu_id: str) -> None:
        """Show this user ``rich_menu_id`` instead of the default (linking again is harmless).
        (Without the SDK: a worker links a user's menu after the assessment.)"""
        path = f"/v2/bot/user/{_quoted(user_id)}/richmenu/{_quoted(rich_menu_id)}"

        async def send() -> None:
            await self._http.call("POST", path)

        await self._call("richmenu_user_link", send)

    async def link_rich_menu_to_users(self, user_ids: Sequence[str], rich_menu_id: str) -> None:
        """Link one menu to up to 500 users at once (LINE applies it shortly after: 202)."""
        from linebot.v3.messaging import RichMenuBulkLinkRequest

        request = RichMenuBulkLinkRequest(richMenuId=rich_menu_id, userIds=list(user_ids))

        async def send() -> None:
            await _sdk(self._api.link_rich_menu_id_to_users(request))

        await self._call("richmenu_bulk_link", send)

    async def unlink_rich_menu(self, user_id: str) -> None:
        """Back to the default menu for this user (harmless when nothing is linked).
        (Without the SDK: a worker unlinks when a user's data is erased.)"""
        path = f"/v2/bot/user/{_quoted(user_id)}/richmenu"

        async def send() -> bool:
            await self._http.call("DELETE", path)
            return True

        await self._call("richmenu_user_unlink", send, lambda s, _d: True if s == 404 else None)

    async def delete_rich_menu_alias(self, alias_id: str) -> None:
        """Delete an alias (the menu stays)."""

        async def send() -> None:
            await _sdk(self._api.delete_rich_menu_alias(alias_id))

        await self._call("richmenu_alias_delete", send)
