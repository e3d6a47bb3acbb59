"""Console accounts: ``bot operators``, passwords, sign-in throttling, sessions, CSRF, audit.

Run against the real databases: SQLite (embedded) and PostgreSQL (shared), and the real
``bot`` command in a subprocess, with the password piped on standard input as a script
would, or typed at a pseudo-terminal as a person would.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Annotated, Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy import select as sql_select
from sqlalchemy import update

from bot import cli_operators
from bot.console import auth
from bot.settings import Settings
from bot.storage import accounts
from bot.storage.accounts import (
    AuditEntry,
    ConsoleSession,
    Operator,
    Refusal,
    SignInFailure,
)
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.helpers import ROOT, run_bot, settings_env

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another long passphrase"


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def settings(mode_settings: Settings) -> Settings:
    """Both deployments, with the schema in place (PostgreSQL's is made once a run)."""
    if mode_settings.uses_sqlite:
        upgrade(mode_settings)
    return mode_settings


@pytest.fixture
def sqlite_settings(make_settings: Callable[..., Settings]) -> Settings:
    """The embedded deployment only (for the slower or framework-level tests)."""
    settings = make_settings()
    upgrade(settings)
    return settings


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.sqlalchemy_url)
    yield database
    await database.close()


@pytest.fixture
async def sqlite_db(sqlite_settings: Settings) -> AsyncIterator[Database]:
    database = Database(sqlite_settings.sqlalchemy_url)
    yield database
    await database.close()


def operators_cli(
    settings: Settings, *args: str, stdin: str | None = ""
) -> subprocess.CompletedProcess[str]:
    """``bot operators ARGS`` with ``stdin`` piped in (never the test's own terminal)."""
    return run_bot("operators", *args, env=settings_env(settings), timeout=60, stdin=stdin)


def _take_terminal() -> None:
    """In the child: make its standard input (the pseudo-terminal) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_terminal(settings: Settings, args: list[str], answers: list[str]) -> tuple[int, str]:
    """``bot operators ARGS`` on a pseudo-terminal of its own: each answer is typed after the
    next password prompt appears. The exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "operators", *args],
        cwd=ROOT,
        env=settings_env(settings),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # a session of its own, whose terminal is this one ...
        preexec_fn=_take_terminal,  # ... so getpass reads it (never the test's own)
    )
    os.close(slave)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            prompts = shown.count(b"Password for") + shown.count(b"Repeat the password")
            if pending and prompts > len(answers) - len(pending):
                time.sleep(0.1)  # getpass switches echo off just after printing the prompt
                os.write(master, pending.pop(0).encode() + b"\n")
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, shown.decode(errors="replace")


async def stored_operator(db: Database, name: str) -> Operator:
    async with db.session() as s:
        row = await s.scalar(sql_select(Operator).where(Operator.name == name))
    assert row is not None, f"no operator {name} in the database"
    return row


async def audit_rows(db: Database) -> list[AuditEntry]:
    return await accounts.list_audit(db, limit=1000)


async def age_sessions(db: Database, **shift: dt.timedelta) -> None:
    """Move every session's times into the past, as if that much time had passed."""
    async with db.session() as s, s.begin():
        for row in (await s.scalars(sql_select(ConsoleSession))).all():
            for column, delta in shift.items():
                setattr(row, column, getattr(row, column) - delta)


async def age_failures(db: Database, delta: dt.timedelta) -> None:
    async with db.session() as s, s.begin():
        await s.execute(update(SignInFailure).values(at=SignInFailure.at - delta))


# --- the command --------------------------------------------------------------------------


