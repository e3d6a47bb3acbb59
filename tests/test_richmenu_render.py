"""Rich menus from knowledge/richmenus.yaml: images within LINE's limits, bodies LINE accepts.

The shipped menus render at their exact size and under 1 MB, with areas inside the image
and apart; their request bodies validate against the spec's ``RichMenuRequest``; and a
broken ``richmenus.yaml`` is refused with its file and line. The PNGs are written to
``test-output/richmenu/`` so a person can look at them.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.kb.loader import Knowledge, load_knowledge
from bot.kb.schemas import RICHMENU_MAX_AREAS, RICHMENU_SIZES
from bot.richmenu.definitions import LOCATION_PICKER_URI, request_body
from bot.richmenu.render import BOLD, MAX_BYTES, REGULAR, render
from tests.fakeline.validate import format_path, load_validator
from tests.helpers import ROOT

OUT = ROOT / "test-output" / "richmenu"
INTENTS = ROOT / "intents"


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    result = load_knowledge(ROOT / "knowledge", also=(INTENTS,))
    assert result.problems == []
    assert result.knowledge is not None
    return result.knowledge


def _spec_problems(name: str, value: Any) -> list[str]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    load_validator().schemas.check({"$ref": f"#/components/schemas/{name}"})(value, (), out)
    return [f"{format_path(p)}: {m}" if p else m for p, m in out]


def test_shipped_menus_newcomer_is_default_and_business_exists(kb: Knowledge) -> None:
    assert {"newcomer", "business"} <= set(kb.richmenus)
    assert [m.id for m in kb.richmenus.values() if m.default] == ["newcomer"]
    newcomer = kb.richmenus["newcomer"]
    assert [a.intent for a in newcomer.areas] == [
        "start_assessment",
        "find_course",
        None,
        "help",
    ]
    assert newcomer.areas[2].location_picker
    business = kb.richmenus["business"]
    assert [a.intent for a in business.areas] == [
        "my_profile",
        "export_programme",
        "subscribe",
        "contact_staff",
    ]


def test_every_menu_renders_within_lines_limits(kb: Knowledge) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for menu in kb.richmenus.values():
        png = render(menu, kb)
        (OUT / f"{menu.id}.png").write_bytes(png)
        assert len(png) <= MAX_BYTES
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        assert image.size == RICHMENU_SIZES[menu.size] == (menu.width, menu.height)
        assert 1 <= len(menu.areas) <= RICHMENU_MAX_AREAS
        for i, area in enumerate(menu.areas):
            assert area.label.strip()
            b = area.bounds
            assert b.x + b.width <= menu.width and b.y + b.height <= menu.height
            assert not any(b.overlaps(other.bounds) for other in menu.areas[:i])
            # The tile is drawn: the centre of the area has the area's colour... except
            # where the label is; a point near the tile's corner, inside the margin, is.
            corner = image.convert("RGB").getpixel((b.x + 60, b.y + b.height - 60))
            colour = area.colour or menu.tile_colour
            assert corner == tuple(int(colour[k : k + 2], 16) for k in (1, 3, 5))


def test_render_by_id_is_deterministic(kb: Knowledge) -> None:
    assert render("newcomer", kb) == render(kb.richmenus["newcomer"], kb)


def test_thai_marks_are_drawn_within_the_tile(kb: Knowledge) -> None:
    """Upper tone marks (ที่, ้) must not be clipped or collide with the tile's edge."""
    menu = kb.richmenus["business"]
    area = next(a for a in menu.areas if a.intent == "contact_staff")  # คุยกับเจ้าหน้าที่
    image = Image.open(io.BytesIO(render(menu, kb))).convert("RGB")
    b = area.bounds
    tile = tuple(int((area.colour or "")[k : k + 2], 16) for k in (1, 3, 5))
    crop = image.crop((b.x + 40, b.y + 40, b.x + b.width - 40, b.y + b.height - 40))
    ink = [
        (x, y)
        for y in range(0, crop.height, 4)
        for x in range(0, crop.width, 4)
        if crop.getpixel((x, y)) != tile
    ]
    assert ink, "no text drawn"
    xs, ys = [p[0] for p in ink], [p[1] for p in ink]
    assert min(xs) > 0 and max(xs) < crop.width - 4
    assert min(ys) > 0 and max(ys) < crop.height - 4


