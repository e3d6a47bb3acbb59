"""Push notices in the console: past runs, a preview of the next one, and "send now".

The preview is the run itself with ``dry_run=True`` (what ``bot notify --dry-run`` does):
the same matching, the same quiet hours and daily limit, nothing written, nothing sent.
"Send now" (permission ``notify``) asks first on a page of its own that shows the preview,
and the confirmation carries a fingerprint of it: if what would go changed in between
(another run went, new subscribers), the operator is shown the new preview and asked
again instead of sending something they did not see. Every send is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from bot.console.auth import CanNotify, CanView, SignedIn
from bot.console.web import page
from bot.line.calls import LineError
from bot.notices.message import digest_messages
from bot.services import Services
from bot.storage import accounts
from bot.storage.db import NoticeBatch, NoticeRun, utcnow

if TYPE_CHECKING:
    from bot.notices.runner import RunReport

router = APIRouter(prefix="/console")
log = logging.getLogger(__name__)

#: Past runs shown.
HISTORY_ROWS = 50
#: How long the preview waits for LINE's quota figures before showing them as unknown.
QUOTA_SECONDS = 5.0
#: Courses at most in the sample digest (a LINE carousel holds 12 bubbles).
SAMPLE_COURSES = 10


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@dataclass
class Preview:
    """What the next run would do now (``report`` is the dry run's)."""

    report: RunReport
    courses: list[dict[str, Any]] = field(default_factory=list)
    #: Recipients of batches an earlier run left unsent: the next run resends them first.
    pending: int = 0
    quiet_now: bool = False
    quota_left: int | None = None
    #: False when LINE did not answer for the quota (the run itself would then stop).
    quota_known: bool = True
    #: Recipients the quota left would not cover.
    held_quota: int = 0
    #: The digest a user matching every course would get, as LINE JSON (for the LINE look).
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Identifies what would go, for the confirmation to check it is still the same."""
        what = {
            "courses": sorted(self.report.courses),
            "users": {c["id"]: c["users"] for c in self.courses},
            "matched": self.report.matched,
            "pending": self.pending,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


async def _quota(services: Services) -> tuple[int | None, bool]:
    """Messages left this month (None: no limit), and whether LINE said so."""
    line = services.line_client()
    try:
        limit = await asyncio.wait_for(line.quota(), QUOTA_SECONDS)
        if limit is None:
            return None, True
        used = await asyncio.wait_for(line.quota_consumption(), QUOTA_SECONDS)
    except (LineError, TimeoutError) as exc:
        log.info("quota not read for the preview", extra={"error": type(exc).__name__})
        return None, False
    return max(0, limit - used), True


async def _pending(services: Services) -> int:
    async with services.db.session() as s:
        rows = (
            await s.scalars(select(NoticeBatch.recipients).where(NoticeBatch.status == "pending"))
        ).all()
    return sum(len(r or ()) for r in rows)


async def preview(services: Services) -> Preview:
    """A dry run of the next notice run, with the quota and what is still pending."""
    from bot.notices.runner import NoticeRunner  # aiohttp: see the dashboard

    runner = NoticeRunner(services, services.line_client())
    report = await runner.run(dry_run=True, trigger="console")
    kb = services.knowledge
    by_id = {c.id: c for c in kb.courses}
    result = Preview(report, quiet_now=runner.quiet.active(utcnow()))
    for cid in report.courses:
        match = report.matches.get(cid)
        course = by_id.get(cid)
        result.courses.append(
            {
                "id": cid,
                "name": course.name.th if course is not None else cid,
                "users": len(match.users) if match else 0,
                "already": match.already if match else 0,
                "local": match.local if match else 0,
                "topics": {
                    (kb.topics[t].label.th if t in kb.topics else t): n
                    for t, n in sorted((match.by_topic if match else {}).items())
                },
            }
        )
    wanted = [by_id[c["id"]] for c in result.courses if c["users"] and c["id"] in by_id]
    if wanted:
        chosen = wanted[:SAMPLE_COURSES]
        result.sample = [m.to_line() for m in digest_messages(chosen, kb, services.replies)]
    result.pending = await _pending(services)
    if report.matched:
        result.quota_left, result.quota_known = await _quota(services)
        if result.quota_left is not None:
            result.held_quota = max(0, report.matched - result.quota_left)
    return result


async def _history(services: Services) -> list[dict[str, Any]]:
    """Past runs, newest first, with their batches per state."""
    async with services.db.session() as s:
        runs = (
            await s.scalars(select(NoticeRun).order_by(NoticeRun.id.desc()).limit(HISTORY_ROWS))
        ).all()
        ids = [r.id for r in runs]
        batches: dict[int, dict[str, int]] = {}
        if ids:
            stmt = (
                select(NoticeBatch.run_id, NoticeBatch.status, func.count())
                .where(NoticeBatch.run_id.in_(ids))
                .group_by(NoticeBatch.run_id, NoticeBatch.status)
            )
            for run_id, status, n in (await s.execute(stmt)).all():
                batches.setdefault(run_id, {})[status] = int(n)
    return [
        {
            "id": r.id,
            "trigger": r.trigger,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "counts": r.counts or {},
            "batches": batches.get(r.id, {}),
        }
        for r in runs
    ]


@router.get("/notices", response_class=HTMLResponse)
async def notices(
    request: Request, who: CanView, notice: str | None = None, ran: int | None = None
) -> Response:
    """Past runs and what the next run would send now."""
    services = _services(request)
    return page(
        request,
        "notices_history.html",
        who,
        runs=await _history(services),
        preview=await preview(services),
        notice=notice,
        ran=ran,
    )


def _confirm_page(
    request: Request, who: SignedIn, shown: Preview, status_code: int = 200, **extra: Any
) -> Response:
    return page(request, "notices_confirm.html", who, status_code, preview=shown, **extra)


@router.get("/notices/send", response_class=HTMLResponse)
async def confirm_form(request: Request, who: CanNotify) -> Response:
    """The confirmation step: the preview again, and the button that sends."""
    return _confirm_page(request, who, await preview(_services(request)))


@router.post("/notices/send", response_class=HTMLResponse)
async def send(
    request: Request,
    who: CanNotify,
    confirm: Annotated[str, Form()] = "",
    expect: Annotated[str, Form()] = "",
) -> Response:
    """Run the notices now, if confirmed for exactly what the preview showed."""
    services = _services(request)
    shown = await preview(services)
    if confirm != "yes":
        return _confirm_page(request, who, shown, 400, problem="unconfirmed")
    if expect != shown.fingerprint:
        return _confirm_page(request, who, shown, 409, problem="changed")
    from bot.notices.runner import NoticeRunner

    runner = NoticeRunner(services, services.line_client())
    report = await runner.run(trigger="console")
    counts = {
        k: report.counts()[k]
        for k in ("sent", "failed", "pending", "deferred_quiet", "deferred_daily", "held_quota")
    }
    await accounts.record_audit(
        services.db,
        who.operator,
        "notice.send",
        f"run {report.run_id}" if report.run_id is not None else "run (not started)",
        None,
        {**counts, "courses": len(report.courses), "skipped": report.skipped},
    )
    if report.run_id is None:
        return RedirectResponse("/console/notices?notice=busy", status_code=303)
    return RedirectResponse(f"/console/notices?notice=ran&ran={report.run_id}", status_code=303)
