"""A deployment behind an HTTP proxy still reaches LINE through it, although the client
skips the per-request proxy and .netrc look-ups when the environment names neither."""

from __future__ import annotations

import asyncio

import pytest

from bot.line.calls import RetryPolicy, TransientLineError
from bot.line.client import LineClient
from bot.line.messages import Text
from tests.fakeline import FakeLine
from tests.helpers import user_id


async def _push(fake: FakeLine) -> bool:
    client = LineClient(
        fake.base_url, "test-access-token", RetryPolicy(attempts=1, timeout=3, backoff=0.01)
    )
    try:
        return await client.push(
            user_id("proxy"), [Text("สวัสดี")], "6f1c4a52-3b0e-4d8e-9a57-2f5d0c9b7e12"
        )
    finally:
        await client.close()


def test_without_a_proxy_the_call_goes_straight_to_line(
    fake_line: FakeLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert asyncio.run(_push(fake_line)) is True


def test_a_proxy_named_in_the_environment_is_used(
    fake_line: FakeLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy nobody listens on: the call must try it (and fail), not bypass it.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(TransientLineError):
        asyncio.run(_push(fake_line))
