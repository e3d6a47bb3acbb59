"""The audit log: every change made from the console or the CLI (who, when, what, before
and after), for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.console.auth import CanManageOperators
from bot.console.web import page
from bot.services import Services
from bot.storage import accounts

router = APIRouter(prefix="/console/audit")
PAGE = 100


@router.get("", response_class=HTMLResponse)
async def audit(request: Request, who: CanManageOperators, offset: int = 0) -> Response:
    """A page of entries, newest first."""
    services: Services = request.app.state.services
    offset = max(0, offset)
    rows = await accounts.list_audit(services.db, PAGE, offset)
    total = await accounts.count_audit(services.db)
    return page(request, "audit.html", who, rows=rows, offset=offset, total=total, size=PAGE)
