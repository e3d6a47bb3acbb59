"""Thai understanding: what a user's message wants (intent) and what it names (entities).

Example phrases come from ``intents/*.yaml`` and the spelling table ``intents/spelling.csv``
(operators edit them, never code); topics, markets, sectors and places come from the
knowledge snapshot. See ``engine.py`` for the pipeline and ``model.py`` for the classifier.

``bot nlu parse`` prints ``Parse.to_dict()``: ``text``, ``normalised``, ``intent`` (None when
unsure), ``confidence``, ``uncertain``, ``candidates`` (``{intent, confidence}``, best first)
and ``entities`` (``{type, value, text, score}``; ``value`` is a topic id, a DOPA code or a
market code). A place name that several places carry ("หนองบัว") gives one entity per
level whose ``value`` is the first candidate and whose extra ``candidates`` field lists every
code the name may mean (2 digits: province, 4: district, 6: subdistrict): ask the user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.nlu.data import REQUIRED_INTENTS, Example, IntentFileError, read_intents
from bot.nlu.entities import Entity
from bot.nlu.text import Tokeniser, normalise

if TYPE_CHECKING:
    from bot.nlu.engine import (
        OUT_OF_SCOPE,
        Candidate,
        IntentEngine,
        Parse,
        build_engine,
        engine_from_examples,
    )


def __getattr__(name: str) -> Any:
    """The names of ``bot.nlu.engine`` (those of ``__all__`` not imported above), imported on
    first use. Why: the engine brings NumPy (~11 MB), and ``bot serve`` in Redis mode needs
    the text tools (``normalise``, the tokeniser) for its knowledge, but never classifies
    unless an operator opens the inbox or the simulator."""
    if name in __all__:
        from bot.nlu import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OUT_OF_SCOPE",
    "REQUIRED_INTENTS",
    "Candidate",
    "Entity",
    "Example",
    "IntentEngine",
    "IntentFileError",
    "Parse",
    "Tokeniser",
    "build_engine",
    "engine_from_examples",
    "normalise",
    "read_intents",
]
