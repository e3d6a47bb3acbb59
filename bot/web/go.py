"""``GET /go/{token}``: count a click on an official page, then open it (bot.insights.links).

Whatever the token, the answer is a redirect to the knowledge's own page for the entry (or
404 for an entry the knowledge does not have): a person always reaches the agency. Only a
token made for the person still in ``users`` is counted, once per click, as an
``official_clicked`` moment with their profile; nothing else about the request is kept.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlalchemy import select

from bot.insights import capture, links
from bot.insights.records import OFFICIAL_CLICKED
from bot.services import Services
from bot.storage.daily import local_day
from bot.storage.db import User

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get(links.PATH + "/{token}")
async def go(token: str, request: Request) -> Response:
    """Redirect to the entry's official page, counting the click when the token holds."""
    services: Services = request.app.state.services
    parsed = links.parse(token)
    url = links.target(services.knowledge, parsed.entry_id) if parsed else None
    if parsed is None or url is None:
        return PlainTextResponse("not found", status_code=404)
    try:
        await _count(services, parsed)
    except Exception as exc:  # the person reaches the page even if counting fails
        log.warning("official click not counted", extra={"error": type(exc).__name__})
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


async def _count(services: Services, token: links.Token) -> None:
    key = links.link_key(services.settings)
    async with services.db.session() as s, s.begin():
        user_id = await s.scalar(select(User.line_user_id).where(User.id == token.user_pk))
        if user_id is None or not token.valid_for(key, user_id):
            return  # forged, altered, or the person has erased their data since
        moment = capture.Moment(OFFICIAL_CLICKED, key=token.entry_id)
        await capture.store(s, user_id, local_day(), [moment])
