"""The soak's short version: about 60 s of LINE traffic at 100 events/s from 5,000 users with
one worker SIGKILLed and Redis killed and restarted, through ``benchmarks/soak.py`` run as a
subprocess (real ``bot serve`` and ``bot worker`` processes, a redis-server and a PostgreSQL
cluster of the script's own, the fake LINE API, a generator that redelivers like LINE).

Why a subprocess: the soak kills and restarts processes and spawns a generator; in its own
process none of that can disturb the test session. With ``CI=true`` a missing redis-server or
PostgreSQL fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, PG_URL
from tests.helpers import ROOT

SOAK = ROOT / "benchmarks" / "soak.py"
SECONDS, RATE = 60, 100
#: In 60 s a process is still warming up (caches, pools), so the 10 % target of the full run
#: is not meaningful here; this bound still catches a leak that grows with every event.
SHORT_RUN_RSS_GROWTH_PCT = 50.0


def _missing(what: str) -> None:
    message = f"{what} is needed for the soak"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def _own_postgres_possible() -> bool:
    if shutil.which("pg_ctl") and shutil.which("initdb"):
        return True
    return any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


def _shared_postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _figures(output: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in output.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("soak."):
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def test_soak_short_version_loses_nothing_and_answers_once() -> None:
    if shutil.which("redis-server") is None:
        _missing("redis-server (the soak restarts a Redis of its own)")
    if not _own_postgres_possible() and not _shared_postgres_reachable():
        _missing("PostgreSQL (initdb/pg_ctl, or the shared server as a fallback)")
    done = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--seconds",
            str(SECONDS),
            "--rate",
            str(RATE),
            "--faults",
            "kill,redis",
            "--progress-seconds",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    f = _figures(done.stdout)
    # The figures, the lost/twice events and the fault lines; not the bot's log excerpts.
    context = "\n".join(ln for ln in done.stdout.splitlines() if not ln.startswith("# bot-"))

    assert f["soak.events_sent"] == SECONDS * RATE, context
    # Every webhook got its 200, at once or on LINE's redelivery after a 503.
    assert f["soak.webhooks_never_accepted"] == 0, context
    assert f["soak.webhooks_accepted"] == f["soak.events_sent"], context
    # From the users' side: every message answered, none twice, none given up on.
    assert f["soak.lost"] == 0, context
    assert f["soak.unanswered"] == 0, context
    assert f["soak.answered_twice"] == 0, context
    assert f["soak.dead_letters"] == 0, context
    assert f["soak.fake_line_rejections"] == 0, context
    # The faults did happen.
    assert f["soak.recovery.kill.count"] == 1, context
    assert f["soak.recovery.redis.count"] == 1, context
    assert f["soak.webhook_non_200_answers"] > 0, "Redis was down: some webhooks got 503"
    for name in ("serve", "worker1"):
        growth = f[f"soak.rss_growth_pct.{name}"]
        assert growth <= SHORT_RUN_RSS_GROWTH_PCT, f"{name} RSS grew {growth:.1f}%\n{context}"
    assert "TARGET MISSED soak.lost" not in done.stdout
    assert "TARGET MISSED soak.answered_twice" not in done.stdout
