"""Structured logging with a request id and no secrets or message texts.

Log calls pass facts as ``extra={...}``; the JSON formatter writes them as
fields. Users appear only as a short one-way hash (``user_ref``) so a log line
can be correlated without exposing the LINE user id; message texts are never
passed to the logger at all (only the unanswered-questions log may keep them).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message",
    "asctime",
}
_FORBIDDEN = {"text", "token", "secret", "authorization", "access_token", "reply_token"}


def user_ref(user_id: str | None) -> str:
    """A short stable pseudonym for a LINE user id, safe to log."""
    if not user_id:
        return "-"
    return hashlib.sha256(user_id.encode()).hexdigest()[:12]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: ("[redacted]" if k.lower() in _FORBIDDEN else v)
        for k, v in vars(record).items()
        if k not in _STANDARD
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors in production."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a developer's terminal, extras appended as k=v."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        rid = request_id.get()
        if rid != "-":
            line += f" request_id={rid}"
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", json_lines: bool = False) -> None:
    """Install the bot's stderr handler on the root logger, replacing an earlier one of ours."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.set_name("bot")
    root.handlers = [h for h in root.handlers if h.get_name() != "bot"] + [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "aiohttp.access", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
