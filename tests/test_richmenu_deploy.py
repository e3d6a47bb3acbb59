"""``bot richmenu build|deploy|status`` against the fake LINE API, through the real settings.

LINE_API_BASE_URL and LINE_API_DATA_URL point at the fake (its data host is a path
prefix on the same port), so every call goes through the adapter and the SDK and is
checked against LINE's spec and documented rich menu limits; the ``fake_line`` fixture
fails a test that made a request LINE would refuse.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import main
from bot.kb.loader import Knowledge
from bot.line.calls import PermanentLineError, RetryPolicy
from bot.line.client import LineClient
from bot.richmenu.definitions import request_body
from bot.richmenu.deploy import NAME_PREFIX, parse_name
from tests.fakeline import FakeLine
from tests.fakeline.validate import image_size
from tests.helpers import ROOT

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    """A copy of the shipped knowledge that a test may edit."""
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    return folder


@pytest.fixture
def bot(
    fake_line: FakeLine,
    knowledge_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Run]:
    """``bot("richmenu", "deploy")``: run the command as an operator would; returns
    ``(exit code, stdout, stderr)``."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # no developer .env
    for name, value in {
        "BOT_ENV": "test",
        "LINE_CHANNEL_SECRET": "test-channel-secret-0123456789abcdef",
        "LINE_CHANNEL_ACCESS_TOKEN": "test-access-token",
        "LINE_API_BASE_URL": fake_line.base_url,
        "LINE_API_DATA_URL": fake_line.data_url,
        "KNOWLEDGE_DIR": str(knowledge_dir),
        "INTENTS_DIR": str(ROOT / "intents"),
        "DATA_DIR": str(tmp_path / "data"),
        "LINE_BACKOFF_SECONDS": "0.01",
        "LINE_TIMEOUT_SECONDS": "5",
        "LOG_FORMAT": "text",
    }.items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield run
    # The command installed a handler on the captured stderr, which closes now.
    root.handlers, root.level = handlers, level


@pytest.fixture
def client(fake_line: FakeLine) -> Iterator[Callable[[Callable[[LineClient], Any]], Any]]:
    """``call(lambda c: c.rich_menus())``: one adapter call against the fake."""

    def call(work: Callable[[LineClient], Any]) -> Any:
        async def go() -> Any:
            c = LineClient(
                fake_line.base_url,
                "test-access-token",
                RetryPolicy(attempts=3, timeout=5, backoff=0.01),
                data_url=fake_line.data_url,
            )
            try:
                return await work(c)
            finally:
                await c.close()

        return asyncio.run(go())

    yield call


def _live(fake: FakeLine) -> dict[str, str]:
    """``knowledge menu id -> LINE menu id`` of the bot's menus on the fake."""
    out: dict[str, str] = {}
    for menu_id, menu in fake.rich_menus.items():
        parsed = parse_name(menu["name"])
        assert parsed is not None, menu["name"]
        assert parsed[0] not in out, f"two menus for {parsed[0]}"
        out[parsed[0]] = menu_id
    return out


def _png(width: int, height: int, size: int = 2000) -> bytes:
    """Bytes with a PNG header of that size (the fake reads only the header), ``size`` long."""
    head = (
        b"\x89PNG\r\n\x1a\n"
        + (13).to_bytes(4, "big")
        + b"IHDR"
        + width.to_bytes(4, "big")
        + height.to_bytes(4, "big")
        + b"\x08\x02\x00\x00\x00"
    )
    return head + b"\0" * (size - len(head))


def test_deploy_creates_menus_images_aliases_and_default(
    bot: Run, fake_line: FakeLine, knowledge: Knowledge
) -> None:
    code, out, err = bot("richmenu", "deploy")
    assert code == 0, err
    live = _live(fake_line)
    assert set(live) == set(knowledge.richmenus)
    images = fake_line.rich_menu_images
    for menu_id, line_id in live.items():
        menu = knowledge.richmenus[menu_id]
        media, data = images[line_id]
        assert media == "image/png"
        assert image_size(data) == ("image/png", menu.width, menu.height)
        body = fake_line.rich_menus[line_id]
        expected = request_body(menu, knowledge)
        assert {k: v for k, v in body.items() if k not in ("name", "richMenuId")} == {
            k: v for k, v in expected.items() if k != "name"
        }
        assert body["name"].endswith(menu.name)
        assert f"created {menu_id}: {line_id}" in out
    assert fake_line.rich_menu_aliases == live
    default = next(m.id for m in knowledge.richmenus.values() if m.default)
    assert fake_line.default_rich_menu == live[default]
    # The images went to the data host, everything else to the API host.
    for rec in fake_line.calls("*"):
        assert rec.data_host == (rec.kind == "richmenu_image"), rec.path


