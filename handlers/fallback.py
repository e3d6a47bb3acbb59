"""What the bot says when nothing else fits: unclear text, media, odd postbacks.

- Unsure (``turn.nlu.uncertain``): "did you mean ...?" with the two or three
  best in-scope guesses as buttons, plus the main menu button as a way out.
- ``out_of_scope``: a polite statement of what the bot can do, and the menu.
- Anything else not understood: ask to rephrase, with the menu.

Every text message that ends here is kept in ``Unanswered`` (the text cut to
500 characters, the time and the engine's best guess, never who sent it), so
operators can see what people ask for and teach the bot (``bot unanswered``);
``UNANSWERED_DAYS`` limits how long (PDPA). Stickers, images, audio, video and
files get a friendly reply that steers back to the menu.
"""

from __future__ import annotations

from bot.content.menu import answer_button, intent_buttons, main_menu
from bot.dialogue.router import Router, Turn
from bot.insights import capture, records
from bot.kb.guides import GUIDE_PREFIX
from bot.line.messages import PostbackAction
from bot.nlu import Parse
from bot.storage.queries import UnansweredText
from handlers.guides import count

router = Router("fallback")

#: How many guesses "did you mean ...?" offers.
MAX_SUGGESTIONS = 3
OUT_OF_SCOPE = "out_of_scope"


def suggestions(turn: Turn, parse: Parse) -> list[str]:
    """The best in-scope guesses (intents or guides) a person can start from a button."""
    guesses = [
        c.intent
        for c in parse.candidates
        if c.intent not in (OUT_OF_SCOPE, parse.excluded) and answer_button(turn, c.intent)
    ]
    return guesses[:MAX_SUGGESTIONS]


def best_guide(parse: Parse | None) -> str | None:
    """The guide the engine thought closest, if any of its guesses is a guide."""
    for c in parse.candidates if parse else ():
        if c.intent.startswith(GUIDE_PREFIX):
            return c.intent[len(GUIDE_PREFIX) :]
    return None


def theme(parse: Parse | None) -> str:
    """What an unanswered message was about, as a code (never its words): the guide the
    engine thought closest, else its best intent, else ""."""
    guide = best_guide(parse)
    if guide:
        return GUIDE_PREFIX + guide
    return (parse.best if parse else None) or ""


def remember(turn: Turn) -> None:
    """Keep the text the bot could not answer for operators (no user id: PDPA).

    Written with the answer; a failure to keep it never costs the user their answer.
    """
    text = turn.text.strip()
    if not text:
        return
    parse = turn.nlu
    best = parse.best if parse else None
    guide = best_guide(parse)
    confidence = None
    if parse is not None:
        confidence = parse.candidates[0].confidence if parse.candidates else parse.confidence

    turn.write(UnansweredText.of(text, best, confidence, guide))
    capture.note(turn, records.UNANSWERED, theme(parse))


@router.fallback()
async def not_understood(turn: Turn) -> None:
    """Text the bot could not place (kept for operators), or a button from an old message."""
    if turn.event.type == "postback":
        turn.say("fallback.stale_button", *main_menu(turn))
        return
    remember(turn)
    parse = turn.nlu
    if parse is not None and parse.intent == OUT_OF_SCOPE:
        turn.outcome = "unanswered"
        turn.say("fallback.out_of_scope", *main_menu(turn))
        return
    if parse is not None and parse.uncertain:
        guesses = suggestions(turn, parse)
        if guesses:
            buttons = tuple(b for b in (answer_button(turn, g) for g in guesses) if b)
            options = ", ".join(f"“{b.label}”" for b in buttons)
            for guess in guesses:
                if guess.startswith(GUIDE_PREFIX):
                    count(turn, guess[len(GUIDE_PREFIX) :], "offered")
            # The menu button is the way out when none of the guesses is right.
            way_out = () if "help" in guesses else _help(turn)
            turn.outcome = "did_you_mean"
            turn.say("fallback.did_you_mean", *buttons, *way_out, options=options)
            return
    turn.outcome = "unanswered"
    turn.say("fallback.not_understood", *main_menu(turn))


def _help(turn: Turn) -> tuple[PostbackAction, ...]:
    return intent_buttons(turn, ["help"])


@router.event("message:sticker")
async def sticker(turn: Turn) -> None:
    """A sticker is friendly: answer warmly and show what the bot can do."""
    turn.say("fallback.sticker", *main_menu(turn))


@router.event("message:*")
async def media(turn: Turn) -> None:
    """Images, audio, video and files: the bot reads text (and shared locations).

    A location shared outside any question lands here too unless the centre
    search registered ``message:location``: point to the centre search.
    """
    if turn.event.message_type == "location":
        turn.say("fallback.location", *intent_buttons(turn, ["find_centre"]), *_help(turn))
        return
    turn.say("fallback.media", *main_menu(turn))
