"""Published knowledge versions: every process serves the version in the database, whatever
its own disk holds; publish, history, diff, rollback and export from the command line; a
version a process cannot load leaves it on its current one, reported."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.kb import snapshots
from bot.kb.loader import load_knowledge
from bot.settings import Settings
from bot.storage import kb_versions
from bot.storage.db import Database
from tests.helpers import ROOT, ServerThread, free_port, run_bot_with, spawn_bot, wait_until

ADMIN = "test-admin-token-versions"
NEW_HELLO = "สวัสดีครับ ฉบับที่เผยแพร่จากเครื่องที่สอง"


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(ROOT / "knowledge", target)
    return target


def _set_hello(folder: Path, text: str) -> None:
    path = folder / "replies.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  hello:"))
    end = start + 1
    while lines[end].startswith("    - "):
        end += 1
    lines[start:end] = [f'  hello: "{text}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _version(folder: Path) -> str:
    knowledge = load_knowledge(folder, also=(ROOT / "intents",)).knowledge
    assert knowledge is not None
    return knowledge.version


# --- the archive and the per-entry diff -------------------------------------------------


def test_an_archive_is_deterministic_and_round_trips() -> None:
    files = snapshots.read_folders(ROOT / "knowledge", ROOT / "intents")
    packed = snapshots.pack(files)
    assert packed == snapshots.pack(dict(reversed(list(files.items()))))
    assert snapshots.unpack(packed) == files
    assert len(packed) < sum(map(len, files.values())) / 2  # compressed


def test_an_archive_with_a_path_outside_its_folders_is_refused() -> None:
    evil = snapshots.pack({"knowledge/../../etc/x": b"x"})
    with pytest.raises(ValueError, match="unexpected name"):
        snapshots.unpack(evil)


def test_unpacked_files_load_as_the_same_version(tmp_path: Path) -> None:
    files = snapshots.read_folders(ROOT / "knowledge", ROOT / "intents")
    knowledge_dir, intents_dir = snapshots.write_folders(files, tmp_path / "v")
    copy = load_knowledge(knowledge_dir, also=(intents_dir,)).knowledge
    original = load_knowledge(ROOT / "knowledge", also=(ROOT / "intents",)).knowledge
    assert copy is not None and original is not None
    assert copy.version == original.version


def test_diff_names_each_changed_entry() -> None:
    old = snapshots.read_folders(ROOT / "knowledge", ROOT / "intents")
    new = dict(old)
    courses = old["knowledge/courses.yaml"].decode()
    first_id = courses.split("  - id: ", 1)[1].split("\n", 1)[0].strip()
    name_at = courses.index("      th:", courses.index(f"id: {first_id}"))
    line_end = courses.index("\n", name_at)
    new["knowledge/courses.yaml"] = (
        courses[:name_at] + '      th: "ชื่อใหม่"' + courses[line_end:]
    ).encode()
    new["intents/greeting.yaml"] = old["intents/greeting.yaml"].replace(
        "      - สวัสดี\n".encode(), "      - สวัสดี\n      - สวัสดีจ้าาา\n".encode(), 1
    )
    new["knowledge/extra.md"] = b"note"
    del new["intents/clauses.csv"]
    changes = [str(c) for c in snapshots.diff(old, new)]
    assert f"changed: knowledge/courses.yaml items[{first_id}] (name)" in changes
    assert "changed: intents/greeting.yaml intents.greet (examples)" in changes
    assert "added: knowledge/extra.md" in changes
    assert "removed: intents/clauses.csv" in changes
    assert len(changes) == 4


# --- publish, follow, roll back --------------------------------------------------------


def test_the_database_decides_what_every_process_serves(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Embedded: the first start publishes the files; a rollback stays in force across a
    restart; an edit made while the bot was stopped goes live at the next start."""
    folder = _copy(tmp_path, "knowledge")
    settings = make_settings(knowledge_dir=folder, admin_token=ADMIN, kb_poll_seconds=0.3)
    first = _version(folder)
    with ServerThread(settings) as server:
        assert server.services.kb.current.version == first
        _set_hello(folder, NEW_HELLO)
        answer = httpx.post(f"{server.base_url}/admin/reload", headers=_auth(), timeout=90).json()
        assert answer["ok"] and answer["number"] == 2
        assert "changed: knowledge/replies.yaml greeting.hello" in answer["changes"]
        second = answer["version"]
        rolled = run_bot_with(settings, "kb", "rollback", "1", "--note", "greeting was wrong")
        assert rolled.returncode == 0, rolled.stderr
        assert f"version 1 ({first}) is live again" in rolled.stdout
        status = wait_until(
            lambda: (
                (s := httpx.get(f"{server.base_url}/admin/kb", headers=_auth()).json())
                and s["version"] == first
                and s
            ),
            20,
        )
        assert status["number"] == 1 and status["ok"]
    # The files still hold the second version, which is known: the rollback stays.
    with ServerThread(settings) as server:
        assert server.services.kb.current.version == first
    _set_hello(folder, NEW_HELLO + " อีกครั้ง")
    with ServerThread(settings) as server:
        third = server.services.kb.current.version
        assert third not in (first, second)
    history = run_bot_with(settings, "kb", "history")
    lines = [line for line in history.stdout.splitlines() if line.startswith("#")]
    assert [line.split()[0] for line in lines] == ["#3", "#1", "#2", "#1"]
    assert "rollback" in lines[1] and "greeting was wrong" in lines[1]
    assert lines[0].endswith("<- live")


