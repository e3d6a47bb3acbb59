"""Replies against pushes per day, and ``bot quota``: LINE's quota, the pushes used, the forecast.

Through the signed webhook in both deployments: an answer in time goes by reply, an answer
to a message that waited past the reply token's age goes by push; each is counted once (a
redelivered event is not counted again), and ``bot quota`` reads them with LINE's figures.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable

import pytest

from bot import cli
from bot.storage.usage import forecast, month_of
from tests.conftest import SECRET
from tests.conversation import Chat
from tests.fakeline import FakeLine
from tests.helpers import envelope, post_signed, text_event


def run_quota(c: Chat, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setattr(cli, "_settings", lambda: c.server.settings)
    capsys.readouterr()
    assert cli.main(["quota"]) == 0
    return capsys.readouterr().out


def today_row(out: str) -> list[int]:
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    line = next(x for x in out.splitlines() if x.strip().startswith(today.isoformat()))
    return [int(n) for n in line.split()[1:]]


def test_replies_and_pushes_are_counted_once_and_bot_quota_shows_them(
    chat: Callable[[str], Chat],
    fake_line: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_line.quota_limit = 500
    c = chat("quota")
    c.say("สวัสดีครับ")
    assert len(fake_line.calls("reply")) == 1

    # A message that waited in the queue past the token's age: answered by a paid push.
    late = text_event("ขอคุยกับเจ้าหน้าที่", c.user, ts=int((time.time() - 600) * 1000))
    c._send(late, 15.0)
    assert len(fake_line.calls("push")) == 1
    # LINE redelivers it: already answered, neither sent nor counted again.
    again = dict(late, deliveryContext={"isRedelivery": True})
    assert post_signed(c.server.base_url, SECRET, envelope(again)).status_code == 200
    time.sleep(1.0)
    assert len(fake_line.calls("push")) == 1

    out = run_quota(c, monkeypatch, capsys)
    assert "quota: 500 a month" in out
    assert "used so far (LINE): 1" in out
    assert re.search(r"1 replies \(free\), 1 pushes; 50% of answers by reply", out)
    assert today_row(out) == [1, 1, 0, 0]  # reply, push, notice, staff push


def test_bot_quota_says_when_line_fails(
    chat: Callable[[str], Chat],
    fake_line: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = chat("quota-fail")
    fake_line.fail_next("quota", 500, times=10)
    monkeypatch.setattr(cli, "_settings", lambda: c.server.settings)
    with pytest.raises(SystemExit) as exc:
        cli.main(["quota"])
    assert exc.value.code == 1
    assert "bot quota" in capsys.readouterr().err


def test_forecast_goes_on_at_the_month_pace() -> None:
    bangkok = dt.timezone(dt.timedelta(hours=7))
    mid_june = dt.datetime(2026, 6, 16, 0, 0, tzinfo=bangkok)  # 15 of 30 days gone
    assert forecast(100, mid_june) == 200
    assert forecast(0, mid_june) == 0
    assert month_of(dt.date(2028, 2, 10)) == (dt.date(2028, 2, 1), dt.date(2028, 2, 29))
