"""The hand-off inbox: users waiting for staff, their messages, a reply form, and the end.

Staff (permission ``handoff``) see who waits longest first, read what the user wrote
since the hand-off (``bot.storage.handoff_messages``), answer with a push, and end the
hand-off so the bot answers the user again. A reply's retry key is made when the form is
shown and travels in it, so a double submit or a retry after an error cannot send twice.
Every reply and every end is audited (who and when, never the message text).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console.auth import CanHandoff, SignedIn
from bot.console.web import page
from bot.line.calls import LineError
from bot.logs import user_ref
from bot.services import Services
from bot.storage import accounts, handoff, handoff_messages
from bot.storage.db import utcnow
from bot.storage.handoff_messages import KeyTaken, ReplyResult

router = APIRouter(prefix="/console")
log = logging.getLogger(__name__)

#: A LINE user (or group/room) id as it appears in the path.
_CHAT_ID = re.compile(r"[A-Za-z0-9]{1,64}")
#: How long the page waits for the user's LINE display name (a courtesy, never a failure).
PROFILE_SECONDS = 3.0
#: Reply errors and their HTTP status (the template words them in Thai).
_STATUS = {
    "empty": 400,
    "too_long": 400,
    "bad_key": 400,
    "closed": 409,
    "key_taken": 409,
    "failed": 502,
    "quota": 503,
    "unsure": 503,
}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _chat_id(user_id: str) -> str:
    if not _CHAT_ID.fullmatch(user_id):
        raise HTTPException(404, "no such conversation")
    return user_id


def _target(user_id: str) -> str:
    """The audit entry's target: a pseudonym, so the long-lived log holds no LINE id."""
    return f"handoff:{user_ref(user_id)}"


def _agency_name(services: Services, code: str | None) -> str | None:
    agency = services.knowledge.agencies.get(code) if code else None
    return agency.name.th if agency is not None else code


def _keep_seconds(services: Services) -> int:
    return handoff_messages.keep_seconds(services.settings)


async def _display_name(services: Services, user_id: str) -> str | None:
    """The user's LINE display name, if LINE tells it quickly (shown, never stored)."""
    if services.settings.local_mode or not user_id.startswith("U"):
        return None
    try:
        profile = await asyncio.wait_for(services.line_client().profile(user_id), PROFILE_SECONDS)
    except (LineError, TimeoutError) as exc:
        log.info("display name not shown", extra={"error": type(exc).__name__})
        return None
    name = profile.get("displayName")
    return name if isinstance(name, str) else None


