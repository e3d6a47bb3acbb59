"""The dashboard: how the bot did today, this week or this month, at a glance.

Read from the daily counters (``bot.storage.daily``), never from the event log, plus a few
counts of small tables (users seen, assessments, notice runs). The LINE message quota is
asked of LINE (as the notice runner does), briefly and at most once a minute; when LINE
does not answer the page says so instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.console import charts
from bot.console.auth import CanView
from bot.console.web import page
from bot.services import Services
from bot.storage import daily

router = APIRouter(prefix="/console")
log = logging.getLogger(__name__)

#: The windows an operator can choose (``?days=``): today, a week, a month.
DAY_CHOICES: Final = (1, 7, 30)
DEFAULT_DAYS: Final = 7
TOP: Final = 10
#: How long the page waits for LINE's quota, and how long an answer is reused.
QUOTA_WAIT_SECONDS: Final = 3.0
QUOTA_CACHE_SECONDS: Final = 60.0


@dataclass(frozen=True)
class Quota:
    """Messages left this month: ``known`` False when LINE did not answer; ``left`` None
    (known) when the plan has no limit."""

    known: bool
    left: int | None = None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def quota(request: Request) -> Quota:
    """The quota left, from LINE (``GET /v2/bot/message/quota`` and ``.../consumption``)
    through the notice runner's own reading; kept a minute so page views do not call LINE."""
    cached: tuple[float, Quota] | None = getattr(request.app.state, "console_quota", None)
    now = time.monotonic()
    if cached is not None and now - cached[0] < QUOTA_CACHE_SECONDS:
        return cached[1]
    services = _services(request)
    # imported here: the runner brings aiohttp (~10 MB), which `bot serve` in Redis mode
    # loads only once an operator opens the dashboard
    from bot.notices.runner import NoticeRunner

    try:
        runner = NoticeRunner(services, services.line_client())
        found = Quota(True, await asyncio.wait_for(runner._quota_left(), QUOTA_WAIT_SECONDS))
    except Exception as exc:  # LINE down, slow or refusing: the dashboard still shows
        log.warning("LINE quota unknown", extra={"error": type(exc).__name__})
        found = Quota(False)
    request.app.state.console_quota = (now, found)
    return found


def intent_names(services: Services, keys: list[str]) -> dict[str, str]:
    """The menu label of each intent that has one (``menu.<intent>`` in the replies)."""
    replies = services.replies
    names = {}
    for intent in keys:
        key = f"menu.{intent}"
        if key in replies:  # an intent without a menu button is shown by its name
            names[intent] = replies.text(key)
    return names


def guide_names(services: Services, ids: list[str]) -> dict[str, str]:
    """Each guide's title (a guide removed since is shown by its id)."""
    guides = services.knowledge.guides
    return {g: found.title for g in ids if (found := guides.get(g)) is not None}


@router.get("", response_class=HTMLResponse)
@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, who: CanView, days: int = DEFAULT_DAYS) -> Response:
    """Messages, users, outcomes per day, top intents and guides, assessments, notices."""
    if days not in DAY_CHOICES:
        days = DEFAULT_DAYS
    services = _services(request)
    asking = asyncio.create_task(quota(request))  # LINE answers while the database does
    first, last = daily.window(days)
    try:
        async with services.db.session() as s:
            figures = await daily.figures(s, first, last, TOP)
    except BaseException:
        asking.cancel()
        raise
    return page(
        request,
        "dashboard.html",
        who,
        days=days,
        choices=DAY_CHOICES,
        f=figures,
        outcomes=daily.OUTCOMES,
        chart=charts.stacked(figures.by_day, daily.OUTCOMES),
        intents_chart=charts.ranking(figures.top_intents),
        guides_chart=charts.ranking(figures.top_guides),
        intent_names=intent_names(services, [k for k, _ in figures.top_intents]),
        guide_names=guide_names(services, [k for k, _ in figures.top_guides]),
        quota=await asking,
    )
