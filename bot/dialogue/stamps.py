"""Stale buttons: every flow button carries a short token of the state that made it.

LINE keeps old buttons tappable for ever: a "ยืนยัน" of a subscription flow that ended last
week, an assessment answer from before a restart, a "ลบข้อมูล" from a question the person
already cancelled. Each such tap must not act as if it were new.

* A flow gets a random run id (``_run`` in its dialogue answers) when it opens; it rides along
  every step of that flow (``Turn.goto`` merges answers), survives a pause and resume, and is
  gone when the flow ends, so a restart is a new run.
* The token of a state is a short hash of (run id, step): the state with no flow has a token
  too, so a flow's button tapped after the flow ended is old as well.
* After each turn the pipeline adds ``st=<token>`` to every postback of a *stamped* action
  (``Router.postback(..., stamped=True)``) in the answer, with the token of the state the turn
  leaves. A tap whose ``st`` is not the token of the state now is routed to the stale handler
  (``handlers.help``), which says so and shows where the person is now.
* A button with no ``st`` (a push notice, or an answer sent before this existed) is passed to
  its handler as before; the handlers still check what they can.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from bot.dialogue.state import DialogueState
from bot.line.messages import POSTBACK_DATA_MAX_BYTES

if TYPE_CHECKING:
    from bot.dialogue.router import Turn

#: Dialogue answer holding the flow's run id.
RUN_KEY = "_run"
#: Postback parameter holding the token.
STAMP = "st"
#: Route name of a stale tap (the stale handler is registered as ``event("postback:stale")``).
STALE = "postback:stale"


def token(state: DialogueState) -> str:
    """The short token of a state: run id and step (the no-flow state has one too)."""
    run = state.answers.get(RUN_KEY, "") if state.step else ""
    digest = hashlib.blake2s(f"{run}|{state.step or ''}".encode(), digest_size=4)
    return digest.hexdigest()


def is_stale(turn: Turn, stamped: frozenset[str]) -> bool:
    """Is this postback a stamped button made in another state than the user's now?"""
    data = turn.postback
    if data.get("action") not in stamped or STAMP not in data:
        return False
    return data[STAMP] != token(turn.state)


def open_run(turn: Turn) -> None:
    """Give a flow that has just opened (no run id yet) its run id."""
    final = turn.next_state or turn.state
    if not final.step or RUN_KEY in final.answers:
        return
    if final.step not in turn.services.dispatcher.steps:
        return  # the paused marker: its flow's run id is kept inside it
    answers = {**final.answers, RUN_KEY: secrets.token_hex(4)}
    turn.next_state = DialogueState(step=final.step, answers=answers)


def stamp(
    messages: list[dict[str, Any]], stamped: frozenset[str], tok: str
) -> list[dict[str, Any]]:
    """LINE JSON messages with ``st=<tok>`` on the postbacks of stamped actions."""
    return [_walk(m, stamped, tok) for m in messages]


def _walk(node: Any, stamped: frozenset[str], tok: str) -> Any:
    if isinstance(node, list):
        return [_walk(n, stamped, tok) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _walk(v, stamped, tok) for k, v in node.items()}
    if out.get("type") == "postback" and isinstance(out.get("data"), str):
        out["data"] = _stamped(out["data"], stamped, tok)
    return out


def _stamped(data: str, stamped: frozenset[str], tok: str) -> str:
    params = dict(parse_qsl(data, keep_blank_values=True))
    if params.get("action") not in stamped or STAMP in params:
        return data  # not a flow's button, or made earlier (a held answer): keep its token
    params[STAMP] = tok
    encoded = urlencode(params)
    # Ids only go in postbacks, far below LINE's 300 bytes; never make one LINE refuses.
    return encoded if len(encoded.encode()) <= POSTBACK_DATA_MAX_BYTES else data