def test_second_deploy_changes_nothing(bot: Run, fake_line: FakeLine) -> None:
    assert bot("richmenu", "deploy")[0] == 0
    before = (fake_line.rich_menus, fake_line.rich_menu_aliases, fake_line.default_rich_menu)
    creates = len(fake_line.calls("richmenu_create"))
    code, out, _ = bot("richmenu", "deploy")
    assert code == 0
    assert "nothing to do" in out
    assert len(fake_line.calls("richmenu_create")) == creates
    after = (fake_line.rich_menus, fake_line.rich_menu_aliases, fake_line.default_rich_menu)
    assert after == before


def test_redeploy_replaces_and_deletes_the_old_menus(
    bot: Run, fake_line: FakeLine, knowledge: Knowledge
) -> None:
    assert bot("richmenu", "deploy")[0] == 0
    first = _live(fake_line)
    code, out, err = bot("richmenu", "deploy", "--force")
    assert code == 0, err
    second = _live(fake_line)  # exactly one menu per definition
    assert set(second) == set(knowledge.richmenus)
    assert not set(first.values()) & set(second.values())
    assert fake_line.rich_menu_aliases == second
    default = next(m.id for m in knowledge.richmenus.values() if m.default)
    assert fake_line.default_rich_menu == second[default]
    for old in first.values():
        assert f"deleted menu {old}" in out


def test_a_changed_menu_alone_is_replaced(
    bot: Run, fake_line: FakeLine, knowledge_dir: Path, knowledge: Knowledge
) -> None:
    assert bot("richmenu", "deploy")[0] == 0
    first = _live(fake_line)
    changed = next(m for m in knowledge.richmenus.values() if not m.default)
    path = knowledge_dir / "richmenus.yaml"
    label = changed.areas[0].label
    text = path.read_text(encoding="utf-8")
    assert text.count(f'"{label}"') == 1
    path.write_text(text.replace(f'"{label}"', f'"{label[:-1]}"'), encoding="utf-8")
    code, out, err = bot("richmenu", "deploy")
    assert code == 0, err
    second = _live(fake_line)
    for menu_id in knowledge.richmenus:
        if menu_id == changed.id:
            assert second[menu_id] != first[menu_id]
        else:
            assert second[menu_id] == first[menu_id]
    assert fake_line.rich_menu_aliases == second
    assert list(fake_line.rich_menus) == [m for m in fake_line.rich_menus if m in second.values()]
    assert f"alias {changed.id} -> {second[changed.id]} (updated)" in out


def test_deploy_leaves_other_menus_alone_and_removes_its_orphans(
    bot: Run,
    fake_line: FakeLine,
    client: Callable[[Callable[[LineClient], Any]], Any],
    knowledge: Knowledge,
) -> None:
    menu = next(iter(knowledge.richmenus.values()))
    foreign = {**request_body(menu, knowledge), "name": "made in LINE's console"}
    orphan = {**request_body(menu, knowledge), "name": f"{NAME_PREFIX}gone@0123 old"}

    async def prepare(c: LineClient) -> tuple[str, str]:
        foreign_id = await c.create_rich_menu(foreign)
        await c.set_rich_menu_image(foreign_id, _png(menu.width, menu.height))
        await c.create_rich_menu_alias("console-menu", foreign_id)
        orphan_id = await c.create_rich_menu(orphan)
        await c.set_rich_menu_image(orphan_id, _png(menu.width, menu.height))
        await c.create_rich_menu_alias("gone", orphan_id)
        return foreign_id, orphan_id

    foreign_id, orphan_id = client(prepare)
    code, out, err = bot("richmenu", "deploy")
    assert code == 0, err
    assert foreign_id in fake_line.rich_menus
    assert orphan_id not in fake_line.rich_menus
    aliases = fake_line.rich_menu_aliases
    assert aliases["console-menu"] == foreign_id
    assert "gone" not in aliases
    assert "deleted alias gone" in out


def test_dry_run_reads_and_validates_only(bot: Run, fake_line: FakeLine) -> None:
    code, out, err = bot("richmenu", "deploy", "--dry-run")
    assert code == 0, err
    assert "dry run" in out and "create newcomer" in out and "set default menu" in out
    assert fake_line.rich_menus == {}
    assert fake_line.rich_menu_aliases == {} and fake_line.default_rich_menu is None
    kinds = {r.kind for r in fake_line.requests}
    assert kinds <= {
        "richmenu_list",
        "richmenu_alias_list",
        "richmenu_default_get",
        "richmenu_validate",
    }
    assert "richmenu_validate" in kinds
    # After a deploy, a dry run of the same knowledge has nothing to do.
    assert bot("richmenu", "deploy")[0] == 0
    state = (fake_line.rich_menus, fake_line.rich_menu_aliases, fake_line.default_rich_menu)
    code, out, _ = bot("richmenu", "deploy", "--dry-run")
    assert code == 0 and "nothing to do" in out
    assert (fake_line.rich_menus, fake_line.rich_menu_aliases, fake_line.default_rich_menu) == (
        state
    )


