"""The ``bot`` command: serve, worker, chat, db, events, kb, nlu, unanswered, handoff, insights,
richmenu, quota.

``bot serve`` runs the web app (plus an embedded worker when REDIS_URL is
unset); ``bot worker`` runs a worker; ``bot chat`` talks to the bot in the
terminal; ``bot db upgrade`` applies migrations; ``bot events dead`` and
``bot events replay ID`` let an operator inspect and replay dead letters;
``bot unanswered`` lists what people asked that the bot could not answer;
``bot handoff list`` and ``bot handoff end USER_ID`` manage staff hand-offs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot import logs
from bot.settings import ConfigurationError, Settings
from bot.storage import SchemaBehind

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from bot.services import Services
    from bot.storage.db import Database

log = logging.getLogger("bot")

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = Settings()
    except ConfigurationError as exc:
        print(f"bot: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:  # pydantic's ValidationError names the bad variable
        print(f"bot: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log_level, settings.json_logs)
    return settings


def _run_fast(coro: Any) -> None:
    """Run a long-lived loop on uvloop when installed (as uvicorn does): ~20% less CPU per event."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database, closing the connection afterwards.

    Raises ``SchemaBehind`` (a clear message, not a traceback) when the database has not
    been upgraded to this code's migrations yet.
    """
    from bot.storage.db import Database

    logging.disable(logging.INFO)  # alembic's set-up chatter is not the command's output
    try:
        from bot.storage.migrate import current, head

        at, wanted = current(settings), head(settings)
    finally:
        logging.disable(logging.NOTSET)
    if at != wanted:
        raise SchemaBehind(
            f"the database is at migration {at or 'none'}, this version needs {wanted}; "
            "run `bot db upgrade` first"
        )

    async def main() -> T:
        db = Database(settings.sqlalchemy_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def _with_redis(settings: Settings, work: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run ``work`` on the configured Redis, closing the client afterwards."""
    from bot.queue.redis_queue import connect

    async def main() -> T:
        client = connect(settings.redis_url or "")
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def _print_rows(rows: Sequence[T], empty: str, header: str, line: Callable[[T], str]) -> int:
    """Print a table, a header and then a line per row, or ``empty`` when there are no rows."""
    if not rows:
        print(empty)
        return 0
    print(header)
    for row in rows:
        print(line(row))
    return 0


#: Seconds after a knowledge reload before the heap is frozen again (turns that started on
#: the old snapshot have let it go by then).
REFREEZE_AFTER_SECONDS = 30.0


def freeze_heap(services: Services) -> None:
    """Move everything alive after start-up (knowledge, intent engine, modules) out of the
    garbage collector's reach.

    Without it every full collection walks the whole start-up heap: in ``bot serve`` that
    was a 145-175 ms pause about once every 8,000 webhooks, the whole of the
    acknowledgement p99 under load. What start-up built lives as long as the process, so
    the collector has nothing to find there; objects made later are collected as before.
    A knowledge reload replaces the frozen snapshot: the heap is unfrozen, collected (one
    pause per reload) and frozen again, so an old snapshot is never kept for good.
    """
    gc.collect()  # what start-up threw away goes now, not into the permanent generation
    gc.freeze()
    services.kb.on_change(_refreeze_soon)


async def _refreeze_soon(_knowledge: object) -> None:
    asyncio.get_running_loop().call_later(REFREEZE_AFTER_SECONDS, _refreeze)


