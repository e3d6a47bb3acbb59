"""``bot operators``: console accounts from the command line.

``bot operators add NAME --role ROLE`` creates an account (the first admin is made this
way), ``list`` shows every account, ``disable NAME`` / ``enable NAME`` switch one off and on
(a disabled operator's sessions end at once), ``passwd NAME`` sets a new password (and ends
the account's sessions). A password is asked twice at a terminal; when standard input is not
a terminal its first line is the password, so a script can pipe one in. No password is ever
printed. Every change is written to the audit log as made by ``cli``.

Wired into ``bot`` by ``bot.cli.build_parser``: ``add_parser(sub)``. Errors go to standard
error with exit code 1 (2 for configuration or a database not yet upgraded, as in ``bot``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from bot.storage.db import Database

T = TypeVar("T")

#: The audit log's "who" for changes made with this command.
ACTOR = "cli"
#: ``bot.storage.accounts.ROLES``, repeated so building ``bot``'s parser imports no database
#: code (a test keeps the two equal).
ROLES = ("viewer", "editor", "staff", "admin", "analyst")


class CommandError(Exception):
    """A refusal to report on standard error with an exit code (no traceback)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def read_password(name: str) -> str:
    """The new password: asked twice at a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {name}: ")
        second = getpass.getpass("Repeat the password: ")
        if first != second:
            raise CommandError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password on standard input; nothing was changed")
    return line.rstrip("\r\n")


def _fail_on_account_errors(
    work: Callable[[Database], Awaitable[str]],
) -> Callable[[Database], Awaitable[str]]:
    """Turn an AccountError (name taken, unknown name, short password) into a CommandError."""
    from bot.storage.accounts import AccountError

    async def guarded(db: Database) -> str:
        try:
            return await work(db)
        except AccountError as exc:
            raise CommandError(f"{exc}; nothing was changed") from None

    return guarded


def _run(args: argparse.Namespace, work: Callable[[Database], Awaitable[str]]) -> int:
    """Run a subcommand: its confirmation on stdout, or its refusal on stderr."""
    from bot import cli  # its settings and database helpers (bot's main reports SchemaBehind)

    try:
        print(cli._with_database(cli._settings(), _fail_on_account_errors(work)))
    except CommandError as exc:
        print(f"bot operators {args.operators_command}: {exc}", file=sys.stderr)
        return exc.code
    except (KeyboardInterrupt, EOFError):
        print(f"\nbot operators {args.operators_command}: cancelled", file=sys.stderr)
        return 1
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Create an account with a role; the password is asked for (or read from stdin)."""
    from bot.storage import accounts

    async def work(db: Database) -> str:
        name = accounts.normalise_name(args.name)
        accounts.check_role(args.role)
        if await accounts.get_operator(db, name) is not None:
            raise accounts.NameTaken(f"an operator called {name!r} already exists")
        password = read_password(name)
        accounts.check_password(name, password)
        await accounts.add_operator(db, name, args.role, password, by=ACTOR)
        return f"operator {name} added with role {args.role}"

    return _run(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    """Every account: name, role, state, when made and when its password last changed."""
    from bot.storage import accounts

    async def work(db: Database) -> str:
        rows = await accounts.list_operators(db)
        if not rows:
            return "no operators yet; add the first with `bot operators add NAME --role admin`"
        lines = [f"{'NAME':<24} {'ROLE':<8} {'STATE':<9} {'CREATED (UTC)':<16}  PASSWORD SET (UTC)"]
        for r in rows:
            state = "disabled" if r.disabled else "active"
            lines.append(
                f"{r.name:<24} {r.role:<8} {state:<9} {r.created_at:%Y-%m-%d %H:%M}  "
                f"{r.password_changed_at:%Y-%m-%d %H:%M}"
            )
        return "\n".join(lines)

    return _run(args, work)


def _cmd_switch(disabled: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from bot.storage import accounts

        async def work(db: Database) -> str:
            row = await accounts.set_disabled(db, args.name, disabled, by=ACTOR)
            if disabled:
                return f"operator {row.name} is disabled; their sessions have ended"
            return f"operator {row.name} is enabled"

        return _run(args, work)

    command.__doc__ = "Disable an account (ending its sessions)." if disabled else "Enable one."
    return command


cmd_disable = _cmd_switch(True)
cmd_enable = _cmd_switch(False)


def cmd_passwd(args: argparse.Namespace) -> int:
    """Set a new password for an account; its sessions end."""
    from bot.storage import accounts

    async def work(db: Database) -> str:
        row = await accounts.get_operator(db, args.name)
        if row is None:
            raise accounts.UnknownOperator(f"no operator is called {args.name.strip()!r}")
        password = read_password(row.name)
        accounts.check_password(row.name, password)
        await accounts.set_password(db, row.name, password, by=ACTOR)
        return f"password of {row.name} changed; their sessions have ended"

    return _run(args, work)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``bot operators add|list|disable|enable|passwd`` on ``bot``'s subparsers."""
    operators = sub.add_parser(
        "operators", help="console accounts: add, list, disable, enable, passwd"
    )
    op_sub = operators.add_subparsers(dest="operators_command", required=True)
    add = op_sub.add_parser(
        "add", help="create an account (password asked twice, or read from stdin)"
    )
    add.add_argument("name", help="sign-in name: a-z, 0-9 and . _ @ - (stored lower-case)")
    add.add_argument("--role", required=True, choices=ROLES, help="what the operator may do")
    add.set_defaults(func=cmd_add)
    op_sub.add_parser("list", help="every account with its role and state").set_defaults(
        func=cmd_list
    )
    disable = op_sub.add_parser("disable", help="switch an account off (its sessions end)")
    disable.add_argument("name")
    disable.set_defaults(func=cmd_disable)
    enable = op_sub.add_parser("enable", help="switch a disabled account on again")
    enable.add_argument("name")
    enable.set_defaults(func=cmd_enable)
    passwd = op_sub.add_parser("passwd", help="set a new password (the account's sessions end)")
    passwd.add_argument("name")
    passwd.set_defaults(func=cmd_passwd)
