"""Alembic migrations for the bot's database (run with ``bot db upgrade``)."""
