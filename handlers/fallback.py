"""What the bot says when nothing else fits: unknown text, media, odd postbacks."""

from __future__ import annotations

from bot.router import Router, Turn

router = Router("fallback")


@router.event("message:sticker")
async def sticker(turn: Turn) -> None:
    """A sticker is friendly: answer in kind, then say what the bot understands."""
    turn.say("fallback.sticker")


@router.event("message:*")
async def media(turn: Turn) -> None:
    """Images, audio, video and files: the bot reads text (and shared locations)."""
    turn.say("fallback.media")


@router.fallback()
async def not_understood(turn: Turn) -> None:
    """Text the intent engine could not place, or a button from an old message."""
    if turn.event.type == "postback":
        turn.say("fallback.stale_button")
    else:
        turn.say("fallback.not_understood")
