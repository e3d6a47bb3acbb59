"""The console's hand-off inbox, against the running bot and the fake LINE API.

A user asks for staff and writes while the bot is quiet; staff read it in the console,
answer (a push that reaches LINE exactly once, however often the form is sent), and end
the hand-off, after which the bot answers the user again. What was said is deleted after
the retention and by the user's PDPA erasure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, update

from bot.console.pages import handoffs as handoffs_page
from bot.console.pages import notices as notices_page
from bot.content.replies import Replies
from bot.pipeline.process import Pipeline
from bot.services import Services
from bot.settings import Settings
from bot.storage import accounts, handoff, handoff_messages
from bot.storage.db import Database, Handoff, utcnow
from bot.storage.handoff_messages import HandoffMessage
from bot.storage.privacy import export_user_data
from tests.conversation import Chat, texts
from tests.fakeline import FakeLine
from tests.helpers import ServerThread, WorkerThread, bot_database, user_id

PASSWORD = "correct horse battery staple"
ASK_STAFF = "ขอคุยกับเจ้าหน้าที่"


# -- helpers -------------------------------------------------------------------------------


def with_pages(app: FastAPI) -> None:
    """The inbox's routes on ``app`` (until ``bot.console.web`` lists the pages itself)."""
    paths = {getattr(r, "path", None) for r in app.routes}
    for path, router in (
        ("/console/handoffs", handoffs_page.router),
        ("/console/notices", notices_page.router),
    ):
        if path not in paths:
            app.include_router(router)


@pytest.fixture
def console(make_settings: Callable[..., Settings]) -> Iterator[ServerThread]:
    """The bot (embedded: SQLite, its own worker) with the console."""
    server = ServerThread(make_settings())
    with_pages(server.app)
    with server:
        yield server


