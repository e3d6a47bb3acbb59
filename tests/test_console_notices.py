"""The console's notices page: history, the dry-run preview, and "send now" after a
confirmation, only for operators allowed to send (admin), against the fake LINE API."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import insert, select

from bot.content.replies import Replies
from bot.kb.loader import Knowledge, load_knowledge
from bot.kb.queries import availability
from bot.settings import Settings
from bot.storage import accounts
from bot.storage.db import NoticeCourse, NoticeRun, Subscription, User
from tests.fakeline import FakeLine
from tests.helpers import ROOT, ServerThread, bot_database, user_id
from tests.test_console_handoffs import field, on_db, operator, with_pages

_LOADED = load_knowledge(ROOT / "knowledge").knowledge
assert _LOADED is not None
KB: Knowledge = _LOADED
#: A course that can still be announced: the only new one in these tests.
COURSE = next(c for c in KB.courses if availability(c.schedule) != "closed")


@pytest.fixture
def console(make_settings: Callable[..., Settings]) -> Iterator[ServerThread]:
    """The bot with the console, no quiet hours, and three subscribers to one new course."""
    server = ServerThread(make_settings(notify_quiet_hours=""))
    with_pages(server.app)
    with server:
        old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        users = [user_id(f"notice-{i}") for i in range(3)]
        with bot_database(server.settings) as engine, engine.begin() as conn:
            conn.execute(
                insert(NoticeCourse),
                [
                    {"course_id": c.id, "first_seen_at": old, "done_at": old}
                    for c in KB.courses
                    if c.id != COURSE.id
                ],
            )
            conn.execute(insert(User), [{"line_user_id": u, "following": True} for u in users])
            conn.execute(
                insert(Subscription),
                [
                    {
                        "line_user_id": u,
                        "topics": [COURSE.topics[0]],
                        "provinces": [],
                        "stage": None,
                        "active": True,
                    }
                    for u in users
                ],
            )
        yield server


def sent_anything(fake: FakeLine) -> bool:
    return bool(fake.calls("multicast", status=None) or fake.calls("push", status=None))


def test_viewers_see_history_and_preview_but_cannot_send(
    console: ServerThread, fake_line: FakeLine, replies: Replies
) -> None:
    viewer = operator(console, "watcher", "viewer")
    shown = viewer.get("/console/notices")
    assert shown.status_code == 200
    row = re.search(rf'<tr data-course="{COURSE.id}">(.*?)</tr>', shown.text, re.S)
    assert row is not None and 'data-users="3"' in row.group(1)
    assert COURSE.name.th in row.group(1)
    assert 'id="preview-recipients">3<' in shown.text
    intro = replies.text("notices.intro_one", name=COURSE.name.th)
    assert 'id="preview-sample"' in shown.text and html.escape(intro) in shown.text
    assert 'id="send-now"' not in shown.text
    assert "ยังไม่เคยส่งประกาศ" in shown.text

    assert viewer.get("/console/notices/send").status_code == 403
    token = field(shown.text, "csrf_token")
    posted = viewer.post("/console/notices/send", data={"csrf_token": token, "confirm": "yes"})
    assert posted.status_code == 403
    editor = operator(console, "writer", "editor")
    assert editor.get("/console/notices/send").status_code == 403
    assert not sent_anything(fake_line)


def test_send_now_needs_the_confirmation_of_what_was_shown(
    console: ServerThread, fake_line: FakeLine
) -> None:
    admin = operator(console, "boss", "admin")
    home = admin.get("/console/notices")
    assert 'id="send-now"' in home.text
    confirm = admin.get("/console/notices/send")
    assert confirm.status_code == 200 and "ยืนยันการส่ง" in confirm.text
    assert 'id="preview-recipients">3<' in confirm.text
    form = {
        "csrf_token": field(confirm.text, "csrf_token"),
        "confirm": field(confirm.text, "confirm"),
        "expect": field(confirm.text, "expect"),
    }
    assert not sent_anything(fake_line)  # previews send nothing

    no_token = admin.post("/console/notices/send", data={**form, "csrf_token": ""})
    assert no_token.status_code == 403
    unconfirmed = admin.post("/console/notices/send", data={**form, "confirm": ""})
    assert unconfirmed.status_code == 400 and 'id="confirm-send"' in unconfirmed.text
    stale = admin.post("/console/notices/send", data={**form, "expect": "0" * 16})
    assert stale.status_code == 409
    assert not sent_anything(fake_line)

    sent = admin.post("/console/notices/send", data=form)
    assert sent.status_code == 303
    ran = re.search(r"ran=(\d+)", sent.headers["location"])
    assert ran is not None
    run_id = int(ran.group(1))
    users = {user_id(f"notice-{i}") for i in range(3)}
    assert {to for to, _ in fake_line.delivered()} == users

    after = admin.get(sent.headers["location"])
    row = re.search(rf'<tr data-run="{run_id}"[^>]*>(.*?)</tr>', after.text, re.S)
    assert row is not None and 'data-sent="3"' in row.group(1) and "คอนโซล" in row.group(1)
    assert "ไม่มีคอร์สใหม่ที่จะประกาศ" in after.text
    with bot_database(console.settings) as engine, engine.connect() as conn:
        assert conn.scalar(select(NoticeRun.trigger).where(NoticeRun.id == run_id)) == "console"
    audit = on_db(console.settings, lambda db: accounts.list_audit(db, 20))
    (entry,) = [a for a in audit if a.action == "notice.send"]
    assert entry.operator == "boss" and entry.target == f"run {run_id}"
    assert entry.after is not None and entry.after["sent"] == 3

    # The same confirmation again: what it showed is gone, so nothing more is sent.
    def sends() -> int:
        return len(fake_line.calls("multicast", status=None) + fake_line.calls("push", status=None))

    before = sends()
    assert admin.post("/console/notices/send", data=form).status_code == 409
    assert sends() == before