def test_status_prints_what_is_live(bot: Run, fake_line: FakeLine, knowledge: Knowledge) -> None:
    code, out, _ = bot("richmenu", "status")
    assert code == 0
    assert "default menu: none" in out
    assert "alias newcomer: not on LINE" in out
    assert bot("richmenu", "deploy")[0] == 0
    live = _live(fake_line)
    code, out, _ = bot("richmenu", "status")
    assert code == 0
    default = next(m.id for m in knowledge.richmenus.values() if m.default)
    assert f"default menu: {live[default]} ({default}@" in out
    for menu_id, line_id in live.items():
        assert f"alias {menu_id}: {line_id} ({menu_id}@" in out
    assert f"menus made by this bot: {len(live)}" in out


def test_line_refusal_exits_1(bot: Run, fake_line: FakeLine) -> None:
    fake_line.fail_next("richmenu_list", 403)
    code, _, err = bot("richmenu", "status")
    assert code == 1
    assert "status=403" in err


def test_deploy_retries_5xx_and_429(bot: Run, fake_line: FakeLine, knowledge: Knowledge) -> None:
    fake_line.fail_next("richmenu_create", 500)
    fake_line.fail_next("richmenu_image", 429, retry_after=0)
    fake_line.fail_next("richmenu_alias_create", 503)
    code, _, err = bot("richmenu", "deploy")
    assert code == 0, err
    assert len(fake_line.calls("richmenu_create", 500)) == 1
    assert len(fake_line.calls("richmenu_image", 429)) == 1
    assert len(fake_line.calls("richmenu_alias_create", 503)) == 1
    assert set(_live(fake_line)) == set(knowledge.richmenus)  # no duplicate menus


def test_build_writes_one_png_per_menu(
    bot: Run, tmp_path: Path, knowledge: Knowledge, fake_line: FakeLine
) -> None:
    out_dir = tmp_path / "images"
    code, _, err = bot("richmenu", "build", "--out", str(out_dir))
    assert code == 0, err
    for menu in knowledge.richmenus.values():
        data = (out_dir / f"{menu.id}.png").read_bytes()
        assert image_size(data) == ("image/png", menu.width, menu.height)
    assert fake_line.requests == []  # building needs no LINE


# ------------------------------------------------------------------ the fake's limits
@pytest.fixture
def refused(fake_line: FakeLine) -> Iterator[Callable[[], list[str]]]:
    """For tests of refusals: ``refused()`` returns the fake's errors, which are then
    forgiven (the ``fake_line`` fixture fails a test that leaves any)."""

    yield fake_line.take_errors


def _menu_body(knowledge: Knowledge) -> tuple[dict[str, Any], int, int]:
    menu = next(iter(knowledge.richmenus.values()))
    return request_body(menu, knowledge), menu.width, menu.height


def test_fake_refuses_21_areas(
    client: Callable[[Callable[[LineClient], Any]], Any],
    knowledge: Knowledge,
    refused: Callable[[], list[str]],
) -> None:
    body, _, _ = _menu_body(knowledge)
    area = body["areas"][0]
    cell = {"x": 0, "y": 0, "width": 100, "height": 100}
    body["areas"] = [
        {"bounds": {**cell, "x": 100 * i}, "action": area["action"]} for i in range(21)
    ]
    for call in (lambda c: c.validate_rich_menu(body), lambda c: c.create_rich_menu(body)):
        with pytest.raises(PermanentLineError) as caught:
            client(call)
        assert caught.value.status == 400
    errors = refused()
    assert len(errors) == 2 and all("at most 20 areas, got 21" in e for e in errors)
    body["areas"] = body["areas"][:20]
    client(lambda c: c.validate_rich_menu(body))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"chatBarText": "ข้อความบนแถบที่ยาวเกินสิบสี่ตัว"}, "chatBarText"),
        ({"size": {"width": 2500, "height": 2000}}, "width/height must be at least 1.45"),
        ({"size": {"width": 700, "height": 250}}, "must be 800 to 2500 pixels"),
        ({"size": {"width": 1200, "height": 200}}, "must be at least 250 pixels"),
        ({"name": None}, "name"),
        ({"areas": [{"bounds": {"x": 2000, "y": 0, "width": 600, "height": 100}}]}, "inside"),
        ({"areas": [{"bounds": {"x": 0, "y": 0, "width": 9, "height": 9}}]}, "action: is required"),
        (
            {
                "areas": [
                    {
                        "bounds": {"x": 0, "y": 0, "width": 9, "height": 9},
                        "action": {"type": "location", "label": "ที่อยู่"},
                    }
                ]
            },
            "only on quick reply buttons",
        ),
    ],
)
def test_fake_refuses_bad_menu_objects(
    fake_line: FakeLine,
    knowledge: Knowledge,
    refused: Callable[[], list[str]],
    change: dict[str, Any],
    problem: str,
) -> None:
    body, _, _ = _menu_body(knowledge)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    # Straight to the fake: the SDK's models refuse some of these before sending.
    answer = httpx.post(
        f"{fake_line.base_url}/v2/bot/richmenu/validate",
        json=body,
        headers={"Authorization": "Bearer test-access-token"},
    )
    assert answer.status_code == 400
    errors = refused()
    assert len(errors) == 1 and problem in errors[0], errors


