"""Published knowledge versions: what publishing and following cost, against a plain reload.

In one process, on SQLite (``--pg``: PostgreSQL at 127.0.0.1:5432/test, schema of its own),
with the shipped ``knowledge/`` and ``intents/``:

1. ``kb.reload_s``: the baseline, ``load_knowledge`` of the folder (what every process did
   before versions existed, from its own disk);
2. ``kb.publish_s``: ``KnowledgeSync.publish_folder`` with one reply changed each round:
   validate, read and pack the files, diff against the live version, store, swap;
3. ``kb.follow_s``: a second store (another process's) following the new version: fetch the
   archive from the database, unpack, validate, swap;
4. ``kb.archive_kb`` / ``kb.files_kb``: the stored archive against the files' size.

Ratios are against the baseline of the same run. No intent engine is trained (the
engine's own rebuild is measured in ``nlu_bench.py``); nothing is announced (no Redis).

Usage: ``.venv/bin/python benchmarks/kb_publish_bench.py [--rounds N] [--pg]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import _common as c

c.ensure_root_on_path()

from sqlalchemy import create_engine, text  # noqa: E402

from bot.kb import snapshots  # noqa: E402
from bot.kb.loader import load_knowledge  # noqa: E402
from bot.kb.store import KnowledgeStore  # noqa: E402
from bot.kb.sync import KnowledgeSync  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage import kb_versions  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402


def _edit(folder: Path, n: int) -> None:
    path = folder / "replies.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  welcome:"))
    lines[at] = f'  welcome: "welcome, round {n}"'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def run(rounds: int, url: str) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="kbpub-"))
    folder = work / "knowledge"
    shutil.copytree(c.ROOT / "knowledge", folder)
    intents = c.ROOT / "intents"
    db = Database(Settings(database_url=url, _env_file=None).sqlalchemy_url)  # type: ignore[call-arg]
    here = KnowledgeStore(folder, also=(intents,), cache_dir=work / "cache-a")
    there = KnowledgeStore(folder, also=(intents,), cache_dir=work / "cache-b")
    here.load_initial()
    there.load_initial()
    a = KnowledgeSync(here, db, None, "bench")
    b = KnowledgeSync(there, db, None, "bench")
    reload_s, publish_s, follow_s = [], [], []
    try:
        await a.start(publish_local=True)
        for n in range(rounds):
            started = time.perf_counter()
            load_knowledge(folder, also=(intents,))
            reload_s.append(time.perf_counter() - started)
            _edit(folder, n)
            started = time.perf_counter()
            outcome = await a.publish_folder("bench")
            publish_s.append(time.perf_counter() - started)
            assert outcome.ok and outcome.changed, outcome.problems
            started = time.perf_counter()
            followed = await b.follow(str(outcome.version), outcome.number)
            follow_s.append(time.perf_counter() - started)
            assert followed.ok and there.current.version == outcome.version
        live = await kb_versions.live(db)
        assert live is not None
        files = await kb_versions.files(db, live.number)
        assert files is not None
        archive = snapshots.pack(files)
    finally:
        await db.close()
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(reload_s)
    return {
        "kb.reload_s": base,
        "kb.publish_s": statistics.median(publish_s),
        "kb.publish_ratio": statistics.median(publish_s) / base,
        "kb.follow_s": statistics.median(follow_s),
        "kb.follow_ratio": statistics.median(follow_s) / base,
        "kb.archive_kb": len(archive) / 1024,
        "kb.files_kb": sum(map(len, files.values())) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(c.PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{c.PG_URL}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='kbpub-db-')}/bench.db"
    upgrade(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    try:
        figures = asyncio.run(run(args.rounds, url))
    finally:
        if args.pg:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    database = "postgresql" if args.pg else "sqlite"
    for name, value in figures.items():
        print(f"{name} [{database}] {value:.3f}")


if __name__ == "__main__":
    main()