@router.get("/handoffs", response_class=HTMLResponse)
async def inbox(request: Request, who: CanHandoff, notice: str | None = None) -> Response:
    """Users with staff now, the longest waiting first."""
    services = _services(request)
    now = utcnow()
    rows = [
        {
            "user_id": w.user_id,
            "agency": _agency_name(services, w.handoff.agency),
            "started_at": w.handoff.started_at,
            "until": w.handoff.until,
            "minutes": int(w.waited(now).total_seconds() // 60),
            "messages": w.user_messages,
            "replies": w.staff_replies,
            "last_user_at": w.last_user_at,
        }
        for w in await handoff_messages.waiting(services.db)
    ]
    return page(request, "handoffs.html", who, rows=rows, notice=notice)


async def _conversation_page(
    request: Request,
    who: SignedIn,
    user_id: str,
    *,
    status_code: int = 200,
    text: str = "",
    reply_key: str | None = None,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    services = _services(request)
    conv = await handoff_messages.conversation(services.db, user_id)
    agency = conv.handoff.agency if conv.handoff is not None else None
    context: dict[str, Any] = {
        "conv": conv,
        "agency": _agency_name(services, agency),
        "display_name": await _display_name(services, user_id),
        "text": text,
        "reply_key": reply_key or handoff_messages.new_retry_key(),
        "error": error,
        "notice": notice,
        "max_text": handoff_messages.MAX_TEXT,
        "keep_seconds": _keep_seconds(services),
        "minutes": (
            int((utcnow() - conv.handoff.started_at).total_seconds() // 60)
            if conv.handoff is not None
            else None
        ),
    }
    return page(request, "handoffs_conversation.html", who, status_code, **context)


@router.get("/handoffs/{user_id}", response_class=HTMLResponse)
async def conversation(
    request: Request, user_id: str, who: CanHandoff, notice: str | None = None
) -> Response:
    """One user's messages since the hand-off, LINE-like, with the reply form."""
    return await _conversation_page(request, who, _chat_id(user_id), notice=notice)


@router.get("/handoffs/{user_id}/messages", response_class=HTMLResponse)
async def messages(request: Request, user_id: str, who: CanHandoff) -> Response:
    """Only the messages (htmx refreshes them in place while staff type)."""
    conv = await handoff_messages.conversation(_services(request).db, _chat_id(user_id))
    return page(request, "handoffs_messages.html", who, conv=conv)


def _error_of(result: ReplyResult) -> str:
    error = result.error
    if result.outcome == "failed":
        return "failed"
    if error is not None and error.status == 429 and "limit" in error.detail.lower():
        return "quota"
    return "unsure"


@router.post("/handoffs/{user_id}/reply", response_class=HTMLResponse)
async def reply(
    request: Request,
    user_id: str,
    who: CanHandoff,
    text: Annotated[str, Form()] = "",
    reply_key: Annotated[str, Form()] = "",
) -> Response:
    """Push staff's reply to the user once (the form's retry key), then show the chat."""
    user_id = _chat_id(user_id)
    services = _services(request)
    typed = text.replace("\r\n", "\n").strip()

    async def again(error: str, key: str | None = reply_key) -> Response:
        """The page again with the typed text kept and what went wrong."""
        return await _conversation_page(
            request, who, user_id, status_code=_STATUS[error], text=text, reply_key=key, error=error
        )

    if not handoff_messages.valid_retry_key(reply_key):
        return await again("bad_key", None)
    if not typed:
        return await again("empty")
    if len(typed) > handoff_messages.MAX_TEXT:
        return await again("too_long")
    if not await handoff.is_open(services.db, user_id):
        return await again("closed")
    replies = services.replies
    try:
        result = await handoff_messages.send_reply(
            services.db,
            services.line_client(),
            user_id,
            typed,
            staff=who.operator.name,
            retry_key=reply_key,
            wrap=lambda words: replies.text("staff.reply", text=words),
        )
    except KeyTaken:
        return await again("key_taken", None)
    if result.outcome == "failed":
        # LINE refused it for good: nothing went, so a new attempt is a new message.
        return await again("failed", None)
    if result.outcome == "unsure":
        # It may have arrived: the same key again cannot send it twice.
        return await again(_error_of(result))
    if result.outcome == "sent":
        await accounts.record_audit(
            services.db, who.operator, "handoff.reply", _target(user_id), None, {"replied": True}
        )
    if result.text != typed:
        # A second submit of an earlier key sent that key's first text; keep the new one.
        return await _conversation_page(
            request, who, user_id, text=text, notice="earlier_text_sent"
        )
    notice = "sent" if result.outcome == "sent" else "already"
    return RedirectResponse(f"/console/handoffs/{user_id}?notice={notice}", status_code=303)


@router.get("/handoffs/{user_id}/end", response_class=HTMLResponse)
async def end_form(request: Request, user_id: str, who: CanHandoff) -> Response:
    """Ask before ending: the bot starts answering the user again at once."""
    services = _services(request)
    conv = await handoff_messages.conversation(services.db, _chat_id(user_id))
    agency = conv.handoff.agency if conv.handoff is not None else None
    return page(
        request,
        "handoffs_end.html",
        who,
        conv=conv,
        agency=_agency_name(services, agency),
        keep_seconds=_keep_seconds(services),
    )


@router.post("/handoffs/{user_id}/end")
async def end(request: Request, user_id: str, who: CanHandoff) -> Response:
    """End the hand-off (the bot answers the user again) and drop what is past keeping."""
    user_id = _chat_id(user_id)
    services = _services(request)
    was = await handoff_messages.conversation(services.db, user_id)
    ended = await handoff.end(services.db, user_id)
    gone = await handoff_messages.prune(services.db, services.settings)
    if ended:
        before = {"open": True, "agency": was.handoff.agency if was.handoff else None}
        await accounts.record_audit(
            services.db, who.operator, "handoff.end", _target(user_id), before, {"open": False}
        )
    log.info(
        "hand-off ended from the console",
        extra={"chat": user_ref(user_id), "ended": ended, "messages_deleted": gone},
    )
    notice = "ended" if ended else "not_open"
    return RedirectResponse(f"/console/handoffs?notice={notice}", status_code=303)
