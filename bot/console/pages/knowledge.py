"""Knowledge pages: list, search and edit every collection; stale entries; previews.

Edits go through ``bot.console.editing`` (the served version's files, one entry changed)
and ``KnowledgeSync.publish_content`` (the same validation and publication as
``bot kb publish``): a refused edit changes nothing live and its problems are shown by
field. Course, programme and centre entries are previewed with the bot's own card
builders, replies as the text bubble they are; guides and intents open in the simulator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console import editing
from bot.console.auth import CanEdit, CanView
from bot.console.web import page
from bot.content.cards.centre import centre_bubble
from bot.content.cards.course import course_bubble
from bot.content.cards.programme import programme_bubble
from bot.services import Services
from bot.storage import accounts

router = APIRouter(prefix="/console/knowledge")

ALL = (*editing.COLLECTIONS, *editing.CSV_COLLECTIONS, "replies", "intents")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _collection(name: str) -> str:
    if name not in ALL:
        raise HTTPException(404, "no such collection")
    return name


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, who: CanView) -> Response:
    """Every collection with its size, and the entries past their review date."""
    services = _services(request)
    content = await services.sync.served_content()
    today = dt.date.today()
    sizes, stale = {}, []
    for name in ALL:
        found = editing.entries(content, name)
        sizes[name] = len(found)
        stale += [e for e in found if e.stale(today)]
    return page(
        request,
        "knowledge.html",
        who,
        sizes=sizes,
        stale=stale,
        warnings=[str(w) for w in services.kb.current.warnings],
        number=services.sync.live_number,
    )


@router.get("/{collection}", response_class=HTMLResponse)
async def listing(request: Request, who: CanView, collection: str, q: str = "") -> Response:
    """A collection's entries, searched by id or title."""
    name = _collection(collection)
    content = await _services(request).sync.served_content()
    found = editing.entries(content, name)
    if q.strip():
        needle = q.strip().lower()
        found = [e for e in found if needle in e.id.lower() or needle in e.title.lower()]
    return page(
        request,
        "knowledge_list.html",
        who,
        collection=name,
        rows=found,
        q=q,
        today=dt.date.today(),
    )


async def _guide_preview(services: Services, guide_id: str) -> list[dict[str, Any]]:
    """A guide's answer as the guides handler sends it (a turn that is never stored)."""
    from bot.dialogue.router import Turn
    from bot.dialogue.state import DialogueState
    from bot.line.events import InboundEvent
    from handlers import guides

    event = InboundEvent.from_dict(
        {
            "type": "message",
            "webhookEventId": "preview",
            "timestamp": 0,
            "source": {"type": "user", "userId": "Upreview"},
            "message": {"type": "text", "id": "preview", "text": ""},
        }
    )
    turn = Turn(
        event=event, services=services, state=DialogueState(), answering=f"guide:{guide_id}"
    )
    await guides.answer(turn)
    return [m.to_line() for m in turn.messages]


def _preview(services: Services, collection: str, entry_id: str) -> list[dict[str, Any]]:
    """The entry as LINE would show it (the served version), in LINE's JSON form."""
    kb, replies = services.knowledge, services.replies

    def flex(bubble: dict[str, Any], alt: str) -> list[dict[str, Any]]:
        return [{"type": "flex", "altText": alt, "contents": bubble}]

    if collection == "courses":
        course = next((c for c in kb.courses if c.id == entry_id), None)
        return flex(course_bubble(course, kb, replies), course.name.th) if course else []
    if collection == "programmes":
        prog = next((p for p in kb.programmes if p.id == entry_id), None)
        return flex(programme_bubble(prog, kb, replies), prog.name.th) if prog else []
    if collection == "centres":
        centre = next((c for c in kb.centres if c.id == entry_id), None)
        return flex(centre_bubble(centre, kb, replies), centre.name_th) if centre else []
    if collection == "replies":
        return [{"type": "text", "text": v} for v in replies.texts.get(entry_id, ())][:5]
    return []


def _simulate_text(services: Services, collection: str, entry_id: str) -> str | None:
    """A question to try in the simulator (a guide's or intent's first example)."""
    if collection == "guides":
        guide = services.knowledge.guides.guides.get(entry_id)
        return guide.examples[0] if guide and guide.examples else None
    return None


