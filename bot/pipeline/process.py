"""Processing one event: from the queue to the reply LINE accepted.

The event log row makes every step idempotent, so a retry, a redelivery, a
second worker or a restart never answers a user twice:

1. A row already ``done`` or ``standby``: nothing to do.
2. A row ``sending``: an earlier try decided the answer and may have sent it.
   Its stored outbox (messages and dialogue-state change) is sent again
   under the same rules (same reply token, same push retry key) instead of
   running the handler a second time.
3. Otherwise the user is recorded, the router picks a handler, and the
   decided answer goes to the outbox (committed) before anything leaves,
   in one transaction with the database changes the handler decided on
   (``Turn.write``): a worker that dies after the handler ran but before
   that commit has written nothing, and the retry runs the handler afresh.
   An event with changes but nothing to say stores an empty outbox the same
   way. What cannot join the transaction (the dialogue state, and the Redis
   keys an erasure deletes) is applied from the stored outbox on every try of
   delivering it, so it must be, and is, harmless twice.

Delivery: the reply token while it is fresh (younger than
``REPLY_TOKEN_MAX_AGE_SECONDS``); else, or when LINE rejects the token, a
push with an ``X-Line-Retry-Key`` derived from the event id, so LINE itself
drops a repeated push (409). An answer still being prepared when the token
gets old (``REPLY_LATER_AFTER_SECONDS``) is offered by a ``help.button_result`` quick
reply instead and held for that tap (``bot.pipeline.held``): no paid push.
An in-doubt reply (the process died while LINE was being called: a mark in Redis
is set just before the call) whose token LINE now reports as used counts as sent;
a try that never reached the call is not in doubt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_

from bot import logs
from bot.content.menu import offer_also
from bot.dialogue.detours import pause_before, settle
from bot.dialogue.router import Turn
from bot.dialogue.stamps import open_run, stamp, token
from bot.dialogue.state import DialogueState, Prefetched
from bot.insights import capture, links
from bot.line.calls import (
    InvalidReplyToken,
    LineError,
    Messenger,
    PermanentLineError,
    TransientLineError,
)
from bot.line.events import InboundEvent
from bot.line.messages import MAX_MESSAGES, Text, from_line
from bot.logs import user_ref
from bot.pipeline.event_log import FINAL, EventLogStore, Recorded
from bot.pipeline.held import later_offer
from bot.queue.base import QueuedEvent
from bot.richmenu.users import UserMenus
from bot.storage import accounts, handoff_messages
from bot.storage.db import DeadLetter, EventLog, Handoff, Unanswered, utcnow
from bot.storage.privacy import erase_keys

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
_RETRY_NS = uuid.UUID("6f1c4a52-3b0e-4d8e-9a57-2f5d0c9b7e11")
#: TEST-ONLY hook, honoured only with ``BOT_ENV=test``: the id of one event after whose
#: handler this process dies at once (``os._exit``), before the answer and the handler's
#: writes are stored, so a test can kill a real worker in exactly that window
#: (tests/test_workers.py). Never set it anywhere else.
TEST_CRASH_AFTER_HANDLER = "BOT_TEST_CRASH_AFTER_HANDLER"


#: Seconds before the reply token's age limit that an offer of ``help.button_result`` must be
#: sent by, and the least a handler is waited for before its answer is offered for later.
OFFER_MARGIN_SECONDS = 2.0
OWN_MOMENT_SECONDS = 1.0
#: How long the mark "this event's reply was called" is kept: longer than any retry waits.
CALLED_MARK_SECONDS = 3600
#: How long a held answer waits for its ``help.button_result`` tap.
HELD_KEEP_SECONDS = 24 * 3600


#: What LINE's ids look like (user, group, room); a push anywhere else is refused.
LINE_ID = re.compile(r"^[UCR][0-9a-f]{32}$")


def push_target(event: InboundEvent) -> str | None:
    """Where a push answering ``event`` goes: the user in a one-to-one chat, else the group
    or room; None when the event names no chat LINE could deliver to."""
    target = event.user_id if event.one_to_one and event.user_id else event.chat_id
    return target if target and LINE_ID.match(target) else None


def retry_key(event_id: str) -> str:
    """The X-Line-Retry-Key for an event's push: stable across every retry."""
    return str(uuid.uuid5(_RETRY_NS, event_id))


