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
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import aiohttp

from bot.line.calls import LineError, PermanentLineError, RetryPolicy, TransientLineError
from bot.line.http import LineHttp, LineStatus, dumps
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
    return dumps(list(messages))


def body(recipients: Sequence[str], messages: bytes) -> tuple[Kind, bytes]:
    """The call for one batch: a push for one user, else a multicast (≤ 500 users)."""
    if not 1 <= len(recipients) <= MULTICAST_MAX:
        raise ValueError(f"a batch holds 1 to {MULTICAST_MAX} users, got {len(recipients)}")
    kind: Kind = "push" if len(recipients) == 1 else "multicast"
    to = dumps(recipients[0] if kind == "push" else list(recipients))
    return kind, b'{"to":' + to + b',"messages":' + messages + b"}"


class Transport(Protocol):
    """Posts a prepared call; True when sent now, False when LINE had the key (409)."""

    async def send(self, kind: Kind, body: bytes, retry_key: str) -> bool: ...

    async def close(self) -> None: ...


class LineTransport:
    """Prepared notice calls over one keep-alive connection pool (``bot.line.http``)."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        policy: RetryPolicy,
        limiter: RateLimiter,
        connections: int,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self._http = LineHttp(
            base_url, access_token, connections=connections, timeout=policy.timeout
        )

    async def close(self) -> None:
        await self._http.close()

    async def send(self, kind: Kind, body: bytes, retry_key: str) -> bool:
        path = PATHS[kind]
        policy = self.policy
        last: LineError | None = None
        for attempt in range(policy.attempts):
            await self.limiter.wait()
            backoff = True
            try:
                await self._http.call("POST", path, body, retry_key)
                return True
            except LineStatus as exc:
                if exc.status == 409:  # this retry key was accepted before: sent once
                    return False
                if exc.status == 429:  # the limiter holds back every sender, this one too
                    self.limiter.pause(policy.delay(attempt, exc.retry_after))
                    backoff = False
                elif exc.status < 500:
                    raise PermanentLineError(kind, exc.status, exc.detail) from None
                last = TransientLineError(kind, exc.status, exc.detail)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = TransientLineError(kind, None, type(exc).__name__)
            if backoff and attempt + 1 < policy.attempts:
                await asyncio.sleep(policy.delay(attempt))
        assert last is not None
        raise last
