"""Events about the chat itself: unfollow, and being added to groups or rooms.

The bot serves one-to-one chats; in a group it says so once and stays quiet.
"""

from __future__ import annotations

from bot.dialogue.router import Router, Turn
from bot.insights import capture, records
from bot.storage.queries import deactivate

router = Router("chat_events")


@router.event("unfollow")
async def unfollowed(turn: Turn) -> None:
    """Blocked or unfriended: forget the open conversation and stop every push notice.

    The user row records ``following=False``. Following again does not turn notices back
    on by itself: the user subscribes again when they want them.
    """
    turn.end()
    user = turn.event.user_id
    if user and turn.event.one_to_one:
        turn.write(lambda s: deactivate(s, user))
    capture.note(turn, records.UNFOLLOWED)


@router.event("join", "memberJoined")
async def joined_group(turn: Turn) -> None:
    """Added to a group or room: explain that the bot talks one-to-one."""
    if turn.event.type == "join":
        turn.say("chat_events.group_note")


@router.event("leave", "memberLeft")
async def left_group(turn: Turn) -> None:
    """Removed from a group: nothing to say (LINE gives no reply token)."""
