"""``bot quota``: this month's LINE message quota, the pushes used and the forecast.

LINE's side (``GET /v2/bot/message/quota`` and ``.../quota/consumption``, through the adapter)
and this bot's records per Thai day (``bot.storage.usage``): answers by reply (free) and by
push, notices and staff replies (paid). Exit codes: 0 shown, 1 LINE failed, 2 configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any


def cmd_quota(args: argparse.Namespace) -> int:
    """Print the quota, the consumption, the forecast and the month per day."""
    from bot import cli
    from bot.cli_richmenu import _with_line
    from bot.line.client import LineClient
    from bot.storage.usage import KINDS, forecast, month_usage

    settings = cli._settings()
    usage = cli._with_database(settings, lambda db: _read(db, month_usage))

    async def ask(client: LineClient) -> tuple[int | None, int]:
        return await client.quota(), await client.quota_consumption()

    limit, used = _with_line(settings, "", ask, prefix="bot quota")
    now = dt.datetime.now(dt.UTC)
    expected = forecast(used, now)
    month = usage.first.strftime("%Y-%m")
    print(f"LINE messages, {month} (Thai time)")
    print(f"  quota: {'no limit' if limit is None else f'{limit:,} a month'}")
    print(f"  used so far (LINE): {used:,}")
    if limit is None:
        print(f"  forecast for the month: {expected:,}")
    else:
        verdict = (
            f"over the quota by {expected - limit:,}"
            if expected > limit
            else f"{limit - expected:,} to spare"
        )
        print(f"  forecast for the month: {expected:,} ({verdict})")
    share = usage.reply_share
    print(
        f"  this bot's records: {usage.total('reply'):,} replies (free), {usage.paid:,} pushes"
        + (f"; {share:.0%} of answers by reply" if share is not None else "")
    )
    if args.days:
        header = ["day", *KINDS]
        print("  " + "  ".join(f"{h:>10}" for h in header))
        for day, counts in sorted(usage.days.items())[-args.days :]:
            cells = [day.isoformat(), *(str(counts[k]) for k in KINDS)]
            print("  " + "  ".join(f"{c:>10}" for c in cells))
    return 0


async def _read(db: Any, query: Any) -> Any:
    async with db.session() as s:
        return await query(s)


def add_parser(sub: Any) -> None:
    """Register ``bot quota``."""
    quota = sub.add_parser(
        "quota", help="this month's LINE message quota, pushes used and the forecast"
    )
    quota.add_argument(
        "--days", type=int, default=31, help="days of this month to list (0: none; default all)"
    )
    quota.set_defaults(func=cmd_quota)