def _refreeze() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def run_lean(settings: Settings) -> None:
    """Start this process again under ``python -OO`` unless it runs so already.

    Why: a long-lived process keeps every imported module's code for life, and the
    libraries' docstrings are a good part of it (SQLAlchemy, redis, NumPy, pydantic): a
    worker's peak went from 154 to 147 MB (``benchmarks/README.md``). The bot's own asserts
    only narrow types for mypy. ``execv`` keeps the process id, so a process manager, a
    benchmark or a signal still meets the same process; nothing has been started yet.
    A level the caller chose (``-O``, ``PYTHONOPTIMIZE``) is kept: adding ``-OO`` to it
    would make a level no installed bytecode is compiled for.
    """
    if not settings.lean_bytecode or sys.flags.optimize or not sys.executable:
        return
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os.execv(sys.executable, [sys.executable, "-OO", *sys.orig_argv[1:]])


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web app with uvicorn (the app factory reads settings itself)."""
    settings = _settings()
    run_lean(settings)
    import uvicorn

    from bot.web.app import create_app

    app = create_app(settings, on_started=freeze_heap)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def cmd_worker(_args: argparse.Namespace) -> int:
    """Run a queue worker until SIGINT/SIGTERM (needs REDIS_URL)."""
    settings = _settings()
    if not settings.redis_url:
        print(
            "bot worker needs REDIS_URL; without it `bot serve` runs the worker itself.",
            file=sys.stderr,
        )
        return 2
    run_lean(settings)

    async def main() -> None:
        from bot.services import Services
        from bot.workers import run_worker_process

        services = Services.build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            # The served knowledge first, so the frozen heap is the one the worker keeps
            # (run_worker_process checks it again: by then a quick no-op).
            await services.start_knowledge()
            freeze_heap(services)
            await run_worker_process(services, services.line_client(), stop)
        finally:
            await services.close()

    _run_fast(main())
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to the bot in this terminal."""
    from bot.tools import chat

    settings = _settings()
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    chat.run(settings, args.user)
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    """Apply database migrations (the Procfile's release step)."""
    from bot.storage.migrate import upgrade

    settings = _settings()
    upgrade(settings)
    print("database is up to date")
    return 0


def cmd_events_dead(args: argparse.Namespace) -> int:
    """List dead-lettered events, newest first."""
    from sqlalchemy import select

    from bot.storage.db import DeadLetter

    settings = _settings()

    async def fetch(db: Database) -> Sequence[DeadLetter]:
        async with db.session() as s:
            query = select(DeadLetter).order_by(DeadLetter.died_at.desc()).limit(args.limit)
            return (await s.scalars(query)).all()

    return _print_rows(
        _with_database(settings, fetch),
        "no dead events",
        f"{'EVENT ID':<34} {'TYPE':<10} {'USER':<12} {'TRIES':>5}  {'DIED (UTC)':<19}  ERROR",
        lambda r: (
            f"{r.webhook_event_id:<34} {r.event_type:<10} {logs.user_ref(r.chat_id):<12} "
            f"{r.attempts:>5}  {r.died_at:%Y-%m-%d %H:%M:%S}  {r.error or ''}"
        ),
    )


def cmd_events_replay(args: argparse.Namespace) -> int:
    """Put a dead event back on the queue (it is answered once, by push if its token expired)."""
    from bot.services import Services
    from bot.storage.db import DeadLetter

    settings = _settings()

    async def main() -> int:
        services = Services.build(settings)
        try:
            async with services.db.session() as s:
                dead = await s.get(DeadLetter, args.event_id)
            if dead is None:
                print(f"no dead event with id {args.event_id}", file=sys.stderr)
                return 1
            await services.queue.requeue(dead.payload)
            async with services.db.session() as s, s.begin():
                row = await s.get(DeadLetter, args.event_id)
                if row is not None:
                    await s.delete(row)
            print(f"event {args.event_id} is queued again")
            return 0
        finally:
            await services.close()

    return asyncio.run(main())


def cmd_notify(args: argparse.Namespace) -> int:
    """Announce new courses to their subscribers now (or preview, or list past runs)."""
    from bot.notices.command import notify

    return asyncio.run(
        notify(
            _settings(),
            sys.stdout,
            dry_run=args.dry_run,
            show_history=args.history,
            as_json=args.json,
        )
    )


