"""``bot serve`` in Redis mode builds the intent engine and the handlers on first use; a
console page that needs them first builds them off the event loop, so webhooks arriving in
the meantime are still acknowledged at once."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bot.services import Services
from bot.settings import Settings
from bot.storage.migrate import upgrade
from tests.conftest import REDIS_URL, run
from tests.helpers import ROOT, run_command


def test_first_use_builds_the_engine_without_stalling_the_loop(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    upgrade(settings)
    services = Services.build(settings, lazy=True)

    async def scenario() -> tuple[float, float, bool]:
        try:
            await services.start_knowledge()
            assert services._nlu is None and services._dispatcher is None  # nothing yet
            gaps: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:  # stands for the webhooks this process acknowledges
                last = time.monotonic()
                while not done.is_set():
                    await asyncio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)  # the ticker is running before the build starts
            started = time.monotonic()
            await services.ready()
            took = time.monotonic() - started
            await asyncio.sleep(0.05)  # one more tick: a stalled loop shows as one long gap
            done.set()
            await tick
            return took, max(gaps), bool(services.nlu.intents)
        finally:
            await services.close()

    took, worst_gap, has_intents = run(scenario())
    assert has_intents
    assert worst_gap < max(0.25, took / 3), (took, worst_gap)  # the loop kept turning


def test_serving_processes_leave_console_only_libraries_unloaded(tmp_path: Path) -> None:
    """``bot serve`` (Redis mode) and ``bot worker`` never load what only a console page or a
        training run needs: SciPy's optimiser (the insights map, about 50 MB of memory), openpyxl
        (the Excel download, about 14 MB) and scikit-learn (training, about 75 MB). ``bot serve``,
        started and serving its knowledge, also leaves out what only sending or classifying
        needs: aiohttp (about 10 MB) and NumPy (about 11 MB). Neither loads the LINE SDK (about
    34 MB): only rich menus need it (``test_line_client``)."""
    code = (
        "import asyncio, json, sys\n"
        "from pathlib import Path\n"
        "from bot.settings import Settings\n"
        "from bot.web.app import create_app\n"
        "from bot.services import Services\n"
        "heavy = ('scipy', 'openpyxl', 'sklearn')\n"
        "s = Settings(_env_file=None, bot_env='test', line_channel_secret='s' * 32,\n"
        "    line_channel_access_token='t', redis_url=" + repr(REDIS_URL) + ",\n"
        "    data_dir=Path("
        + repr(str(tmp_path))
        + "), knowledge_dir=Path("
        + repr(str(ROOT / "knowledge"))
        + "),\n"
        "    intents_dir=Path(" + repr(str(ROOT / "intents")) + "))\n"
        "app = create_app(s)\n"
        "async def started():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        return [m for m in heavy + ('linebot', 'aiohttp', 'numpy') if m in sys.modules]\n"
        "serve = asyncio.run(started())\n"
        "services = Services.build(s)\n"
        "services.nlu.parse('อยากเรียนขายของออนไลน์')\n"
        "services.line_client()\n"
        "worker = [m for m in heavy + ('linebot',) if m in sys.modules]\n"
        "print(json.dumps({'serve': serve, 'worker': worker}))\n"
    )
    done = run_command([sys.executable, "-c", code], timeout=180, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"serve": [], "worker": []}
    # and the code's reply keys were read in the child, not here (see test_reply_keys)
    assert "reading them here" not in done.stdout + done.stderr
