"""``bot notify``: send new-course notices now, preview them, or list past runs."""

from __future__ import annotations

import json
from typing import TextIO

from bot.notices.runner import NoticeRunner, history
from bot.services import Services
from bot.settings import Settings


def _mask(user_id: str) -> str:
    """Enough of a LINE user id to find it in the database, not enough to read in a log."""
    return f"{user_id[:5]}…{user_id[-4:]}" if len(user_id) > 10 else user_id


async def notify(
    settings: Settings, out: TextIO, *, dry_run: bool, show_history: bool, as_json: bool
) -> int:
    """Run (or preview) one notice run and print what it did; exit status 0 unless it failed."""
    services = Services.build(settings)
    try:
        # The courses to announce are those of the published version, as the workers see them.
        await services.start_knowledge()
        if show_history:
            runs = await history(services)
            if as_json:
                out.write(json.dumps(runs, ensure_ascii=False, indent=2) + "\n")
                return 0
            if not runs:
                out.write("no notice runs yet\n")
            for run in runs:
                out.write(
                    f"#{run['id']} {run['started_at']} ({run['trigger']}): "
                    f"sent {run.get('sent', 0)}, deferred by quiet hours "
                    f"{run.get('deferred_quiet', 0)}, deferred by the daily limit "
                    f"{run.get('deferred_daily', 0)}, held back by quota "
                    f"{run.get('held_quota', 0)}, failed {run.get('failed', 0)}, "
                    f"pending {run.get('pending', 0)}, LINE calls {run.get('calls', 0)}"
                    + (f", skipped: {run['skipped']}" if run.get("skipped") else "")
                    + "\n"
                )
            return 0
        runner = NoticeRunner(services, services.line_client())
        report = await runner.run(dry_run=dry_run, trigger="cli")
        if as_json:
            data = report.counts()
            data["per_course"] = {
                cid: {"users": len(m.users), "already": m.already, "by_topic": m.by_topic}
                for cid, m in report.matches.items()
            }
            out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
            return 0 if report.skipped is None or dry_run else 1
        if report.skipped:
            out.write(f"nothing sent: {report.skipped}\n")
        kb = services.knowledge
        names = {c.id: c.name for c in kb.courses}
        if dry_run:
            out.write("dry run: nothing is sent\n")
            if not report.courses:
                out.write("no new courses to announce\n")
            for cid in report.courses:
                m = report.matches.get(cid)
                if m is None:
                    continue
                why = ", ".join(f"topic {t}: {n}" for t, n in sorted(m.by_topic.items()))
                out.write(
                    f"{cid} ({names.get(cid, '?')}): {len(m.users)} user(s) would get it"
                    + (f" [{why}]" if why else "")
                    + (f"; {m.local} by province" if m.local else "")
                    + (f"; {m.already} had it already" if m.already else "")
                    + "\n"
                )
                if m.users:
                    examples = ", ".join(_mask(u) for u in m.users[:3])
                    out.write(f"    e.g. {examples}\n")
            out.write(
                f"total: {report.matched} user(s) in {report.minimum_calls} LINE call(s)"
                f"; {report.deferred_daily} wait for the daily limit"
                + (
                    f"; quiet hours now: {report.deferred_quiet} would wait"
                    if report.deferred_quiet
                    else ""
                )
                + "\n"
            )
            return 0
        out.write(
            f"sent {report.sent}, deferred by quiet hours {report.deferred_quiet}, "
            f"deferred by the daily limit {report.deferred_daily}, "
            f"held back by quota {report.held_quota}, failed {report.failed}, "
            f"pending retry {report.pending}"
            + (
                f" (of which resent from an earlier run: {report.recovered})"
                if report.recovered
                else ""
            )
            + f"; {len(report.courses)} new course(s), {report.calls} LINE call(s) "
            f"(minimum {report.minimum_calls})"
            + (
                f"; quota left before the run: {report.quota_left}"
                if report.quota_left is not None
                else ""
            )
            + "\n"
        )
        return 1 if report.failed else 0
    finally:
        await services.close()
