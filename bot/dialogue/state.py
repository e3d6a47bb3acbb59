"""Per-user dialogue state: the current named step and the answers so far.

Two small keys per user (aiogram's RedisStorage shape): the state itself,
written on every transition with a time-to-live refreshed each turn, and a
longer-lived marker of the last step, so that when the state has expired the
next turn can tell the user their conversation timed out instead of silently
starting over. In Redis when ``REDIS_URL`` is set (shared by every worker,
surviving restarts), in process memory otherwise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis

#: How long we remember that a conversation existed after it expired.
EXPIRED_MARKER_SECONDS = 24 * 3600


@dataclass
class DialogueState:
    """A user's place in a multi-turn flow; ``step`` None means no flow is open."""

    step: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    #: The step that timed out since the user's last turn, reported once.
    expired_step: str | None = None

    def to_json(self) -> str:
        return json.dumps({"step": self.step, "answers": self.answers}, ensure_ascii=False)


#: A user's two keys as read from Redis (raw state, last-step marker), e.g. by the queue in
#: the round trip that handed out the user's event.
Prefetched = tuple[str | None, str | None]


class DialogueStore(Protocol):
    """Load, save and clear a user's dialogue state."""

    async def load(self, user_id: str, prefetched: Prefetched | None = None) -> DialogueState:
        """The state; ``prefetched`` is the stored keys when read already (Redis only)."""
        ...

    async def save(self, user_id: str, state: DialogueState, ttl: int) -> None: ...

    async def clear(self, user_id: str) -> None: ...


class RedisDialogueStore:
    """Dialogue state in Redis, keyed by user, with TTL as the conversation timeout."""

    def __init__(self, client: aioredis.Redis, prefix: str = "bot") -> None:
        self.redis = client
        self.p = prefix

    def keys(self, user_id: str) -> tuple[str, str]:
        """The user's state key and last-step marker (the queue reads them with the event)."""
        return f"{self.p}:dlg:{user_id}", f"{self.p}:dlg-last:{user_id}"

    async def load(self, user_id: str, prefetched: Prefetched | None = None) -> DialogueState:
        key, last_key = self.keys(user_id)
        raw, last = prefetched if prefetched is not None else await self.redis.mget(key, last_key)
        if raw:
            data = json.loads(raw)
            return DialogueState(step=data.get("step"), answers=data.get("answers") or {})
        if last:
            await self.redis.delete(last_key)
            return DialogueState(expired_step=str(last))
        return DialogueState()

    async def save(self, user_id: str, state: DialogueState, ttl: int) -> None:
        key, last_key = self.keys(user_id)
        if state.step is None:
            await self.clear(user_id)
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(key, state.to_json(), ex=ttl)
        pipe.set(last_key, state.step, ex=ttl + EXPIRED_MARKER_SECONDS)
        await pipe.execute()

    async def clear(self, user_id: str) -> None:
        await self.redis.delete(*self.keys(user_id))


class MemoryDialogueStore:
    """Dialogue state in this process (the embedded mode); same semantics as Redis."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._states: dict[str, tuple[float, str]] = {}
        self._last: dict[str, tuple[float, str]] = {}
        self._clock = clock

    async def load(self, user_id: str, prefetched: Prefetched | None = None) -> DialogueState:
        now = self._clock()
        entry = self._states.get(user_id)
        if entry and entry[0] > now:
            data = json.loads(entry[1])
            return DialogueState(step=data.get("step"), answers=data.get("answers") or {})
        self._states.pop(user_id, None)
        last = self._last.pop(user_id, None)
        if last and last[0] > now:
            return DialogueState(expired_step=last[1])
        return DialogueState()

    async def save(self, user_id: str, state: DialogueState, ttl: int) -> None:
        if state.step is None:
            await self.clear(user_id)
            return
        now = self._clock()
        self._states[user_id] = (now + ttl, state.to_json())
        self._last[user_id] = (now + ttl + EXPIRED_MARKER_SECONDS, state.step)

    async def clear(self, user_id: str) -> None:
        self._states.pop(user_id, None)
        self._last.pop(user_id, None)
