"""Reloading knowledge without a restart: a broken edit never replaces the live snapshot,
a good one reaches every process (through Redis), and the development watcher picks it up."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.settings import Settings
from tests.conftest import SECRET
from tests.fakeline import FakeLine
from tests.helpers import (
    ROOT,
    ServerThread,
    WorkerThread,
    envelope,
    post_signed,
    run_bot_with,
    text_event,
    wait_until,
)

ADMIN = "test-admin-token-4f1e9c"
#: A reload retrains the intent engine (about 100 classes) before it answers.
RELOAD_TIMEOUT = 90.0
NEW_HELLO = "สวัสดีครับ นี่คือข้อความทักทายฉบับแก้ไขใหม่"


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", target)
    return target


def _set_hello(folder: Path, text: str) -> None:
    """An operator edit: the greeting becomes one new sentence."""
    path = folder / "replies.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("  hello:")
    end = start + 1
    while lines[end].startswith("    - "):
        end += 1
    lines[start:end] = [f'  hello: "{text}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _break_courses(folder: Path) -> None:
    path = folder / "courses.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("format: online", "format: internet", 1),
        encoding="utf-8",
    )


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def _greeting(server: ServerThread, fake: FakeLine, n: int) -> str:
    post_signed(server.base_url, SECRET, envelope(text_event("สวัสดีครับ")))
    calls = fake.wait_for("reply", n)
    return str(calls[n - 1].body["messages"][0]["text"])


def test_admin_endpoints_need_the_token(
    make_settings: Callable[..., Settings], kb_copy: Path
) -> None:
    with ServerThread(make_settings(knowledge_dir=kb_copy, admin_token=ADMIN)) as server:
        assert httpx.get(f"{server.base_url}/admin/kb").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{server.base_url}/admin/reload", headers=wrong).status_code == 401
    with ServerThread(make_settings(knowledge_dir=kb_copy)) as server:
        assert httpx.get(f"{server.base_url}/admin/kb", headers=_auth()).status_code == 403


def test_broken_edit_keeps_the_old_snapshot_and_a_good_one_goes_live(
    make_settings: Callable[..., Settings], kb_copy: Path, fake_line: FakeLine
) -> None:
    with ServerThread(make_settings(knowledge_dir=kb_copy, admin_token=ADMIN)) as server:
        before = httpx.get(f"{server.base_url}/admin/kb", headers=_auth()).json()
        assert before["ok"] and before["counts"]["courses"] >= 10

        _set_hello(kb_copy, NEW_HELLO)
        _break_courses(kb_copy)
        refused = httpx.post(
            f"{server.base_url}/admin/reload", headers=_auth(), timeout=RELOAD_TIMEOUT
        )
        assert refused.status_code == 422
        assert any(
            "courses.yaml:" in p and "'internet' is not allowed" in p
            for p in refused.json()["problems"]
        )
        status = httpx.get(f"{server.base_url}/admin/kb", headers=_auth()).json()
        assert status["version"] == before["version"] and not status["ok"]
        assert status["problems"] == refused.json()["problems"]
        assert _greeting(server, fake_line, 1) != NEW_HELLO  # users still get the last good version

        shutil.copy(ROOT / "knowledge" / "courses.yaml", kb_copy / "courses.yaml")
        accepted = httpx.post(
            f"{server.base_url}/admin/reload", headers=_auth(), timeout=RELOAD_TIMEOUT
        )
        assert accepted.status_code == 200 and accepted.json()["changed"]
        assert _greeting(server, fake_line, 2) == NEW_HELLO
        after = httpx.get(f"{server.base_url}/admin/kb", headers=_auth()).json()
        assert after["ok"] and after["problems"] == [] and after["version"] != before["version"]


def test_reload_reaches_every_process_through_redis(
    make_shared_settings: Callable[..., Settings], kb_copy: Path, fake_line: FakeLine
) -> None:
    settings = make_shared_settings(knowledge_dir=kb_copy, admin_token=ADMIN, kb_poll_seconds=0.5)
    with ServerThread(settings) as web, WorkerThread(settings) as worker:
        assert worker.services is not None
        old = worker.services.kb.current.version
        _set_hello(kb_copy, NEW_HELLO)
        cli = run_bot_with(settings, "kb", "reload", "--wait", "1.5")
        assert cli.returncode == 0, cli.stderr
        new = cli.stdout.split("published version ")[1].split("(")[1].split(")")[0]
        assert new != old
        wait_until(lambda: worker.services.kb.current.version == new, 10)  # type: ignore[union-attr]
        wait_until(lambda: web.services.kb.current.version == new, 10)
        # The worker process answers users, so the new text must come from it.
        assert _greeting(web, fake_line, 1) == NEW_HELLO

        # Each process reports its version right after it reloads; the report may trail the
        # switch itself by a moment, so wait for it rather than read it once.
        def all_report_new() -> list[dict[str, object]] | None:
            procs: list[dict[str, object]] = httpx.get(
                f"{web.base_url}/admin/kb", headers=_auth()
            ).json()["processes"]
            return procs if {p["version"] for p in procs} == {new} else None

        # Web and worker run as threads of this one test process: one report.
        assert wait_until(all_report_new, 10)


def test_broken_files_are_refused_by_cli_reload_and_nothing_is_announced(
    make_shared_settings: Callable[..., Settings], kb_copy: Path
) -> None:
    settings = make_shared_settings(knowledge_dir=kb_copy)
    _break_courses(kb_copy)
    cli = run_bot_with(settings, "kb", "reload")
    assert cli.returncode == 1
    assert "courses.yaml:" in cli.stdout and "'internet' is not allowed" in cli.stdout
    status = run_bot_with(settings, "kb", "status")
    assert "live version: none published yet" in status.stdout
    assert status.returncode == 1


def test_development_watcher_reloads_changed_files(
    make_settings: Callable[..., Settings], kb_copy: Path, fake_line: FakeLine
) -> None:
    with ServerThread(make_settings(knowledge_dir=kb_copy, kb_watch=True)) as server:
        old = server.services.kb.current.version
        time.sleep(1.1)
        _set_hello(kb_copy, NEW_HELLO)
        wait_until(lambda: server.services.kb.current.version != old, 10)
        assert _greeting(server, fake_line, 1) == NEW_HELLO
        _break_courses(kb_copy)
        wait_until(lambda: server.services.kb.problems, 10)
        assert _greeting(server, fake_line, 2) == NEW_HELLO  # still the last good version


def test_a_new_topic_synonym_reaches_the_intent_engine_on_reload(
    make_settings: Callable[..., Settings], kb_copy: Path
) -> None:
    word = "ขายของติ่งฟู"  # a made-up trade word no engine could know beforehand
    with ServerThread(make_settings(knowledge_dir=kb_copy, admin_token=ADMIN)) as server:
        before = server.services.nlu.parse(f"อยากเรียน{word}ครับ")
        assert "online_selling" not in {e.value for e in before.entities_of("topic")}
        topics = kb_copy / "topics.yaml"
        text = topics.read_text(encoding="utf-8")
        topics.write_text(
            text.replace("      - ขายของออนไลน์\n", f"      - ขายของออนไลน์\n      - {word}\n", 1),
            encoding="utf-8",
        )
        assert (
            httpx.post(
                f"{server.base_url}/admin/reload", headers=_auth(), timeout=RELOAD_TIMEOUT
            ).status_code
            == 200
        )
        after = wait_until(
            lambda: (
                (p := server.services.nlu.parse(f"อยากเรียน{word}ครับ"))
                and "online_selling" in {e.value for e in p.entities_of("topic")}
                and p
            ),
            10,
        )
        assert after.intent == "find_course"


def test_new_intent_phrases_are_learnt_on_reload(
    make_settings: Callable[..., Settings], kb_copy: Path, tmp_path: Path
) -> None:
    intents = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", intents)
    phrase = "ขอพิกัดบ้านคอมพิวเตอร์ชุมชนหน่อย"
    settings = make_settings(knowledge_dir=kb_copy, intents_dir=intents, admin_token=ADMIN)
    with ServerThread(settings) as server:
        version = server.services.kb.current.version
        path = intents / "centres.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("    examples:\n", f"    examples:\n      - {phrase}\n", 1),
            encoding="utf-8",
        )
        answer = httpx.post(
            f"{server.base_url}/admin/reload", headers=_auth(), timeout=RELOAD_TIMEOUT
        ).json()
        assert answer["changed"] and answer["version"] != version  # intents count in the version
        wait_until(lambda: server.services.nlu.parse(phrase).intent == "find_centre", 20)