class Pipeline:
    """Turns queued events into answers; one instance per process."""

    def __init__(self, services: Services, messenger: Messenger) -> None:
        self.s = services
        self.messenger = messenger
        self.log = EventLogStore(services.db)
        self.menus = UserMenus(messenger)
        self.clock = time.time
        self._link_key: bytes | None = None
        self._crash_after = (
            os.environ.get(TEST_CRASH_AFTER_HANDLER)
            if services.settings.bot_env == "test"
            else None
        )

    async def process(self, item: QueuedEvent) -> None:
        """Handle one event exactly once from the user's point of view."""
        event = InboundEvent.from_dict(item.payload)
        logs.request_id.set(event.id)  # worker log lines carry the event id as request id
        row = await self.log.record(event, item.attempts)
        if row.status in FINAL:
            log.info("event needs no answer", extra={"event_id": event.id, "status": row.status})
            return
        if row.status == "sending" and row.outbox is not None:
            log.info("resending a decided answer", extra={"event_id": event.id})
            await self._deliver(event, row.outbox, in_doubt=row.delivery)
            return
        linking = None
        if row.user_pk is not None and self.s.settings.public_base_url and capture.recorded(event):
            linking = links.current.set(self._link_context(row.user_pk, event.chat_id))
        try:
            turn = await self._decide(event, row, item.dialogue)
        finally:
            if linking is not None:
                links.current.reset(linking)
        if turn is not None and self._crash_after == event.id:
            log.warning("test hook: dying after the handler", extra={"event_id": event.id})
            os._exit(1)
        if turn is None:
            await self.log.finish(event.id)
            return
        messages = turn.messages[:MAX_MESSAGES]
        if len(turn.messages) > MAX_MESSAGES:
            log.error("handler produced too many messages", extra={"count": len(turn.messages)})
        final = turn.next_state or turn.state
        outbox: dict[str, Any] = {
            # a flow's buttons carry the token of the state they were made in (stale taps)
            "messages": stamp(
                [m.to_line() for m in messages], self.s.dispatcher.stamped, token(final)
            ),
            "state": None if turn.next_state is None else turn.next_state.to_json(),
        }
        if turn.forget:
            outbox["forget"] = True
        if turn.menu is not None and event.one_to_one and event.user_id:
            outbox["menu"] = turn.menu
        if not messages and not turn.writes and not turn.forget and "menu" not in outbox:
            await self._apply_state(event, outbox)
            await self.log.finish(event.id)
            return
        if turn.held and not turn.forget:
            outbox["held"] = True  # offered ``help.button_result``: the answer waits for that tap
        # (an erasure's confirmation is never held: its row is anonymised, so no tap finds it)
        plan = ("held" if outbox.get("held") else self._plan(event)) if messages else None
        await self.log.sending(event.id, outbox, plan, retry_key(event.id), turn.writes)
        await self._deliver(event, outbox, in_doubt=None)

    def _link_context(self, user_pk: int, user_id: str) -> links.LinkContext:
        """Cards of this turn link to official pages through the counted redirect."""
        if self._link_key is None:
            self._link_key = links.link_key(self.s.settings)
        base = self.s.settings.public_base_url or ""
        return links.LinkContext(base, self._link_key, user_pk, user_id)

    def _plan(self, event: InboundEvent) -> str:
        """Reply while the token is fresh; otherwise push."""
        age = self.clock() - event.timestamp_ms / 1000
        fresh = age < self.s.settings.reply_token_max_age_seconds
        return "reply" if event.reply_token and fresh else "push"

    async def _decide(
        self, event: InboundEvent, row: Recorded, prefetched: Prefetched | None = None
    ) -> Turn | None:
        """Run the router; the loading animation starts if the answer takes a while.
        ``row``: the event as recorded (hand-off, the chat's latest assessment);
        ``prefetched``: the chat's dialogue keys as the queue read them with the event."""
        if row.handed_off:
            log.info("user is with staff; bot stays quiet", extra={"event_id": event.id})
            await handoff_messages.keep(self.s.db, event)  # for staff (the console's inbox)
            return None
        state = await self.s.dialogue.load(event.chat_id, prefetched)
        nlu = self.s.nlu.parse(event.text) if event.text else None
        turn = Turn(
            event=event,
            services=self.s,
            state=state,
            nlu=nlu,
            messenger=self.messenger,
            assessments=dict(row.assessments),
        )
        route, handler = self.s.dispatcher.choose(turn)
        if handler is None:
            log.info("event left unanswered", extra={"event_id": event.id, "type": event.type})
            return None
        log.info(
            "handling event",
            extra={
                "event_id": event.id,
                "type": event.type,
                "route": route,
                "chat": user_ref(event.chat_id),
                "confidence": nlu.confidence if nlu else None,
            },
        )
        started = self.clock()
        pause_before(turn, route, handler)
        notice = self.s.dispatcher.timeout_handler(turn)
        if notice is not None:
            await notice(turn)
        task = asyncio.ensure_future(handler(turn))
        viewer = event.user_id if event.one_to_one else None
        if viewer and LINE_ID.match(viewer) and self.s.settings.loading_after_seconds > 0:
            done, _ = await asyncio.wait({task}, timeout=self.s.settings.loading_after_seconds)
            if not done:
                try:
                    await self.messenger.show_loading(viewer, 20)
                except Exception as exc:  # the animation is a courtesy, never a failure
                    log.info("loading animation not shown", extra={"error": type(exc).__name__})
        if not task.done() and await self._offer_later(event, task, started):
            turn.held = True
        await task
        if event.type in ("message", "postback"):
            # The dashboard's daily counts, in the answer's transaction: once per event.
            from bot.storage.daily import turn_counter

            turn.write(turn_counter(route, turn.answering, turn.outcome))
        capture.finish(turn)  # the insight moments: asked, intent; none for an erasure
        offer_also(turn)
        settle(turn)
        open_run(turn)  # a flow that has just opened gets its run id (stale buttons)
        return turn

    async def _offer_later(
        self, event: InboundEvent, task: asyncio.Future[None], started: float
    ) -> bool:
        """Wait for the answer until the reply token gets old; then, instead of a paid push
        later, reply now with ``help.button_result`` (True: the answer will wait for that tap). The
        offer also comes before this try would be cut off (``HANDLER_TIMEOUT_SECONDS``)."""
        if not (event.reply_token and event.one_to_one and event.user_id):
            return False
        st = self.s.settings
        sent, now = event.timestamp_ms / 1000, self.clock()
        # The last moment the token surely still carries the offer; and a handler always
        # gets a moment of its own (an event taken late from a backlog is usually quick).
        last = (
            min(
                sent + st.reply_token_max_age_seconds,
                started + st.handler_timeout_seconds,
            )
            - OFFER_MARGIN_SECONDS
        )
        until = min(max(sent + st.reply_later_after_seconds, now + OWN_MOMENT_SECONDS), last)
        done, _ = await asyncio.wait({task}, timeout=max(until - now, 0.0))
        if done or self.clock() > last:
            return False  # ready in time, or the token is too old to carry the offer
        try:
            await self.messenger.reply(event.reply_token, [later_offer(self.s.replies, event.id)])
        except LineError as exc:  # not offered: the answer goes as before (push if late)
            log.info("result button not offered", extra={"error": type(exc).__name__})
            return False
        log.info("answer is late: offered a result button", extra={"event_id": event.id})
        return True

    async def _apply_state(self, event: InboundEvent, outbox: dict[str, Any]) -> None:
        raw = outbox.get("state")
        if raw is None:
            return
        data = json.loads(raw)
        state = DialogueState(step=data.get("step"), answers=data.get("answers") or {})
        await self.s.dialogue.save(event.chat_id, state, self.s.settings.dialogue_ttl_seconds)

    async def _forget(self, event: InboundEvent) -> None:
        """An erasure's Redis part (dialogue state and every key naming the user); the rows
        went with the stored answer. Runs again if this try is cut off: harmless twice."""
        await self.s.dialogue.clear(event.chat_id)
        if self.s.redis is not None:
            await erase_keys(self.s.redis, self.s.settings.redis_prefix, event.chat_id, event.id)

    async def _deliver(
        self, event: InboundEvent, outbox: dict[str, Any], in_doubt: str | None
    ) -> None:
        """Send the outbox by reply or push, then mark the event done.

        ``in_doubt`` is how an earlier try was sending it when it was cut off.
        """
        messages = [from_line(m) for m in outbox["messages"]]
        await self._apply_state(event, outbox)
        if outbox.get("forget"):
            await self._forget(event)
        if not messages:  # only changes were decided: they are stored, nothing to send
            await self._set_menu(event, outbox)
            await self.log.finish(event.id)
            return
        if in_doubt == "reply" and not await self._reply_was_called(event.id):
            in_doubt = None  # the earlier try stopped before calling LINE: nothing was sent
        delivery = "held" if outbox.get("held") else in_doubt or self._plan(event)
        if delivery == "held":  # offered ``help.button_result``: the answer waits for its tap
            await self._set_menu(event, outbox)
            await self.log.hold(event.id)
            return
        try:
            if delivery == "reply" and event.reply_token:
                await self._calling_reply(event.id)
                try:
                    await self.messenger.reply(event.reply_token, messages)
                except InvalidReplyToken:
                    if in_doubt == "reply":
                        log.warning("in-doubt reply counted as sent", extra={"event_id": event.id})
                    else:
                        log.info("reply token rejected; pushing", extra={"event_id": event.id})
                        delivery = "push"
                        # LINE has not taken it: a retry must not count it as maybe sent.
                        await self._reply_not_called(event.id)
                        await self.log.set_delivery(event.id, "push")
                except TransientLineError as exc:
                    if not exc.may_have_reached:  # refused connections only: LINE never saw it
                        await self._reply_not_called(event.id)
                    raise
            else:
                delivery = "push"
            if delivery == "push":
                target = push_target(event)
                if target is None:  # no source LINE could deliver to (never a real chat)
                    log.warning("no one to push the answer to", extra={"event_id": event.id})
                    await self.log.finish(event.id, error="no push target")
                    return
                accepted = await self.messenger.push(target, messages, retry_key(event.id))
                if not accepted:
                    log.info("push already accepted earlier", extra={"event_id": event.id})
        except PermanentLineError as exc:
            await self._fail(event, str(exc))
            return
        await self._set_menu(event, outbox)
        await self.log.finish(event.id, delivery=delivery)

    def _called_key(self, event_id: str) -> str:
        return f"{self.s.settings.redis_prefix}:called:{event_id}"

    async def _calling_reply(self, event_id: str) -> None:
        """Note, just before the reply call, that LINE may now have the answer.

        A retry of an event stored as ``sending`` by reply cannot ask LINE whether the
        answer went: LINE refuses a used token and an expired one alike. Without this mark
        an earlier try that failed *before* calling LINE (Redis down while the dialogue
        state was saved, a worker killed in between) would be counted as sent, and the
        answer lost (found by ``benchmarks/soak.py``). In the embedded mode (no Redis) every
        such retry is counted as sent, as before."""
        if self.s.redis is not None:
            await self.s.redis.set(self._called_key(event_id), "1", ex=CALLED_MARK_SECONDS)

    async def _reply_not_called(self, event_id: str) -> None:
        if self.s.redis is not None:
            await self.s.redis.delete(self._called_key(event_id))

    async def _reply_was_called(self, event_id: str) -> bool:
        """Did an earlier try of this event call LINE's reply (see ``_calling_reply``)?"""
        if self.s.redis is None:
            return True
        return bool(await self.s.redis.exists(self._called_key(event_id)))

    async def _set_menu(self, event: InboundEvent, outbox: dict[str, Any]) -> None:
        """The user's rich menu the answer decided on; on every try (LINE's link is
        idempotent), after the answer so the menu changes under what it explains.

        Best effort: the answer has gone, so a failure here must not fail the event (a retry
        would end in a dead letter and an apology for an answer the user has). A lost link is
        logged; ``bot richmenu deploy --relink`` links everyone who should have the menu."""
        menu = outbox.get("menu")
        if not isinstance(menu, str) or not event.user_id or not LINE_ID.match(event.user_id):
            return
        try:
            await self.menus.apply(event.user_id, menu)
        except LineError as exc:
            log.warning(
                "rich menu not changed", extra={"event_id": event.id, "error": str(exc)[:200]}
            )

    async def _fail(self, event: InboundEvent, error: str) -> None:
        """LINE refused the answer for good (a 4xx): keep it for an operator, don't retry."""
        log.error("LINE refused the answer", extra={"event_id": event.id, "error": error[:200]})
        await self.log.dead_letter(event.id, event.chat_id, event.raw, error, 1, status="failed")
        await self._apologise(event)

    async def dead_letter(self, item: QueuedEvent, error: str) -> None:
        """Move an event that failed ``EVENT_MAX_ATTEMPTS`` times to the dead letters."""
        log.error("event dead-lettered", extra={"event_id": item.event_id, "error": error[:200]})
        await self.log.dead_letter(
            item.event_id, item.chat_id, item.payload, error, item.attempts, status="dead"
        )
        try:
            event = InboundEvent.from_dict(item.payload)
        except (KeyError, TypeError, ValueError):
            return
        await self._apologise(event)

    async def _apologise(self, event: InboundEvent) -> None:
        """Tell a user whose message we could not answer, politely, instead of silence.

        The apology has its own retry key, so a later replay of the event still
        delivers the real answer; failures here are only logged.
        """
        if event.type not in ("message", "postback", "follow") or not event.user_id:
            return
        if LINE_ID.match(event.user_id) is None:
            return  # not a LINE user: nobody to apologise to
        try:
            messages = [Text(self.s.replies.text("errors.apology"))]
            fresh = (
                self.clock() - event.timestamp_ms / 1000
                < self.s.settings.reply_token_max_age_seconds
            )
            if event.reply_token and fresh:
                try:
                    await self.messenger.reply(event.reply_token, messages)
                    return
                except InvalidReplyToken:
                    pass
            await self.messenger.push(event.user_id, messages, retry_key("apology:" + event.id))
        except Exception as exc:
            log.warning(
                "apology not sent", extra={"event_id": event.id, "error": type(exc).__name__}
            )

    async def prune(self) -> tuple[int, int]:
        """Forget old event-log rows, dead letters and unanswered texts; end hand-offs."""
        st = self.s.settings
        now = utcnow()
        async with self.s.db.session() as s, s.begin():
            # ``created_at`` (indexed) is never later than ``updated_at`` (not indexed, so a
            # row's updates touch no index): the index finds the candidates.
            old = now - dt.timedelta(days=st.event_log_days)
            logs_gone = await s.execute(
                delete(EventLog).where(
                    EventLog.created_at < old,
                    EventLog.updated_at < old,
                    or_(
                        EventLog.status.in_(("done", "standby", "failed", "dead")),
                        # held by a worker older than ``held_at`` (during an upgrade): the
                        # hold below cannot find it, so it goes with the old rows
                        and_(EventLog.status == "held", EventLog.held_at.is_(None)),
                    ),
                )
            )
            # A late answer nobody tapped for is not kept past a day (its texts are personal).
            # (``held_at``'s partial index holds only held answers: no table scan.)
            await s.execute(
                delete(EventLog).where(
                    EventLog.held_at < now - dt.timedelta(seconds=HELD_KEEP_SECONDS),
                    EventLog.status == "held",
                )
            )
            dead_gone = await s.execute(
                delete(DeadLetter).where(
                    DeadLetter.died_at < now - dt.timedelta(days=st.dead_letter_days)
                )
            )
            # Retention (PDPA): unanswered texts and ended hand-offs are not kept longer.
            await s.execute(
                delete(Unanswered).where(
                    Unanswered.created_at < now - dt.timedelta(days=st.unanswered_days)
                )
            )
            await s.execute(delete(Handoff).where(Handoff.until < now))
            await handoff_messages.prune_in(s, st)  # ended hand-offs' messages (PDPA)
        await accounts.prune(self.s.db)  # expired console sessions, old failed sign-ins
        return int(getattr(logs_gone, "rowcount", 0) or 0), int(
            getattr(dead_gone, "rowcount", 0) or 0
        )
