"""Tests of the fake LINE API itself: it must accept what LINE accepts (proved with the
real line-bot-sdk v3 client) and flag what LINE would reject, since the rest of the
suite trusts it."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    FlexContainer,
    FlexMessage,
    MessageAction,
    MessagingApi,
    MulticastRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)

from . import FakeLine, Recorded
from .validate import (
    SPEC_PATH,
    ComponentSchemas,
    SpecError,
    format_path,
    load_validator,
    utf16_len,
)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
SPEC_SHA256 = "0227978ce1b3133e20da034fc33a9241000619ae4fea2fda7b61983abf79577a"

U1 = "U" + "1" * 32
U2 = "U" + "2" * 32
U3 = "U" + "3" * 32
GROUP = "C" + "a" * 32
AUTH = {"Authorization": "Bearer test-token"}


def key() -> str:
    """A fresh retry key."""
    return str(uuid.uuid4())


def text(s: str = "สวัสดีครับ") -> dict[str, Any]:
    return {"type": "text", "text": s}


def bubble(n_texts: int = 1, filler: str = "") -> dict[str, Any]:
    """A valid flex bubble; ``filler`` pads it to reach size limits."""
    return {
        "type": "bubble",
        "hero": {"type": "image", "url": "https://example.com/hero.png", "size": "full"},
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {"type": "text", "text": f"หลักสูตรที่ {i} {filler}", "wrap": True}
                for i in range(n_texts)
            ],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "action": {
                        "type": "postback",
                        "label": "สมัคร",
                        "data": "course=1",
                        "displayText": "สมัครหลักสูตร",
                    },
                }
            ],
        },
    }


def flex(contents: dict[str, Any], alt: str = "ข้อมูลหลักสูตร") -> dict[str, Any]:
    return {"type": "flex", "altText": alt, "contents": contents}


def button_bubble(action: dict[str, Any], part: str = "body") -> dict[str, Any]:
    """A bubble whose ``part`` (body or footer) is one button with ``action``."""
    box = {"type": "box", "layout": "vertical", "contents": [{"type": "button", "action": action}]}
    return {"type": "bubble", part: box}


@pytest.fixture
def fake() -> Iterator[FakeLine]:
    with FakeLine() as server:
        yield server


@pytest.fixture
def client(fake: FakeLine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers=AUTH, timeout=5) as c:
        yield c


@pytest.fixture
def api(fake: FakeLine) -> Iterator[MessagingApi]:
    config = Configuration(host=fake.base_url, access_token="test-token")
    with ApiClient(config) as api_client:
        yield MessagingApi(api_client)


def push(
    client: httpx.Client, body: dict[str, Any], retry_key: str | None = None
) -> httpx.Response:
    return client.post(
        "/v2/bot/message/push", json=body, headers={"X-Line-Retry-Key": retry_key or key()}
    )


# ------------------------------------------------------------------ the vendored spec
def test_spec_is_unmodified_copy() -> None:
    assert hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest() == SPEC_SHA256
    assert SPEC_PATH.parent == HERE
    assert (HERE / "LICENSE").is_file() and (HERE / "SOURCE.md").is_file()


# ------------------------------------------------------------------ SDK requests pass
def test_sdk_reply_with_quick_reply_is_accepted(fake: FakeLine, api: MessagingApi) -> None:
    message = TextMessage(
        text="เลือกหัวข้อที่สนใจ",
        quick_reply=QuickReply(
            items=[
                QuickReplyItem(action=MessageAction(label="หลักสูตร", text="หลักสูตร")),
                QuickReplyItem(
                    action=PostbackAction(
                        label="ศูนย์ใกล้ฉัน", data="action=centres", display_text="ศูนย์ใกล้ฉัน"
                    )
                ),
            ]
        ),
    )
    resp = api.reply_message(
        ReplyMessageRequest(reply_token="token-1", messages=[message, TextMessage(text="2")])
    )
    assert len(resp.sent_messages) == 2
    assert fake.errors == []
    (rec,) = fake.calls("reply")
    assert isinstance(rec, Recorded)
    assert rec.headers["authorization"] == "Bearer test-token"
    assert rec.body["messages"][0]["quickReply"]["items"][1]["action"]["type"] == "postback"
    assert [r for r, _ in fake.delivered()] == ["token-1", "token-1"]
    assert fake.delivered()[0][1]["text"] == "เลือกหัวข้อที่สนใจ"


def test_sdk_push_flex_carousel_and_retry_key_conflict(fake: FakeLine, api: MessagingApi) -> None:
    carousel = FlexContainer.from_dict(
        {"type": "carousel", "contents": [bubble(3) for _ in range(12)]}
    )
    request = PushMessageRequest(
        to=U1, messages=[FlexMessage(alt_text="หลักสูตร", contents=carousel)]
    )
    retry_key = key()
    first = api.push_message_with_http_info(request, x_line_retry_key=retry_key)
    assert first.status_code == 200
    assert fake.errors == []
    with pytest.raises(ApiException) as info:
        api.push_message(request, x_line_retry_key=retry_key)
    assert info.value.status == 409
    assert info.value.headers is not None
    accepted_id = info.value.headers["x-line-accepted-request-id"]
    assert accepted_id == fake.calls("push")[0].request_id
    conflict = json.loads(info.value.body)
    assert conflict["message"] == "The retry key is already accepted"
    assert conflict["sentMessages"] == fake.calls("push")[0].response["sentMessages"]
    assert len(fake.delivered()) == 1
    assert fake.quota_usage == 1
    assert fake.errors == []


def test_sdk_multicast_loading_profile_quota(fake: FakeLine, api: MessagingApi) -> None:
    api.multicast(
        MulticastRequest(
            to=[U1, U2, U3], messages=[TextMessage(text="ข่าวสาร"), TextMessage(text="2")]
        ),
        x_line_retry_key=key(),
    )
    assert [uid for uid, _ in fake.delivered()] == [U1, U1, U2, U2, U3, U3]
    loading = api.show_loading_animation_with_http_info(
        ShowLoadingAnimationRequest(chat_id=U1, loading_seconds=20)
    )
    assert loading.status_code == 202
    profile = api.get_profile(U2)
    assert (profile.user_id, profile.display_name, profile.language) == (U2, "ผู้ใช้ทดสอบ", "th")
    fake.profiles[U3] = {"displayName": "สมชาย", "pictureUrl": "https://example.com/p.png"}
    assert api.get_profile(U3).display_name == "สมชาย"
    fake.profiles[U1] = None
    with pytest.raises(ApiException) as info:
        api.get_profile(U1)
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        api.get_profile("not-a-user")
    assert info.value.status == 404
    assert api.get_message_quota().type == "none"
    fake.quota_limit = 500
    quota = api.get_message_quota()
    assert (quota.type, quota.value) == ("limited", 500)
    assert api.get_message_quota_consumption().total_usage == 3
    assert fake.errors == []  # 404 for an unknown user is LINE's behaviour, not a bot error


@pytest.mark.asyncio
async def test_async_sdk_client_is_accepted(fake: FakeLine) -> None:
    config = Configuration(host=fake.base_url, access_token="test-token")
    async with AsyncApiClient(config) as api_client:
        api = AsyncMessagingApi(api_client)
        resp = await api.push_message(
            PushMessageRequest(to=GROUP, messages=[TextMessage(text="กลุ่ม")]), x_line_retry_key=key()
        )
    assert len(resp.sent_messages) == 1
    assert fake.errors == []
    assert fake.delivered() == [(GROUP, {"type": "text", "text": "กลุ่ม"})]


# ------------------------------------------------------------------ reply tokens
def test_reply_token_is_single_use_and_can_expire(fake: FakeLine, client: httpx.Client) -> None:
    body = {"replyToken": "t1", "messages": [text()]}
    assert client.post("/v2/bot/message/reply", json=body).status_code == 200
    again = client.post("/v2/bot/message/reply", json=body)
    assert again.status_code == 400
    assert again.json() == {"message": "Invalid reply token"}
    fake.expire_reply_token("t2")
    expired = client.post("/v2/bot/message/reply", json={"replyToken": "t2", "messages": [text()]})
    assert expired.status_code == 400 and expired.json()["message"] == "Invalid reply token"
    assert fake.errors == []  # normal LINE behaviour, not a validation error
    assert len(fake.calls("reply")) == 1
    assert len(fake.calls("reply", status=400)) == 2
    assert len(fake.delivered()) == 1


def test_invalid_reply_does_not_consume_token(fake: FakeLine, client: httpx.Client) -> None:
    bad = client.post(
        "/v2/bot/message/reply", json={"replyToken": "t", "messages": [{"type": "text"}]}
    )
    assert bad.status_code == 400
    ok = client.post("/v2/bot/message/reply", json={"replyToken": "t", "messages": [text()]})
    assert ok.status_code == 200
    assert len(fake.errors) == 1


# ------------------------------------------------------------------ limits: accepted side
def test_limits_boundaries_are_accepted(fake: FakeLine, client: httpx.Client) -> None:
    qr_items = [
        {"type": "action", "action": {"type": "message", "label": "ก" * 20, "text": "x"}}
    ] * 13
    messages = [
        text("ก" * 5000),  # 5000 Thai characters = 5000 UTF-16 units
        text("😀" * 2500),  # 2500 emoji = 5000 UTF-16 units
        {**text("เลือก"), "quickReply": {"items": qr_items}},
        flex({"type": "carousel", "contents": [bubble() for _ in range(12)]}, alt="ก" * 1500),
        flex(
            button_bubble(
                {
                    "type": "postback",
                    "label": "ก" * 40,
                    "data": "ข" * 100,
                    "displayText": "ค" * 300,
                }
            )
        ),
    ]
    resp = push(client, {"to": U1, "messages": messages})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["sentMessages"]) == 5
    assert resp.headers["x-line-request-id"]
    assert fake.errors == []


def test_flex_size_limit_is_exact(fake: FakeLine, client: httpx.Client) -> None:
    def compact(value: Any) -> int:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    big = bubble(2)
    big["body"]["contents"][0]["text"] += "x" * (30_000 - compact(big))
    assert compact(big) == 30_000
    assert push(client, {"to": U1, "messages": [flex(big)]}).status_code == 200
    big["body"]["contents"][0]["text"] += "x"
    _assert_rejected(
        fake, push(client, {"to": U1, "messages": [flex(big)]}), "messages[0].contents"
    )


# ------------------------------------------------------------------ limits: rejected side
def _qr(*actions: dict[str, Any]) -> dict[str, Any]:
    return {
        **text("เลือก"),
        "quickReply": {"items": [{"type": "action", "action": a} for a in actions]},
    }


_BIG = "ก" * 500  # 1500 bytes of UTF-8 per text component

REJECTED_MESSAGES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("text missing", [{"type": "text"}], "messages[0].text"),
    ("text empty", [text("")], "messages[0].text"),
    ("text 5001 units", [text("ก" * 5001)], "messages[0].text"),
    ("text 2501 emoji", [text("😀" * 2501)], "messages[0].text"),
    ("textV2 too long", [{"type": "textV2", "text": "ก" * 5001}], "messages[0].text"),
    (
        "sticker not sendable by bots",
        [{"type": "sticker", "packageId": "1", "stickerId": "1"}],
        "messages[0].packageId",
    ),
    (
        "emoji not at a $",
        [{**text("ab$"), "emojis": [{"index": 0, "productId": "p", "emojiId": "001"}]}],
        "messages[0].emojis[0].index",
    ),
    (
        "21 emojis",
        [
            {
                **text("$" * 21),
                "emojis": [{"index": i, "productId": "p", "emojiId": "001"} for i in range(21)],
            }
        ],
        "messages[0].emojis",
    ),
    ("blank altText", [flex(bubble(), alt="   ")], "messages[0].altText"),
    ("no messages", [], "messages"),
    ("six messages", [text()] * 6, "messages"),
    ("unknown message type", [{"type": "banana", "text": "x"}], "messages[0].type"),
    ("message without type", [{"text": "x"}], "messages[0].type"),
    ("message null field", [{**text(), "sender": None}], "messages[0].sender"),
    (
        "image bad url",
        [
            {
                "type": "image",
                "originalContentUrl": "not a url",
                "previewImageUrl": "https://example.com/p.png",
            }
        ],
        "messages[0].originalContentUrl",
    ),
    (
        "quick reply 14 items",
        [_qr(*[{"type": "message", "label": "a", "text": "a"}] * 14)],
        "messages[0].quickReply.items",
    ),
    (
        "quick reply label 21",
        [_qr({"type": "message", "label": "ก" * 21, "text": "a"})],
        "messages[0].quickReply.items[0].action.label",
    ),
    (
        "quick reply label missing",
        [_qr({"type": "message", "text": "a"})],
        "messages[0].quickReply.items[0].action.label",
    ),
    (
        "quick reply label empty",
        [_qr({"type": "postback", "label": "", "data": "a"})],
        "messages[0].quickReply.items[0].action.label",
    ),
    (
        "quick reply unknown action",
        [_qr({"type": "teleport", "label": "a"})],
        "messages[0].quickReply.items[0].action.type",
    ),
    (
        "quick reply item without action",
        [{**text(), "quickReply": {"items": [{"type": "action"}]}}],
        "messages[0].quickReply.items[0].action",
    ),
    (
        "clipboard action missing text",
        [_qr({"type": "clipboard", "label": "copy"})],
        "messages[0].quickReply.items[0].action.clipboardText",
    ),
    (
        "flex unknown component",
        [
            flex(
                {
                    "type": "bubble",
                    "body": {"type": "box", "layout": "vertical", "contents": [{"type": "banana"}]},
                }
            )
        ],
        "messages[0].contents.body.contents[0].type",
    ),
    (
        "flex box missing contents",
        [flex({"type": "bubble", "body": {"type": "box", "layout": "vertical"}})],
        "messages[0].contents.body.contents",
    ),
    (
        "flex bad enum",
        [flex({"type": "bubble", "body": {"type": "box", "layout": "diagonal", "contents": []}})],
        "messages[0].contents.body.layout",
    ),
    (
        "flex header not a box",
        [flex({"type": "bubble", "header": {"type": "text", "text": "x"}})],
        "messages[0].contents.header.type",
    ),
    (
        "flex image missing url",
        [flex({"type": "bubble", "hero": {"type": "image"}})],
        "messages[0].contents.hero.url",
    ),
    (
        "flex button missing action",
        [
            flex(
                {
                    "type": "bubble",
                    "body": {"type": "box", "layout": "vertical", "contents": [{"type": "button"}]},
                }
            )
        ],
        "messages[0].contents.body.contents[0].action",
    ),
    (
        "flex carousel item not bubble",
        [
            flex(
                {
                    "type": "carousel",
                    "contents": [{"type": "box", "layout": "vertical", "contents": []}],
                }
            )
        ],
        "messages[0].contents.contents[0].type",
    ),
    ("flex unknown container", [flex({"type": "slideshow"})], "messages[0].contents.type"),
    (
        "flex carousel 13 bubbles",
        [flex({"type": "carousel", "contents": [bubble()] * 13})],
        "messages[0].contents.contents",
    ),
    ("flex altText 1501", [flex(bubble(), alt="ก" * 1501)], "messages[0].altText"),
    ("flex altText empty", [flex(bubble(), alt="")], "messages[0].altText"),
    ("flex bubble over 30 KB", [flex(bubble(21, _BIG))], "messages[0].contents"),
    (
        "flex carousel over 50 KB",
        [flex({"type": "carousel", "contents": [bubble(4, _BIG)] * 9})],
        "messages[0].contents",
    ),
    (
        "flex button label 41",
        [flex(button_bubble({"type": "uri", "label": "ก" * 41, "uri": "https://example.com"}))],
        "messages[0].contents.body.contents[0].action.label",
    ),
    (
        "postback data 301 bytes",
        [_qr({"type": "postback", "label": "a", "data": "ก" * 100 + "x"})],
        "messages[0].quickReply.items[0].action.data",
    ),
    (
        "postback data 301 chars (spec)",
        [_qr({"type": "postback", "label": "a", "data": "x" * 301})],
        "messages[0].quickReply.items[0].action.data",
    ),
    (
        "postback displayText 301",
        [
            flex(
                button_bubble(
                    {"type": "postback", "label": "a", "data": "d", "displayText": "ก" * 301},
                    part="footer",
                )
            )
        ],
        "messages[0].contents.footer.contents[0].action.displayText",
    ),
    (
        "template postback data in buttons",
        [
            {
                "type": "template",
                "altText": "a",
                "template": {
                    "type": "buttons",
                    "text": "t",
                    "actions": [{"type": "postback", "label": "a", "data": "ก" * 101}],
                },
            }
        ],
        "messages[0].template.actions[0].data",
    ),
    (
        "textV2 bad substitution",
        [{"type": "textV2", "text": "{x}", "substitution": {"x": {"type": "nope"}}}],
        "messages[0].substitution.x.type",
    ),
]


@pytest.mark.parametrize(
    "case,messages,prop", REJECTED_MESSAGES, ids=[c[0] for c in REJECTED_MESSAGES]
)
def test_push_rejects_invalid_messages(
    fake: FakeLine, client: httpx.Client, case: str, messages: list[dict[str, Any]], prop: str
) -> None:
    resp = push(client, {"to": U1, "messages": messages})
    assert resp.status_code == 400, resp.text
    payload = resp.json()
    assert payload["message"]
    assert prop in [d["property"] for d in payload["details"]], payload
    assert resp.headers["x-line-request-id"]
    (error,) = fake.errors
    assert error.startswith("POST /v2/bot/message/push -> 400") and prop in error
    assert fake.delivered() == [] and fake.quota_usage == 0
    assert fake.calls("push", status=400)[0].body == {"to": U1, "messages": messages}


@pytest.mark.parametrize(
    "endpoint,body",
    [
        ("/v2/bot/message/reply", {"replyToken": "r"}),
        ("/v2/bot/message/multicast", {"to": [U1]}),
        ("/v2/bot/message/broadcast", {}),
        ("/v2/bot/message/narrowcast", {}),
    ],
)
def test_limits_apply_to_every_sending_endpoint(
    fake: FakeLine, client: httpx.Client, endpoint: str, body: dict[str, Any]
) -> None:
    bad = {**body, "messages": [text("ก" * 5001)]}
    resp = client.post(endpoint, json=bad, headers={"X-Line-Retry-Key": key()})
    assert resp.status_code == 400
    assert [d["property"] for d in resp.json()["details"]] == ["messages[0].text"]
    good = {**body, "messages": [text()]}
    assert client.post(endpoint, json=good, headers={"X-Line-Retry-Key": key()}).status_code in (
        200,
        202,
    )
    assert len(fake.errors) == 1


def _assert_rejected(fake: FakeLine, resp: httpx.Response, prop: str) -> None:
    assert resp.status_code == 400, resp.text
    assert prop in [d["property"] for d in resp.json()["details"]]
    assert len(fake.errors) == 1 and prop in fake.errors[0]


@pytest.mark.parametrize(
    "endpoint,body",
    [
        ("/v2/bot/message/push", {"to": U1, "messages": [text()]}),
        ("/v2/bot/message/multicast", {"to": [U1], "messages": [text()]}),
        ("/v2/bot/message/broadcast", {"messages": [text()]}),
        ("/v2/bot/message/narrowcast", {"messages": [text()]}),
    ],
)
@pytest.mark.parametrize("retry_key", [None, "not-a-uuid", "123e4567e89b12d3a456426614174000"])
def test_retry_key_required_and_uuid(
    fake: FakeLine, client: httpx.Client, endpoint: str, body: dict[str, Any], retry_key: str | None
) -> None:
    headers = {"X-Line-Retry-Key": retry_key} if retry_key is not None else {}
    _assert_rejected(fake, client.post(endpoint, json=body, headers=headers), "X-Line-Retry-Key")


def test_reply_needs_no_retry_key(fake: FakeLine, client: httpx.Client) -> None:
    assert (
        client.post(
            "/v2/bot/message/reply", json={"replyToken": "r", "messages": [text()]}
        ).status_code
        == 200
    )
    assert fake.errors == []


@pytest.mark.parametrize(
    "to", ["U123", "u" + "1" * 32, "U" + "A" * 32, "X" + "1" * 32, "U" + "1" * 33]
)
def test_push_to_must_be_a_line_id(fake: FakeLine, client: httpx.Client, to: str) -> None:
    _assert_rejected(fake, push(client, {"to": to, "messages": [text()]}), "to")


@pytest.mark.parametrize(
    "to,prop",
    [
        ([], "to"),
        ([U1] * 501, "to"),
        ([U1, GROUP], "to[1]"),
        ([U1, "U1"], "to[1]"),
    ],
)
def test_multicast_recipients(
    fake: FakeLine, client: httpx.Client, to: list[str], prop: str
) -> None:
    resp = client.post(
        "/v2/bot/message/multicast",
        json={"to": to, "messages": [text()]},
        headers={"X-Line-Retry-Key": key()},
    )
    _assert_rejected(fake, resp, prop)


def test_multicast_500_recipients_accepted(fake: FakeLine, client: httpx.Client) -> None:
    ids = [f"U{i:032x}" for i in range(500)]
    resp = client.post(
        "/v2/bot/message/multicast",
        json={"to": ids, "messages": [text()]},
        headers={"X-Line-Retry-Key": key()},
    )
    assert resp.status_code == 200 and resp.json() == {}
    assert fake.quota_usage == 500 and fake.errors == []


@pytest.mark.parametrize(
    "body,prop",
    [
        ({"chatId": GROUP, "loadingSeconds": 20}, "chatId"),
        ({"chatId": U1, "loadingSeconds": 7}, "loadingSeconds"),
        ({"chatId": U1, "loadingSeconds": 65}, "loadingSeconds"),
        ({"chatId": U1, "loadingSeconds": 0}, "loadingSeconds"),
        ({"chatId": U1, "loadingSeconds": "20"}, "loadingSeconds"),
        ({"loadingSeconds": 20}, "chatId"),
    ],
)
def test_loading_animation_rules(
    fake: FakeLine, client: httpx.Client, body: dict[str, Any], prop: str
) -> None:
    _assert_rejected(fake, client.post("/v2/bot/chat/loading/start", json=body), prop)


def test_loading_animation_accepted(fake: FakeLine, client: httpx.Client) -> None:
    for secs in (5, 60):
        resp = client.post(
            "/v2/bot/chat/loading/start", json={"chatId": U1, "loadingSeconds": secs}
        )
        assert resp.status_code == 202 and resp.json() == {}
    assert client.post("/v2/bot/chat/loading/start", json={"chatId": U1}).status_code == 202
    assert len(fake.calls("loading", status=202)) == 3 and fake.errors == []


# ------------------------------------------------------------------ HTTP-level checks
@pytest.mark.parametrize("auth", [None, "", "Bearer", "Basic abc", "bearer x", "test-token"])
def test_authorization_required(fake: FakeLine, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    resp = httpx.get(f"{fake.base_url}/v2/bot/message/quota", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["x-line-request-id"]
    assert len(fake.errors) == 1 and "401" in fake.errors[0]


def test_content_type(fake: FakeLine, client: httpx.Client) -> None:
    raw = json.dumps({"replyToken": "a", "messages": [text()]}).encode()
    ok = client.post(
        "/v2/bot/message/reply",
        content=raw,
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert ok.status_code == 200
    bad = client.post(
        "/v2/bot/message/reply",
        content=raw.replace(b'"a"', b'"b"'),
        headers={"Content-Type": "text/plain"},
    )
    assert bad.status_code == 400
    broken = client.post(
        "/v2/bot/message/reply", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    missing = client.post("/v2/bot/message/reply", headers={"Content-Type": "application/json"})
    assert missing.status_code == 400
    assert len(fake.errors) == 3


def test_unknown_path_and_method(fake: FakeLine, client: httpx.Client) -> None:
    assert client.post("/v2/bot/message/pushh", json={}).status_code == 404
    assert client.get("/v2/bot/message/push").status_code == 405
    assert [r.kind for r in fake.requests] == ["other", "other"]
    assert len(fake.errors) == 2


def test_other_spec_endpoints_validate_and_answer(fake: FakeLine, client: httpx.Client) -> None:
    assert client.get("/v2/bot/info").json() == {}
    assert client.post(f"/v2/bot/group/{GROUP}/leave").status_code == 200
    assert client.get("/v2/bot/followers/ids", params={"limit": "100"}).status_code == 200
    assert client.post("/v2/bot/richmenu/bulk/unlink", json={"userIds": [U1]}).status_code == 202
    assert fake.errors == []
    # Query parameters are validated too: required, and typed.
    assert client.get("/v2/bot/message/delivery/push").status_code == 400
    assert client.get("/v2/bot/followers/ids", params={"limit": "many"}).status_code == 400
    # Request bodies of other operations are validated against the spec.
    assert (
        client.post(
            "/v2/bot/richmenu/alias", json={"richMenuAliasId": "BAD ALIAS", "richMenuId": "r"}
        ).status_code
        == 400
    )
    assert len(fake.errors) == 3
    assert {r.kind for r in fake.requests} == {"other", "richmenu_alias_create"}


# ------------------------------------------------------------------ fault injection
def test_fail_next_500_has_no_effect_then_retry_succeeds(fake: FakeLine, api: MessagingApi) -> None:
    fake.fail_next("push", 500)
    request = PushMessageRequest(to=U1, messages=[TextMessage(text="ลองใหม่")])
    retry_key = key()
    with pytest.raises(ApiException) as info:
        api.push_message(request, x_line_retry_key=retry_key)
    assert info.value.status == 500
    assert fake.delivered() == [] and fake.quota_usage == 0
    api.push_message(request, x_line_retry_key=retry_key)  # the key was not accepted by the failure
    assert len(fake.delivered()) == 1
    assert [r.status for r in fake.calls("push", status=None)] == [500, 200]
    assert fake.errors == []


def test_fail_next_429_with_retry_after_and_times(fake: FakeLine, client: httpx.Client) -> None:
    fake.fail_next("reply", 429, times=2, retry_after=3)
    body = {"replyToken": "tok", "messages": [text()]}
    for _ in range(2):
        resp = client.post("/v2/bot/message/reply", json=body)
        assert resp.status_code == 429
        assert resp.json() == {"message": "Too Many Requests"}
        assert resp.headers["Retry-After"] == "3"
        assert resp.headers["x-line-request-id"]
    assert (
        client.post("/v2/bot/message/reply", json=body).status_code == 200
    )  # token was not consumed
    assert fake.errors == []


def test_fail_next_any_kind_and_specific_first(fake: FakeLine, client: httpx.Client) -> None:
    fake.fail_next("*", 503)
    fake.fail_next("quota", 500)
    assert client.get("/v2/bot/message/quota").status_code == 500
    assert client.get("/v2/bot/message/quota/consumption").status_code == 503
    assert client.get("/v2/bot/message/quota").status_code == 200
    with pytest.raises(ValueError):
        fake.fail_next("pushh", 500)


def test_injected_fault_does_not_hide_invalid_request(fake: FakeLine, client: httpx.Client) -> None:
    fake.fail_next("push", 500)
    assert push(client, {"to": U1, "messages": [{"type": "text"}]}).status_code == 400
    assert len(fake.errors) == 1
    assert push(client, {"to": U1, "messages": [text()]}).status_code == 500  # fault still pending


def test_hang_next_delays_while_other_requests_are_served(
    fake: FakeLine, client: httpx.Client
) -> None:
    fake.hang_next("push", 2.0)
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/v2/bot/message/push",
            json={"to": U1, "messages": [text()]},
            headers={"X-Line-Retry-Key": key()},
            timeout=0.2,
        )
    started = time.monotonic()
    assert client.get("/v2/bot/message/quota").status_code == 200
    assert time.monotonic() - started < 1.0
    pending = fake.calls("push", status=None)
    assert len(pending) == 1 and pending[0].status == 0  # still hanging
    (done,) = fake.wait_for("push", 1, timeout=5)
    assert done.status == 200  # handled normally after the hang, although the client left
    assert fake.errors == []


def test_hang_after_effect_then_retry_gets_409(fake: FakeLine, client: httpx.Client) -> None:
    fake.hang_next("push", 0.5, after_effect=True)
    retry_key = key()
    body = {"to": U1, "messages": [text()]}
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/v2/bot/message/push", json=body, headers={"X-Line-Retry-Key": retry_key}, timeout=0.1
        )
    again = push(client, body, retry_key=retry_key)
    assert again.status_code == 409
    assert again.headers["x-line-accepted-request-id"] == fake.requests[0].request_id
    assert len(fake.delivered()) == 1 and fake.quota_usage == 1


def test_hang_with_sdk_timeout(fake: FakeLine, api: MessagingApi) -> None:
    fake.hang_next("loading", 1.0)
    with pytest.raises(Exception) as info:
        api.show_loading_animation(
            ShowLoadingAnimationRequest(chat_id=U1, loading_seconds=5), _request_timeout=0.2
        )
    assert "timed out" in str(info.value).lower() or "timeout" in type(info.value).__name__.lower()


def test_stop_cuts_hangs_short() -> None:
    fake = FakeLine().start()
    fake.hang_next("quota", 30)
    thread = threading.Thread(
        target=lambda: httpx.get(f"{fake.base_url}/v2/bot/message/quota", headers=AUTH, timeout=10),
        daemon=True,
    )
    thread.start()
    fake.wait_for("quota", 1, status=0, timeout=2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 5
    thread.join(5)


def _quota_statuses(client: httpx.Client, n: int) -> list[int]:
    return [client.get("/v2/bot/message/quota").status_code for _ in range(n)]


def test_fail_rate_is_seeded_and_proportional(fake: FakeLine, client: httpx.Client) -> None:
    fake.fail_rate({500: 0.2, 429: 0.1}, kind="quota", seed=11)
    first = _quota_statuses(client, 300)
    assert set(first) == {200, 500, 429}
    assert 35 <= first.count(500) <= 85 and 12 <= first.count(429) <= 50
    assert client.get("/v2/bot/message/quota/consumption").status_code == 200  # other kind
    fake.fail_rate({500: 0.2, 429: 0.1}, kind="quota", seed=11)
    assert _quota_statuses(client, 300) == first  # same seed, same requests: same faults
    fake.fail_rate({})
    assert set(_quota_statuses(client, 20)) == {200}
    with pytest.raises(ValueError):
        fake.fail_rate({500: 0.7, 429: 0.4})
    with pytest.raises(ValueError):
        fake.fail_rate({200: -0.1})
    with pytest.raises(ValueError):
        fake.fail_rate({500: 0.1}, kind="pushh")


def test_fail_rate_has_no_effect_and_ends(fake: FakeLine, client: httpx.Client) -> None:
    fake.fail_rate({500: 1.0}, seconds=0.5, retry_after=2)
    body = {"replyToken": "tok-rate", "messages": [text()]}
    resp = client.post("/v2/bot/message/reply", json=body)
    assert resp.status_code == 500 and resp.headers["Retry-After"] == "2"
    assert push(client, {"to": U1, "messages": [text()]}, key()).status_code == 500
    assert fake.delivered() == [] and fake.quota_usage == 0
    time.sleep(0.6)
    assert client.post("/v2/bot/message/reply", json=body).status_code == 200  # token unused
    fake.fail_next("reply", 503)  # a pending fail_next goes before the rate
    fake.fail_rate({429: 1.0})
    assert client.post("/v2/bot/message/reply", json=body).status_code == 503
    assert client.post("/v2/bot/message/reply", json=body).status_code == 429
    fake.reset()  # ends the mode
    assert client.post("/v2/bot/message/reply", json=body).status_code == 200
    assert fake.errors == []


def test_subscribers_see_every_answered_request() -> None:
    seen: list[tuple[str, int]] = []
    with (
        FakeLine(max_records=1) as fake,
        httpx.Client(base_url=fake.base_url, headers=AUTH, timeout=5) as c,
    ):
        fake.subscribe(lambda rec: seen.append((rec.kind, rec.status)))
        fake.fail_next("push", 500)
        push(c, {"to": U1, "messages": [text()]})
        push(c, {"to": U1, "messages": [text()]})
        c.get("/v2/bot/nope")
        fake.reset()  # subscribers stay
        c.get("/v2/bot/message/quota")
        assert seen == [("push", 500), ("push", 200), ("other", 404), ("quota", 200)]
        assert len(fake.requests) == 1

        def broken(_rec: Recorded) -> None:
            raise RuntimeError("boom")

        fake.subscribe(broken)
        assert c.get("/v2/bot/message/quota").status_code == 200
        assert any("subscriber failed" in e for e in fake.take_errors())


# ------------------------------------------------------------------ quota
def test_quota_limit_enforced_and_counted(fake: FakeLine, client: httpx.Client) -> None:
    fake.quota_limit = 3
    assert (
        client.post(
            "/v2/bot/message/multicast",
            json={"to": [U1, U2], "messages": [text()] * 3},
            headers={"X-Line-Retry-Key": key()},
        ).status_code
        == 200
    )
    assert push(client, {"to": U3, "messages": [text()]}).status_code == 200
    over = push(client, {"to": U3, "messages": [text()]})
    assert over.status_code == 429 and over.json() == {
        "message": "You have reached your monthly limit."
    }
    assert (
        client.post(
            "/v2/bot/message/reply", json={"replyToken": "r", "messages": [text()]}
        ).status_code
        == 200
    )
    assert client.get("/v2/bot/message/quota/consumption").json() == {"totalUsage": 3}
    assert client.get("/v2/bot/message/quota").json() == {"type": "limited", "value": 3}
    assert fake.errors == []


# ------------------------------------------------------------------ recording API
def test_wait_for_background_requests_and_timeout_summary(fake: FakeLine) -> None:
    def later() -> None:
        time.sleep(0.2)
        httpx.post(
            f"{fake.base_url}/v2/bot/message/reply",
            json={"replyToken": "z", "messages": [text()]},
            headers=AUTH,
        )

    threading.Thread(target=later, daemon=True).start()
    (rec,) = fake.wait_for("reply", 1, timeout=3)
    assert rec.body["replyToken"] == "z" and rec.at > 0
    with pytest.raises(AssertionError, match="expected >= 1 'push'") as info:
        fake.wait_for("push", 1, timeout=0.2)
    assert "/v2/bot/message/reply" in str(info.value)


def test_requests_in_arrival_order_and_reset(fake: FakeLine, client: httpx.Client) -> None:
    client.post("/v2/bot/message/reply", json={"replyToken": "a", "messages": [text()]})
    push(client, {"to": U1, "messages": [text()]})
    client.get(f"/v2/bot/profile/{U1}")
    client.post("/nope")
    recs = fake.requests
    assert [r.kind for r in recs] == ["reply", "push", "profile", "other"]
    assert [r.status for r in recs] == [200, 200, 200, 404]
    assert recs[0].at <= recs[1].at <= recs[2].at
    assert recs[1].headers["content-type"].startswith("application/json")
    assert fake.calls("*", status=None) == recs
    fake.fail_next("reply", 500)
    fake.quota_limit = 10
    fake.reset()
    assert fake.requests == [] and fake.errors == [] and fake.quota_usage == 0
    # The used token and the pending fault are gone too; configuration stays.
    assert (
        client.post(
            "/v2/bot/message/reply", json={"replyToken": "a", "messages": [text()]}
        ).status_code
        == 200
    )
    assert fake.quota_limit == 10


def test_errors_is_a_snapshot_and_assert_no_errors(fake: FakeLine, client: httpx.Client) -> None:
    fake.assert_no_errors()
    push(client, {"to": U1, "messages": []})
    with pytest.raises(AssertionError, match="rejected 1 request"):
        fake.assert_no_errors()
    snapshot = fake.errors
    snapshot.clear()
    assert len(fake.errors) == 1


def test_concurrent_requests_are_all_recorded(fake: FakeLine) -> None:
    def worker(n: int) -> None:
        with httpx.Client(base_url=fake.base_url, headers=AUTH) as c:
            for i in range(25):
                c.post(
                    "/v2/bot/message/reply", json={"replyToken": f"{n}-{i}", "messages": [text()]}
                )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.calls("reply")) == 100 and fake.errors == []
    assert fake.stats()["by_kind"] == {"reply": {"200": 100}}


def test_max_records_caps_memory_but_not_counts() -> None:
    with FakeLine(max_records=3) as fake, httpx.Client(base_url=fake.base_url, headers=AUTH) as c:
        for i in range(5):
            c.post("/v2/bot/message/reply", json={"replyToken": str(i), "messages": [text()]})
        assert [r.body["replyToken"] for r in fake.requests] == ["2", "3", "4"]
        stats = c.get("/__fakeline/stats").json()
        assert stats["requests"] == 5 and stats["errors"] == []


def test_standalone_module(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeline", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        resp = httpx.post(
            f"{base_url}/v2/bot/message/push",
            headers={**AUTH, "X-Line-Retry-Key": key()},
            json={"to": U1, "messages": [text()]},
        )
        assert resp.status_code == 200
        assert httpx.get(f"{base_url}/__fakeline/stats").json()["by_kind"] == {"push": {"200": 1}}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert '"requests": 1' in err


# ------------------------------------------------------------------ validator internals
def test_validator_is_compiled_once() -> None:
    assert load_validator() is load_validator()
    with FakeLine() as a, FakeLine() as b:
        assert a._validator is b._validator


def test_schemas_nullable_and_additional_properties() -> None:
    schemas = ComponentSchemas(
        {
            "Thing": {
                "type": "object",
                "required": ["n"],
                "additionalProperties": False,
                "properties": {
                    "n": {"type": "integer", "nullable": True, "format": "int32"},
                    "s": {"type": "string"},
                },
            },
        }
    )
    check = schemas.check({"$ref": "#/components/schemas/Thing"})

    def problems(value: Any) -> list[str]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        check(value, (), out)
        return [m for _, m in out]

    assert problems({"n": None}) == []
    assert problems({"n": 5}) == []
    assert problems({"n": 2**31}) != []
    assert problems({"n": 1, "s": None}) == ["must be a string, not null"]
    assert problems({"n": 1, "extra": 1}) == ["is not an allowed property"]
    assert problems({}) == ["is required"]


def test_schemas_reject_unknown_keywords() -> None:
    with pytest.raises(SpecError):
        ComponentSchemas({"X": {"type": "object", "patternProperties": {}}}).check(
            {"$ref": "#/components/schemas/X"}
        )


def _problems(schemas: ComponentSchemas, name: str, value: Any) -> list[str]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    schemas.check({"$ref": f"#/components/schemas/{name}"})(value, (), out)
    return [f"{format_path(p)}: {m}" if p else m for p, m in out]


def test_schemas_convert_the_openapi_dialect() -> None:
    schemas = ComponentSchemas(
        {
            "Thing": {
                "type": "object",
                "properties": {
                    "size": {"type": "string", "enum": ["s", "m"], "nullable": True},
                    "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                    "cap": {"type": "integer", "maximum": 10, "exclusiveMaximum": False},
                    "big": {"type": "integer", "format": "int64"},
                    "at": {"type": "string", "format": "date-time"},
                    "link": {"$ref": "#/components/schemas/Link", "nullable": False},
                },
            },
            "Link": {"type": "string", "format": "uri", "nullable": True},
        }
    )
    assert _problems(schemas, "Thing", {"size": None, "ratio": 0.5, "cap": 10, "link": None}) == []
    assert (
        _problems(schemas, "Thing", {"link": "tel:+6621234567", "at": "2026-01-02T03:04:05Z"}) == []
    )
    assert _problems(schemas, "Thing", {"size": "xl", "ratio": 0, "cap": 11}) == [
        "size: must be one of: 's', 'm', None (got 'xl')",
        "ratio: must be > 0 (got 0)",
        "cap: must be <= 10 (got 11)",
    ]
    assert _problems(schemas, "Thing", {"big": 2**63, "at": "yesterday", "link": "no scheme"}) == [
        "big: must be an int64 (-2**63 to 2**63-1), got 9223372036854775808",
        "at: must be an RFC 3339 date-time (got 'yesterday')",
        "link: must be an absolute URI (got 'no scheme')",
    ]
    assert _problems(schemas, "Thing", []) == ["must be an object"]


PETS: dict[str, Any] = {
    "Pet": {
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"type": "string"}, "name": {"type": "string"}},
        "discriminator": {
            "propertyName": "kind",
            "mapping": {
                "cat": "#/components/schemas/Cat",
                "kitten": "#/components/schemas/Cat",
                "dog": "#/components/schemas/Dog",
            },
        },
    },
    "Cat": {"allOf": [{"$ref": "#/components/schemas/Pet"}, {"required": ["meow"]}]},
    "Dog": {
        "type": "object",
        "allOf": [
            {"$ref": "#/components/schemas/Pet"},
            {
                "type": "object",
                "properties": {
                    "friends": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                },
            },
        ],
    },
}


def test_schemas_dispatch_on_the_discriminator() -> None:
    schemas = ComponentSchemas(PETS)
    assert _problems(schemas, "Pet", {"kind": "kitten", "meow": True}) == []
    assert _problems(schemas, "Pet", {"kind": "cat", "name": 5}) == [
        "meow: is required",
        "name: must be a string",  # the base's own properties are checked too
    ]
    assert _problems(schemas, "Pet", {"kind": "fish"}) == [
        "kind: unknown Pet kind 'fish'; expected one of: cat, dog, kitten"
    ]
    assert _problems(schemas, "Pet", {"name": "x"}) == [
        "kind: is required (Pet kind: one of cat, dog, kitten)"
    ]
    # Recursion through the base dispatches again, inside the concrete schema too.
    assert _problems(schemas, "Dog", {"kind": "dog", "friends": [{"kind": "cat"}]}) == [
        "friends[0].meow: is required"
    ]
    # A concrete schema used directly checks that the value maps to it.
    assert _problems(schemas, "Cat", {"kind": "dog", "meow": 1}) == [
        "kind: must be 'cat' or 'kitten' here (Cat), got 'dog'"
    ]
    assert _problems(schemas, "Cat", {"meow": 1}) == ["kind: is required"]


@pytest.mark.parametrize(
    "schemas",
    [
        {"X": {"type": "object", "discriminator": {"propertyName": "t"}}},
        {"X": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Nope"}}}},
        {"X": {"type": "object", "properties": {"a": {"$ref": "other.yml#/X"}}}},
        {"X": {"type": "number", "minimum": 0, "exclusiveMinimum": 0}},
        {"X": {"type": ["string", "null"]}},
        {"X": {"type": "object", "const": {}}},
    ],
)
def test_schemas_refuse_what_they_cannot_convert(schemas: dict[str, Any]) -> None:
    with pytest.raises(SpecError):
        ComponentSchemas(schemas)


def test_converted_spec_is_plain_json_schema() -> None:
    """Every converted component is valid JSON Schema 2020-12, with no OpenAPI keyword
    left for jsonschema to ignore silently."""
    schemas = load_validator().schemas
    resources = schemas.resources
    assert len(resources) == len(schemas.schemas) > 200
    left: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            left.update(k for k in node if k in ("nullable", "discriminator", "externalDocs"))
            for k, v in node.items():
                if k != "x-discriminator":  # its mapping holds the concrete schemas
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for schema in resources.values():
        Draft202012Validator.check_schema(schema)
        walk(schema)
    assert left == set()
    assert "x-discriminator" in resources["https://fakeline.invalid/schemas/Message"]


def test_message_problems_are_cached_per_message_not_per_path() -> None:
    validator = load_validator()
    op = validator.operations["pushMessage"]
    bad = {"type": "text", "text": "x", "emojis": "nope"}
    body = {"to": "U" + "1" * 32, "messages": [text(), bad, bad]}
    raw = json.dumps(body).encode()
    for _ in range(2):  # the second time every message comes from the cache
        _, issues = validator.validate(op, {}, {}, {}, "application/json", raw)
        assert [(i.property, i.message) for i in issues if i.property != "X-Line-Retry-Key"] == [
            ("messages[1].emojis", "must be an array"),
            ("messages[2].emojis", "must be an array"),
        ]


def test_spec_body_schemas_cover_discriminated_bases() -> None:
    validator = load_validator()
    op = validator.operations["replyMessage"]
    assert op.sends_messages and op.messages_count_in_spec
    body: dict[str, Any] = {
        "replyToken": "t",
        "messages": [{"type": "flex", "altText": "a", "contents": copy.deepcopy(bubble())}],
    }
    _, issues = validator.validate(op, {}, {}, {}, "application/json", json.dumps(body).encode())
    assert issues == []
    body["messages"][0]["contents"]["footer"]["contents"][0]["action"]["type"] = "teleport"
    _, issues = validator.validate(op, {}, {}, {}, "application/json", json.dumps(body).encode())
    assert [i.property for i in issues] == ["messages[0].contents.footer.contents[0].action.type"]


def test_utf16_len() -> None:
    assert utf16_len("ก") == 1 and utf16_len("😀") == 2 and utf16_len("") == 0


def test_a_bug_in_the_fake_is_an_error(
    fake: FakeLine, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fake, "_behave", broken)
    assert client.get("/v2/bot/message/quota").status_code == 500
    assert len(fake.errors) == 1 and "boom" in fake.errors[0]
