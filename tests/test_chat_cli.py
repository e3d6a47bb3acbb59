"""`bot chat`: the terminal chat drives the real pipeline and can be scripted."""

from __future__ import annotations

import io
from pathlib import Path

from bot.kb.loader import load_replies
from bot.line.messages import Flex, LocationAction, MessageAction, PostbackAction, Text, UriAction
from bot.tools.chat import build_event, render
from tests.helpers import ROOT, environment, run_bot

REPLIES = load_replies(ROOT / "knowledge")


#: A card footer: a postback button, then a link.
FOOTER = {
    "type": "box",
    "layout": "vertical",
    "contents": [
        {
            "type": "button",
            "action": {"type": "postback", "label": "ดู", "data": "action=crs&id=1"},
        },
        {"type": "button", "action": {"type": "uri", "label": "เว็บ", "uri": "https://x.th"}},
    ],
}


def _chat(script: str, tmp_path: Path) -> str:
    env = environment("LINE_", "REDIS_", "DATABASE_", DATA_DIR=str(tmp_path))
    result = run_bot("chat", "--user", "U1", env=env, stdin=script, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _turns(out: str) -> list[tuple[str, list[str]]]:
    """The script's lines and what the bot printed after each."""
    turns: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if line.startswith("you> "):
            turns.append((line.removeprefix("you> "), []))
        elif turns:
            turns[-1][1].append(line)
    return turns


def test_scripted_chat_answers_each_line(tmp_path: Path) -> None:
    out = _chat("สวัสดีครับ\nอยากซื้อหวยงวดนี้ 555+\n", tmp_path)
    (hello, hello_out), (lottery, lottery_out) = _turns(out)
    assert hello == "สวัสดีครับ"
    assert hello_out[0].removeprefix("bot> ") in REPLIES.texts["greeting.hello"]
    assert "[1] " + REPLIES.text("menu.start_assessment") in hello_out[1]
    assert lottery.startswith("อยากซื้อหวย")
    assert lottery_out[0].removeprefix("bot> ") in REPLIES.texts["fallback.out_of_scope"]
    assert (tmp_path / "bot.db").exists()  # the embedded database was brought up to date


def test_numbers_press_quick_reply_buttons(tmp_path: Path) -> None:
    out = _chat("/follow\n1\n", tmp_path)
    assert "[1] " + REPLIES.text("greeting.consent_button") in out
    assert REPLIES.text("greeting.consent_thanks") in out


def test_render_numbers_card_buttons_then_quick_replies() -> None:
    bubble = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [{"type": "text", "text": "คอร์ส A"}],
        },
        "footer": FOOTER,
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
    assert "(2 card(s))" in text
    assert "card 1: คอร์ส A | [1] ดู | [2] เว็บ" in text
    assert "card 2: คอร์ส A | [3] ดู | [4] เว็บ" in text
    assert "[5] ใช่" in text and "[7] แชร์ (share location)" in text
    assert len(buttons) == 7
    assert buttons[0] == PostbackAction("ดู", "action=crs&id=1")
    assert buttons[1] == UriAction("เว็บ", "https://x.th")


def test_card_buttons_and_location_buttons_can_be_pressed() -> None:
    card = {
        "type": "bubble",
        "footer": FOOTER,
    }
    _, buttons = render([Flex("คอร์ส", card, (LocationAction("แชร์ตำแหน่ง"),))])
    pressed = build_event("1", "U1", buttons)
    assert pressed is not None and pressed["type"] == "postback"
    assert pressed["postback"] == {"data": "action=crs&id=1"}
    out = io.StringIO()
    assert build_event("2", "U1", buttons, out) is None and "https://x.th" in out.getvalue()
    assert build_event("3", "U1", buttons, out) is None and "@latitude" in out.getvalue()
    shared = build_event("@12.80, 99.97", "U1", buttons)
    assert shared is not None and shared["message"]["type"] == "location"
    assert (shared["message"]["latitude"], shared["message"]["longitude"]) == (12.80, 99.97)
    image = build_event("/image", "U1", [])
    assert image is not None and image["message"]["type"] == "image"


def test_media_and_a_quiet_bot_show_in_the_console(tmp_path: Path) -> None:
    out = _chat("/image\nขอคุยกับเจ้าหน้าที่\nสวัสดี\n", tmp_path)
    (_, image), (_, staff), (_, quiet) = _turns(out)
    handed_off = REPLIES.text("staff.handed_off", duration=REPLIES.text("staff.hours", n=4))
    assert handed_off in "\n".join(staff).replace("bot> ", "")
    assert image[0].removeprefix("bot> ") in REPLIES.texts["fallback.media"]
    assert any(REPLIES.text("menu.find_course") in line for line in image)
    assert quiet == ["     (no answer: the bot is quiet, e.g. while staff have the chat)"]
