"""The shared Thai clean-up: one form for text typed, pasted or read from a spreadsheet."""

from __future__ import annotations

import random

import pytest
from pythainlp.util import normalize

from bot.kb.places import clean_text
from bot.nlu.text import normalise
from bot.thai_text import can_cut, clean_thai, thai_digits_to_ascii, thai_order, unicode_form
from bot.tools.import_centres.cells import clean_cell


@pytest.mark.parametrize(
    ("typed", "clean"),
    [
        ("ขอนแก่น\u200b", "ขอนแก่น"),  # zero-width space from copy and paste
        ("\ufeffเชียง\u200cใหม่\u00ad", "เชียงใหม่"),  # BOM, zero-width non-joiner, soft hyphen
        ("ＳＭＥ ２๕๖๘", "SME 2๕๖๘"),  # full-width Latin and digits; Thai digits stay here
        ("ทำ", "ทำ"),
        ("ท\u0e4d\u0e32", "ทำ"),  # sara am typed as nikhahit + sara aa
        ("\uff33\uff28\uff2f\uff30\uff25\uff25", "SHOPEE"),
    ],
)
def test_unicode_form(typed: str, clean: str) -> None:
    assert unicode_form(typed) == clean


def test_nfkc_splits_sara_am_and_unicode_form_joins_it_again() -> None:
    """NFKC turns ำ into ํ + า; dictionaries and the place tables spell it as one letter."""
    assert unicode_form("\u0e33") == "\u0e33"
    assert unicode_form("กำแพงเพชร") == "กำแพงเพชร"


def test_thai_digits() -> None:
    assert thai_digits_to_ascii("๑๓/๐๖/๒๕๖๘") == "13/06/2568"
    assert thai_digits_to_ascii("โทร ๐๒-๑๒๓ ๔๕๖๗") == "โทร 02-123 4567"
    assert thai_digits_to_ascii("no digits") == "no digits"


@pytest.mark.parametrize(
    ("typed", "fixed"),
    [
        ("เเม่ฮ่องสอน", "แม่ฮ่องสอน"),  # two sara e typed for sara ae
        ("นานาาา", "นานา"),  # a vowel typed again and again
        ("ค่่า", "ค่า"),  # a tone mark typed twice
        ("แม่", "แม่"),  # clean text is left alone
    ],
)
def test_thai_order(typed: str, fixed: str) -> None:
    assert thai_order(typed) == fixed
    assert clean_thai(typed) == fixed


def test_thai_order_is_pythainlp_normalize_only_faster() -> None:
    """The quick check skips pythainlp's slow normalize only when it would change nothing,
    vowels repeated across a space included."""
    rng = random.Random(11)
    letters = [chr(c) for c in range(0x0E01, 0x0E5C)] + [" ", " ", "a"]
    for _ in range(20_000):
        text = " ".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 8))).split())
        if text:
            assert thai_order(text) == normalize(text), repr(text)
    assert thai_order("เ เ") == normalize("เ เ") == "เ"


@pytest.mark.parametrize(
    ("s", "i", "ok"),
    [
        ("เมือง", 0, True),
        ("เมือง", 1, False),  # after a leading vowel
        ("เมือง", 2, False),  # before a vowel above
        ("เมือง", 5, True),
        ("นาคา", 2, True),
        ("นาคา", 1, False),  # before sara aa
    ],
)
def test_can_cut(s: str, i: int, ok: bool) -> None:
    assert can_cut(s, i) is ok


def test_the_nlu_the_places_and_the_import_share_it() -> None:
    """What differs stays with each caller: the NLU also reads Thai digits as Arabic ones,
    the places lower-case, the import keeps a cell's letters as written."""
    pasted = "\u200bＢＫＫ เเม่ ๑๒\u200c"
    assert normalise(pasted) == "bkk แม่ 12"
    assert clean_text(pasted) == "bkk แม่ ๑๒"
    assert clean_cell(pasted) == "BKK เเม่ ๑๒"
