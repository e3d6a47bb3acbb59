"""Turn writes that the answers stored together can share: one statement per kind.

Under load a worker stores many decided answers in one transaction
(``bot.pipeline.event_log``). Most of what a turn writes is a counter or an insight row;
the same kind's changes of every answer in that transaction go in one statement (summed
counters, one multi-row insert) instead of one statement per answer, which was most of a
worker's database time per event.

Order: every other write runs first, each answer's in its own order, then each merged kind
in one call. A merged kind only adds rows or counts, and one chat's answers are never in
the same transaction (its events are handled one at a time), so nothing can tell the
difference from running each answer's writes one after the other.

The kinds run in one fixed order (by name), and each sorts its rows: two workers' shared
transactions then take the counter rows' locks in the same order and never wait for each
other crosswise. (In the order the kinds first appeared in a batch, a guide's answer
first in one worker and a greeting first in the other deadlocked PostgreSQL under load.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


class MergedWrite:
    """A ``Turn.write`` change that the same kind's changes of other answers can join.

    Called alone (``await change(s)``) it runs as a merge of one, so every place that runs
    writes one by one keeps working."""

    async def __call__(self, s: AsyncSession) -> None:
        await type(self).run_all(s, [self])

    @classmethod
    async def run_all(cls, s: AsyncSession, changes: Sequence[Any]) -> None:
        """Apply every change of this kind in as few statements as the kind allows."""
        raise NotImplementedError


async def run_together(
    s: AsyncSession, writes: Sequence[Sequence[Callable[[AsyncSession], Awaitable[object]]]]
) -> None:
    """Run several answers' writes in ``s``: the unmerged ones first (answer by answer, in
    each answer's order), then one call per merged kind, kinds in a fixed order."""
    kinds: dict[type[MergedWrite], list[MergedWrite]] = {}
    for changes in writes:
        for change in changes:
            if isinstance(change, MergedWrite):
                kinds.setdefault(type(change), []).append(change)
            else:
                await change(s)
    for kind in sorted(kinds, key=lambda k: f"{k.__module__}.{k.__qualname__}"):
        await kind.run_all(s, kinds[kind])
