"""Sending notice batches: each digest's JSON built once, every call under one rate limit.

A run sends hundreds of calls whose messages are identical per digest and whose only
difference is the list of recipients. Building the SDK's request models for every call
(a Flex carousel and 500 ids, validated and serialised again each time) cost more CPU
than LINE's 200 calls per second leave, so notices post prepared bytes instead: the
messages serialised once per digest, spliced with each batch's recipients.

The rules stay those of :class:`bot.line.client.LineClient`: a timeout per call, 5xx
and timeouts retried with backoff, 429 honouring ``Retry-After``, 409 for a retry key
LINE already accepted counts as sent, any other 4xx is permanent. Every attempt, a retry
too, waits for a slot of the shared :class:`RateLimiter`, and a 429 holds back every
sender (not only the one that got it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import aiohttp

from bot.line.calls import LineError, PermanentLineError, RetryPolicy, TransientLineError
from bot.line.messages import MAX_MESSAGES

#: LINE's maximum recipients per multicast call.
MULTICAST_MAX = 500

Kind = Literal["push", "multicast"]
PATHS: dict[Kind, str] = {"push": "/v2/bot/message/push", "multicast": "/v2/bot/message/multicast"}


class RateLimiter:
    """At most ``rate`` calls per second, spread evenly (LINE: multicast 200/s)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        """No slot before ``seconds`` from now (LINE said 429: everyone waits)."""
        self.next = max(self.next, time.monotonic() + seconds)


def messages_json(messages: Sequence[dict[str, Any]]) -> bytes:
    """A digest's messages as LINE JSON, serialised once for all its batches."""
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise ValueError(f"LINE takes 1 to {MAX_MESSAGES} messages per call, got {len(messages)}")
    return _dumps(list(messages))


def body(recipients: Sequence[str], messages: bytes) -> tuple[Kind, bytes]:
    """The call for one batch: a push for one user, else a multicast (≤ 500 users)."""
    if not 1 <= len(recipients) <= MULTICAST_MAX:
        raise ValueError(f"a batch holds 1 to {MULTICAST_MAX} users, got {len(recipients)}")
    kind: Kind = "push" if len(recipients) == 1 else "multicast"
    to = _dumps(recipients[0] if kind == "push" else list(recipients))
    return kind, b'{"to":' + to + b',"messages":' + messages + b"}"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Transport(Protocol):
    """Posts a prepared call; True when sent now, False when LINE had the key (409)."""

    async def send(self, kind: Kind, body: bytes, retry_key: str) -> bool: ...

    async def close(self) -> None: ...


class LineTransport:
    """Prepared notice calls over one keep-alive connection pool."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        policy: RetryPolicy,
        limiter: RateLimiter,
        connections: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.limiter = limiter
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
        }
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, kind: Kind, body: bytes, retry_key: str) -> bool:
        session = self._open()
        url = self.base_url + PATHS[kind]
        headers = {**self._headers, "X-Line-Retry-Key": retry_key}
        policy = self.policy
        last: LineError | None = None
        for attempt in range(policy.attempts):
            await self.limiter.wait()
            backoff = True
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        return True
                    if status == 409:  # this retry key was accepted before: sent once
                        return False
                    detail = _detail(await resp.read())
                    if status == 429:  # the limiter holds back every sender, this one too
                        retry_after = _seconds(resp.headers.get("Retry-After"))
                        self.limiter.pause(policy.delay(attempt, retry_after))
                        backoff = False
                    elif status < 500:
                        raise PermanentLineError(kind, status, detail)
                    last = TransientLineError(kind, status, detail)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = TransientLineError(kind, None, type(exc).__name__)
            if backoff and attempt + 1 < policy.attempts:
                await asyncio.sleep(policy.delay(attempt))
        assert last is not None
        raise last


def _detail(raw: bytes) -> str:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    return str(parsed.get("message", ""))[:200] if isinstance(parsed, dict) else ""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
