"""Draw a rich menu's image from the knowledge, within LINE's limits.

Every area becomes a rounded tile in its colour with its label (bold) and caption, in
Noto Sans Thai shipped in ``fonts/`` (SIL OFL, see ``fonts/SOURCE.md``). Thai needs text
shaping so that vowels and tone marks sit on their consonant (``ที่``, ``ดิ``); Pillow's
Raqm layout does that and is used whenever the Pillow build has it. Text shrinks until it
fits its tile. The PNG is the menu's exact size and at most 1 MB, as LINE requires.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from bot.kb.loader import Knowledge
from bot.kb.schemas import RichMenu, RichMenuArea
from bot.richmenu.definitions import menu_of

FONTS = Path(__file__).with_name("fonts")
REGULAR = FONTS / "NotoSansThai-Regular.ttf"
BOLD = FONTS / "NotoSansThai-Bold.ttf"
#: LINE's limit on a rich menu image.
MAX_BYTES = 1024 * 1024
#: Space between tiles and around text, as a share of the shorter side of a tile.
GAP = 12
PADDING = 0.08
CORNER = 36
#: Label height as a share of the tile's height, and the caption's size next to it.
LABEL_SHARE = 0.17
CAPTION_RATIO = 0.5
MIN_LABEL = 40


def layout_engine() -> ImageFont.Layout:
    """Raqm (real Thai shaping) when this Pillow has it, else Pillow's basic layout."""
    return ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC


@functools.cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The shipped Thai font at ``size`` pixels."""
    return ImageFont.truetype(str(BOLD if bold else REGULAR), size, layout_engine=layout_engine())


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _fitting(text: str, width: int, size: int, bold: bool) -> ImageFont.FreeTypeFont:
    """The largest font not above ``size`` whose rendering of ``text`` fits ``width``."""
    while size > MIN_LABEL // 2:
        f = font(size, bold)
        if f.getlength(text) <= width:
            return f
        size -= max(2, size // 20)
    return font(size, bold)


def _draw_area(draw: ImageDraw.ImageDraw, menu: RichMenu, area: RichMenuArea) -> None:
    b = area.bounds
    box = (b.x + GAP, b.y + GAP, b.x + b.width - 1 - GAP, b.y + b.height - 1 - GAP)
    draw.rounded_rectangle(box, radius=CORNER, fill=_rgb(area.colour or menu.tile_colour))
    ink = _rgb(area.text_colour or menu.text_colour)
    inner_w = int((b.width - 2 * GAP) * (1 - 2 * PADDING))
    label_font = _fitting(area.label, inner_w, max(MIN_LABEL, int(b.height * LABEL_SHARE)), True)
    # Lines are stacked by the font's ascent and descent, which leave room for Thai marks
    # above and below, so a label with tone marks sits where one without them does.
    lines = [(area.label, label_font)]
    if area.caption:
        cap_size = max(MIN_LABEL // 2, int(label_font.size * CAPTION_RATIO))
        lines.append((area.caption, _fitting(area.caption, inner_w, cap_size, False)))
    heights = [sum(f.getmetrics()) for _, f in lines]
    gap = int(label_font.size * 0.15)
    total = sum(heights) + gap * (len(lines) - 1)
    centre_x = b.x + b.width / 2
    top = b.y + (b.height - total) / 2
    for (text, f), height in zip(lines, heights, strict=True):
        ascent, _ = f.getmetrics()
        draw.text((centre_x, top + ascent), text, font=f, fill=ink, anchor="ms")
        top += height + gap


def draw(menu: RichMenu) -> Image.Image:
    """The menu's image, exactly LINE's size for it."""
    image = Image.new("RGB", (menu.width, menu.height), _rgb(menu.background))
    pen = ImageDraw.Draw(image)
    for area in menu.areas:
        _draw_area(pen, menu, area)
    return image


def render(menu: RichMenu | str, knowledge: Knowledge) -> bytes:
    """The menu's image as PNG bytes within LINE's limits (exact size, at most 1 MB).

    ``menu`` is a menu or its id in ``knowledge``. Flat colours compress well; an image
    still above the limit is reduced to 256 colours, and one above it even then is an error.
    """
    image = draw(menu_of(menu, knowledge))
    data = _png(image)
    if len(data) > MAX_BYTES:
        data = _png(image.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    if len(data) > MAX_BYTES:
        raise ValueError(f"rich menu image is {len(data)} bytes; LINE allows {MAX_BYTES}")
    return data


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