def cmd_unanswered(args: argparse.Namespace) -> int:
    """Messages the bot could not answer, newest first: time, best guess, confidence, text."""
    import csv
    import datetime as dt

    from sqlalchemy import select

    from bot.storage.db import Unanswered, utcnow

    settings = _settings()

    async def fetch(db: Database) -> list[Unanswered]:
        query = select(Unanswered).order_by(Unanswered.created_at.desc(), Unanswered.id.desc())
        if args.days is not None:
            query = query.where(Unanswered.created_at >= utcnow() - dt.timedelta(days=args.days))
        async with db.session() as s:
            return list((await s.scalars(query.limit(args.limit))).all())

    rows = _with_database(settings, fetch)
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["time_utc", "best_guess", "confidence", "best_guide", "text"])
        for r in rows:
            confidence = "" if r.confidence is None else f"{r.confidence:.3f}"
            writer.writerow(
                [
                    f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                    r.best_intent or "",
                    confidence,
                    r.best_guide or "",
                    r.text,
                ]
            )
        return 0

    def line(r: Unanswered) -> str:
        confidence = "" if r.confidence is None else f"{r.confidence:.2f}"
        text = " ".join(r.text.split())
        return (
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.best_intent or '-':<18} {confidence:>5}  "
            f"{r.best_guide or '-':<28}  {text}"
        )

    return _print_rows(
        rows,
        "no unanswered messages",
        f"{'TIME (UTC)':<19}  {'BEST GUESS':<18} {'CONF':>5}  {'BEST GUIDE':<28}  TEXT",
        line,
    )


def cmd_guides_stats(args: argparse.Namespace) -> int:
    """Per guide: times shown, 👍, 👎, and times "did you mean" offered it (no user ids)."""
    import csv

    from bot.kb.loader import load_knowledge, today
    from bot.storage.queries import GUIDE_COUNTERS, guide_totals

    settings = _settings()
    since = today() - dt.timedelta(days=args.days - 1) if args.days else None

    async def fetch(db: Database) -> dict[str, dict[str, int]]:
        async with db.session() as s:
            return await guide_totals(s, since)

    totals = _with_database(settings, fetch)
    loaded = load_knowledge(settings.knowledge_dir).knowledge
    known = list(loaded.guides.guides) if loaded is not None else []
    ids = sorted(
        {*totals, *(known if args.all else ())},
        key=lambda g: (-totals.get(g, {}).get("shown", 0), g),
    )
    zero = dict.fromkeys(GUIDE_COUNTERS, 0)
    rows = [(g, totals.get(g, zero)) for g in ids]
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["guide", *GUIDE_COUNTERS, "in_knowledge"])
        for g, c in rows:
            writer.writerow([g, *(c[k] for k in GUIDE_COUNTERS), int(g in known)])
        return 0

    def line(row: tuple[str, dict[str, int]]) -> str:
        g, c = row
        gone = "" if g in known or not known else "  (no longer in the guides)"
        return (
            f"{g:<40} {c['shown']:>6} {c['helpful']:>5} {c['unhelpful']:>5} {c['offered']:>8}{gone}"
        )

    return _print_rows(
        rows,
        "no guide was shown or offered yet",
        f"{'GUIDE':<40} {'SHOWN':>6} {'👍':>5} {'👎':>5} {'OFFERED':>8}",
        line,
    )


def cmd_handoff_list(_args: argparse.Namespace) -> int:
    """Users handed to staff right now (the bot is quiet for them), who waited longest first."""
    from bot.storage import handoff

    return _print_rows(
        _with_database(_settings(), handoff.active),
        "nobody is waiting for staff",
        f"{'USER ID':<34} {'AGENCY':<8} {'SINCE (UTC)':<19}  {'UNTIL (UTC)':<19}",
        lambda h: (
            f"{h.user_id:<34} {h.agency or '-':<8} {h.started_at:%Y-%m-%d %H:%M:%S}  "
            f"{h.until:%Y-%m-%d %H:%M:%S}"
        ),
    )


