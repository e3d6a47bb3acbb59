"""The LINE client's worker calls go to LINE as LINE's JSON without the LINE SDK (about 34 MB
of every worker): replies, pushes, multicasts, the loading animation, profiles and the quota.
The SDK is loaded only to deploy rich menus (``bot richmenu``). Every request is checked by the fake LINE API against
LINE's OpenAPI spec."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from bot.kb.loader import Knowledge
from bot.line.calls import InvalidReplyToken, PermanentLineError, RetryPolicy
from bot.line.client import LineClient
from bot.line.messages import Text
from tests.fakeline import FakeLine
from tests.helpers import run_command, user_id
from tests.test_conversation_richmenu import deployed

RETRY_KEY = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"


def test_a_worker_s_calls_reach_line_without_loading_the_sdk(
    fake_line: FakeLine, knowledge: Knowledge
) -> None:
    fake_line.quota_limit = 1000
    fake_line.profiles[user_id("p")] = {"displayName": "สมศรี", "userId": user_id("p")}
    alias, menu = sorted(deployed(fake_line, knowledge).items())[0]  # as `bot richmenu deploy`
    before = len(fake_line.requests)
    code = f"""
import asyncio, json, sys
from bot.line.calls import RetryPolicy
from bot.line.client import LineClient
from bot.line.messages import Text

async def main():
    c = LineClient({fake_line.base_url!r}, "token", RetryPolicy(attempts=1, timeout=5))
    try:
        await c.reply("reply-token-1", [Text("สวัสดีครับ 👋")])
        pushed = await c.push({user_id("p")!r}, [Text("แจ้งเตือน")], {RETRY_KEY!r})
        again = await c.push({user_id("p")!r}, [Text("แจ้งเตือน")], {RETRY_KEY!r})
        await c.multicast([{user_id("a")!r}, {user_id("b")!r}], [Text("ข่าว")],
                          "2c9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed")
        await c.show_loading({user_id("p")!r}, 12)
        profile = await c.profile({user_id("p")!r})
        quota, used = await c.quota(), await c.quota_consumption()
        # a user's own menu: linked after an assessment, unlinked when their data is erased
        found, missing = await c.rich_menu_of_alias({alias!r}), await c.rich_menu_of_alias("nope")
        await c.link_rich_menu({user_id("p")!r}, found)
        await c.unlink_rich_menu({user_id("a")!r})
        before = "linebot" in sys.modules
        menus = await c.rich_menus()
        return dict(pushed=pushed, again=again, profile=profile, quota=quota, used=used,
                    found=found, missing=missing, sdk_before=before,
                    sdk_after="linebot" in sys.modules, menus=len(menus))
    finally:
        await c.close()

print(json.dumps(asyncio.run(main()), ensure_ascii=False))
"""
    done = run_command([sys.executable, "-c", code], timeout=60, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["sdk_before"] is False  # every worker call went without the SDK
    assert got["sdk_after"] is True and got["menus"] >= 1  # deploying rich menus uses it
    assert got["found"] == menu and got["missing"] is None
    assert fake_line.user_rich_menus.get(user_id("p")) == menu
    assert got["pushed"] is True and got["again"] is False  # 409: sent once already
    assert got["profile"]["displayName"] == "สมศรี"
    assert got["quota"] == 1000 and got["used"] == 1 + 2
    fake_line.assert_no_errors()
    kinds = [r.kind for r in fake_line.requests[before:]]
    assert kinds == [
        "reply",
        "push",
        "push",
        "multicast",
        "loading",
        "profile",
        "quota",
        "quota_consumption",
        "richmenu_alias_get",
        "richmenu_alias_get",
        "richmenu_user_link",
        "richmenu_user_unlink",
        "richmenu_list",
    ]
    [(_, said)] = fake_line.delivered()[:1]
    assert said["text"] == "สวัสดีครับ 👋"
    loading = fake_line.calls("loading", status=None)[0]
    assert loading.body == {"chatId": user_id("p"), "loadingSeconds": 10}


def _client(fake: FakeLine, attempts: int = 3) -> LineClient:
    return LineClient(fake.base_url, "token", RetryPolicy(attempts=attempts, backoff=0.01))


def test_errors_keep_their_meaning(fake_line: FakeLine) -> None:
    async def scenario() -> None:
        client = _client(fake_line)
        try:
            # 500 then 429 (with Retry-After): retried, then sent once
            fake_line.fail_next("push", 500)
            fake_line.fail_next("push", 429, retry_after=0.1)
            assert await client.push(user_id("e"), [Text("ลองใหม่")], RETRY_KEY) is True
            # a used reply token: the caller pushes instead
            await client.reply("token-once", [Text("หนึ่ง")])
            with pytest.raises(InvalidReplyToken):
                await client.reply("token-once", [Text("สอง")])
            # any other 4xx is permanent, with LINE's message
            fake_line.fail_next("profile", 404)
            with pytest.raises(PermanentLineError) as refused:
                await client.profile(user_id("nobody"))
            assert refused.value.status == 404
        finally:
            await client.close()

    asyncio.run(scenario())
    statuses = [r.status for r in fake_line.requests if r.kind == "push"]
    assert statuses == [500, 429, 200]
    assert len(fake_line.calls("push")) == 1


def test_bodies_are_compact_utf8_and_invalid_unicode_falls_back_to_escapes() -> None:
    """Thai goes as UTF-8 (3 bytes a letter, not a 6-byte escape); a lone surrogate, which
    UTF-8 cannot carry, goes as JSON escapes (as the SDK sent it) instead of failing."""
    from bot.line.http import dumps

    assert dumps({"text": "สวัสดี"}) == '{"text":"สวัสดี"}'.encode()
    odd = dumps({"text": "ก\ud800"})
    assert odd == b'{"text":"\\u0e01\\ud800"}'
    assert json.loads(odd) == {"text": "ก\ud800"}