def test_fonts_and_licence_ship_with_the_package() -> None:
    fonts = BOLD.parent
    assert REGULAR.is_file() and BOLD.is_file()
    assert "SIL OPEN FONT LICENSE Version 1.1" in (fonts / "OFL.txt").read_text()
    source = (fonts / "SOURCE.md").read_text()
    assert "fonts-noto-core" in source and "OFL" in source
    # The wheel takes every file under bot/ (pyproject: packages = ["bot", ...]).
    assert fonts.is_relative_to(ROOT / "bot")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'packages = ["bot", "handlers"]' in pyproject


def test_request_bodies_validate_against_the_spec(kb: Knowledge) -> None:
    for menu in kb.richmenus.values():
        body = request_body(menu, kb)
        assert _spec_problems("RichMenuRequest", body) == []
        assert body["size"] == {"width": menu.width, "height": menu.height}
        assert body["chatBarText"] == menu.chat_bar_text
        assert len(body["chatBarText"]) <= 14
        assert len(body["areas"]) == len(menu.areas) <= 20
        for area, sent in zip(menu.areas, body["areas"], strict=True):
            assert sent["bounds"] == area.bounds.model_dump()
            action = sent["action"]
            if area.intent:
                assert action == {
                    "type": "postback",
                    "label": area.label,
                    "data": f"action=go&i={area.intent}",
                    "displayText": area.label,
                }
            else:
                assert action["type"] == "uri"
                assert action["uri"].startswith("https://")
    newcomer = request_body("newcomer", kb)
    assert newcomer["selected"] is True
    assert newcomer["areas"][2]["action"] == {
        "type": "uri",
        "label": "ศูนย์ดิจิทัลใกล้ฉัน",
        "uri": LOCATION_PICKER_URI,
    }


def test_postbacks_route_to_their_intents(kb: Knowledge) -> None:
    """The postback a tile sends is the one the router runs as ``action=go&i=<intent>``."""
    from bot.dialogue.router import GO
    from bot.line.messages import parse_postback

    for menu in kb.richmenus.values():
        for area, sent in zip(menu.areas, request_body(menu, kb)["areas"], strict=True):
            if area.intent:
                assert parse_postback(sent["action"]["data"]) == {"action": GO, "i": area.intent}


# -- a broken richmenus.yaml is refused, with file and line ---------------------------


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", target)
    shutil.copytree(INTENTS, tmp_path / "intents")
    return target


def _problems(folder: Path) -> list[str]:
    result = load_knowledge(folder, also=(folder.parent / "intents",))
    assert result.knowledge is None
    return [str(p) for p in result.problems]


def _line(text: str, needle: str, after: int = 0) -> int:
    """The 1-based line of the first ``needle`` at or after line ``after``."""
    lines = text.splitlines()
    return next(i + 1 for i in range(after, len(lines)) if needle in lines[i])


def test_unknown_intent_is_refused_at_its_line(kb_copy: Path) -> None:
    path = kb_copy / "richmenus.yaml"
    text = path.read_text().replace("intent: find_course", "intent: find_coarse")
    path.write_text(text)
    line = _line(text, "intent: find_coarse")
    assert _problems(kb_copy) == [
        f"{path}:{line}: newcomer.areas[1].intent: unknown intent 'find_coarse'; use an "
        "intent name from intents/*.yaml such as start_assessment or find_course"
    ]


def test_area_outside_the_image_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "richmenus.yaml"
    text = path.read_text()
    old = "bounds: {x: 1250, y: 843, width: 1250, height: 843}"
    text = text.replace(old, "bounds: {x: 1250, y: 843, width: 1300, height: 843}", 1)
    path.write_text(text)
    line = _line(text, "width: 1300")
    assert _problems(kb_copy) == [
        f"{path}:{line}: newcomer.areas[3].bounds: x 1250 + width 1300, y 843 + height 843 "
        "goes outside the full image (2500x1686)"
    ]


