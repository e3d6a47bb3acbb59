"""``bot insights rollup|export``: recompute the insights rollup, write a view to a file.

The worker runs the rollup every ``INSIGHTS_ROLLUP_SECONDS``; ``bot insights rollup`` does it
now (``--full``: every period with raw moments, after a restore or a change of the rules).
``bot insights export VIEW`` writes the same suppressed tables as the console's download.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any


def _cli() -> Any:
    from bot import cli

    return cli


def cmd_insights_rollup(args: argparse.Namespace) -> int:
    """Recompute the periods that changed (or all of them) and print what was done."""
    from bot.cli_kb import _upgrade_embedded
    from bot.insights.rollup import rollup

    cli = _cli()
    settings = cli._settings()
    _upgrade_embedded(settings)
    report = cli._with_database(
        settings,
        lambda db: rollup(db, full=args.full, raw_days=settings.insights_raw_days),
    )
    if report.skipped:
        print(f"bot insights rollup: {report.skipped}", file=sys.stderr)
        return 1
    print(
        f"rolled up {len(report.periods)} periods from {report.days} days: {report.rows} rows "
        f"in {report.seconds:.2f} s; {report.pruned} old raw moments pruned"
    )
    return 0


def cmd_insights_export(args: argparse.Namespace) -> int:
    """Write one view (suppressed, as the console shows it) as CSV or Excel."""
    from bot.cli_kb import _upgrade_embedded
    from bot.insights import exports, views
    from bot.kb.loader import load_knowledge

    cli = _cli()
    settings = cli._settings()
    try:
        filters = views.parse_filters({k: v for k, v in vars(args).items() if isinstance(v, str)})
    except ValueError as exc:
        print(f"bot insights export: {exc}", file=sys.stderr)
        return 2
    loaded = load_knowledge(settings.knowledge_dir, also=(settings.intents_dir,))
    if loaded.knowledge is None:
        cli._print_problems(loaded.problems)
        return 1
    knowledge = loaded.knowledge
    _upgrade_embedded(settings)

    async def tables(db: Any) -> list[views.Table]:
        async with db.session() as s:
            return await views.build(args.view, s, filters, knowledge, settings.insights_min_count)

    built = cli._with_database(settings, tables)
    data = (
        exports.to_csv(built, knowledge)
        if args.format == "csv"
        else exports.to_xlsx(built, knowledge)
    )
    out = Path(args.out or f"insights-{args.view}-{dt.date.today().isoformat()}.{args.format}")
    out.write_bytes(data)
    print(f"wrote {out} ({len(built)} tables)")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``bot insights``."""
    from bot.insights.views import VIEWS

    insights = sub.add_parser("insights", help="anonymised insights: rollup, export")
    insights_sub = insights.add_subparsers(dest="insights_command", required=True)
    roll = insights_sub.add_parser(
        "rollup", help="recompute the rollup of the periods that changed"
    )
    roll.add_argument("--full", action="store_true", help="every period with raw moments")
    roll.set_defaults(func=cmd_insights_rollup)
    export = insights_sub.add_parser("export", help="write a view (suppressed) as CSV or Excel")
    export.add_argument("view", choices=VIEWS)
    export.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    export.add_argument("--out", metavar="FILE", help="default insights-VIEW-DATE.FORMAT")
    export.add_argument("--grain", default="month", choices=("week", "month", "quarter"))
    export.add_argument("--start", default="", metavar="YYYY-MM-DD")
    export.add_argument("--periods", default="1")
    export.add_argument("--region", default="")
    export.add_argument("--province", default="")
    export.add_argument("--sector", default="")
    export.add_argument("--stage", default="0")
    export.set_defaults(func=cmd_insights_export)
