"""Operator accounts for the console: passwords, sessions, sign-in throttling, audit log.

Operators are ministry staff who sign in to ``/console``. What is kept, and why:

- ``operators``: a name (lower-case ASCII, so every database compares it the same way), a
  role, an argon2 hash of the password (never the password) and a ``disabled`` flag, so an
  account that must stop working is switched off without losing its audit history.
- ``console_sessions``: one row per signed-in browser. The cookie carries a random token;
  the table keeps only its SHA-256, so a leaked database backup cannot be replayed as a
  cookie. A session ends on sign-out, after ``IDLE`` without a request or ``LIFETIME``
  after sign-in, when its operator is disabled and when the password changes.
- ``signin_failures``: failed sign-ins, per name and per client address, to refuse a
  guessing attack (``NAME_FAILURES`` per name or ``ADDRESS_FAILURES`` per address within
  ``FAILURE_WINDOW``) without telling the guesser whether a name exists.
- ``audit_log``: who changed what, when, with the value before and after. Account changes
  write their entry in the same transaction as the change, so one is never without the other.

Every query takes a :class:`bot.storage.db.Database`, as :mod:`bot.storage.handoff` does.
Nothing here logs a password, a token or a session id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import Base, Database, aware, utcnow

#: Every role an account may have. ``analyst`` is reserved for the insights pages (issue 13).
ROLES: Final = ("viewer", "editor", "staff", "admin", "analyst")
#: Shortest password accepted (NIST SP 800-63B asks for at least 8; staff accounts get more).
MIN_PASSWORD_LENGTH: Final = 10
#: Longest password accepted: enough for any passphrase, short of a denial of service.
MAX_PASSWORD_LENGTH: Final = 1024
#: A session ends after this long without a request ...
IDLE: Final = dt.timedelta(hours=8)
#: ... and at the latest this long after sign-in (also the cookie's Max-Age).
LIFETIME: Final = dt.timedelta(hours=24)
#: ``last_seen_at`` is written at most this often, not on every page view.
TOUCH_EVERY: Final = dt.timedelta(minutes=1)
#: Failed sign-ins are counted over this window ...
FAILURE_WINDOW: Final = dt.timedelta(minutes=15)
#: ... and sign-in is refused after this many for one name ...
NAME_FAILURES: Final = 5
#: ... or this many from one client address (many names tried from one place).
ADDRESS_FAILURES: Final = 20

_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_hasher = PasswordHasher()


class Operator(Base):
    """A person who may sign in to the console, with one role."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )

    def summary(self) -> dict[str, Any]:
        """The account as the audit log records it (never the password hash)."""
        return {"name": self.name, "role": self.role, "disabled": self.disabled}


class ConsoleSession(Base):
    """A signed-in browser; ``id`` is the SHA-256 of the cookie's token, never the token."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The absolute end (``LIFETIME`` after sign-in); the idle end is ``last_seen_at + IDLE``.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Key of this session's CSRF token (``csrf_token_for``); never sent to the browser as is.
    csrf_secret: Mapped[str] = mapped_column(String(64))


class SignInFailure(Base):
    """One failed sign-in, counted under ``name:<name>`` and ``addr:<client address>``."""

    __tablename__ = "signin_failures"
    __table_args__ = (Index("ix_signin_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class AuditEntry(Base):
    """One change made by an operator (or ``cli``): who, when, what, before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    operator: Mapped[str] = mapped_column(String(64), index=True)
    #: A short dotted verb: ``operator.add``, ``operator.disable``, ``kb.publish`` ...
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AccountError(ValueError):
    """A refused account change; the message says why and is safe to show the operator."""


class NameTaken(AccountError):
    """Another operator already has this name."""


class UnknownOperator(AccountError):
    """No operator has this name."""


