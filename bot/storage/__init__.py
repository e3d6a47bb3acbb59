"""The database: models, migrations and the queries handlers share."""


class SchemaBehind(RuntimeError):
    """The database was not upgraded to the code's schema (``bot db upgrade``).

    Defined here, not in ``bot.cli``: ``python -m bot.cli`` runs that module as ``__main__``,
    and the command modules that import ``bot.cli`` would raise another class than the one
    ``main`` catches."""
