"""Published knowledge versions in the database: store, publish, roll back, list.

The database is the one place every process of a deployment agrees on. A version is
stored once per digest (``kb_versions``); what is live is the newest row of
``kb_publications``, so a rollback is one more row and the history keeps every move.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from bot.kb import snapshots
from bot.storage.db import Database, KnowledgePublication, KnowledgeVersion


@dataclass(frozen=True)
class LiveVersion:
    """The version every process should serve."""

    number: int
    digest: str


@dataclass(frozen=True)
class Published:
    """What a publish or rollback did."""

    number: int
    digest: str
    #: False when that version was live already (nothing was written).
    changed: bool
    changes: list[str]


@dataclass(frozen=True)
class HistoryRow:
    """One publication, for ``bot kb history`` and the console."""

    at: dt.datetime
    actor: str
    action: str
    number: int
    digest: str
    note: str | None
    changes: list[str]
    counts: dict[str, Any]


async def live(db: Database) -> LiveVersion | None:
    """The live version, or None before the first publication."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(KnowledgeVersion.number, KnowledgeVersion.digest)
                .join(KnowledgePublication, KnowledgePublication.number == KnowledgeVersion.number)
                .order_by(KnowledgePublication.id.desc())
                .limit(1)
            )
        ).first()
    return LiveVersion(row[0], row[1]) if row else None


async def files(db: Database, ref: int | str) -> dict[str, bytes] | None:
    """The files of a version, by number or digest (None when there is no such version)."""
    column = KnowledgeVersion.number if isinstance(ref, int) else KnowledgeVersion.digest
    async with db.session() as session:
        archive = (
            await session.execute(select(KnowledgeVersion.archive).where(column == ref))
        ).scalar_one_or_none()
    return snapshots.unpack(archive) if archive is not None else None


async def known(db: Database, digest: str) -> bool:
    """Whether a version with this digest was ever stored."""
    async with db.session() as session:
        found = (
            await session.execute(
                select(KnowledgeVersion.number).where(KnowledgeVersion.digest == digest)
            )
        ).first()
    return found is not None


async def publish(
    db: Database,
    digest: str,
    content: dict[str, bytes],
    counts: dict[str, Any],
    actor: str,
    note: str | None = None,
) -> Published:
    """Make this (already validated) set live: store it unless known, log the publication."""
    current = await live(db)
    if current is not None and current.digest == digest:
        return Published(current.number, digest, False, [])
    before = await files(db, current.number) if current is not None else None
    changes = snapshots.summary(snapshots.diff(before or {}, content), limit=200)
    async with db.session() as session, session.begin():
        number = (
            await session.execute(
                select(KnowledgeVersion.number).where(KnowledgeVersion.digest == digest)
            )
        ).scalar_one_or_none()
        if number is None:
            version = KnowledgeVersion(
                digest=digest,
                created_by=actor[:64],
                changes=changes,
                counts=counts,
                archive=snapshots.pack(content),
            )
            session.add(version)
            await session.flush()
            number = version.number
        session.add(
            KnowledgePublication(
                actor=actor[:64], action="publish", number=number, note=(note or None)
            )
        )
    return Published(number, digest, True, changes)


async def rollback(db: Database, number: int, actor: str, note: str | None = None) -> Published:
    """Make an earlier version live again; ``LookupError`` when there is no such version."""
    async with db.session() as session, session.begin():
        digest = (
            await session.execute(
                select(KnowledgeVersion.digest).where(KnowledgeVersion.number == number)
            )
        ).scalar_one_or_none()
        if digest is None:
            raise LookupError(f"no knowledge version {number}")
        session.add(
            KnowledgePublication(actor=actor[:64], action="rollback", number=number, note=note)
        )
    return Published(number, digest, True, [f"rollback to version {number}"])


async def history(db: Database, limit: int = 50) -> list[HistoryRow]:
    """Publications, newest first, with each version's change summary."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(KnowledgePublication, KnowledgeVersion)
                .join(KnowledgeVersion, KnowledgeVersion.number == KnowledgePublication.number)
                .options(defer(KnowledgeVersion.archive))
                .order_by(KnowledgePublication.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        HistoryRow(
            at=pub.at,
            actor=pub.actor,
            action=pub.action,
            number=ver.number,
            digest=ver.digest,
            note=pub.note,
            changes=list(ver.changes or []),
            counts=dict(ver.counts or {}),
        )
        for pub, ver in rows
    ]


async def counts(db: Database, digest: str) -> dict[str, Any] | None:
    """A version's counts (entries, and measurements added later such as ``cv_accuracy``)."""
    async with db.session() as session:
        found = (
            await session.execute(
                select(KnowledgeVersion.counts).where(KnowledgeVersion.digest == digest)
            )
        ).scalar_one_or_none()
    return dict(found) if found is not None else None


async def set_count(db: Database, digest: str, key: str, value: Any) -> None:
    """Add a measurement to a version's counts."""
    async with db.session() as session, session.begin():
        version = (
            await session.execute(
                select(KnowledgeVersion)
                .options(defer(KnowledgeVersion.archive))
                .where(KnowledgeVersion.digest == digest)
            )
        ).scalar_one_or_none()
        if version is not None:
            version.counts = {**(version.counts or {}), key: value}
