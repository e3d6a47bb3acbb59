"""Capability modules: one router each, listed in ``bot.services.HANDLER_MODULES``."""