def test_two_serve_processes_with_different_files_serve_the_published_version(
    make_shared_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    one, two = _copy(tmp_path, "one"), _copy(tmp_path, "two")
    _set_hello(two, NEW_HELLO)
    v_one, v_two = _version(one), _version(two)
    assert v_one != v_two
    base: dict[str, Any] = {"admin_token": ADMIN, "kb_poll_seconds": 0.5}
    s_one = make_shared_settings(
        knowledge_dir=one, data_dir=tmp_path / "data1", kb_watch=False, **base
    )
    s_two = make_shared_settings(
        knowledge_dir=two, data_dir=tmp_path / "data2", kb_watch=False, **base
    )
    with _serve(s_one) as url_one:
        assert _served(url_one) == v_one  # nothing was live: its files were published
        with _serve(s_two) as url_two:
            assert _served(url_two) == v_one  # its own files differ; it serves the live one
            published = run_bot_with(s_two, "kb", "publish", "--note", "new greeting")
            assert published.returncode == 0, published.stderr
            assert f"published version 2 ({v_two})" in published.stdout
            assert "changed: knowledge/replies.yaml greeting.hello" in published.stdout
            wait_until(lambda: _served(url_one) == v_two == _served(url_two), 60)

            diff = run_bot_with(s_two, "kb", "diff", "1", "2")
            assert diff.stdout.splitlines() == [
                "changed: knowledge/replies.yaml greeting.hello",
                "1 change(s) from 1 to 2",
            ]
            (two / "courses.yaml").write_text("items: [", encoding="utf-8")
            refused = run_bot_with(s_two, "kb", "publish")
            assert refused.returncode == 1 and "courses.yaml:" in refused.stdout
            assert "nothing was changed" in refused.stderr

            assert run_bot_with(s_one, "kb", "rollback", "1").returncode == 0
            wait_until(lambda: _served(url_one) == v_one == _served(url_two), 60)
            status = run_bot_with(s_one, "kb", "status")
            assert f"live version: #1 ({v_one})" in status.stdout
            assert status.stdout.count(f"version {v_one}: OK") >= 2


@contextmanager
def _serve(settings: Settings) -> Iterator[str]:
    """``bot serve`` as its own OS process; its URL once it answers."""
    port = free_port()
    proc = spawn_bot(settings, "serve", "--port", str(port), stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _served(url), 90, interval=0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _served(url: str) -> str | None:
    try:
        answer = httpx.get(f"{url}/admin/kb", headers=_auth(), timeout=5)
    except httpx.HTTPError:
        return None
    return str(answer.json()["version"]) if answer.status_code == 200 else None


def test_a_version_a_process_cannot_load_leaves_it_serving_and_reported(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = _copy(tmp_path, "knowledge")
    settings = make_settings(knowledge_dir=folder, admin_token=ADMIN, kb_poll_seconds=0.3)
    with ServerThread(settings) as server:
        good = server.services.kb.current.version
        files = snapshots.read_folders(folder, ROOT / "intents")
        files["knowledge/courses.yaml"] = b"items: ["
        # Stored behind the validator's back, as a newer process with other rules might.
        asyncio.run(_store(settings, files))
        status = wait_until(
            lambda: (
                (s := httpx.get(f"{server.base_url}/admin/kb", headers=_auth()).json())
                and s["problems"]
                and s
            ),
            20,
        )
        assert status["version"] == good and not status["ok"]
        assert any("courses.yaml" in p for p in status["problems"])
        assert server.services.kb.current.version == good


async def _store(settings: Settings, files: dict[str, bytes]) -> None:
    db = Database(settings.sqlalchemy_url)
    try:
        await kb_versions.publish(db, "broken000000000", files, {}, "test")
    finally:
        await db.close()


def test_export_writes_a_version_back_as_files(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = _copy(tmp_path, "knowledge")
    settings = make_settings(knowledge_dir=folder)
    assert run_bot_with(settings, "kb", "publish").returncode == 0
    out = tmp_path / "exported"
    done = run_bot_with(settings, "kb", "export", "live", str(out))
    assert done.returncode == 0, done.stderr
    assert _version(out / "knowledge") == _version(folder)
    again = run_bot_with(settings, "kb", "export", "live", str(out))
    assert again.returncode == 1 and "not empty" in again.stderr
