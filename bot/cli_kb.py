"""``bot kb publish|history|diff|rollback|export|reload|status``: published knowledge versions.

The files are the editing format; what users see is the version published in the
database (``bot.kb.sync``). These commands validate and publish files, list and compare
versions, move back to an earlier one, and write a version out as files again (to bring a
console edit back into git).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings


def _cli() -> Any:
    from bot import cli

    return cli


def _actor(args: argparse.Namespace) -> str:
    return str(getattr(args, "by", None) or os.environ.get("USER") or getpass.getuser() or "cli")


def _upgrade_embedded(settings: Settings) -> None:
    """The embedded SQLite file is upgraded by the bot itself; do the same here."""
    if settings.uses_sqlite:
        import logging

        from bot.storage.migrate import upgrade

        logging.disable(logging.INFO)
        try:
            upgrade(settings)
        finally:
            logging.disable(logging.NOTSET)


async def _announce(settings: Settings, version: str, wait: float) -> list[dict[str, Any]]:
    """Announce on Redis; after ``wait`` seconds, the processes' reports (without Redis: [])."""
    if not settings.redis_url:
        return []
    from bot.kb.sync import Announcer
    from bot.queue.redis_queue import connect

    client = connect(settings.redis_url)
    try:
        announcer = Announcer(client, settings.redis_prefix)
        if version:
            await announcer.announce(version)
            await asyncio.sleep(wait)
        return await announcer.processes()
    finally:
        await client.aclose()


async def _audit(db: Any, actor: str, action: str, number: int, before: Any) -> None:
    """The audit entry of a change made from the command line (operator ``cli:<login>``)."""
    from bot.storage import accounts

    await accounts.record_audit(
        db,
        f"cli:{actor}"[:64],
        action,
        f"version {number}",
        {"number": before.number} if before else None,
        {"number": number},
    )


def cmd_kb_publish(args: argparse.Namespace) -> int:
    """Validate a knowledge folder (and the intents), store it as a version, make it live."""
    from bot.kb.loader import load_knowledge
    from bot.kb.sync import FilesChanged, folder_content
    from bot.storage import kb_versions

    cli = _cli()
    settings = cli._settings()
    folder = Path(args.folder) if args.folder else settings.knowledge_dir
    intents = Path(args.intents) if args.intents else settings.intents_dir
    result = load_knowledge(folder, also=(intents,))
    if result.knowledge is None:
        cli._print_problems(result.problems)
        return 1
    knowledge = result.knowledge
    try:
        content = folder_content(knowledge)
    except FilesChanged as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 1
    counts = {k: v for k, v in knowledge.counts.items() if k != "load_ms"}
    _upgrade_embedded(settings)
    actor = _actor(args)

    async def publish(db: Any) -> kb_versions.Published:
        before = await kb_versions.live(db)
        done = await kb_versions.publish(db, knowledge.version, content, counts, actor, args.note)
        if done.changed:
            await _audit(db, actor, "kb.publish", done.number, before)
        return done

    published = cli._with_database(settings, publish)
    if not published.changed:
        print(f"version {published.number} ({published.digest}) is live already; nothing to do")
        return 0
    print(f"published version {published.number} ({published.digest})")
    for line in published.changes[:40]:
        print(f"  {line}")
    if len(published.changes) > 40:
        print(f"  ... {len(published.changes) - 40} more (bot kb history)")
    _print_processes(asyncio.run(_announce(settings, published.digest, args.wait)), settings)
    return 0


def _print_processes(reports: list[dict[str, Any]], settings: Settings) -> None:
    if not settings.redis_url:
        print(f"running processes follow within KB_POLL_SECONDS ({settings.kb_poll_seconds:g} s)")
        return
    for proc in reports:
        problems = proc.get("problems") or []
        state = "OK" if not problems else "REFUSED: " + "; ".join(map(str, problems))[:300]
        print(f"  {proc.get('process')}: version {proc.get('version')} {state}")


