"""Event queue on Redis: per-chat ordered sets plus a stream of work tokens.

Layout (``P`` is ``REDIS_PREFIX``):

* ``P:seen:{id}``  de-duplication marker, expires after ``DEDUPE_SECONDS``;
* ``P:ev:{id}``    hash with the event JSON, its chat and its attempt count;
* ``P:q:{chat}``   sorted set of the chat's pending event ids by timestamp;
* ``P:stream``     stream of "chat X has work" tokens, read by the consumer
  group ``workers`` (so any number of processes on any machines share it);
* ``P:lock:{chat}`` the per-chat lock while one worker drains that chat.

A worker that reads a token takes the chat's lock and drains the chat's set
in timestamp order, deleting each event only after it was processed. Two Lua
scripts do the bookkeeping, one round trip each: ``take`` (lock the chat, hand
out its first event) and ``next`` (remove the finished event, hand out the
following one). The one that finds the set empty releases the lock and
acknowledges the token in the same atomic step, so an event queued a moment
later finds the chat free. A token whose chat is locked by someone else is
acknowledged too (the holder will see its event); a reclaimed token stays
pending until drained. Tokens left pending are reclaimed later with
``XAUTOCLAIM``, which is also how a crashed worker's chat is picked up again
and how a failed event is retried after ``EVENT_RETRY_SECONDS``.

Enqueueing is one Lua script per webhook body, so the de-duplication marker
is never written without the event (a half-stored event would be skipped
as a duplicate on LINE's redelivery and lost).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.queue.base import DeadLetterSink, Process, QueuedEvent, QueueUnavailable, attempt, describe

log = logging.getLogger(__name__)
GROUP = "workers"

_ENQUEUE = """
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
local added = {}
for i = 3, #ARGV, 4 do
  local id, chat, ts, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('SET', p .. ':seen:' .. id, '1', 'NX', 'EX', ttl) then
    redis.call('HSET', p .. ':ev:' .. id, 'payload', payload, 'chat', chat, 'ts', ts, 'attempts', 0)
    redis.call('ZADD', p .. ':q:' .. chat, ts, id)
    redis.call('XADD', p .. ':stream', '*', 'c', chat)
    added[#added + 1] = 1
  else
    added[#added + 1] = 0
  end
end
return added
"""

#: Most events one enqueue call carries when concurrent webhooks are batched together.
MAX_BATCH_EVENTS = 256

_REQUEUE = """
local p, id, chat, ts, payload, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
redis.call('SET', p .. ':seen:' .. id, '1', 'EX', ttl)
redis.call('HSET', p .. ':ev:' .. id, 'payload', payload, 'chat', chat, 'ts', ts, 'attempts', 0)
redis.call('ZADD', p .. ':q:' .. chat, ts, id)
redis.call('XADD', p .. ':stream', '*', 'c', chat)
return 1
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_HEAD = """
-- The chat's next event with this try counted, or nothing; an id whose event was deleted
-- (the user erased their data) is skipped. With KEYS[4] and KEYS[5] (the chat's dialogue
-- state and last-step marker), their values come along (false when missing): the worker
-- needs them next, and this saves it a round trip per event.
local function head(queue, p)
  while true do
    local ids = redis.call('ZRANGE', queue, 0, 0)
    if #ids == 0 then return nil end
    local key = p .. ':ev:' .. ids[1]
    local v = redis.call('HMGET', key, 'payload', 'ts')
    if v[1] then
      local out = {ids[1], v[1], v[2], redis.call('HINCRBY', key, 'attempts', 1)}
      if KEYS[5] then
        local d = redis.call('MGET', KEYS[4], KEYS[5])
        out[5], out[6] = d[1], d[2]
      end
      return out
    end
    redis.call('ZREM', queue, ids[1])
  end
end
local function finish(lock, stream, msg)
  redis.call('DEL', lock)  -- only ever called by the lock's holder
  redis.call('XACK', stream, 'workers', msg)
  redis.call('XDEL', stream, msg)
end
"""

_TAKE = (
    _HEAD
    + """
-- KEYS: chat queue, chat lock, stream (and the chat's dialogue keys, see head). ARGV: prefix,
-- lock token, lock ms, stream entry, '1' to acknowledge the entry when another worker holds
-- the chat.
-- Takes the chat and hands out its first event; one round trip.
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  if ARGV[5] == '1' then
    redis.call('XACK', KEYS[3], 'workers', ARGV[4])
    redis.call('XDEL', KEYS[3], ARGV[4])
  end
  return 'busy'
end
local h = head(KEYS[1], ARGV[1])
if h then return h end
finish(KEYS[2], KEYS[3], ARGV[4])
return 'done'
"""
)

_NEXT = (
    _HEAD
    + """
-- KEYS: chat queue, chat lock, stream (and the chat's dialogue keys, see head). ARGV:
-- prefix, finished event, lock token, lock ms, stream entry. Removes the finished event and
-- hands out the chat's next one (keeping the lock alive); with none left, releases the chat
-- and acknowledges the entry in the same step, so an event queued a moment later finds the
-- chat free. One round trip per event.
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('DEL', ARGV[1] .. ':ev:' .. ARGV[2])
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 'lost' end
local h = head(KEYS[1], ARGV[1])
if h then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return h
end
finish(KEYS[2], KEYS[3], ARGV[5])
return 'done'
"""
)


class RedisQueue:
    """The shared, multi-process queue (``REDIS_URL`` set)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "bot",
        *,
        dedupe_seconds: int = 86_400,
        max_attempts: int = 5,
        retry_seconds: float = 10.0,
        lock_seconds: float = 15.0,
        handler_timeout: float = 25.0,
        concurrency: int = 32,
        dialogue_keys: Callable[[str], tuple[str, str]] | None = None,
    ) -> None:
        self.redis = client
        #: A chat's dialogue keys (``RedisDialogueStore.keys``): read with each of its events.
        self.dialogue_keys = dialogue_keys
        self.p = prefix
        self.dedupe_seconds = dedupe_seconds
        self.max_attempts = max_attempts
        self.retry_ms = int(retry_seconds * 1000)
        self.lock_ms = int(lock_seconds * 1000)
        self.handler_timeout = handler_timeout
        self.concurrency = concurrency
        self.stream = f"{prefix}:stream"
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._enqueue = client.register_script(_ENQUEUE)
        self._requeue = client.register_script(_REQUEUE)
        self._waiting: collections.deque[tuple[list[Any], asyncio.Future[int]]] = (
            collections.deque()
        )
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)
        self._take = client.register_script(_TAKE)
        self._next = client.register_script(_NEXT)

    # -- producer side -------------------------------------------------------------------

    async def enqueue(self, events: list[dict[str, Any]]) -> int:
        """Store new events atomically; raise QueueUnavailable when Redis can't take them.

        Webhooks that arrive while a call to Redis is under way wait for the next one,
        which carries all of them (group commit): one round trip for many requests when
        LINE is busy, and no added delay when it is not.
        """
        args: list[Any] = []
        for event in events:
            event_id, chat, ts = describe(event)
            args += [event_id, chat, ts, json.dumps(event, ensure_ascii=False)]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, future))
        if not self._flushing:
            self._flushing = True
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Send waiting enqueues in batches until none are left."""
        try:
            while self._waiting:
                batch: list[tuple[list[Any], asyncio.Future[int]]] = []
                size = 0
                while self._waiting and (
                    not batch or size + len(self._waiting[0][0]) // 4 <= MAX_BATCH_EVENTS
                ):
                    item = self._waiting.popleft()
                    batch.append(item)
                    size += len(item[0]) // 4
                args: list[Any] = [self.p, self.dedupe_seconds]
                for part, _future in batch:
                    args += part
                try:
                    flags: Any = await self._enqueue(args=args)
                except (RedisError, OSError) as exc:
                    error = QueueUnavailable(f"Redis did not take the events: {type(exc).__name__}")
                    for _part, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                offset = 0
                for part, future in batch:
                    n = len(part) // 4
                    if not future.done():
                        future.set_result(sum(int(f) for f in flags[offset : offset + n]))
                    offset += n
        finally:
            self._flushing = False

    async def requeue(self, payload: dict[str, Any]) -> None:
        """Replay a dead-lettered event with a fresh attempt count."""
        event_id, chat, ts = describe(payload)
        body = json.dumps(payload, ensure_ascii=False)
        await self._requeue(args=[self.p, event_id, chat, ts, body, self.dedupe_seconds])

    async def forget_chat(self, chat_id: str) -> int:
        """Delete a chat's pending events (PDPA erasure); returns how many."""
        ids: Any = await self.redis.zrange(f"{self.p}:q:{chat_id}", 0, -1)
        pipe = self.redis.pipeline(transaction=True)
        for event_id in ids:
            pipe.delete(f"{self.p}:ev:{event_id}")
        pipe.delete(f"{self.p}:q:{chat_id}")
        await pipe.execute()
        return len(ids)

    async def pending(self) -> int:
        """Tokens not yet acknowledged plus unread ones (an upper bound on work left)."""
        try:
            groups = await self.redis.xinfo_groups(self.stream)
        except ResponseError:
            return 0
        for g in groups:
            if g["name"] == GROUP:
                lag = g.get("lag") or 0
                return int(g["pending"]) + int(lag)
        return int(await self.redis.xlen(self.stream))

    async def ping(self) -> None:
        """Raise if Redis is unreachable."""
        await self.redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    # -- consumer side -------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, process: Process, dead: DeadLetterSink, stop: asyncio.Event) -> None:
        """Read tokens and drain chats until ``stop``; survives Redis restarts."""
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        next_claim = 0.0
        backoff = 0.2
        group_ready = False

        def spawn(msg_id: str, chat: str, fresh: bool = True) -> None:
            task = asyncio.create_task(self._handle(msg_id, chat, process, dead, slots, fresh))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        while not stop.is_set():
            try:
                if not group_ready:
                    await self._ensure_group()
                    group_ready = True
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + max(self.retry_ms / 4000, 0.05)
                    for msg_id, chat in await self._reclaim():
                        await slots.acquire()
                        slots.release()
                        spawn(msg_id, chat, fresh=False)
                free = max(1, self.concurrency - len(tasks))
                block = int(min(1000, max(self.retry_ms / 4, 50)))
                batch: Any = await self.redis.xreadgroup(
                    GROUP, self.consumer, {self.stream: ">"}, count=free, block=block
                )
                backoff = 0.2
                for _stream, entries in batch or []:
                    for msg_id, fields in entries:
                        await slots.acquire()
                        slots.release()
                        spawn(msg_id, fields.get("c", "unknown"))
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    group_ready = False  # Redis came back empty: recreate the group.
                    continue
                log.exception("Redis error in worker loop")
                await asyncio.sleep(backoff)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("Redis unreachable; worker waits", extra={"error": type(exc).__name__})
                group_ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        if tasks:
            await asyncio.wait(tasks, timeout=self.handler_timeout + 5)

    async def _reclaim(self) -> list[tuple[str, str]]:
        """Tokens left pending longer than the retry delay (crashes, failures, contention)."""
        out: list[tuple[str, str]] = []
        start = "0-0"
        for _ in range(10):
            result: Any = await self.redis.xautoclaim(
                self.stream, GROUP, self.consumer, self.retry_ms, start, count=100
            )
            start, claimed = result[0], result[1]
            out += [(msg_id, f.get("c", "unknown")) for msg_id, f in claimed if f]
            if start in ("0-0", b"0-0"):
                break
        return out

    async def _handle(
        self,
        msg_id: str,
        chat: str,
        process: Process,
        dead: DeadLetterSink,
        slots: asyncio.Semaphore,
        fresh: bool,
    ) -> None:
        async with slots:
            try:
                if await self._drain(msg_id, chat, process, dead, fresh) == "retry":
                    # Restart the token's idle clock so the retry waits EVENT_RETRY_SECONDS
                    # from now, not from when the token was first read.
                    await self.redis.xclaim(self.stream, GROUP, self.consumer, 0, [msg_id])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                # The token stays pending and is reclaimed once Redis answers again.
                log.warning(
                    "Redis error while handling a chat", extra={"error": type(exc).__name__}
                )
            except Exception:
                log.exception("unexpected error while handling a chat")

    async def _drain(
        self, msg_id: str, chat: str, process: Process, dead: DeadLetterSink, fresh: bool
    ) -> str:
        """Process the chat's events in order; the scripts acknowledge the token.

        Returns "done" (drained, token acknowledged), "busy" (another worker holds the
        chat), "lost" (the lock expired under us: stop, the token stays pending) or "retry"
        (an event failed and waits for its next try; the token stays pending).

        A fresh token whose chat is busy is acknowledged: its event was queued before the
        holder's last look at the queue, which releases the chat in the same step. A
        reclaimed one may belong to a crashed holder: it stays until drained.
        """
        keys = [f"{self.p}:q:{chat}", f"{self.p}:lock:{chat}", self.stream]
        if self.dialogue_keys is not None:
            keys += self.dialogue_keys(chat)
        token = uuid.uuid4().hex
        head: Any = await self._take(
            keys=keys, args=[self.p, token, self.lock_ms, msg_id, "1" if fresh else "0"]
        )
        held = not isinstance(head, str)
        keeper = asyncio.create_task(self._keep_lock(keys[1], token)) if held else None
        try:
            while held:
                event_id, payload, ts, attempts = head[:4]
                dialogue = (head[4], head[5]) if len(head) == 6 else None
                item = QueuedEvent(
                    event_id, chat, int(ts), json.loads(payload), int(attempts), dialogue
                )
                if not await attempt(item, process, dead, self.max_attempts, self.handler_timeout):
                    return "retry"
                head = await self._next(
                    keys=keys, args=[self.p, event_id, token, self.lock_ms, msg_id]
                )
                held = not isinstance(head, str)
            return str(head)
        finally:
            if keeper is not None:
                keeper.cancel()
            if held:  # left early (a failed event, an error): free the chat for the retry
                await self._release(keys=[keys[1]], args=[token])

    async def _keep_lock(self, lock_key: str, token: str) -> None:
        """Renew the chat's lock while this worker holds it (every third of its life).

        Why the lock is short (``EVENT_LOCK_SECONDS``, 15 s) and renewed rather than long: a
        killed worker's chats must come free soon, so the retry can still use the reply
        token (LINE keeps it about a minute) and tell a sent answer from a lost one.
        """
        while True:
            await asyncio.sleep(self.lock_ms / 3000)
            try:
                kept = await self._extend(keys=[lock_key], args=[token, self.lock_ms])
            except (RedisError, OSError) as exc:  # the next renewal tries again
                log.warning("chat lock not renewed", extra={"error": type(exc).__name__})
                continue
            if not kept:  # expired under us (Redis restarted, renewals failed): another
                # worker may take the chat; the event log keeps one answer per event
                log.warning("chat lock lost while handling it")
                return


def connect(url: str) -> aioredis.Redis:
    """A Redis client with timeouts, so a dead server fails fast instead of hanging.

    The pool blocks briefly for a free connection under a burst, rather than
    failing the webhook (which would make LINE redeliver needlessly).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=15,
        max_connections=512,
        timeout=2,
    )
    return aioredis.Redis.from_pool(pool)