class PasswordRejected(AccountError):
    """The new password is too short, too long or equal to the name."""


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in was refused. ``code`` is ``invalid`` (wrong name or password, or the
    account is disabled: the same answer, so a guesser learns nothing) or ``throttled``."""

    code: str
    message: str
    #: For ``throttled``: seconds until a new try may succeed (a Retry-After value).
    retry_after: int = 0


INVALID = Refusal("invalid", "wrong name or password")


def normalise_name(name: str) -> str:
    """The stored form of an operator name: trimmed, lower-case; AccountError if not valid."""
    clean = name.strip().lower()
    if not _NAME.fullmatch(clean):
        raise AccountError(
            "an operator name is 1 to 64 characters: letters a-z, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return clean


def check_role(role: str) -> str:
    """``role`` when it is one of ``ROLES``; AccountError otherwise."""
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def check_password(name: str, password: str) -> None:
    """Refuse a password that is too short, too long or the operator's own name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == name.strip().lower():
        raise PasswordRejected("the password must not be the operator's name")


async def _hash(password: str) -> str:
    """argon2id, off the event loop (a hash takes a fraction of a second and 64 MiB)."""
    return await asyncio.to_thread(_hasher.hash, password)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown: a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    """Does ``password`` match ``stored``? (None: an unknown name, checked against a dummy.)"""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _audit(
    s: AsyncSession,
    by: str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    s.add(
        AuditEntry(
            at=utcnow(),
            operator=by[:64],
            action=action[:32],
            target=target[:200],
            before=before,
            after=after,
        )
    )


async def _by_name(s: AsyncSession, name: str) -> Operator | None:
    return await s.scalar(select(Operator).where(Operator.name == name))


async def _named(s: AsyncSession, name: str) -> Operator:
    """The operator called ``name``; UnknownOperator (with the name) when there is none."""
    try:
        clean = normalise_name(name)
    except AccountError:
        clean = ""
    row = await _by_name(s, clean) if clean else None
    if row is None:
        raise UnknownOperator(f"no operator is called {name.strip()!r}")
    return row


# --- accounts -------------------------------------------------------------------------------


async def add_operator(db: Database, name: str, role: str, password: str, *, by: str) -> Operator:
    """Create an account; NameTaken, PasswordRejected or AccountError say what is wrong."""
    clean = normalise_name(name)
    check_role(role)
    check_password(clean, password)
    password_hash = await _hash(password)
    async with db.session() as s, s.begin():
        if await _by_name(s, clean) is not None:
            raise NameTaken(f"an operator called {clean!r} already exists")
        now = utcnow()
        row = Operator(
            name=clean,
            role=role,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            password_changed_at=now,
        )
        s.add(row)
        _audit(s, by, "operator.add", clean, None, row.summary())
    return row


async def get_operator(db: Database, name: str) -> Operator | None:
    """The operator called ``name`` (any case), or None."""
    try:
        clean = normalise_name(name)
    except AccountError:
        return None
    async with db.session() as s:
        return await _by_name(s, clean)


async def list_operators(db: Database) -> list[Operator]:
    """Every account, disabled ones included, by name."""
    async with db.session() as s:
        return list((await s.scalars(select(Operator).order_by(Operator.name))).all())


async def set_disabled(db: Database, name: str, disabled: bool, *, by: str) -> Operator:
    """Switch an account off (its sessions end at once) or on again; UnknownOperator if none."""
    async with db.session() as s, s.begin():
        row = await _named(s, name)
        before = row.summary()
        if row.disabled != disabled:
            row.disabled = disabled
            if disabled:
                await s.execute(delete(ConsoleSession).where(ConsoleSession.operator_id == row.id))
            action = "operator.disable" if disabled else "operator.enable"
            _audit(s, by, action, row.name, before, row.summary())
    return row


async def set_role(db: Database, name: str, role: str, *, by: str) -> Operator:
    """Give an account another role (takes effect on its next request)."""
    check_role(role)
    async with db.session() as s, s.begin():
        row = await _named(s, name)
        if row.role != role:
            before = row.summary()
            row.role = role
            _audit(s, by, "operator.role", row.name, before, row.summary())
    return row


async def set_password(db: Database, name: str, password: str, *, by: str) -> Operator:
    """Replace the password; every session of the account ends (sign in again with the new one).

    The audit entry records that and when the password changed, never the password or its hash.
    """
    async with db.session() as s:
        row = await _named(s, name)
    check_password(row.name, password)
    password_hash = await _hash(password)
    async with db.session() as s, s.begin():
        row = await _named(s, name)
        before = {"password_changed_at": aware(row.password_changed_at).isoformat()}
        row.password_hash = password_hash
        row.password_changed_at = utcnow()
        await s.execute(delete(ConsoleSession).where(ConsoleSession.operator_id == row.id))
        after = {"password_changed_at": row.password_changed_at.isoformat()}
        _audit(s, by, "operator.password", row.name, before, after)
    return row


# --- sign-in --------------------------------------------------------------------------------


def _keys(name: str, address: str | None) -> tuple[str, str | None]:
    name_key = "name:" + name.strip().lower()[:64]
    return name_key, ("addr:" + address[:100]) if address else None


async def _throttled(
    s: AsyncSession, name_key: str, addr_key: str | None, now: dt.datetime
) -> Refusal | None:
    """A refusal while too many recent failures stand against the name or the address."""
    since = now - FAILURE_WINDOW
    for key, limit in ((name_key, NAME_FAILURES), (addr_key, ADDRESS_FAILURES)):
        if key is None:
            continue
        times = (
            await s.scalars(
                select(SignInFailure.at)
                .where(SignInFailure.key == key, SignInFailure.at > since)
                .order_by(SignInFailure.at.desc())
                .limit(limit)
            )
        ).all()
        if len(times) >= limit:
            # Free again when the oldest of the last ``limit`` failures leaves the window.
            free_at = aware(times[-1]) + FAILURE_WINDOW
            wait = max(1, int((free_at - now).total_seconds()) + 1)
            minutes = -(-wait // 60)
            return Refusal(
                "throttled",
                f"too many failed sign-ins; try again in {minutes} minute(s)",
                wait,
            )
    return None


async def authenticate(
    db: Database, name: str, password: str, address: str | None
) -> Operator | Refusal:
    """The operator when ``name`` and ``password`` match an enabled account, else a Refusal.

    Refused without checking the password while the name has ``NAME_FAILURES`` or the address
    ``ADDRESS_FAILURES`` failures in the last ``FAILURE_WINDOW``: even the right password
    waits out the lock, so guessing gains nothing. A failure counts against the name and
    the address whether the name exists or not, and the answer does not tell which.
    A stored hash made with weaker parameters is replaced on a successful sign-in.
    """
    now = utcnow()
    name_key, addr_key = _keys(name, address)
    async with db.session() as s, s.begin():
        await s.execute(delete(SignInFailure).where(SignInFailure.at <= now - FAILURE_WINDOW))
        refusal = await _throttled(s, name_key, addr_key, now)
    if refusal is not None:
        return refusal
    try:
        clean = normalise_name(name)
    except AccountError:
        clean = ""
    async with db.session() as s:
        row = await _by_name(s, clean) if clean else None
    stored = row.password_hash if row is not None else None
    # An over-long "password" is wrong without spending a hash on it.
    ok = len(password) <= MAX_PASSWORD_LENGTH and await asyncio.to_thread(_verify, stored, password)
    if row is None or row.disabled or not ok:
        async with db.session() as s, s.begin():
            for key in (name_key, addr_key):
                if key is not None:
                    s.add(SignInFailure(key=key, at=now))
        return INVALID
    rehash = _hasher.check_needs_rehash(row.password_hash)
    new_hash = await _hash(password) if rehash else None
    async with db.session() as s, s.begin():
        await s.execute(delete(SignInFailure).where(SignInFailure.key == name_key))
        if new_hash is not None:
            fresh = await s.get(Operator, row.id)
            if fresh is not None:
                fresh.password_hash = new_hash
                row.password_hash = new_hash
    return row


# --- sessions -------------------------------------------------------------------------------


async def create_session(db: Database, operator: Operator) -> tuple[str, ConsoleSession]:
    """Sign ``operator`` in: the raw token for the cookie, and the stored session.

    The token is 32 random bytes (URL-safe base64); only its SHA-256 is stored.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ConsoleSession(
        id=_token_hash(token),
        operator_id=operator.id,
        created_at=now,
        expires_at=now + LIFETIME,
        last_seen_at=now,
        csrf_secret=secrets.token_hex(32),
    )
    async with db.session() as s, s.begin():
        s.add(row)
    return token, row


def _live(op: Operator, row: ConsoleSession, now: dt.datetime) -> bool:
    return (
        not op.disabled
        and aware(row.expires_at) > now
        and aware(row.last_seen_at) + IDLE > now
        and aware(row.created_at) >= aware(op.password_changed_at)
    )


async def session_for(db: Database, token: str | None) -> tuple[Operator, ConsoleSession] | None:
    """The operator and session a cookie's token stands for, or None when the session is
    unknown, signed out, idle past ``IDLE``, past ``LIFETIME``, older than the account's
    password, or its operator is disabled. A dead session is deleted on the way."""
    if not token or len(token) > 200:
        return None
    now = utcnow()
    async with db.session() as s, s.begin():
        found = (
            await s.execute(
                select(Operator, ConsoleSession)
                .join(Operator, Operator.id == ConsoleSession.operator_id)
                .where(ConsoleSession.id == _token_hash(token))
            )
        ).first()
        if found is None:
            return None
        op, row = found
        if not _live(op, row, now):
            await s.delete(row)
            return None
        if now - aware(row.last_seen_at) >= TOUCH_EVERY:
            row.last_seen_at = now
    return op, row


async def end_session(db: Database, token: str | None) -> bool:
    """Sign out: delete the session of ``token``; False when there was none."""
    if not token:
        return False
    async with db.session() as s, s.begin():
        result = await s.execute(
            delete(ConsoleSession).where(ConsoleSession.id == _token_hash(token))
        )
    return bool(getattr(result, "rowcount", 0))


async def end_sessions(db: Database, name: str) -> int:
    """Sign an operator out everywhere; the number of sessions ended."""
    async with db.session() as s, s.begin():
        row = await _named(s, name)
        result = await s.execute(delete(ConsoleSession).where(ConsoleSession.operator_id == row.id))
    return int(getattr(result, "rowcount", 0) or 0)


async def prune(db: Database) -> None:
    """Delete ended sessions and failures older than the window (for housekeeping)."""
    now = utcnow()
    async with db.session() as s, s.begin():
        await s.execute(
            delete(ConsoleSession).where(
                (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= now - IDLE)
            )
        )
        await s.execute(delete(SignInFailure).where(SignInFailure.at <= now - FAILURE_WINDOW))


def csrf_token_for(session: ConsoleSession) -> str:
    """The CSRF token every form of this session carries: HMAC-SHA256 of its secret.

    A page of another site cannot read it, so it cannot forge a form that passes.
    """
    return hmac.new(session.csrf_secret.encode(), b"console-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session: ConsoleSession, token: str | None) -> bool:
    """Does ``token`` match this session's CSRF token? (constant-time compare)"""
    if not token:
        return False
    return hmac.compare_digest(csrf_token_for(session).encode(), token.encode("utf-8", "replace"))


# --- audit log ------------------------------------------------------------------------------


async def record_audit(
    db: Database,
    operator: Operator | str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Write one audit entry in a transaction of its own."""
    async with db.session() as s, s.begin():
        record_audit_in(s, operator, action, target, before, after)


def record_audit_in(
    s: AsyncSession,
    operator: Operator | str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """``record_audit`` inside a caller's transaction: the entry commits with the change."""
    by = operator.name if isinstance(operator, Operator) else operator
    _audit(s, by, action, target, before, after)


async def list_audit(db: Database, limit: int = 50, offset: int = 0) -> list[AuditEntry]:
    """Audit entries, newest first."""
    async with db.session() as s:
        query = (
            select(AuditEntry)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        return list((await s.scalars(query)).all())


async def count_audit(db: Database) -> int:
    """How many audit entries there are (for paging)."""
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


__all__ = [
    "ADDRESS_FAILURES",
    "FAILURE_WINDOW",
    "IDLE",
    "INVALID",
    "LIFETIME",
    "MIN_PASSWORD_LENGTH",
    "NAME_FAILURES",
    "ROLES",
    "AccountError",
    "AuditEntry",
    "ConsoleSession",
    "NameTaken",
    "Operator",
    "PasswordRejected",
    "Refusal",
    "SignInFailure",
    "UnknownOperator",
    "add_operator",
    "authenticate",
    "check_password",
    "check_role",
    "count_audit",
    "create_session",
    "csrf_ok",
    "csrf_token_for",
    "end_session",
    "end_sessions",
    "get_operator",
    "list_audit",
    "list_operators",
    "normalise_name",
    "prune",
    "record_audit",
    "record_audit_in",
    "session_for",
    "set_disabled",
    "set_password",
    "set_role",
]
