"""Knowledge versions: history, what changed, the processes, publish the files, roll back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console.auth import CanPublish, CanView
from bot.console.web import page
from bot.kb import snapshots
from bot.services import Services
from bot.storage import accounts, kb_versions

router = APIRouter(prefix="/console/versions")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.get("", response_class=HTMLResponse)
async def history(request: Request, who: CanView, flash: str | None = None) -> Response:
    """Every publication, newest first, and what each process serves now."""
    services = _services(request)
    rows = await kb_versions.history(services.db, 100)
    return page(
        request,
        "versions.html",
        who,
        rows=rows,
        processes=await services.sync.processes(),
        flash=flash,
    )


@router.get("/diff", response_class=HTMLResponse)
async def diff(request: Request, who: CanView, a: int, b: int) -> Response:
    """Per entry, what changed from version ``a`` to ``b``."""
    db = _services(request).db
    old, new = await kb_versions.files(db, a), await kb_versions.files(db, b)
    if old is None or new is None:
        raise HTTPException(404, "no such version")
    changes = snapshots.diff(old, new)
    return page(request, "versions_diff.html", who, a=a, b=b, changes=changes)


@router.post("/rollback")
async def rollback(
    request: Request,
    who: CanPublish,
    number: Annotated[int, Form()],
    note: Annotated[str | None, Form()] = None,
) -> Response:
    """Make an earlier version live again, here and in every process."""
    services = _services(request)
    before = services.sync.live_number
    try:
        outcome = await services.sync.rollback(number, who.operator.name, note or None)
    except LookupError as exc:
        raise HTTPException(404, "no such version") from exc
    await accounts.record_audit(
        services.db,
        who.operator.name,
        "kb.rollback",
        f"version {number}",
        {"number": before},
        {"number": number, "ok": outcome.ok},
    )
    flash = "rollback" if outcome.ok else "rollback-refused"
    return RedirectResponse(f"/console/versions?flash={flash}", status_code=303)
