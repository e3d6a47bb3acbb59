"""The baseline: a FastAPI endpoint that only reads the body, served like ``bot serve`` serves.

``python benchmarks/bare_app.py --host 127.0.0.1 --port 8099``: same uvicorn call as
``bot.cli.cmd_serve`` (auto loop and HTTP parser, no access log, no log config), so the
difference to the bot is the bot's own work per webhook.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

app = FastAPI(docs_url=None, redoc_url=None)


@app.post("/callback")
async def callback(request: Request) -> Response:
    """Read the whole body and answer like the bot does (``{}``, 200)."""
    await request.body()
    return JSONResponse({})


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Readiness probe for the benchmark harness."""
    return {"status": "ok"}


def main() -> None:
    """Serve on the given host and port until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