def cmd_kb_history(args: argparse.Namespace) -> int:
    """Publications, newest first: who, when, what changed."""
    from bot.storage import kb_versions

    cli = _cli()
    settings = cli._settings()
    rows = cli._with_database(settings, lambda db: kb_versions.history(db, args.limit))
    if not rows:
        print("no version published yet (bot kb publish)")
        return 0
    for index, row in enumerate(rows):
        live = "  <- live" if index == 0 else ""
        note = f"  \u201c{row.note}\u201d" if row.note else ""
        print(
            f"#{row.number}  {row.at:%Y-%m-%d %H:%M}  {row.action:<8}  by {row.actor}  "
            f"{row.digest}{note}{live}"
        )
        if row.action == "publish":
            for line in row.changes[: args.changes]:
                print(f"      {line}")
            if len(row.changes) > args.changes:
                print(f"      ... {len(row.changes) - args.changes} more")
    return 0


def _resolve(settings: Settings, ref: str) -> dict[str, bytes] | None:
    """A version's files: a number, a digest, ``live``, or ``files`` (the folders here)."""
    from bot.kb import snapshots
    from bot.storage import kb_versions

    if ref == "files":
        return snapshots.read_folders(settings.knowledge_dir, settings.intents_dir)
    cli = _cli()

    async def get(db: Any) -> dict[str, bytes] | None:
        if ref == "live":
            current = await kb_versions.live(db)
            return await kb_versions.files(db, current.number) if current else None
        return await kb_versions.files(db, int(ref) if ref.isdigit() else ref)

    found: dict[str, bytes] | None = cli._with_database(settings, get)
    return found


def cmd_kb_diff(args: argparse.Namespace) -> int:
    """Per entry, what changed from version A to version B."""
    from bot.kb import snapshots

    settings = _cli()._settings()
    old, new = _resolve(settings, args.a), _resolve(settings, args.b)
    for ref, found in ((args.a, old), (args.b, new)):
        if found is None:
            print(f"bot: no knowledge version {ref!r} (bot kb history lists them)", file=sys.stderr)
            return 1
    changes = snapshots.diff(old or {}, new or {})
    for change in changes:
        print(change)
    print(f"{len(changes)} change(s) from {args.a} to {args.b}")
    return 0


def cmd_kb_rollback(args: argparse.Namespace) -> int:
    """Make an earlier version live again, everywhere."""
    from bot.storage import kb_versions

    cli = _cli()
    settings = cli._settings()
    actor = _actor(args)

    async def rollback(db: Any) -> kb_versions.Published:
        before = await kb_versions.live(db)
        done = await kb_versions.rollback(db, args.version, actor, args.note)
        await _audit(db, actor, "kb.rollback", done.number, before)
        return done

    try:
        published = cli._with_database(settings, rollback)
    except LookupError as exc:
        print(f"bot: {exc} (bot kb history lists them)", file=sys.stderr)
        return 1
    print(f"version {published.number} ({published.digest}) is live again")
    _print_processes(asyncio.run(_announce(settings, published.digest, args.wait)), settings)
    return 0


def cmd_kb_export(args: argparse.Namespace) -> int:
    """Write a version's files (knowledge/ and intents/) into DIR, e.g. to commit them."""
    from bot.kb import snapshots

    settings = _cli()._settings()
    found = _resolve(settings, args.version)
    if found is None:
        print(f"bot: no knowledge version {args.version!r}", file=sys.stderr)
        return 1
    dest = Path(args.dir)
    if dest.exists() and any(dest.iterdir()) and not args.force:
        print(f"bot: {dest} is not empty (use --force to replace it)", file=sys.stderr)
        return 1
    knowledge, intents = snapshots.write_folders(found, dest)
    print(f"wrote {len(found)} files to {knowledge} and {intents}")
    return 0


