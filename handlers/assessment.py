"""assessment (being built)."""

from __future__ import annotations

from bot.router import Router

router = Router("assessment")
