"""The operator console at ``/console``: server-rendered pages, served by the bot's own app.

Pages are Jinja2 templates (``templates/``, Thai labels; autoescaping on, so user text is
always escaped) with htmx for the few parts that update in place. Every asset (htmx, the
Noto Sans Thai font, the style sheet) ships in ``static/``: no CDN, no build step.
Each page module has its own router; ``mount`` puts them all on the app. Access is
checked on the server by ``bot.console.auth`` for every route but sign-in.
"""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bot.console.auth import SignedIn

HERE = Path(__file__).parent
BANGKOK = ZoneInfo("Asia/Bangkok")

#: Page modules, each with a ``router``: the console's parts, in menu order.
PAGE_MODULES = (
    "bot.console.pages.session",
    "bot.console.pages.dashboard",
    "bot.console.pages.inbox",
    "bot.console.pages.knowledge",
    "bot.console.pages.versions",
    "bot.console.pages.simulator",
    "bot.console.pages.handoffs",
    "bot.console.pages.notices",
    "bot.console.pages.insights",
    "bot.console.pages.audit",
)

templates = Jinja2Templates(directory=HERE / "templates")


def local_time(moment: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as Bangkok time (what operators read)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(BANGKOK).strftime(fmt)


templates.env.filters["local_time"] = local_time


def page(
    request: Request,
    template: str,
    who: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a console template with what every page needs (operator, CSRF token)."""
    return templates.TemplateResponse(
        request,
        template,
        {"who": who, "csrf_token": who.csrf_token if who else "", **context},
        status_code=status_code,
    )


def mount(app: FastAPI) -> None:
    """Serve the console's pages and assets on ``app``."""
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for name in PAGE_MODULES:
        app.include_router(importlib.import_module(name).router)