def cmd_handoff_end(args: argparse.Namespace) -> int:
    """End a user's hand-off: the bot answers them again from their next message."""
    from bot.storage import handoff

    if _with_database(_settings(), lambda db: handoff.end(db, args.user_id)):
        print(f"hand-off of {args.user_id} ended; the bot answers them again")
        return 0
    print(f"{args.user_id} has no open hand-off", file=sys.stderr)
    return 1


def _print_problems(problems: Sequence[object]) -> None:
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) found; nothing was changed.", file=sys.stderr)


def cmd_kb_validate(args: argparse.Namespace) -> int:
    """Check a knowledge folder; one line per problem (FILE:LINE: field: message)."""
    from bot.kb.loader import load_knowledge

    folder = Path(args.folder) if args.folder else Settings().knowledge_dir
    result = load_knowledge(folder)
    if result.knowledge is None:
        _print_problems(result.problems)
        return 1
    for warning in result.warnings:
        print(f"{warning} (warning)")
    counts = ", ".join(f"{v} {k}" for k, v in result.knowledge.counts.items() if k != "load_ms")
    stale = f"; {len(result.warnings)} warning(s)" if result.warnings else ""
    print(f"{folder}: OK (version {result.knowledge.version}; {counts}{stale})")
    return 0


def cmd_kb_import_centres(args: argparse.Namespace) -> int:
    """Import the official list of community digital centres (CSV or .xlsx) into the knowledge."""
    from bot.tools.import_centres import ImportOptions, run_import

    folder = Path(args.into) if args.into else Settings().knowledge_dir
    report = run_import(
        ImportOptions(
            source=Path(args.file),
            into=folder,
            mapping=tuple(args.map),
            source_urls=tuple(args.source_url),
            status=args.status,
            operator=args.operator,
            dry_run=args.dry_run,
            sheet=args.sheet,
            as_of=args.as_of,
        )
    )
    for line in report.lines():
        print(line)
    return report.exit_code


def _admin_call(
    settings: Settings, method: str, path: str, url: str
) -> tuple[int, dict[str, Any]] | None:
    """Call a running bot's admin endpoint; None when nothing answers at ``url``."""
    import httpx

    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    except httpx.HTTPError:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:200]}
    return response.status_code, body


def _nlu_knowledge(settings: Settings) -> Any:
    """The knowledge snapshot for entities (None, with a warning, if it does not load)."""
    from bot.kb.loader import load_knowledge

    result = load_knowledge(settings.knowledge_dir)
    if result.knowledge is None:
        print(
            f"warning: {settings.knowledge_dir} has problems; no topics, markets or places",
            file=sys.stderr,
        )
    return result.knowledge


def cmd_nlu_parse(args: argparse.Namespace) -> int:
    """Print the engine's reading of a message (or of each stdin line) as JSON."""
    import json

    from bot.nlu import IntentFileError, build_engine

    settings = Settings()
    logging.getLogger().setLevel(logging.WARNING)
    try:
        engine = build_engine(
            settings.intents_dir, _nlu_knowledge(settings), settings.data_dir / "nlu-cache"
        )
    except IntentFileError as exc:
        _print_problems(exc.problems)
        return 1
    texts = [args.text] if args.text is not None else (line.rstrip("\n") for line in sys.stdin)
    for text in texts:
        print(json.dumps(engine.parse(text).to_dict(), ensure_ascii=False), flush=True)
    return 0


