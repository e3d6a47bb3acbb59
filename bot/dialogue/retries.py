"""Counting answers a step did not understand, so no conversation loops forever.

Every step that asks again keeps the count in its dialogue answers under a key of its own
(several flows may leave answers behind, so the key says whose count it is). ``miss``
reads it, adds this miss, and says whether the user may try once more; the step stores
``Miss.saved()`` when it asks again, and gives up (with its own reply) when ``again`` is
False::

    tries = miss(turn, "ctr_tries", limit=MAX_TRIES)
    if not tries.again:
        turn.end()
        turn.say("centres.give_up", *main_menu(turn))
        return
    turn.goto(WHERE, **tries.saved())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.dialogue.router import Turn


@dataclass(frozen=True)
class Miss:
    """One answer not understood: which one in a row, and whether another try is allowed."""

    key: str
    #: This miss's number in a row (1: the first).
    count: int
    #: Misses after which the step gives up.
    limit: int

    @property
    def again(self) -> bool:
        """May the user answer once more (True), or does the step give up now?"""
        return self.count <= self.limit

    def saved(self) -> dict[str, int]:
        """The count as dialogue answers, for the ``goto`` that asks again."""
        return {self.key: self.count}


def miss(turn: Turn, key: str, limit: int) -> Miss:
    """Count a misunderstood answer: the count so far under ``key`` in the dialogue answers
    (those this turn already changed, else those stored) plus this one; the user may try
    again while it is at most ``limit``."""
    answers = (turn.next_state or turn.state).answers
    return Miss(key, int(answers.get(key) or 0) + 1, limit)
