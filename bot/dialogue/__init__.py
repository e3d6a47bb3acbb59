"""Choosing a handler for a turn: the router, the turn, named steps and per-user dialogue state."""