async def _edit_page(
    request: Request,
    who: Any,
    collection: str,
    entry_id: str,
    content: dict[str, bytes],
    status: int = 200,
    problems: list[str] | None = None,
    form: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response:
    services = _services(request)
    try:
        fields = editing.form_fields(content, collection, entry_id)
    except editing.EditError as exc:
        raise HTTPException(404, "no such entry") from exc
    for field in fields:
        if form and field.path in form:
            field.value = form[field.path]
    return page(
        request,
        "knowledge_edit.html",
        who,
        status,
        collection=collection,
        entry_id=entry_id,
        fields=fields,
        problems=problems or [],
        by_field=editing.field_problems(problems or [], fields),
        preview=(
            await _guide_preview(services, entry_id)
            if collection == "guides" and entry_id in services.knowledge.guides.guides
            else _preview(services, collection, entry_id)
        ),
        simulate=_simulate_text(services, collection, entry_id),
        flash=flash,
    )


@router.get("/guides/new", response_class=HTMLResponse)
async def new_guide_form(request: Request, who: CanEdit, text: str = "") -> Response:
    """A new guide, its first example question prefilled (from the inbox)."""
    services = _services(request)
    content = await services.sync.served_content()
    themes = sorted(n for n in content if n.startswith("knowledge/guides/"))
    agencies = sorted(services.knowledge.agencies)
    return page(
        request,
        "knowledge_new_guide.html",
        who,
        themes=themes,
        agencies=agencies,
        form={"examples": text},
    )


@router.post("/guides/new", response_class=HTMLResponse)
async def new_guide(request: Request, who: CanEdit) -> Response:
    """Validate and publish a new guide (sample status until someone verifies it)."""
    services = _services(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    content = await services.sync.served_content()
    today = dt.date.today()
    item: dict[str, Any] = {
        "id": form.get("id", "").strip(),
        "title": form.get("title", "").strip(),
        "short": form.get("short", "").strip() or form.get("title", "").strip()[:20],
        "examples": [x.strip() for x in form.get("examples", "").splitlines() if x.strip()],
        "answer": form.get("answer", "").replace("\r\n", "\n").strip() + "\n",
        "agency": form.get("agency", "").strip(),
        "provenance": {
            "status": "sample",
            "source_urls": [x.strip() for x in form.get("source_urls", "").split() if x.strip()],
            "checked_on": today.isoformat(),
            "review_by": (today + dt.timedelta(days=365)).isoformat(),
        },
    }

    def refused(problems: list[str]) -> Response:
        """The form again, as typed, with what stopped it."""
        return page(
            request,
            "knowledge_new_guide.html",
            who,
            422,
            themes=sorted(n for n in content if n.startswith("knowledge/guides/")),
            agencies=sorted(services.knowledge.agencies),
            form=form,
            problems=problems,
        )

    try:
        changed = editing.new_guide(content, form.get("theme", ""), item)
    except editing.EditError as exc:
        return refused([f"{exc.field}: {exc}"])
    outcome = await services.sync.publish_content(
        changed, who.operator.name, f"new guide {item['id']}"
    )
    if not outcome.ok:
        return refused([str(p) for p in outcome.problems])
    await accounts.record_audit(
        services.db,
        who.operator.name,
        "kb.new_guide",
        f"guides/{item['id']}",
        None,
        {"version": outcome.version, "number": outcome.number},
    )
    return RedirectResponse(f"/console/knowledge/guides/{item['id']}?saved={outcome.number}", 303)


@router.get("/{collection}/{entry_id}", response_class=HTMLResponse)
async def edit_form(
    request: Request, who: CanView, collection: str, entry_id: str, saved: int | None = None
) -> Response:
    """An entry's fields (read-only for a viewer), its LINE preview."""
    name = _collection(collection)
    content = await _services(request).sync.served_content()
    flash = f"saved:{saved}" if saved else None
    return await _edit_page(request, who, name, entry_id, content, flash=flash)


@router.post("/{collection}/{entry_id}", response_class=HTMLResponse)
async def save(request: Request, who: CanEdit, collection: str, entry_id: str) -> Response:
    """Apply the form, validate, publish; errors by field and nothing live changes."""
    name = _collection(collection)
    services = _services(request)
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    content = await services.sync.served_content()
    try:
        changed = editing.apply_form(content, name, entry_id, form)
    except editing.EditError as exc:
        problem = f"{exc.field or ''}: {exc}"
        return await _edit_page(
            request, who, name, entry_id, content, 422, [f"form: {problem}"], form
        )
    if changed == content:
        return await _edit_page(request, who, name, entry_id, content, flash="unchanged")
    before = {f.path: f.value for f in editing.form_fields(content, name, entry_id)}
    outcome = await services.sync.publish_content(
        changed, who.operator.name, f"edit {name}/{entry_id}"
    )
    if not outcome.ok:
        problems = [str(p) for p in outcome.problems]
        return await _edit_page(request, who, name, entry_id, content, 422, problems, form)
    after = {f.path: f.value for f in editing.form_fields(changed, name, entry_id)}
    await accounts.record_audit(
        services.db,
        who.operator.name,
        "kb.edit",
        f"{name}/{entry_id}",
        {k: v for k, v in before.items() if after.get(k) != v},
        {k: v for k, v in after.items() if before.get(k) != v} | {"version": outcome.number},
    )
    return RedirectResponse(
        f"/console/knowledge/{name}/{entry_id}?saved={outcome.number}", status_code=303
    )
