"""Every table of the schema in ``Base.metadata``, for Alembic and the tests' clean-up.

Most models live in ``bot.storage.db``; a few live beside their queries (operator accounts,
the dashboard's daily counts, hand-off messages) and join ``Base.metadata`` only once their
module is imported. Importing them from ``db`` itself would be circular (they import it, and
``handoff_messages`` imports ``handoff``), so whoever needs the whole schema imports this.
"""

from __future__ import annotations

import bot.insights.records
import bot.storage.accounts
import bot.storage.daily
import bot.storage.handoff_messages
from bot.storage.db import Base

#: Modules whose tables are not in ``bot.storage.db``.
MODULES = (
    bot.insights.records,
    bot.storage.accounts,
    bot.storage.daily,
    bot.storage.handoff_messages,
)

metadata = Base.metadata

__all__ = ["MODULES", "metadata"]
