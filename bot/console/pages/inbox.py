"""The unanswered inbox: what the bot could not answer, grouped, and one click to fix it.

Messages are grouped by similarity (rapidfuzz, on the normalised text) with the bot's best
guess. Adding a message as an example of an intent or a guide validates and publishes a new
knowledge version at once (every process retrains), after which the page shows the
cross-validated accuracy before and after. A message can also be dismissed, or start a
new guide. The inbox holds no user ids (PDPA): only the text, the guess and the time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from rapidfuzz import fuzz
from sqlalchemy import delete, select

from bot.console import accuracy, editing
from bot.console.auth import CanEdit, CanView
from bot.console.web import page
from bot.nlu.text import normalise
from bot.services import Services
from bot.storage import accounts
from bot.storage.db import Unanswered

router = APIRouter(prefix="/console/inbox")

#: How alike two messages must be (rapidfuzz ratio, 0-100) to share a group.
SIMILAR = 72
#: Newest messages read for the inbox.
LIMIT = 500


@dataclass
class Group:
    """Messages that say much the same thing."""

    texts: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    best_intent: str | None = None
    best_guide: str | None = None
    confidence: float | None = None
    last: dt.datetime | None = None
    key: str = ""

    @property
    def guess(self) -> str | None:
        """The most likely target: the guide when the engine named one, else the intent."""
        if self.best_guide:
            return f"guide:{self.best_guide}"
        if self.best_intent and self.best_intent != "out_of_scope":
            return self.best_intent
        return None


def group(rows: list[Unanswered]) -> list[Group]:
    """Greedy grouping, newest first: a message joins the first group it resembles."""
    groups: list[Group] = []
    for row in rows:
        key = normalise(row.text)
        home = next((g for g in groups if fuzz.ratio(g.key, key) >= SIMILAR), None)
        if home is None:
            home = Group(
                best_intent=row.best_intent,
                best_guide=row.best_guide,
                confidence=row.confidence,
                last=row.created_at,
                key=key,
            )
            groups.append(home)
        if row.text not in home.texts:
            home.texts.append(row.text)
        home.ids.append(row.id)
    return sorted(groups, key=lambda g: len(g.ids), reverse=True)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _rows(services: Services) -> list[Unanswered]:
    async with services.db.session() as s:
        query = select(Unanswered).order_by(Unanswered.created_at.desc(), Unanswered.id.desc())
        return list((await s.scalars(query.limit(LIMIT))).all())


def _targets(services: Services) -> list[tuple[str, str]]:
    """Every intent and guide an example can go to, as (value, label)."""
    knowledge = services.knowledge
    out = [(i, i) for i in sorted(services.nlu.intents) if not i.startswith("guide:")]
    out += [(f"guide:{g.id}", f"{g.id}: {g.title}") for g in knowledge.guides.guides.values()]
    return out


@router.get("", response_class=HTMLResponse)
async def inbox(request: Request, who: CanView) -> Response:
    """The grouped messages with the best guess and the actions."""
    services = _services(request)
    groups = group(await _rows(services))
    await services.ready()
    return page(request, "inbox.html", who, groups=groups, targets=_targets(services))


def _ids(raw: str) -> list[int]:
    try:
        return [int(x) for x in raw.split(",") if x.strip()]
    except ValueError as exc:
        raise HTTPException(400, "bad ids") from exc


@router.post("/add", response_class=HTMLResponse)
async def add(
    request: Request,
    who: CanEdit,
    ids: Annotated[str, Form()],
    text: Annotated[str, Form()],
    target: Annotated[str, Form()],
) -> Response:
    """Add the message as an example, validate and publish; then the result page."""
    services = _services(request)
    before = services.kb.current
    content = await services.sync.served_content()
    try:
        changed, file = editing.add_example(content, target, text)
    except editing.EditError as exc:
        return page(
            request, "inbox_result.html", who, 422, ok=False, problems=[str(exc)], text=text
        )
    outcome = await services.sync.publish_content(changed, who.operator.name, f"example: {target}")
    if not outcome.ok:
        problems = [str(p) for p in outcome.problems]
        return page(request, "inbox_result.html", who, 422, ok=False, problems=problems, text=text)
    async with services.db.session() as s, s.begin():
        await s.execute(delete(Unanswered).where(Unanswered.id.in_(_ids(ids))))
    await accounts.record_audit(
        services.db,
        who.operator.name,
        "inbox.add_example",
        f"{target} ({file})",
        {"version": before.version},
        {"version": outcome.version, "number": outcome.number},
    )
    accuracy.measure(services, before)
    accuracy.measure(services, services.kb.current)
    return page(
        request,
        "inbox_result.html",
        who,
        ok=True,
        text=text,
        target=target,
        number=outcome.number,
        before=before.version,
        after=outcome.version,
    )


@router.get("/accuracy", response_class=HTMLResponse)
async def accuracy_figures(request: Request, who: CanView, before: str, after: str) -> Response:
    """The before/after figures (htmx polls this until both are measured)."""
    services = _services(request)
    figures = {
        "before": await accuracy.known(services, before),
        "after": await accuracy.known(services, after),
    }
    return page(request, "_inbox_accuracy.html", who, before=before, after=after, figures=figures)


@router.post("/dismiss")
async def dismiss(request: Request, who: CanEdit, ids: Annotated[str, Form()]) -> Response:
    """Drop messages that need no answer."""
    services = _services(request)
    wanted = _ids(ids)
    async with services.db.session() as s, s.begin():
        await s.execute(delete(Unanswered).where(Unanswered.id.in_(wanted)))
    await accounts.record_audit(
        services.db, who.operator.name, "inbox.dismiss", f"{len(wanted)} message(s)", None, None
    )
    return RedirectResponse("/console/inbox", status_code=303)
