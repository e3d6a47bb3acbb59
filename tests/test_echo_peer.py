"""The end-to-end benchmarks' peer (``benchmarks/echo_peer.py``, an echo bot the way LINE's
SDK example builds one) really echoes: started as the benchmark starts it, against the fake
LINE API, a signed text message comes back as a reply with the same text; a badly signed
webhook is refused and answered nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.fakeline import FakeLine
from tests.helpers import envelope, free_port, post_signed, text_event

PEER = Path(__file__).resolve().parent.parent / "benchmarks" / "echo_peer.py"
TOKEN = "echo-peer-test-access-token-0123456789"


@pytest.fixture
def peer(fake_line: FakeLine) -> Iterator[str]:
    """The echo peer as a subprocess (like ``bare_app.py`` in the benchmarks); its base URL."""
    port = free_port()
    argv = [sys.executable, str(PEER), "--host", "127.0.0.1", "--port", str(port),
            "--line-api-base-url", fake_line.base_url,
            "--channel-secret", SECRET, "--access-token", TOKEN]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "echo peer did not start within 30 s"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_a_signed_text_message_is_echoed_before_the_200(peer: str, fake_line: FakeLine) -> None:
    event = text_event("สวัสดีครับ ขอเบอร์ติดต่อหน่อย", reply_token="a" * 32)
    response = post_signed(peer, SECRET, envelope(event))
    assert response.status_code == 200
    # The reply was sent inline: it is at the fake already when the 200 arrives.
    assert fake_line.delivered() == [("a" * 32, {"type": "text", "text": event["message"]["text"]})]
    (reply,) = fake_line.calls("reply")
    assert reply.headers["authorization"] == f"Bearer {TOKEN}"
    assert fake_line.errors == []


def test_a_bad_signature_is_refused_and_nothing_is_sent(peer: str, fake_line: FakeLine) -> None:
    body = envelope(text_event("hello"))
    assert post_signed(peer, SECRET, body, signature="AAAA" + "=" * 40).status_code == 400
    assert fake_line.requests == []