def cmd_kb_status(args: argparse.Namespace) -> int:
    """The live version, the files here, and the version each running process serves."""
    from bot.kb.loader import load_knowledge
    from bot.storage import kb_versions

    cli = _cli()
    settings = cli._settings()
    result = load_knowledge(settings.knowledge_dir, also=(settings.intents_dir,))
    if result.knowledge is None:
        print(f"files in {settings.knowledge_dir}: {len(result.problems)} problem(s)")
        for problem in result.problems:
            print(f"  {problem}")
    else:
        print(f"files in {settings.knowledge_dir}: OK, version {result.knowledge.version}")
    _upgrade_embedded(settings)
    live = cli._with_database(settings, kb_versions.live)
    print(
        f"live version: #{live.number} ({live.digest})"
        if live
        else "live version: none published yet"
    )
    reports: list[dict[str, Any]] = []
    if settings.redis_url:
        reports = asyncio.run(_announce(settings, "", 0))
    else:
        answer = cli._admin_call(settings, "GET", "/admin/kb", args.url)
        if answer is None:
            print(f"no running bot answered at {args.url}")
        elif answer[0] != 200:
            print(f"the bot at {args.url} answered {answer[0]}: {answer[1]}")
        else:
            reports = [answer[1]]
    for proc in reports:
        problems = proc.get("problems") or []
        state = (
            "OK" if not problems else f"serving its last good version; {len(problems)} problem(s)"
        )
        print(f"process {proc.get('process')}: version {proc.get('version')}: {state}")
        for problem in problems:
            print(f"  {problem}")
    return 0 if result.knowledge is not None else 1


def add_parser(kb_sub: Any, default_url: str) -> None:
    """Register the version commands under ``bot kb``."""
    publish = kb_sub.add_parser(
        "publish", help="validate the files, store them as a version and make it live everywhere"
    )
    publish.add_argument("folder", nargs="?", help="knowledge folder (default KNOWLEDGE_DIR)")
    publish.add_argument("--intents", help="intent folder (default INTENTS_DIR)")
    publish.add_argument("--note", help="a short note for the history")
    publish.add_argument("--by", help="who publishes (default: your login name)")
    publish.add_argument("--wait", type=float, default=2.0, help="seconds to wait for reports")
    publish.set_defaults(func=cmd_kb_publish)
    # The old name: same thing, the files of KNOWLEDGE_DIR.
    reload = kb_sub.add_parser("reload", help="the same as `bot kb publish` with no folder")
    reload.add_argument("--url", default=default_url, help="(kept for old scripts; unused)")
    reload.add_argument("--wait", type=float, default=2.0, help="seconds to wait for reports")
    reload.set_defaults(func=cmd_kb_publish, folder=None, intents=None, note=None, by=None)
    history = kb_sub.add_parser("history", help="published versions: who, when, what changed")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--changes", type=int, default=8, help="change lines shown per version")
    history.set_defaults(func=cmd_kb_history)
    diff = kb_sub.add_parser("diff", help="per entry, what changed from version A to B")
    diff.add_argument("a", help="version number or digest, `live`, or `files` (the folders here)")
    diff.add_argument("b", help="the same")
    diff.set_defaults(func=cmd_kb_diff)
    rollback = kb_sub.add_parser("rollback", help="make an earlier version live again")
    rollback.add_argument("version", type=int)
    rollback.add_argument("--note")
    rollback.add_argument("--by")
    rollback.add_argument("--wait", type=float, default=2.0)
    rollback.set_defaults(func=cmd_kb_rollback)
    export = kb_sub.add_parser("export", help="write a version's files into DIR")
    export.add_argument("version", help="number, digest or `live`")
    export.add_argument("dir")
    export.add_argument("--force", action="store_true", help="replace DIR's contents")
    export.set_defaults(func=cmd_kb_export)
    status = kb_sub.add_parser("status", help="the live version and what each process serves")
    status.add_argument("--url", default=default_url, help="the bot to ask when REDIS_URL is unset")
    status.set_defaults(func=cmd_kb_status)