def on_db(settings: Settings, work: Callable[[Database], Any]) -> Any:
    """Run ``await work(db)`` on a database handle of this test's own."""

    async def go() -> Any:
        db = Database(settings.sqlalchemy_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


def operator(server: ServerThread, name: str, role: str) -> httpx.Client:
    """A new operator with ``role``, signed in: a client that keeps the session cookie."""
    on_db(server.settings, lambda db: accounts.add_operator(db, name, role, PASSWORD, by="test"))
    client = httpx.Client(base_url=server.base_url, timeout=30)
    signed = client.post("/console/login", data={"name": name, "password": PASSWORD})
    assert signed.status_code == 303, signed.text
    return client


def field(html: str, name: str) -> str:
    """The value of the first hidden field ``name`` in a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no field {name!r} in the page"
    return found.group(1)


def messages(server: ServerThread, user: str) -> list[Any]:
    """The kept rows of ``user``, oldest first."""
    with bot_database(server.settings) as engine, engine.connect() as conn:
        rows = conn.execute(
            select(HandoffMessage)
            .where(HandoffMessage.line_user_id == user)
            .order_by(HandoffMessage.id)
        )
        return list(rows.all())


def hand_off(c: Chat, *said: str) -> None:
    """``c`` asks for staff, then writes ``said`` (the bot answers none of it)."""
    assert texts(c.say(ASK_STAFF))
    for text in said:
        assert c.say(text) == []


def reply_form(client: httpx.Client, user: str) -> dict[str, str]:
    page = client.get(f"/console/handoffs/{user}")
    assert page.status_code == 200, page.text
    return {
        "csrf_token": field(page.text, "csrf_token"),
        "reply_key": field(page.text, "reply_key"),
    }


def pushes_to(fake: FakeLine, user: str) -> list[Any]:
    return [r for r in fake.calls("push") if r.body["to"] == user]


def audit_actions(server: ServerThread) -> list[tuple[str, str, Any]]:
    rows = on_db(server.settings, lambda db: accounts.list_audit(db, 100))
    return [(r.operator, r.action, r.after) for r in rows]


@pytest.fixture
def chat_as(console: ServerThread, fake_line: FakeLine) -> Iterator[Callable[[str], Chat]]:
    opened: list[Chat] = []

    def open_chat(name: str) -> Chat:
        c = Chat(console, fake_line, user_id(name))
        opened.append(c)
        return c

    yield open_chat
    for c in opened:
        c.close()


# -- the inbox and replies -----------------------------------------------------------------


def test_staff_read_the_waiting_user_and_answer_once(
    console: ServerThread,
    chat_as: Callable[[str], Chat],
    fake_line: FakeLine,
    replies: Replies,
) -> None:
    c = chat_as("waiting-user")
    hand_off(c, "สวัสดีค่ะ อยากสอบถามเรื่องส่งออก", "ติดต่อกลับเบอร์นี้ได้ไหมคะ")
    c.send_media("sticker")
    staff = operator(console, "somsri", "staff")

    inbox = staff.get("/console/handoffs")
    assert inbox.status_code == 200
    row = re.search(rf'<tr data-user="{c.user}">(.*?)</tr>', inbox.text, re.S)
    assert row is not None, "the waiting user is not listed"
    assert 'data-messages="3"' in row.group(1)

    page = staff.get(f"/console/handoffs/{c.user}")
    assert "สวัสดีค่ะ อยากสอบถามเรื่องส่งออก" in page.text
    assert "ติดต่อกลับเบอร์นี้ได้ไหมคะ" in page.text
    assert 'data-kind="sticker"' in page.text

    form = reply_form(staff, c.user)
    answer = "เจ้าหน้าที่รับเรื่องแล้วค่ะ <จะโทรกลับภายในวันนี้>"
    first = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": answer})
    assert first.status_code == 303 and first.headers["location"].endswith("notice=sent")
    again = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": answer})
    assert again.status_code == 303 and again.headers["location"].endswith("notice=already")

    (push,) = pushes_to(fake_line, c.user)
    assert push.body["messages"] == [
        {"type": "text", "text": replies.text("staff.reply", text=answer)}
    ]
    assert push.headers["x-line-retry-key"] == form["reply_key"]
    assert len(fake_line.calls("push", status=None)) == 1  # the second submit never called

    shown = staff.get(f"/console/handoffs/{c.user}").text
    assert "เจ้าหน้าที่รับเรื่องแล้วค่ะ &lt;จะโทรกลับภายในวันนี้&gt;" in shown  # escaped
    kept = messages(console, c.user)
    assert [(m.direction, m.kind) for m in kept] == [
        ("user", "text"),
        ("user", "text"),
        ("user", "sticker"),
        ("staff", "text"),
    ]
    assert kept[2].text is None
    assert (kept[3].text, kept[3].staff, kept[3].status) == (answer, "somsri", "sent")
    assert ("somsri", "handoff.reply", {"replied": True}) in audit_actions(console)
    fragment = staff.get(f"/console/handoffs/{c.user}/messages")  # what htmx refreshes
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "ติดต่อกลับเบอร์นี้ได้ไหมคะ" in fragment.text


def test_the_same_form_sent_twice_at_once_goes_once(
    console: ServerThread, chat_as: Callable[[str], Chat], fake_line: FakeLine
) -> None:
    c = chat_as("double-user")
    hand_off(c, "รอคำตอบค่ะ")
    staff = operator(console, "chai", "staff")
    form = {**reply_form(staff, c.user), "text": "ตอบครั้งเดียวค่ะ"}
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda _: staff.post(f"/console/handoffs/{c.user}/reply", data=form), range(2))
        )
    assert sorted(a.headers["location"].rsplit("=", 1)[1] for a in answers) == ["already", "sent"]
    assert len(pushes_to(fake_line, c.user)) == 1
    assert [m.text for m in messages(console, c.user) if m.direction == "staff"] == [form["text"]]
    assert [a for a in audit_actions(console) if a[1] == "handoff.reply"] == [
        ("chai", "handoff.reply", {"replied": True})
    ]


def test_a_reply_that_may_not_have_arrived_keeps_its_text_and_key(
    console: ServerThread, chat_as: Callable[[str], Chat], fake_line: FakeLine
) -> None:
    c = chat_as("unlucky-user")
    hand_off(c, "ฮัลโหล")
    staff = operator(console, "kanya", "staff")
    form = reply_form(staff, c.user)
    text = "ขอโทษที่ให้รอค่ะ"

    # LINE is down for every attempt: the page says so and keeps the text and the key.
    fake_line.fail_next("push", 500, times=console.settings.line_max_attempts)
    down = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": text})
    assert down.status_code == 503
    assert 'id="reply-error"' in down.text and "ติดต่อ LINE ไม่สำเร็จ" in down.text
    assert f">{text}</textarea>" in down.text
    assert field(down.text, "reply_key") == form["reply_key"]
    assert pushes_to(fake_line, c.user) == []

    sent = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": text})
    assert sent.status_code == 303
    assert len(pushes_to(fake_line, c.user)) == 1

    # Refused for good (a 4xx): nothing went; a new key for the next try, the text kept.
    form = reply_form(staff, c.user)
    fake_line.fail_next("push", 400)
    refused = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": "อีกเรื่องค่ะ"})
    assert refused.status_code == 502 and "LINE ไม่รับข้อความนี้" in refused.text
    assert ">อีกเรื่องค่ะ</textarea>" in refused.text
    assert field(refused.text, "reply_key") != form["reply_key"]
    assert len(pushes_to(fake_line, c.user)) == 1
    assert [m.status for m in messages(console, c.user) if m.direction == "staff"] == [
        "sent",
        "failed",
    ]

    empty = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": "  "})
    assert empty.status_code == 400 and "กรุณาพิมพ์ข้อความ" in empty.text


def test_quota_used_up_is_said_plainly(
    console: ServerThread, chat_as: Callable[[str], Chat], fake_line: FakeLine
) -> None:
    c = chat_as("quota-user")
    hand_off(c)
    staff = operator(console, "nid", "staff")
    form = reply_form(staff, c.user)
    fake_line.quota_limit = 0
    try:
        full = staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": "สวัสดีค่ะ"})
    finally:
        fake_line.quota_limit = None
    assert full.status_code == 503 and "โควตาข้อความ" in full.text
    assert ">สวัสดีค่ะ</textarea>" in full.text


def test_roles_sessions_and_csrf_are_enforced(
    console: ServerThread, chat_as: Callable[[str], Chat], fake_line: FakeLine
) -> None:
    c = chat_as("guarded-user")
    hand_off(c, "ข้อความลับ")
    base = console.base_url

    anonymous = httpx.get(f"{base}/console/handoffs", headers={"Accept": "text/html"})
    assert anonymous.status_code == 303 and "/console/login" in anonymous.headers["location"]
    viewer = operator(console, "viewonly", "viewer")
    assert viewer.get("/console/handoffs").status_code == 403
    assert viewer.get(f"/console/handoffs/{c.user}").status_code == 403
    assert "ข้อความลับ" not in viewer.get(f"/console/handoffs/{c.user}").text

    staff = operator(console, "malee", "staff")
    form = reply_form(staff, c.user)
    seen = viewer.get("/console/notices")
    assert seen.status_code == 200 and 'href="/console/handoffs"' not in seen.text  # no menu
    viewer_form = {**form, "csrf_token": field(seen.text, "csrf_token")}
    assert (
        viewer.post(
            f"/console/handoffs/{c.user}/reply", data={**viewer_form, "text": "x"}
        ).status_code
        == 403
    )
    no_token = {"reply_key": form["reply_key"], "text": "ไม่มีโทเคน"}
    assert staff.post(f"/console/handoffs/{c.user}/reply", data=no_token).status_code == 403
    wrong = {**no_token, "csrf_token": "0" * 64}
    assert staff.post(f"/console/handoffs/{c.user}/reply", data=wrong).status_code == 403
    assert staff.post(f"/console/handoffs/{c.user}/end", data={}).status_code == 403
    assert fake_line.calls("push", status=None) == []
    assert any(m.direction == "user" for m in messages(console, c.user))

    admin = operator(console, "boss", "admin")
    assert admin.get("/console/handoffs").status_code == 200


def test_ending_the_hand_off_lets_the_bot_answer_again(
    console: ServerThread, chat_as: Callable[[str], Chat], replies: Replies
) -> None:
    c = chat_as("done-user")
    hand_off(c, "ขอบคุณค่ะ")
    staff = operator(console, "preeya", "staff")

    confirm = staff.get(f"/console/handoffs/{c.user}/end")
    assert confirm.status_code == 200 and "ยืนยันปิดการส่งต่อ" in confirm.text
    assert c.say("ยังอยู่ไหมคะ") == []  # asking to confirm ends nothing
    ended = staff.post(
        f"/console/handoffs/{c.user}/end", data={"csrf_token": field(confirm.text, "csrf_token")}
    )
    assert ended.status_code == 303 and ended.headers["location"].endswith("notice=ended")

    assert texts(c.say("สวัสดีครับ"))[0] in replies.texts["greeting.hello"]
    assert c.user not in staff.get("/console/handoffs").text
    page = staff.get(f"/console/handoffs/{c.user}")
    assert 'id="reply"' not in page.text  # no reply form once it ended
    assert ("preeya", "handoff.end", {"open": False}) in audit_actions(console)
    again = staff.post(
        f"/console/handoffs/{c.user}/end", data={"csrf_token": field(confirm.text, "csrf_token")}
    )
    assert again.headers["location"].endswith("notice=not_open")


# -- retention and erasure -----------------------------------------------------------------


def age(server: ServerThread, user: str, seconds: float) -> None:
    """Move ``user``'s kept messages and open hand-off ``seconds`` into the past."""
    rows = messages(server, user)
    with bot_database(server.settings) as engine, engine.begin() as conn:
        for row in rows:
            conn.execute(
                update(HandoffMessage)
                .where(HandoffMessage.id == row.id)
                .values(at=row.at - dt.timedelta(seconds=seconds))
            )
        started = conn.scalar(select(Handoff.started_at).where(Handoff.line_user_id == user))
        if started is not None:
            conn.execute(
                update(Handoff)
                .where(Handoff.line_user_id == user)
                .values(started_at=started - dt.timedelta(seconds=seconds))
            )


def housekeeping(settings: Settings) -> None:
    """The worker's hourly prune (``Pipeline.prune``), once."""

    async def prune(db: Database) -> None:
        services = cast(Services, SimpleNamespace(settings=settings, db=db))
        await Pipeline(services, cast(Any, None)).prune()

    on_db(settings, prune)


def test_messages_go_after_the_retention_once_the_hand_off_ended(
    console: ServerThread, chat_as: Callable[[str], Chat]
) -> None:
    c = chat_as("kept-user")
    keep = handoff_messages.keep_seconds(console.settings)
    # Something said in an earlier hand-off, longer ago than the retention.
    with bot_database(console.settings) as engine, engine.begin() as conn:
        conn.execute(
            insert(HandoffMessage).values(
                line_user_id=c.user,
                at=utcnow() - dt.timedelta(seconds=keep + 3600),
                direction="user",
                kind="text",
                text="เรื่องเก่า",
            )
        )
    hand_off(c, "เรื่องใหม่")
    housekeeping(console.settings)
    assert [m.text for m in messages(console, c.user)] == ["เรื่องใหม่"]

    # While the hand-off is open, even old messages of it stay.
    age(console, c.user, keep + 60)
    housekeeping(console.settings)
    assert [m.text for m in messages(console, c.user)] == ["เรื่องใหม่"]

    staff = operator(console, "udom", "staff")
    confirm = staff.get(f"/console/handoffs/{c.user}/end")
    staff.post(
        f"/console/handoffs/{c.user}/end", data={"csrf_token": field(confirm.text, "csrf_token")}
    )
    assert messages(console, c.user) == []  # ended, and older than the retention

    hand_off(c, "ครั้งที่สาม")
    assert on_db(console.settings, lambda db: handoff.end(db, c.user))  # as `bot handoff end`
    housekeeping(console.settings)
    assert [m.text for m in messages(console, c.user)] == ["ครั้งที่สาม"]  # within it
    age(console, c.user, keep + 60)
    housekeeping(console.settings)
    assert messages(console, c.user) == []


def test_a_users_erasure_takes_their_hand_off_messages(
    console: ServerThread, chat_as: Callable[[str], Chat], replies: Replies
) -> None:
    c = chat_as("erased-user")
    other = chat_as("other-user")
    hand_off(c, "ข้อมูลส่วนตัวของฉัน")
    hand_off(other, "ของคนอื่น")
    staff = operator(console, "arun", "staff")
    form = reply_form(staff, c.user)
    staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": "รับทราบค่ะ"})

    exported = on_db(console.settings, lambda db: export_user_data(db, c.user))
    assert [r["text"] for r in exported["handoff_messages"]] == ["ข้อมูลส่วนตัวของฉัน", "รับทราบค่ะ"]

    confirm = staff.get(f"/console/handoffs/{c.user}/end")
    staff.post(
        f"/console/handoffs/{c.user}/end", data={"csrf_token": field(confirm.text, "csrf_token")}
    )
    answer = c.say("ลบข้อมูลของฉัน")
    label = replies.text("privacy.button_yes")
    c.press(answer, label)
    assert messages(console, c.user) == []
    assert [m.text for m in messages(console, other.user)] == ["ของคนอื่น"]


# -- the shared deployment -----------------------------------------------------------------


def test_shared_deployment_keeps_messages_and_replies_once(
    make_shared_settings: Callable[..., Settings], fake_line: FakeLine
) -> None:
    """PostgreSQL and Redis, a separate worker keeping the messages: one short run."""
    settings = make_shared_settings()
    server = ServerThread(settings)
    with_pages(server.app)
    with server, WorkerThread(settings):
        c = Chat(server, fake_line, user_id("shared-user"))
        try:
            hand_off(c, "ทางนี้ค่ะ")
            staff = operator(server, "shared", "staff")
            assert 'data-messages="1"' in staff.get("/console/handoffs").text
            form = reply_form(staff, c.user)
            for _ in range(2):
                staff.post(f"/console/handoffs/{c.user}/reply", data={**form, "text": "ได้ค่ะ"})
            assert len(pushes_to(fake_line, c.user)) == 1
        finally:
            c.close()
