"""Run the fake LINE API standalone (for benchmarks): ``python -m tests.fakeline``.

Prints its base URL, serves until interrupted (Ctrl-C / SIGTERM), then prints a summary.
Records are capped (``--max-records``) so a long benchmark cannot exhaust memory; counts
and errors stay complete and are served at ``GET /__fakeline/stats``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from .server import FakeLine


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve in the foreground, report on exit."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakeline", description=__doc__)
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--max-records",
        type=int,
        default=10_000,
        help="keep only the newest N requests in memory (default 10000)",
    )
    parser.add_argument("--quota-limit", type=int, default=None)
    args = parser.parse_args(argv)

    fake = FakeLine(args.host, args.port, max_records=args.max_records)
    fake.quota_limit = args.quota_limit
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    fake.start()
    print(fake.base_url, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        stats = fake.stats()
        fake.stop()
        print(
            json.dumps(
                {k: stats[k] for k in ("requests", "by_kind", "quota_usage")}, ensure_ascii=False
            ),
            file=sys.stderr,
        )
        for line in stats["errors"]:
            print("error:", line, file=sys.stderr)
    return 1 if stats["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
