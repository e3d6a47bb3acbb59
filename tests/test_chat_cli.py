"""`bot chat`: the terminal chat drives the real pipeline and can be scripted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.chat import render
from bot.kb.loader import load_replies
from bot.messages import Flex, LocationAction, MessageAction, PostbackAction, Text
from tests.helpers import ROOT

REPLIES = load_replies(ROOT / "knowledge")


def _chat(script: str, tmp_path: Path) -> str:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "REDIS_", "DATABASE_"))
    }
    env["DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--user", "U1"],
        input=script,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_scripted_chat_answers_each_line(tmp_path: Path) -> None:
    out = _chat("สวัสดีครับ\nอยากซื้อหวยงวดนี้ 555+\n", tmp_path)
    lines = out.splitlines()
    assert lines[0] == "you> สวัสดีครับ"
    assert lines[1].removeprefix("bot> ") in REPLIES.texts["greeting.hello"]
    assert lines[2].startswith("you> ")
    assert lines[3].removeprefix("bot> ") in REPLIES.texts["fallback.not_understood"]
    assert (tmp_path / "bot.db").exists()  # the embedded database was brought up to date


def test_numbers_press_quick_reply_buttons(tmp_path: Path) -> None:
    out = _chat("/follow\n1\n", tmp_path)
    assert "[1] " + REPLIES.text("greeting.consent_button") in out
    assert REPLIES.text("greeting.consent_thanks") in out


def test_render_lists_quick_replies_and_summarises_carousels() -> None:
    bubble = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [{"type": "text", "text": "คอร์ส A"}],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {"type": "button", "action": {"type": "uri", "label": "ดู", "uri": "https://x.th"}}
            ],
        },
    }
    text, buttons = render(
        [
            Flex("คอร์สแนะนำ", {"type": "carousel", "contents": [bubble, bubble]}),
            Text(
                "เลือก",
                (
                    MessageAction("ใช่", "ใช่"),
                    PostbackAction("ไม่", "action=no"),
                    LocationAction("แชร์"),
                ),
            ),
        ]
    )
    assert "(2 card(s))" in text and "card 2: คอร์ส A | [ดู]" in text
    assert "[1] ใช่" in text and "[3] แชร์ (share location)" in text
    assert len(buttons) == 3