def test_overlapping_areas_are_refused(kb_copy: Path) -> None:
    path = kb_copy / "richmenus.yaml"
    text = path.read_text()
    old = "bounds: {x: 1250, y: 0, width: 1250, height: 843}"
    text = text.replace(old, "bounds: {x: 1200, y: 0, width: 1250, height: 843}", 1)
    path.write_text(text)
    line = _line(text, "x: 1200")
    first = _line(text, "- label:", _line(text, "id: newcomer"))
    assert _problems(kb_copy) == [
        f"{path}:{line}: newcomer.areas[1].bounds: overlaps areas[0] ('แบบประเมินทักษะ', "
        f"line {first}); areas must not overlap"
    ]


def test_after_assessment_on_the_default_or_twice_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "richmenus.yaml"
    text = path.read_text().replace(
        "    default: true\n", "    default: true\n    after_assessment: true\n"
    )
    path.write_text(text)
    first = _line(text, "    after_assessment: true")
    second = _line(text, "    after_assessment: true", first)
    assert _problems(kb_copy) == [
        f"{path}:{first}: newcomer.after_assessment: the default menu is everyone's already; "
        "give after_assessment to another menu",
        f"{path}:{second}: business.after_assessment: another menu already has "
        f"after_assessment: true (line {first}); mark at most one",
    ]


def test_too_many_areas_are_refused(kb_copy: Path) -> None:
    path = kb_copy / "richmenus.yaml"
    text = path.read_text()
    tiles = "".join(
        f'      - label: "ปุ่ม {n}"\n'
        f"        bounds: {{x: {(n % 7) * 357}, y: {(n // 7) * 562}, width: 357, height: 562}}\n"
        "        intent: help\n"
        for n in range(21)
    )
    start = text.index("  - id: business")
    head, tail = text[:start], text[start:]
    areas = tail.index("    areas:\n") + len("    areas:\n")
    text = head + tail[:areas] + tiles
    path.write_text(text)
    line = _line(text, "    areas:", _line(text, "id: business"))
    assert _problems(kb_copy) == [
        f"{path}:{line}: business.areas: 21 areas; LINE allows at most 20"
    ]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            'chat_bar_text: "เมนู"',
            'chat_bar_text: "เมนูสำหรับผู้ใช้ใหม่ทุกคน"',
            "newcomer.chat_bar_text",
            "is too long (25 characters; LINE allows 14)",
        ),
        (
            "\n        location_picker: true",
            '\n        uri: "http://example.com/"',
            "newcomer.areas[2].uri",
            "'http://example.com/' is not in the expected form "
            "(a web address starting with https:// (http:// is not allowed))",
        ),
        (
            "        intent: help\n",
            "        intent: help\n        location_picker: true\n",
            "newcomer.areas[3].intent",
            "give exactly one action: intent, uri or location_picker: true "
            "(found: intent, location_picker)",
        ),
        (
            "    size: full\n    default: true",
            "    size: full\n    default: false",
            "default",
            "no menu has default: true; mark exactly one",
        ),
        (
            "  - id: business",
            "  - id: Business Menu",
            "Business Menu.id",
            "'Business Menu' is not in the expected form "
            "(at most 32 lowercase letters, digits, _ and -)",
        ),
        (
            '        colour: "#F4511E"',
            '        colour: "orange"',
            "newcomer.areas[2].colour",
            "'orange' is not in the expected form (a colour written #RRGGBB, such as #06C755)",
        ),
    ],
)
def test_broken_fields_are_refused(
    kb_copy: Path, old: str, new: str, field: str, message: str
) -> None:
    path = kb_copy / "richmenus.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    problems = _problems(kb_copy)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:")
    assert problems[0].split(": ", 1)[1] == f"{field}: {message}"