def test_fake_checks_images(
    client: Callable[[Callable[[LineClient], Any]], Any],
    fake_line: FakeLine,
    knowledge: Knowledge,
    refused: Callable[[], list[str]],
) -> None:
    body, width, height = _menu_body(knowledge)
    menu_id = client(lambda c: c.create_rich_menu(body))

    def upload(data: bytes, media: str = "image/png") -> int | None:
        try:
            client(lambda c: c.set_rich_menu_image(menu_id, data, media))
        except PermanentLineError as exc:
            return exc.status
        return None

    # A menu can be neither default nor aliased before it has its image.
    for call in (
        lambda c: c.set_default_rich_menu(menu_id),
        lambda c: c.create_rich_menu_alias("menu-a", menu_id),
    ):
        with pytest.raises(PermanentLineError):
            client(call)
    assert len(refused()) == 2
    assert upload(_png(width, height, 1_000_001)) == 413
    assert upload(_png(width, height - 1)) == 400
    assert upload(_png(width, height), "image/gif") == 400
    assert upload(_png(width, height), "image/jpeg") == 400
    assert upload(b"GIF89a" + b"\0" * 100) == 400
    errors = refused()
    assert len(errors) == 5
    assert "at most 1000000 bytes" in errors[0]
    assert f"the image is {width}x{height - 1}" in errors[1]
    assert fake_line.rich_menu_images == {}
    assert upload(_png(width, height, 1_000_000)) is None
    assert upload(_png(width, height)) == 400  # once per menu
    assert "already been uploaded" in refused()[0]
    # Now it can be the default, and aliased (the alias id: 1-32 of [a-z0-9_-]).
    client(lambda c: c.set_default_rich_menu(menu_id))
    client(lambda c: c.create_rich_menu_alias("menu-a", menu_id))
    with pytest.raises(PermanentLineError):
        client(lambda c: c.create_rich_menu_alias("menu-a", menu_id))  # exists
    for bad in ("Menu A", "a" * 33, ""):  # straight to the fake: the SDK refuses these too
        answer = httpx.post(
            f"{fake_line.base_url}/v2/bot/richmenu/alias",
            json={"richMenuAliasId": bad, "richMenuId": menu_id},
            headers={"Authorization": "Bearer test-access-token"},
        )
        assert answer.status_code == 400
    assert len(refused()) == 4
    assert client(lambda c: c.default_rich_menu()) == menu_id
    assert client(lambda c: c.rich_menu_aliases()) == {"menu-a": menu_id}


def test_fake_serves_images_on_the_data_host_only(
    fake_line: FakeLine, knowledge: Knowledge, refused: Callable[[], list[str]]
) -> None:
    body, width, height = _menu_body(knowledge)

    async def wrong_host() -> None:
        c = LineClient(
            fake_line.base_url,
            "test-access-token",
            # one try, with room for a busy machine (a 5 s limit timed out once in a full run)
            RetryPolicy(attempts=1, timeout=30),
            data_url=fake_line.base_url,  # forgot LINE_API_DATA_URL
        )
        try:
            menu_id = await c.create_rich_menu(body)
            await c.set_rich_menu_image(menu_id, _png(width, height))
        finally:
            await c.close()

    with pytest.raises(PermanentLineError) as caught:
        asyncio.run(wrong_host())
    assert caught.value.status == 404
    errors = refused()
    assert len(errors) == 1 and "api-data.line.me" in errors[0]
