"""LINE's JSON calls over one aiohttp connection pool, without the LINE SDK.

Why: a worker's calls to LINE are replies, pushes, multicasts, the loading animation and
profiles, and their bodies are LINE's JSON from the start (``Message.to_line``, the stored
outbox). Going through the SDK's HTTP client for them cost a worker the SDK's import (331
modules with ``requests`` and pydantic v1 models: about 34 MB of every worker's 220 MB,
``benchmarks/memory.py``) and a layer per call. The SDK stays for what operators do
(rich menus, the quota): ``bot.line.client`` imports it on the first such call.

This module knows HTTP only: what LINE answered (:class:`LineStatus`), never what to do
about it; the retry rules live in ``LineClient._call`` and the notice sender.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import aiohttp


class LineStatus(Exception):
    """LINE answered a call with a status other than 2xx."""

    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(f"LINE answered {status}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


def dumps(value: Any) -> bytes:
    """LINE JSON as compact UTF-8 (Thai text is 3 bytes a character, not a 6-byte escape).
    Text that is not valid Unicode (a lone surrogate) goes as JSON escapes, as the SDK sent
    it, rather than failing the call."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def detail(raw: bytes | str | None) -> str:
    """LINE's error ``message`` (its body is ``{"message": ..., "details": [...]}``)."""
    if raw is None:
        return ""
    try:
        parsed = json.loads(raw)
    except ValueError:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        return text[:200]
    return str(parsed.get("message", ""))[:200] if isinstance(parsed, dict) else ""


def seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (None when absent or not a number)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def environment_names_a_proxy() -> bool:
    """Does the environment name a proxy? Only then does a session read the environment
    (``trust_env``).

    Why: with ``trust_env`` aiohttp hands two look-ups (proxy variables, ``~/.netrc``) to a
    thread on every request; under load those thread hops were a measurable share of a
    worker's CPU (py-spy) and contend for the GIL. A deployment that sets ``HTTPS_PROXY``
    keeps its proxy. A ``.netrc`` never matters: LINE takes a Bearer token, and a netrc login
    for LINE's host would make aiohttp refuse the call (two Authorization headers).
    """
    return bool(urllib.request.getproxies())


class LineHttp:
    """Bearer-authenticated JSON requests to one LINE host over a keep-alive pool (opened on
    the first call, in the running event loop)."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        connections: int = 100,
        timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = f"Bearer {access_token}"
        self._connections = connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trust_env=environment_names_a_proxy(),
                headers={"Authorization": self._auth},
            )
        return self._session

    async def close(self) -> None:
        """Release the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, method: str, path: str, body: bytes | None = None, retry_key: str | None = None
    ) -> bytes:
        """One request; LINE's answer body on 2xx, else :class:`LineStatus`. Network
        failures and time-outs are aiohttp's and asyncio's own exceptions."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if retry_key is not None:
            headers["X-Line-Retry-Key"] = retry_key
        async with self._open().request(
            method, self.base_url + path, data=body, headers=headers
        ) as resp:
            raw = await resp.read()
            if 200 <= resp.status < 300:
                return raw
            raise LineStatus(resp.status, detail(raw), seconds(resp.headers.get("Retry-After")))