async def test_add_list_disable_enable_passwd_through_the_command(
    settings: Settings, db: Database
) -> None:
    added = operators_cli(settings, "add", "Alice", "--role", "editor", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "alice" in added.stdout and "editor" in added.stdout
    assert PASSWORD not in added.stdout + added.stderr

    row = await stored_operator(db, "alice")
    assert row.role == "editor" and not row.disabled
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert PasswordHasher().verify(row.password_hash, PASSWORD)

    staff = operators_cli(settings, "add", "somchai", "--role", "staff", stdin=OTHER_PASSWORD)
    assert staff.returncode == 0, staff.stderr  # a last line without a newline is fine too

    listing = operators_cli(settings, "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert "NAME" in lines[0] and "ROLE" in lines[0]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["alice", "editor", "active"],
        ["somchai", "staff", "active"],
    ]

    disabled = operators_cli(settings, "disable", "alice")
    assert disabled.returncode == 0, disabled.stderr
    states = {
        line.split()[0]: line.split()[2]
        for line in operators_cli(settings, "list").stdout.splitlines()
    }
    assert states["alice"] == "disabled" and states["somchai"] == "active"
    assert await accounts.authenticate(db, "alice", PASSWORD, "10.0.0.1") == accounts.INVALID

    enabled = operators_cli(settings, "enable", "ALICE")
    assert enabled.returncode == 0, enabled.stderr
    assert isinstance(await accounts.authenticate(db, "alice", PASSWORD, "10.0.0.1"), Operator)

    changed = operators_cli(settings, "passwd", "alice", stdin=OTHER_PASSWORD + "\n")
    assert changed.returncode == 0, changed.stderr
    assert OTHER_PASSWORD not in changed.stdout + changed.stderr
    assert await accounts.authenticate(db, "alice", PASSWORD, "10.0.0.1") == accounts.INVALID
    assert isinstance(
        await accounts.authenticate(db, "alice", OTHER_PASSWORD, "10.0.0.1"), Operator
    )

    entries = await audit_rows(db)
    assert [(e.operator, e.action, e.target) for e in reversed(entries)] == [
        ("cli", "operator.add", "alice"),
        ("cli", "operator.add", "somchai"),
        ("cli", "operator.disable", "alice"),
        ("cli", "operator.enable", "alice"),
        ("cli", "operator.password", "alice"),
    ]
    first = entries[-1]
    assert first.before is None
    assert first.after == {"name": "alice", "role": "editor", "disabled": False}
    assert entries[-3].before == {"name": "alice", "role": "editor", "disabled": False}
    assert entries[-3].after == {"name": "alice", "role": "editor", "disabled": True}
    logged = json.dumps([[e.before, e.after] for e in entries])
    assert PASSWORD not in logged and OTHER_PASSWORD not in logged and "argon2" not in logged


def test_the_command_refuses_clearly_and_changes_nothing(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    short = operators_cli(settings, "add", "bob", "--role", "viewer", stdin="short\n")
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr and "short" not in short.stdout
    assert "no operators yet" in operators_cli(settings, "list").stdout

    assert operators_cli(settings, "add", "bob", "--role", "viewer", stdin=PASSWORD).returncode == 0
    taken = operators_cli(settings, "add", "BOB", "--role", "admin", stdin=PASSWORD)
    assert taken.returncode == 1 and "already exists" in taken.stderr

    for command in (["disable", "nobody"], ["enable", "nobody"], ["passwd", "nobody"]):
        result = operators_cli(settings, *command, stdin=PASSWORD)
        assert result.returncode == 1, command
        assert "no operator is called 'nobody'" in result.stderr

    empty = operators_cli(settings, "passwd", "bob", stdin="")
    assert empty.returncode == 1 and "no password on standard input" in empty.stderr
    same = operators_cli(settings, "passwd", "bob", stdin="bob\n")
    assert same.returncode == 1 and "at least 10" in same.stderr
    bad_name = operators_cli(settings, "add", "ชื่อไทย", "--role", "viewer", stdin=PASSWORD)
    assert bad_name.returncode == 1 and "operator name" in bad_name.stderr
    bad_role = operators_cli(settings, "add", "carol", "--role", "root", stdin=PASSWORD)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr  # argparse's own

    listing = operators_cli(settings, "list").stdout
    assert "bob" in listing and "carol" not in listing


def test_the_command_says_when_the_database_is_behind(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    upgrade(settings, "0004")
    result = operators_cli(settings, "list")
    assert result.returncode == 2 and "bot db upgrade" in result.stderr


def test_a_person_types_the_password_twice_unseen(sqlite_settings: Settings) -> None:
    code, shown = on_terminal(
        sqlite_settings, ["add", "dara", "--role", "admin"], [PASSWORD, PASSWORD]
    )
    assert code == 0, shown
    assert "Password for dara" in shown and "Repeat the password" in shown
    assert "operator dara added with role admin" in shown
    assert PASSWORD not in shown  # not echoed, not printed

    code, shown = on_terminal(sqlite_settings, ["passwd", "dara"], [OTHER_PASSWORD, PASSWORD])
    assert code == 1, shown
    assert "the two passwords differ" in shown
    assert OTHER_PASSWORD not in shown and PASSWORD not in shown


def test_the_parser_offers_every_role() -> None:
    assert cli_operators.ROLES == accounts.ROLES


# --- passwords and sign-in ------------------------------------------------------------------


async def test_sign_in_with_the_right_password_only(db: Database) -> None:
    await accounts.add_operator(db, "nok", "viewer", PASSWORD, by="test")
    signed = await accounts.authenticate(db, "Nok ", PASSWORD, "10.0.0.2")
    assert isinstance(signed, Operator) and signed.name == "nok" and signed.role == "viewer"

    wrong = await accounts.authenticate(db, "nok", PASSWORD + "!", "10.0.0.2")
    unknown = await accounts.authenticate(db, "nobody", PASSWORD, "10.0.0.2")
    # The same answer for a wrong password and an unknown name: nothing tells a guesser which.
    assert wrong == unknown == accounts.INVALID
    assert isinstance(wrong, Refusal) and wrong.message == "wrong name or password"


async def test_passwords_too_short_or_names_taken_are_refused(db: Database) -> None:
    with pytest.raises(accounts.PasswordRejected, match="at least 10 characters"):
        await accounts.add_operator(db, "lek", "viewer", "123456789", by="test")
    await accounts.add_operator(db, "lek", "analyst", "1234567890", by="test")
    with pytest.raises(accounts.NameTaken):
        await accounts.add_operator(db, "LEK", "viewer", PASSWORD, by="test")
    with pytest.raises(accounts.AccountError, match="unknown role"):
        await accounts.add_operator(db, "mai", "root", PASSWORD, by="test")
    with pytest.raises(accounts.PasswordRejected):
        await accounts.set_password(db, "lek", "short", by="test")
    with pytest.raises(accounts.PasswordRejected, match="must not be the operator's name"):
        await accounts.add_operator(db, "longername1", "viewer", "LongerName1", by="test")
    assert [o.name for o in await accounts.list_operators(db)] == ["lek"]


async def test_five_failures_lock_the_name_even_for_the_right_password(db: Database) -> None:
    await accounts.add_operator(db, "pim", "editor", PASSWORD, by="test")
    await accounts.add_operator(db, "ploy", "editor", PASSWORD, by="test")
    for _ in range(accounts.NAME_FAILURES):
        assert await accounts.authenticate(db, "pim", "guess-guess-guess", "10.0.0.3") == (
            accounts.INVALID
        )

    locked = await accounts.authenticate(db, "pim", PASSWORD, "10.0.0.4")
    assert isinstance(locked, Refusal) and locked.code == "throttled"
    assert "too many failed sign-ins" in locked.message
    assert 0 < locked.retry_after <= accounts.FAILURE_WINDOW.total_seconds() + 1
    # Another operator from the same address is not locked out by pim's failures.
    assert isinstance(await accounts.authenticate(db, "ploy", PASSWORD, "10.0.0.3"), Operator)

    # A name that does not exist locks the same way: the lock does not reveal who exists.
    for _ in range(accounts.NAME_FAILURES):
        await accounts.authenticate(db, "ghost", "guess-guess-guess", "10.0.0.5")
    ghost = await accounts.authenticate(db, "ghost", "guess-guess-guess", "10.0.0.5")
    assert isinstance(ghost, Refusal) and ghost.code == "throttled"
    assert ghost.message.split(";")[0] == locked.message.split(";")[0]

    await age_failures(db, accounts.FAILURE_WINDOW + dt.timedelta(minutes=1))
    assert isinstance(await accounts.authenticate(db, "pim", PASSWORD, "10.0.0.4"), Operator)


async def test_twenty_failures_from_one_address_lock_that_address(sqlite_db: Database) -> None:
    db = sqlite_db
    await accounts.add_operator(db, "fon", "viewer", PASSWORD, by="test")
    for n in range(accounts.ADDRESS_FAILURES):
        await accounts.authenticate(db, f"user{n}", "guess-guess-guess", "192.0.2.7")
    refused = await accounts.authenticate(db, "fon", PASSWORD, "192.0.2.7")
    assert isinstance(refused, Refusal) and refused.code == "throttled"
    assert isinstance(await accounts.authenticate(db, "fon", PASSWORD, "192.0.2.8"), Operator)


async def test_a_weak_old_hash_is_replaced_at_sign_in(sqlite_db: Database) -> None:
    db = sqlite_db
    await accounts.add_operator(db, "tong", "viewer", PASSWORD, by="test")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with db.session() as s, s.begin():
        await s.execute(update(Operator).values(password_hash=weak))
    assert isinstance(await accounts.authenticate(db, "tong", PASSWORD, None), Operator)
    renewed = (await stored_operator(db, "tong")).password_hash
    assert renewed != weak and not PasswordHasher().check_needs_rehash(renewed)


# --- sessions -------------------------------------------------------------------------------


async def _signed_in(db: Database, name: str) -> tuple[Operator, str]:
    operator = await accounts.get_operator(db, name)
    assert operator is not None
    token, _session = await accounts.create_session(db, operator)
    return operator, token


async def test_a_session_is_found_by_its_token_and_stored_only_as_a_hash(db: Database) -> None:
    await accounts.add_operator(db, "kai", "staff", PASSWORD, by="test")
    operator, token = await _signed_in(db, "kai")
    assert len(token) >= 43  # 32 random bytes, URL-safe base64

    found = await accounts.session_for(db, token)
    assert found is not None and found[0].name == "kai" and found[0].id == operator.id
    assert await accounts.session_for(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert await accounts.session_for(db, None) is None

    async with db.session() as s:
        rows = (await s.scalars(sql_select(ConsoleSession))).all()
    assert [r.id for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in (rows[0].csrf_secret, rows[0].id)

    assert await accounts.end_session(db, token) is True
    assert await accounts.session_for(db, token) is None
    assert await accounts.end_session(db, token) is False


async def test_sessions_expire_when_idle_and_at_their_lifetime(db: Database) -> None:
    await accounts.add_operator(db, "oat", "viewer", PASSWORD, by="test")
    _, token = await _signed_in(db, "oat")
    almost_idle = accounts.IDLE - dt.timedelta(minutes=5)
    await age_sessions(db, last_seen_at=almost_idle)
    assert await accounts.session_for(db, token) is not None  # used recently enough: alive
    await age_sessions(db, last_seen_at=almost_idle)
    assert await accounts.session_for(db, token) is not None  # that use counted as activity
    await age_sessions(db, last_seen_at=accounts.IDLE + dt.timedelta(minutes=1))
    assert await accounts.session_for(db, token) is None  # idle too long

    _, token = await _signed_in(db, "oat")
    await age_sessions(db, expires_at=accounts.LIFETIME + dt.timedelta(seconds=1))
    assert await accounts.session_for(db, token) is None  # in use, but past its lifetime


async def test_sessions_end_when_the_operator_is_disabled(db: Database) -> None:
    await accounts.add_operator(db, "beam", "editor", PASSWORD, by="test")
    _, token = await _signed_in(db, "beam")
    await accounts.set_disabled(db, "beam", True, by="admin1")
    assert await accounts.session_for(db, token) is None
    await accounts.set_disabled(db, "beam", False, by="admin1")
    assert await accounts.session_for(db, token) is None  # enabling again does not revive it
    _, token = await _signed_in(db, "beam")
    assert await accounts.session_for(db, token) is not None


async def test_sessions_end_when_the_password_changes(db: Database) -> None:
    await accounts.add_operator(db, "fah", "admin", PASSWORD, by="test")
    _, first = await _signed_in(db, "fah")
    _, second = await _signed_in(db, "fah")
    await accounts.set_password(db, "fah", OTHER_PASSWORD, by="fah")
    assert await accounts.session_for(db, first) is None
    assert await accounts.session_for(db, second) is None
    _, fresh = await _signed_in(db, "fah")
    assert await accounts.session_for(db, fresh) is not None


async def test_csrf_tokens_belong_to_their_session(db: Database) -> None:
    await accounts.add_operator(db, "eve", "editor", PASSWORD, by="test")
    operator = await accounts.get_operator(db, "eve")
    assert operator is not None
    _, mine = await accounts.create_session(db, operator)
    _, other = await accounts.create_session(db, operator)
    token = accounts.csrf_token_for(mine)
    assert accounts.csrf_ok(mine, token)
    assert not accounts.csrf_ok(mine, accounts.csrf_token_for(other))
    assert not accounts.csrf_ok(mine, token[:-1])
    assert not accounts.csrf_ok(mine, "")
    assert not accounts.csrf_ok(mine, None)


# --- the audit log --------------------------------------------------------------------------


async def test_audit_entries_are_kept_newest_first(db: Database) -> None:
    await accounts.record_audit(
        db, "nok", "kb.edit", "course:abc", {"title": "old"}, {"title": "new"}
    )
    await accounts.add_operator(db, "wan", "viewer", PASSWORD, by="nok")
    await accounts.set_role(db, "wan", "editor", by="nok")
    entries = await accounts.list_audit(db, limit=10)
    assert [(e.operator, e.action, e.target) for e in entries] == [
        ("nok", "operator.role", "wan"),
        ("nok", "operator.add", "wan"),
        ("nok", "kb.edit", "course:abc"),
    ]
    assert entries[0].before == {"name": "wan", "role": "viewer", "disabled": False}
    assert entries[0].after == {"name": "wan", "role": "editor", "disabled": False}
    assert entries[2].before == {"title": "old"} and entries[2].after == {"title": "new"}
    assert entries[0].at >= entries[2].at
    page = await accounts.list_audit(db, limit=1, offset=1)
    assert [e.action for e in page] == ["operator.add"]
    assert await accounts.count_audit(db) == 3


# --- the console's FastAPI layer ------------------------------------------------------------


#: ``require_role`` used directly, as a page that needs a role rather than a permission would.
Editor = Annotated[auth.SignedIn, Depends(auth.require_role("editor"))]


def _console_app(db: Database, settings: Settings) -> FastAPI:
    """A minimal app using the helpers the console's pages use."""
    app = FastAPI()
    app.state.services = SimpleNamespace(db=db, settings=settings)

    @app.post("/console/login")
    async def login(request: Request, response: Response) -> dict[str, Any]:
        form = await request.form()
        result = await auth.sign_in(request, response, str(form["name"]), str(form["password"]))
        if isinstance(result, Refusal):
            response.status_code = 429 if result.code == "throttled" else 401
            return {"refused": result.message}
        return {"operator": result.operator.name, "csrf": result.csrf_token}

    @app.get("/console/page")
    async def page(who: auth.CanView) -> Any:
        return {"operator": who.operator.name, "can_edit": who.can("edit")}

    @app.post("/console/edit")
    async def edit(who: Editor) -> Any:
        return {"edited_by": who.operator.name}

    @app.post("/console/logout")
    async def logout(request: Request, response: Response, _: auth.SignedInAny) -> Any:
        await auth.sign_out(request, response)
        return {"ok": True}

    return app


def _client(app: FastAPI, scheme: str = "http") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://console.test"
    )


async def test_console_pages_need_a_session_and_the_role(
    sqlite_db: Database, sqlite_settings: Settings
) -> None:
    db = sqlite_db
    await accounts.add_operator(db, "view1", "viewer", PASSWORD, by="test")
    await accounts.add_operator(db, "edit1", "editor", PASSWORD, by="test")
    app = _console_app(db, sqlite_settings)
    html = {"Accept": "text/html"}

    async with _client(app) as browser:
        away = await browser.get("/console/page?tab=1", headers=html)
        assert away.status_code == 303
        assert away.headers["location"] == "/console/login?next=%2Fconsole%2Fpage%3Ftab%3D1"
        assert (await browser.get("/console/page")).status_code == 401  # an API call
        htmx = await browser.get("/console/page", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/console/login")

        wrong = await browser.post("/console/login", data={"name": "view1", "password": "x" * 12})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        signed = await browser.post("/console/login", data={"name": "view1", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{auth.COOKIE_NAME}=")
        for attribute in ("HttpOnly", "SameSite=lax", "Path=/console", "Max-Age=86400"):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # plain http in this test

        page = await browser.get("/console/page", headers=html)
        assert page.json() == {"operator": "view1", "can_edit": False}
        csrf = signed.json()["csrf"]
        refused = await browser.post("/console/edit", data={"csrf_token": csrf})
        assert refused.status_code == 403 and "role" in refused.text  # a viewer cannot edit

        no_token = await browser.post("/console/logout", data={})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        out = await browser.post("/console/logout", data={"csrf_token": csrf})
        assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await browser.get("/console/page", headers=html)).status_code == 303

    async with _client(app, "https") as browser:
        signed = await browser.post("/console/login", data={"name": "edit1", "password": PASSWORD})
        assert "secure" in signed.headers["set-cookie"].lower()
        csrf = signed.json()["csrf"]
        forged = await browser.post("/console/edit", data={"csrf_token": "0" * 64})
        assert forged.status_code == 403
        cross_site = await browser.post(
            "/console/edit", data={"csrf_token": csrf}, headers={"Origin": "https://evil.test"}
        )
        assert cross_site.status_code == 403
        edited = await browser.post(
            "/console/edit",
            headers={auth.CSRF_HEADER: csrf, "Origin": "https://console.test"},
        )
        assert edited.status_code == 200 and edited.json() == {"edited_by": "edit1"}
        await accounts.set_disabled(db, "edit1", True, by="test")
        gone = await browser.post("/console/edit", headers={auth.CSRF_HEADER: csrf})
        assert gone.status_code == 401  # disabled: the session ended at once

    async with _client(app) as browser:
        # A proxy that terminated TLS says so: the cookie is Secure behind it too.
        behind = await browser.post(
            "/console/login",
            data={"name": "view1", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "secure" in behind.headers["set-cookie"].lower()


def test_permissions_follow_the_role_table() -> None:
    def op(role: str) -> Operator:
        return Operator(name=role, role=role, password_hash="-", disabled=False)

    table = {
        "viewer": {"view"},
        "staff": {"view", "handoff"},
        "editor": {"view", "edit", "publish"},
        "admin": {"view", "edit", "publish", "handoff", "notify", "operators", "insights"},
        "analyst": {"insights"},
    }
    everything = set().union(*table.values())
    for role, allowed in table.items():
        assert {p for p in everything if auth.can(op(role), p)} == allowed, role
    assert auth.has_role(op("admin"), "editor") and auth.has_role(op("editor"), "viewer")
    assert auth.has_role(op("staff"), "viewer") and not auth.has_role(op("staff"), "editor")
    assert not auth.has_role(op("analyst"), "viewer")
    assert not auth.can(None, "view")
    disabled = op("admin")
    disabled.disabled = True
    assert not auth.can(disabled, "view")
    with pytest.raises(ValueError):
        auth.can(op("admin"), "delete-everything")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/inbox?page=2", "/console/inbox?page=2"),
        ("/console", "/console"),
        (None, "/console"),
        ("https://evil.test/console", "/console"),
        ("//evil.test/console", "/console"),
        ("/\\evil.test", "/console"),
        ("/consolex", "/console"),
        ("/callback", "/console"),
    ],
)
def test_after_sign_in_only_console_pages_are_followed(target: str | None, expected: str) -> None:
    assert auth.safe_next(target) == expected
