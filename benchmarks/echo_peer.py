"""The peer for end-to-end comparisons: an echo bot built the way LINE's own example is.

What line-bot-sdk-python's ``examples/fastapi-echo`` does, written here for the benchmarks:
``WebhookParser`` (linebot.v3) checks the ``X-Line-Signature`` and parses the body into the
SDK's models; for each text message event ``AsyncMessagingApi.reply_message`` sends the text
back, inline, before the webhook is answered 200 (``"OK"``). Non-text events are ignored.
A bad signature is a 400 (the example's answer; a missing header is a 400 here too, where
the example would fail with a 500). The API client is made in the app's lifespan (aiohttp
wants a running loop) and points at ``--line-api-base-url``, e.g. the fake LINE API.

Served like ``bare_app.py`` and ``bot serve`` (same ``uvicorn.run`` call), so the
difference to the bot is the work per event, and the bot's queue in between.

``python benchmarks/echo_peer.py --host 127.0.0.1 --port 8098 --line-api-base-url
http://127.0.0.1:8091``; the channel secret and access token come from
``LINE_CHANNEL_SECRET`` / ``LINE_CHANNEL_ACCESS_TOKEN`` (what ``_common.bot_env()`` sets)
or ``--channel-secret`` / ``--access-token``; the base URL defaults to ``LINE_API_BASE_URL``.
``GET /healthz`` answers 200 once it serves.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import MessageEvent, TextMessageContent

#: Used when neither the command line nor the environment gives one (the benchmarks' own).
DEFAULT_SECRET = "bench-channel-secret-0123456789ab"
DEFAULT_TOKEN = "bench-channel-access-token-0123456789abcdef"
DEFAULT_LINE_API = "http://127.0.0.1:8091"


def create_app(channel_secret: str, access_token: str, line_api_base_url: str) -> FastAPI:
    """The echo bot, replying through the LINE API at ``line_api_base_url``."""
    parser = WebhookParser(channel_secret)
    configuration = Configuration(host=line_api_base_url, access_token=access_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = AsyncApiClient(configuration)
        app.state.line_bot_api = AsyncMessagingApi(client)
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.post("/callback")
    async def handle_callback(request: Request) -> str:
        """Check the signature, parse, reply to every text message with its text, then 200."""
        signature = request.headers.get("X-Line-Signature", "")
        body = (await request.body()).decode()
        try:
            events = parser.parse(body, signature)
        except InvalidSignatureError:
            raise HTTPException(status_code=400, detail="Invalid signature") from None
        line_bot_api: AsyncMessagingApi = request.app.state.line_bot_api
        for event in events:
            if not isinstance(event, MessageEvent):
                continue
            if not isinstance(event.message, TextMessageContent):
                continue
            await line_bot_api.reply_message(
                ReplyMessageRequest(
                    reply_token=event.reply_token,
                    messages=[TextMessage(text=event.message.text)],
                )
            )
        return "OK"

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Readiness probe for the benchmark harness."""
        return {"status": "ok"}

    return app


def _from_env(name: str, default: str) -> str:
    return os.environ.get(name) or default


#: For ``uvicorn benchmarks.echo_peer:app`` (settings from the environment only).
app = create_app(
    _from_env("LINE_CHANNEL_SECRET", DEFAULT_SECRET),
    _from_env("LINE_CHANNEL_ACCESS_TOKEN", DEFAULT_TOKEN),
    _from_env("LINE_API_BASE_URL", DEFAULT_LINE_API),
)


def main(argv: list[str] | None = None) -> None:
    """Serve on the given host and port until SIGTERM."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument(
        "--line-api-base-url",
        default=_from_env("LINE_API_BASE_URL", DEFAULT_LINE_API),
        help="LINE Messaging API base URL, e.g. the fake's (default: $LINE_API_BASE_URL)",
    )
    parser.add_argument(
        "--channel-secret",
        default=_from_env("LINE_CHANNEL_SECRET", DEFAULT_SECRET),
        help="checks X-Line-Signature (default: $LINE_CHANNEL_SECRET)",
    )
    parser.add_argument(
        "--access-token",
        default=_from_env("LINE_CHANNEL_ACCESS_TOKEN", DEFAULT_TOKEN),
        help="sent as the Bearer token (default: $LINE_CHANNEL_ACCESS_TOKEN)",
    )
    args = parser.parse_args(argv)
    served = create_app(args.channel_secret, args.access_token, args.line_api_base_url)
    uvicorn.run(served, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
