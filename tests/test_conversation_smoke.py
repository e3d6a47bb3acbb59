"""The conversation harness itself: a greeting reaches the user through the signed webhook."""

from __future__ import annotations

from collections.abc import Callable

from tests.conversation import Chat, joined


def test_greeting_is_answered(chat: Callable[[str], Chat]) -> None:
    answer = chat("smoke").say("สวัสดีครับ")
    assert answer and answer[0]["type"] == "text"
    assert "สวัสดี" in joined(answer)
