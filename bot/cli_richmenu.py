"""``bot richmenu build|deploy|status``: the rich menus of ``knowledge/richmenus.yaml`` on LINE.

``build`` writes each menu's image as a PNG to look at before deploying; ``deploy`` puts
the menus on LINE (``--dry-run``: print the plan, change nothing); ``status`` shows the
default menu, each alias and the menus the bot made. Every call goes through the LINE
adapter (``LINE_API_BASE_URL``; images to ``LINE_API_DATA_URL``); see
``bot.richmenu.deploy`` for what a deploy does and why it is safe to repeat.

Exit codes: 0 done, 1 invalid knowledge or LINE refused or failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bot.kb.loader import Knowledge
    from bot.line.client import LineClient
    from bot.settings import Settings

T = TypeVar("T")


def _cli() -> Any:
    from bot import cli

    return cli


def _knowledge(settings: Settings, command: str) -> Knowledge | None:
    """The knowledge with at least one rich menu, or None after printing why not."""
    from bot.kb.loader import load_knowledge

    result = load_knowledge(settings.knowledge_dir)
    if result.knowledge is None:
        _cli()._print_problems(result.problems)
        return None
    if not result.knowledge.richmenus:
        print(
            f"bot richmenu {command}: no rich menus in {settings.knowledge_dir}/richmenus.yaml",
            file=sys.stderr,
        )
        return None
    return result.knowledge


def _with_line(
    settings: Settings,
    command: str,
    work: Callable[[LineClient], Awaitable[T]],
    prefix: str = "bot richmenu",
) -> T:
    """Run ``work`` with a LINE client from the settings; a LINE error exits with 1."""
    from bot.line.calls import LineError, RetryPolicy
    from bot.line.client import LineClient

    async def main() -> T:
        client = LineClient(
            settings.line_api_base_url,
            settings.access_token,
            RetryPolicy.from_settings(settings),
            data_url=settings.line_api_data_url,
        )
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except (LineError, ValueError) as exc:  # ValueError: the SDK's models refused a body
        print(f"{prefix} {command}: {exc}".replace("  ", " "), file=sys.stderr)
        raise SystemExit(1) from None


def cmd_richmenu_build(args: argparse.Namespace) -> int:
    """Write one PNG per menu (``<id>.png``) into ``--out``."""
    from bot.richmenu.render import render

    settings = _cli()._settings()
    knowledge = _knowledge(settings, "build")
    if knowledge is None:
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for menu in knowledge.richmenus.values():
        path = out / f"{menu.id}.png"
        data = render(menu, knowledge)
        path.write_bytes(data)
        print(f"wrote {path} ({menu.width}x{menu.height}, {len(data)} bytes)")
    return 0


def cmd_richmenu_deploy(args: argparse.Namespace) -> int:
    """Create the changed menus, upload images, point aliases, set the default, tidy up."""
    from bot.richmenu import deploy

    settings = _cli()._settings()
    knowledge = _knowledge(settings, "deploy")
    if knowledge is None:
        return 1
    menus = deploy.build_menus(knowledge)

    async def work(client: LineClient) -> None:
        plan = await deploy.plan(client, menus, force=args.force)
        if args.dry_run:
            for m in plan.menus:  # LINE's own check of each menu it would create
                if m.keep is None:
                    await client.validate_rich_menu(m.body)
            print("dry run: nothing changed on LINE. The plan:")
            for line in plan.lines():
                print(f"  {line}")
            return
        linked = after_assessment(knowledge)
        moved = next((m for m in plan.menus if m.id == linked and m.keep is None), None)

        async def move_users(p: deploy.Plan) -> None:
            """People who had the replaced menu get the new one before it is deleted."""
            target = next((m.live_id for m in p.menus if m.id == linked), None)
            if target is None or (moved is None and not args.relink):
                return
            if users is None:
                print(
                    f"not linked: the people who should have {linked} could not be read; "
                    "run `bot richmenu deploy --relink` once the database is reachable",
                    file=sys.stderr,
                )
                return
            count = await relink(client, users, target)
            print(f"linked {count} people to {linked} ({target})")

        if not plan.changes and not args.relink:
            print("nothing to do: LINE has these menus already")
            return
        await deploy.apply(client, plan, before_delete=move_users)

    from bot.richmenu.users import after_assessment, assessed_users, relink

    users: list[str] | None = []
    if after_assessment(knowledge) is not None and not args.dry_run:
        try:
            users = _cli()._with_database(settings, assessed_users)
        except Exception as exc:  # schema behind, database down: the menus still deploy
            print(f"bot richmenu deploy: cannot read the database: {exc}", file=sys.stderr)
            users = None
    _with_line(settings, "deploy", work)
    return 0


def cmd_richmenu_status(_args: argparse.Namespace) -> int:
    """The default menu, each alias and its menu, the menus the bot made."""
    from bot.kb.loader import load_knowledge
    from bot.richmenu import deploy

    settings = _cli()._settings()
    knowledge = load_knowledge(settings.knowledge_dir).knowledge
    live = _with_line(settings, "status", deploy.status)
    for line in live.lines(knowledge):
        print(line)
    return 0


def add_parser(sub: Any) -> None:
    """Register ``bot richmenu``."""
    richmenu = sub.add_parser("richmenu", help="rich menus under the chat: build, deploy, status")
    rm_sub = richmenu.add_subparsers(dest="richmenu_command", required=True)
    build = rm_sub.add_parser("build", help="write each menu's image as a PNG")
    build.add_argument(
        "--out", default="richmenu-images", metavar="DIR", help="default ./richmenu-images"
    )
    build.set_defaults(func=cmd_richmenu_build)
    dep = rm_sub.add_parser(
        "deploy", help="put the menus on LINE: images, aliases, default; delete replaced ones"
    )
    dep.add_argument(
        "--dry-run", action="store_true", help="print the plan; only read calls (and validate)"
    )
    dep.add_argument(
        "--force", action="store_true", help="create every menu anew, even the unchanged ones"
    )
    dep.add_argument(
        "--relink",
        action="store_true",
        help="link everyone who finished an assessment to the after_assessment menu again "
        "(done anyway when that menu is replaced)",
    )
    dep.set_defaults(func=cmd_richmenu_deploy)
    rm_sub.add_parser(
        "status", help="the default menu, the aliases and the menus the bot made"
    ).set_defaults(func=cmd_richmenu_status)
