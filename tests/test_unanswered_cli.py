"""``bot unanswered``: what people asked that the bot could not answer, for operators."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
from collections.abc import Callable

from sqlalchemy import insert

from bot.settings import Settings
from bot.storage.db import Unanswered, utcnow
from bot.storage.migrate import upgrade
from tests.helpers import bot_database, run_bot_with


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bot_with(settings, "unanswered", *args)


def _seed(settings: Settings) -> None:
    if settings.uses_sqlite:
        upgrade(settings)
    now = utcnow()
    rows = [
        ("ราคาทองวันนี้", "out_of_scope", 0.97, now - dt.timedelta(days=10)),
        ("เริ่ม", "help", 0.574, now - dt.timedelta(hours=2)),
        ('ขอสูตร "ผัดไทย", หน่อย\nด่วน', None, None, now - dt.timedelta(minutes=5)),
    ]
    with bot_database(settings) as engine, engine.begin() as conn:
        for text, best, confidence, at in rows:
            conn.execute(
                insert(Unanswered).values(
                    text=text, best_intent=best, confidence=confidence, created_at=at
                )
            )


def test_lists_newest_first_with_time_guess_and_confidence(mode_settings: Settings) -> None:
    _seed(mode_settings)
    result = _cli(mode_settings)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert "BEST GUESS" in header and "TEXT" in header
    assert len(lines) == 3
    assert "ผัดไทย" in lines[0] and "ด่วน" in lines[0]  # one line per message
    assert "help" in lines[1] and "0.57" in lines[1] and "เริ่ม" in lines[1]
    assert "out_of_scope" in lines[2] and "0.97" in lines[2]


def test_limit_days_and_csv(mode_settings: Settings) -> None:
    _seed(mode_settings)
    limited = _cli(mode_settings, "--limit", "1").stdout.splitlines()
    assert len(limited) == 2 and "ผัดไทย" in limited[1]
    recent = _cli(mode_settings, "--days", "1").stdout
    assert "เริ่ม" in recent and "ราคาทอง" not in recent

    exported = _cli(mode_settings, "--csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0] == ["time_utc", "best_guess", "confidence", "best_guide", "text"]
    assert rows[1][4] == 'ขอสูตร "ผัดไทย", หน่อย\nด่วน'  # quoting survives
    assert rows[2][1:3] == ["help", "0.574"]
    assert len(rows) == 4


def test_nothing_unanswered_yet(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    upgrade(settings)
    result = _cli(settings)
    assert result.returncode == 0 and "no unanswered messages" in result.stdout
