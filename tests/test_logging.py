"""Logs carry a request id and never message texts, tokens or secrets."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.logs import JsonFormatter, request_id, user_ref
from tests.conftest import SECRET
from tests.fakeline import FakeLine
from tests.helpers import ServerThread, envelope, post_signed, text_event


def test_json_lines_have_request_id_and_redact_sensitive_fields() -> None:
    token = request_id.set("req-123")
    try:
        record = logging.LogRecord("bot", logging.INFO, __file__, 1, "hello", None, None)
        record.text = "ข้อความส่วนตัว"
        record.chat = user_ref("U" + "a" * 32)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "req-123"
    assert line["text"] == "[redacted]"
    assert "U" + "a" * 32 not in json.dumps(line)


def test_a_whole_conversation_logs_no_text_or_secret(
    make_settings: type, fake_line: FakeLine, caplog: pytest.LogCaptureFixture
) -> None:
    secret_words = "เบอร์โทรของฉันคือ 0812345678"
    caplog.set_level(logging.DEBUG)
    with ServerThread(make_settings(log_format="json")) as server:
        event = text_event(secret_words)
        post_signed(server.base_url, SECRET, envelope(event))
        fake_line.wait_for("reply", 1)
        time.sleep(0.3)
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "handling event" in everything
    for leaked in (
        secret_words,
        "0812345678",
        SECRET,
        "test-access-token",
        event["replyToken"],
        event["source"]["userId"],
    ):
        assert leaked not in everything
