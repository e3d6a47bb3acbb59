"""Operator endpoints: knowledge status and reload, protected by ADMIN_TOKEN.

``GET /admin/kb`` shows the version every process serves and the problems of
a refused edit; ``POST /admin/reload`` reloads now and moves every process
to the new version. ``GET /admin/handoffs`` lists the users handed to staff
and ``POST /admin/handoffs/{user_id}/end`` ends one (the bot answers that
user again). Without ADMIN_TOKEN set the endpoints are closed.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from bot.services import Services
from bot.storage import handoff

router = APIRouter(prefix="/admin")


async def _authorised(request: Request, authorization: str | None = Header(None)) -> Services:
    """The app's services, once the request has shown the admin token (403: no token is set,
    401: a missing or wrong one)."""
    services: Services = request.app.state.services
    token = services.settings.admin_token
    if token is None:
        raise HTTPException(403, "admin endpoints are disabled: set ADMIN_TOKEN")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong admin token")
    return services


#: An endpoint parameter: the services, after the admin token was checked.
Admin = Annotated[Services, Depends(_authorised)]


@router.get("/kb")
async def knowledge_status(services: Admin) -> JSONResponse:
    """This process's knowledge version and problems, and every other process's report."""
    body = services.kb.status() | {"number": services.sync.live_number}
    body["processes"] = await services.sync.processes()
    return JSONResponse(body)


@router.post("/reload")
async def reload_knowledge(services: Admin) -> JSONResponse:
    """Reload the knowledge files; 422 with the problems when the edit is refused."""
    outcome = await services.reload_knowledge("admin-token")
    body = {
        "ok": outcome.ok,
        "version": outcome.version,
        "number": outcome.number,
        "changed": outcome.changed,
        "changes": outcome.changes,
        "problems": [str(p) for p in outcome.problems],
    }
    return JSONResponse(body, status_code=200 if outcome.ok else 422)


@router.get("/handoffs")
async def list_handoffs(services: Admin) -> JSONResponse:
    """Users handed to staff right now (the bot is quiet for them), who waited longest first."""
    rows = await handoff.active(services.db)
    return JSONResponse({"handoffs": [h.to_json() for h in rows]})


@router.post("/handoffs/{user_id}/end")
async def end_handoff(user_id: str, services: Admin) -> JSONResponse:
    """End a user's hand-off; 404 when they have none open."""
    if not await handoff.end(services.db, user_id):
        raise HTTPException(404, "this user has no open hand-off")
    return JSONResponse({"ok": True, "user_id": user_id})
