"""The chat simulator: a test user talks to the bot through the webhook's own pipeline.

Each message becomes a LINE-shaped event that the same ``Pipeline`` as the workers handles
(intent engine, router, handlers, dialogue state, event log); what the bot would send to
LINE comes back as HTML drawn like LINE (text, quick replies, Flex bubbles and carousels),
and its buttons can be pressed. The test user's id is derived from the operator's name, so
each operator has a conversation of their own that is not a real citizen's.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from bot.console.auth import CanView
from bot.console.web import page
from bot.insights.capture import SIMULATOR_MARK
from bot.line.messages import Message
from bot.pipeline.process import Pipeline
from bot.queue.base import QueuedEvent
from bot.services import Services

router = APIRouter(prefix="/console/simulator")


def simulator_user(operator_name: str) -> str:
    """A LINE-shaped user id for an operator's test conversation."""
    return "U" + hashlib.sha256(f"console-simulator:{operator_name}".encode()).hexdigest()[:32]


class Captured:
    """A Messenger that keeps what the bot would send (reply or push) in LINE's JSON form."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        self.messages += [m.to_line() for m in messages]

    async def push(self, to: str, messages: Sequence[Message], retry_key: str) -> bool:
        self.messages += [m.to_line() for m in messages]
        return True

    async def show_loading(self, chat_id: str, seconds: int = 20) -> None:
        return None

    async def profile(self, user_id: str) -> dict[str, Any]:
        return {"userId": user_id}


def _event(user: str, message: dict[str, Any] | None, postback: str | None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "webhookEventId": "sim" + uuid.uuid4().hex[:23],
        "timestamp": int(time.time() * 1000),
        "mode": "active",
        "source": {"type": "user", "userId": user},
        "replyToken": uuid.uuid4().hex,
        "deliveryContext": {"isRedelivery": False},
        SIMULATOR_MARK: True,  # a test conversation: never counted in the insights
    }
    if postback is not None:
        return {**base, "type": "postback", "postback": {"data": postback}}
    return {**base, "type": "message", "message": {"id": uuid.uuid4().hex[:12], **(message or {})}}


@router.get("", response_class=HTMLResponse)
async def simulator(request: Request, who: CanView, text: str | None = None) -> Response:
    """The chat window (``text`` prefills the box, e.g. from a guide's page)."""
    return page(request, "simulator.html", who, prefill=text or "")


@router.post("/send", response_class=HTMLResponse)
async def send(
    request: Request,
    who: CanView,
    text: Annotated[str | None, Form()] = None,
    postback: Annotated[str | None, Form()] = None,
    shown: Annotated[str | None, Form()] = None,
    location: Annotated[str | None, Form()] = None,
) -> Response:
    """One turn: the user's message or button, then what the bot answers."""
    services: Services = request.app.state.services
    user = simulator_user(who.operator.name)
    said: str | None = None
    message: dict[str, Any] | None = None
    if postback:
        said = shown or ""
    elif location and location != "ask":
        lat, _, lng = location.partition(",")
        try:
            message = {"type": "location", "latitude": float(lat), "longitude": float(lng)}
        except ValueError:
            message = None
        said = f"📍 {location}"
    elif location == "ask":
        return page(request, "_simulator_turn.html", who, said=None, messages=[], ask_location=True)
    elif text and text.strip():
        message = {"type": "text", "text": text.strip()[:5000]}
        said = text.strip()
    if message is None and not postback:
        return page(request, "_simulator_turn.html", who, said=None, messages=[])
    event = _event(user, message, postback)
    captured = Captured()
    await services.ready()
    pipeline = Pipeline(services, captured)
    await pipeline.process(QueuedEvent(event["webhookEventId"], user, event["timestamp"], event, 1))
    return page(
        request,
        "_simulator_turn.html",
        who,
        said=said,
        messages=captured.messages,
        quiet=not captured.messages,
    )
