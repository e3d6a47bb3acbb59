"""Cross-validated accuracy of the intent engine, per published version.

An operator who adds an example wants to know it helped: the inbox shows the
cross-validated accuracy (``bot nlu eval --cross-validate``, the same folds) of the version
before and after. Training the engine ``k`` times takes tens of seconds, so it runs in a
thread after the publication, at most one at a time per process, and the result is kept
with the version in the database (``counts["cv_accuracy"]``) for every process to read.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.kb.loader import Knowledge
from bot.services import Services
from bot.storage import kb_versions

log = logging.getLogger(__name__)

_running: dict[str, asyncio.Task[float | None]] = {}
_one_at_a_time = asyncio.Lock()


def _cross_validate(knowledge: Knowledge, intents_dir: Path, folds: int) -> float:
    from bot.nlu import engine_from_examples, read_intents
    from bot.nlu.engine import SPELLING_FILE, guide_examples
    from bot.nlu.evaluate import cross_validate
    from bot.nlu.multipart import CLAUSES_FILE, load_markers
    from bot.nlu.text import load_spelling

    spelling, _ = load_spelling(intents_dir / SPELLING_FILE)
    markers, _ = load_markers(intents_dir / CLAUSES_FILE)
    examples = list(read_intents(intents_dir).examples)
    examples += guide_examples(knowledge, (e.text for e in examples))
    report = cross_validate(
        examples,
        lambda train: engine_from_examples(train, knowledge, spelling, markers=markers),
        folds=folds,
    )
    return round(report.accuracy, 4)


async def known(services: Services, digest: str) -> float | None:
    """The stored figure of a version, if it was measured."""
    counts = await kb_versions.counts(services.db, digest)
    value = (counts or {}).get("cv_accuracy")
    return float(value) if isinstance(value, int | float) else None


def measure(services: Services, knowledge: Knowledge) -> None:
    """Start measuring ``knowledge`` in the background (once per version and process)."""
    digest = knowledge.version
    if digest in _running:
        return

    async def run() -> float | None:
        if (found := await known(services, digest)) is not None:
            return found
        async with _one_at_a_time:
            intents_dir = (
                knowledge.folders[1]
                if len(knowledge.folders) > 1
                else services.settings.intents_dir
            )
            try:
                value = await asyncio.to_thread(
                    _cross_validate, knowledge, intents_dir, services.settings.console_cv_folds
                )
            except Exception:
                log.exception("cross-validation failed", extra={"version": digest})
                return None
        await kb_versions.set_count(services.db, digest, "cv_accuracy", value)
        log.info("cross-validated accuracy", extra={"version": digest, "accuracy": value})
        return value

    _running[digest] = asyncio.create_task(run())