def cmd_nlu_eval(args: argparse.Namespace) -> int:
    """Accuracy, macro-F1, per-intent scores, confusions and errors of the engine."""
    import json

    from bot.nlu import IntentFileError, engine_from_examples, read_intents
    from bot.nlu.data import Example, read_labelled_csv, read_labelled_rows
    from bot.nlu.engine import SPELLING_FILE, guide_examples
    from bot.nlu.evaluate import cross_validate, evaluate
    from bot.nlu.multipart import CLAUSES_FILE, load_markers
    from bot.nlu.text import load_spelling

    settings = Settings()
    logging.getLogger().setLevel(logging.WARNING)
    knowledge = _nlu_knowledge(settings)
    spelling, problems = load_spelling(settings.intents_dir / SPELLING_FILE)
    markers, more = load_markers(settings.intents_dir / CLAUSES_FILE)
    if problems or more:
        _print_problems(problems + more)
        return 1
    try:
        if args.train:
            examples = [Example(t, i) for t, i in read_labelled_csv(Path(args.train))]
        else:
            examples = list(read_intents(settings.intents_dir).examples)
            examples += guide_examples(knowledge, (e.text for e in examples))
    except IntentFileError as exc:
        _print_problems(exc.problems)
        return 1
    except (OSError, ValueError) as exc:
        print(f"bot nlu eval: {exc}", file=sys.stderr)
        return 2

    def build(train: Any) -> Any:
        return engine_from_examples(train, knowledge, spelling, markers=markers)

    if args.cross_validate:
        report = cross_validate(examples, build, folds=args.folds)
    elif args.test:
        try:
            labelled = read_labelled_rows(Path(args.test))
        except (OSError, ValueError) as exc:
            print(f"bot nlu eval: {exc}", file=sys.stderr)
            return 2
        rows = [(text, label) for text, label, _ in labelled]
        report = evaluate(build(examples), rows, [second for _, _, second in labelled])
    else:
        print("bot nlu eval: give --test FILE.csv or --cross-validate", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(report.lines(args.max_errors)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(prog="bot", description="Grassroots economy LINE bot")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app (and the worker when REDIS_URL is unset)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a queue worker (needs REDIS_URL)")
    worker.set_defaults(func=cmd_worker)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--user", default="U" + "0" * 31 + "1", help="LINE user id to chat as")
    chat.add_argument("--verbose", action="store_true", help="show log lines too")
    chat.set_defaults(func=cmd_chat)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    events = sub.add_parser("events", help="inspect and replay failed events")
    ev_sub = events.add_subparsers(dest="events_command", required=True)
    dead = ev_sub.add_parser("dead", help="list dead-lettered events")
    dead.add_argument("--limit", type=int, default=50)
    dead.set_defaults(func=cmd_events_dead)
    replay = ev_sub.add_parser("replay", help="queue a dead event again")
    replay.add_argument("event_id")
    replay.set_defaults(func=cmd_events_replay)

    kb = sub.add_parser("kb", help="knowledge files: validate, reload, status, import")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    validate = kb_sub.add_parser(
        "validate", help="check a knowledge folder (default KNOWLEDGE_DIR)"
    )
    validate.add_argument("folder", nargs="?")
    validate.set_defaults(func=cmd_kb_validate)
    default_url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    from bot.cli_kb import add_parser as add_kb_version_commands

    add_kb_version_commands(kb_sub, default_url)
    import_centres = kb_sub.add_parser(
        "import-centres",
        help="import the official list of community digital centres (CSV or .xlsx)",
    )
    import_centres.add_argument("file", help="the official list: .csv (UTF-8 or TIS-620) or .xlsx")
    import_centres.add_argument(
        "--into", metavar="KNOWLEDGE_DIR", help="the knowledge folder (default KNOWLEDGE_DIR)"
    )
    import_centres.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=field",
        help="read COLUMN as our field (COLUMN= ignores it); may be repeated",
    )
    import_centres.add_argument(
        "--source-url",
        action="append",
        default=[],
        metavar="URL",
        help="where the official list is published; may be repeated",
    )
    import_centres.add_argument(
        "--status",
        choices=("verified", "partly_verified", "sample"),
        help="provenance status (default verified with --source-url, else sample)",
    )
    import_centres.add_argument(
        "--operator", default="ONDE", metavar="CODE", help="agency code (default ONDE)"
    )
    import_centres.add_argument(
        "--as-of", metavar="DATE", help="provenance_facts_as_of (default today)"
    )
    import_centres.add_argument("--sheet", metavar="NAME", help="the Excel sheet to read")
    import_centres.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    import_centres.set_defaults(func=cmd_kb_import_centres)

    nlu = sub.add_parser("nlu", help="the Thai intent engine: parse a message, measure accuracy")
    nlu_sub = nlu.add_subparsers(dest="nlu_command", required=True)
    nlu_parse = nlu_sub.add_parser("parse", help="print the reading of TEXT (or of stdin lines)")
    nlu_parse.add_argument("text", nargs="?", help="the message (omit: one message per stdin line)")
    nlu_parse.set_defaults(func=cmd_nlu_parse)
    nlu_eval = nlu_sub.add_parser("eval", help="accuracy on a labelled CSV, or cross-validation")
    nlu_eval.add_argument("--test", metavar="FILE.csv", help="CSV with columns text,intent")
    nlu_eval.add_argument(
        "--train", metavar="FILE.csv", help="train from this CSV instead of INTENTS_DIR"
    )
    nlu_eval.add_argument(
        "--cross-validate", action="store_true", help="K-fold cross-validation on the training data"
    )
    nlu_eval.add_argument("--folds", type=int, default=5, help="folds for --cross-validate")
    nlu_eval.add_argument("--json", action="store_true", help="one JSON object")
    nlu_eval.add_argument("--max-errors", type=int, default=50, help="misclassified lines shown")
    nlu_eval.set_defaults(func=cmd_nlu_eval)

    notify = sub.add_parser("notify", help="push notices of new courses to their subscribers")
    notify.add_argument(
        "--dry-run", action="store_true", help="print who would get what, and why; send nothing"
    )
    notify.add_argument("--history", action="store_true", help="list past runs with their counts")
    notify.add_argument("--json", action="store_true", help="one JSON object")
    notify.set_defaults(func=cmd_notify)

    unanswered = sub.add_parser(
        "unanswered", help="list messages the bot could not answer (newest first)"
    )
    unanswered.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    unanswered.add_argument("--days", type=int, help="only the last DAYS days")
    unanswered.add_argument("--csv", action="store_true", help="CSV on stdout (for a spreadsheet)")
    unanswered.set_defaults(func=cmd_unanswered)

    guides = sub.add_parser("guides", help="guides: how each one does with users")
    guides_sub = guides.add_subparsers(dest="guides_command", required=True)
    g_stats = guides_sub.add_parser(
        "stats", help="per guide: shown, 👍, 👎, and offered by did-you-mean (no user ids)"
    )
    g_stats.add_argument("--days", type=int, help="only the last DAYS days (today included)")
    g_stats.add_argument("--all", action="store_true", help="also guides never shown")
    g_stats.add_argument("--csv", action="store_true", help="CSV on stdout (for a spreadsheet)")
    g_stats.set_defaults(func=cmd_guides_stats)

    handoffs = sub.add_parser("handoff", help="users handed to staff: list, end")
    ho_sub = handoffs.add_subparsers(dest="handoff_command", required=True)
    ho_sub.add_parser("list", help="users the bot is quiet for").set_defaults(func=cmd_handoff_list)
    ho_end = ho_sub.add_parser("end", help="end a hand-off: the bot answers the user again")
    ho_end.add_argument("user_id", help="the LINE user id (from `bot handoff list`)")
    ho_end.set_defaults(func=cmd_handoff_end)

    from bot.cli_operators import add_parser as add_operator_commands

    add_operator_commands(sub)
    from bot.cli_insights import add_parser as add_insights_commands

    add_insights_commands(sub)
    from bot.cli_richmenu import add_parser as add_richmenu_commands

    add_richmenu_commands(sub)
    from bot.cli_quota import add_parser as add_quota_command

    add_quota_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SchemaBehind as exc:
        print(f"bot {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
