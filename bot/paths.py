"""Where the shipped knowledge and intent phrases are, in a checkout and in an installed wheel.

Operators edit ``knowledge/`` and ``intents/`` in the project's checkout, and the bot reads
them from the working directory (``KNOWLEDGE_DIR`` and ``INTENTS_DIR``, defaults
``./knowledge`` and ``./intents``). A wheel built from the checkout carries a copy of both
inside the package (``bot/_shipped/``, see ``pyproject.toml``), so ``pip install .`` gives a
bot that serves the shipped knowledge from any working directory. Order of preference:

1. the setting, when it is given;
2. the folder of that name in the working directory;
3. the folder beside the ``bot`` package (a checkout run from elsewhere);
4. the copy inside the installed package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: The copies a wheel carries (absent in a checkout).
SHIPPED = PACKAGE / "_shipped"
#: The checkout's root when the package is used from a checkout (not installed).
CHECKOUT = PACKAGE.parent


def shipped(name: str) -> Path:
    """The shipped ``knowledge`` or ``intents`` folder: the checkout's, else the wheel's copy."""
    beside = CHECKOUT / name
    if beside.is_dir():
        return beside
    return SHIPPED / name


def default_folder(name: str) -> Path:
    """The folder the bot reads when no setting names one: ``./name`` if there, else shipped."""
    here = Path(name)
    if here.is_dir():
        return here
    return shipped(name)
