"""An operator's edit of the reply files can never leave the bot asking for a key that is gone.

``bot kb validate`` scans the code for every key it uses (``bot/kb/reply_usage.py``). Here
every one of them is removed in turn from a copy of the reply files, and validation must
refuse the copy with a problem naming the file the key was in and the key. The code scan
itself is tried on small synthetic source trees: keys in conditional expressions, keys passed
through helpers, keys built at run time, and strings that only look like keys.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from bot.content.replies import REPLY_NAMESPACES
from bot.kb import reply_usage
from bot.kb.loader import REPLIES_DIR, validate_replies
from bot.kb.reply_usage import CodeScan, scan_code
from tests.helpers import ROOT, run_bot

SHIPPED = ROOT / "knowledge"


def _reply_files(folder: Path) -> list[Path]:
    return [folder / "replies.yaml", *sorted((folder / REPLIES_DIR).glob("*.yaml"))]


def _last_line(node: yaml.Node) -> int:
    """The 0-based last line holding ``node``'s text."""
    if isinstance(node, yaml.SequenceNode | yaml.MappingNode) and node.value:
        last = node.value[-1]
        return _last_line(last[1] if isinstance(last, tuple) else last)
    mark = node.end_mark
    return mark.line if mark.column > 0 else mark.line - 1


def _key_lines(text: str) -> dict[str, tuple[int, int]]:
    """Every reply key in a file's text, with its first and last line (0-based)."""
    found: dict[str, tuple[int, int]] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key, value in node.value:
            here = (*path, str(key.value))
            if isinstance(value, yaml.MappingNode):
                walk(value, here)
            else:
                found[".".join(here)] = (key.start_mark.line, _last_line(value))

    walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return found


def _without(text: str, key: str) -> str | None:
    """``text`` with the lines of reply ``key`` deleted, as an operator would; None if absent."""
    span = _key_lines(text).get(key)
    if span is None:
        return None
    lines = text.splitlines(keepends=True)
    return "".join(lines[: span[0]] + lines[span[1] + 1 :])


@pytest.fixture
def replies_copy(tmp_path: Path) -> Path:
    """A knowledge folder holding only copies of the shipped reply files."""
    target = tmp_path / "knowledge"
    (target / REPLIES_DIR).mkdir(parents=True)
    for path in _reply_files(SHIPPED):
        shutil.copy(path, target / path.relative_to(SHIPPED))
    return target


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    for package in ("bot", "handlers"):
        (root / package).mkdir(exist_ok=True)
    return root


def _replies_folder(root: Path, text: str) -> Path:
    folder = root / "knowledge"
    (folder / REPLIES_DIR).mkdir(parents=True)
    (folder / "replies.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


# -- the shipped code and files ------------------------------------------------------------


def test_shipped_code_uses_only_keys_the_files_have_and_builds_none_unchecked() -> None:
    replies, problems = validate_replies(SHIPPED, ROOT)
    assert problems == [] and replies is not None
    scan = scan_code(ROOT)
    assert scan.unchecked == ()
    # the keys the old scan (direct say/reply_text/text calls) could not see
    assert {"menu.help", "menu.find_course", "cards.note_sample", "subscribe.button_done"} <= (
        scan.keys
    )
    assert len(scan.keys) >= 300
    # a second opinion, by plain text search: every quoted key of the files is in the scan
    groups = "|".join(REPLY_NAMESPACES)
    quoted = re.compile(rf"""["']((?:{groups})(?:\.\w+)+)["']""")
    named: set[str] = set()
    for package in ("bot", "handlers"):
        for path in (ROOT / package).rglob("*.py"):
            named |= set(quoted.findall(path.read_text(encoding="utf-8")))
    assert named & set(replies.texts) <= scan.keys


def test_every_key_the_code_uses_is_refused_when_removed(replies_copy: Path) -> None:
    keys = sorted(scan_code(ROOT).keys)
    originals = {path: path.read_text(encoding="utf-8") for path in _reply_files(replies_copy)}
    spans = {path: _key_lines(text) for path, text in originals.items()}
    tried = 0
    for key in keys:
        holders = [path for path in originals if key in spans[path]]
        assert len(holders) == 1, f"{key} is in {len(holders)} reply files"
        path, text = holders[0], originals[holders[0]]
        first, last = spans[path][key]
        lines = text.splitlines(keepends=True)
        path.write_text("".join(lines[:first] + lines[last + 1 :]), encoding="utf-8")
        try:
            replies, problems = validate_replies(replies_copy, ROOT)
        finally:
            path.write_text(text, encoding="utf-8")
        assert replies is None or key not in replies.texts
        named = [p for p in problems if p.file == str(path) and p.field == key]
        assert named, f"removing {key} from {path.name} was not refused there: {problems}"
        assert "the code uses this reply key" in named[0].message
        tried += 1
    assert tried == len(keys) >= 300


def test_optional_labels_may_be_deleted(replies_copy: Path) -> None:
    """Keys the code builds and tests first (topic and sector labels, the dashboard's intent
    names) have a fallback."""
    prefixes = scan_code(ROOT).optional_prefixes
    assert prefixes == {"courses.topic_label.", "export.sector_label.", "help.flow_", "menu."}
    path = replies_copy / REPLIES_DIR / "export.yaml"
    edited = _without(path.read_text(encoding="utf-8"), "export.sector_label.food")
    assert edited is not None
    path.write_text(edited, encoding="utf-8")
    assert validate_replies(replies_copy, ROOT)[1] == []


def test_deleting_menu_help_makes_the_cli_refuse_the_folder(tmp_path: Path) -> None:
    copy = tmp_path / "knowledge"
    shutil.copytree(SHIPPED, copy)
    replies = copy / "replies.yaml"
    edited = _without(replies.read_text(encoding="utf-8"), "menu.help")
    assert edited is not None
    replies.write_text(edited, encoding="utf-8")
    result = run_bot("kb", "validate", str(copy))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{replies}:1: menu.help: the code uses this reply key (bot/")
    assert lines[0].endswith("but no reply file has it; put it back under menu:")


def test_reply_namespaces_are_the_groups_of_the_shipped_files() -> None:
    """A new group in the files must be declared in code, or its keys go unchecked."""
    groups: set[str] = set()
    for path in _reply_files(SHIPPED):
        groups |= set(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert groups == REPLY_NAMESPACES


# -- the code scan on synthetic sources ----------------------------------------------------

_HANDLER = """\
    '''A handler. Mentions menu.in_a_docstring only in prose.'''
    import logging

    from bot.dialogue.steps import Step, StepGroup

    log = logging.getLogger("bot.kb")
    FILE = "courses.yaml"


    class Steps(StepGroup, prefix="help"):
        ask = Step()


    def _button(turn, key, action):
        label = turn.reply_text(key)
        return label, action


    def answer(turn, place):
        turn.say("assessment.place_again" if place else "assessment.again")
        _button(turn, "menu.through_helper", "go")
        if turn.state.step == "help.ask":
            turn.say("help.asked", name="x")
"""

_REPLIES = """\
    assessment:
      again: "อีกครั้ง"
      place_again: "จังหวัดอีกครั้ง"
    menu:
      through_helper: "ปุ่ม"
    help:
      asked: "ถามแล้ว {name}"
"""


def test_scan_finds_conditional_and_helper_keys_and_skips_lookalikes(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "code", {"handlers/help.py": _HANDLER})
    scan = scan_code(root)
    assert isinstance(scan, CodeScan)
    assert scan.keys == {
        "assessment.again",
        "assessment.place_again",
        "menu.through_helper",
        "help.asked",
    }  # not courses.yaml, bot.kb, the docstring, nor the step name help.ask
    folder = _replies_folder(tmp_path, _REPLIES)
    assert validate_replies(folder, root)[1] == []


def test_scan_refuses_removing_a_conditional_or_a_helper_key(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "code", {"handlers/help.py": _HANDLER})
    text = textwrap.dedent(_REPLIES)
    for key, line in (("assessment.place_again", 20), ("menu.through_helper", 21)):
        folder = tmp_path / key
        (folder / REPLIES_DIR).mkdir(parents=True)
        edited = _without(text, key)
        assert edited is not None
        (folder / "replies.yaml").write_text(edited, encoding="utf-8")
        problems = [str(p) for p in validate_replies(folder, root)[1]]
        assert (
            f"{folder / 'replies.yaml'}:1: {key}: the code uses this reply key"
            f" (handlers/help.py:{line})"
            f" but no reply file has it; put it back under {key.split('.')[0]}:"
        ) in problems


def test_a_placeholder_in_a_key_passed_through_a_helper_is_refused(tmp_path: Path) -> None:
    """The helper's call supplies no placeholders, so {name} would crash the bot."""
    root = _write_tree(tmp_path / "code", {"handlers/help.py": _HANDLER})
    folder = _replies_folder(tmp_path, _REPLIES.replace('"ปุ่ม"', '"ปุ่ม {name}"'))
    problems = [str(p) for p in validate_replies(folder, root)[1]]
    assert problems == [
        f"{folder / 'replies.yaml'}:5: menu.through_helper: placeholder {{name}} is not"
        " supplied by the code (it supplies: none)"
    ]


def test_keys_built_at_run_time_need_a_fallback(tmp_path: Path) -> None:
    source = """\
        PREFIX = "cards.kind."


        def label(turn, sector):
            key = f"export.sector_label.{sector}"
            if key in turn.services.replies:
                return turn.reply_text(key)
            return sector


        def kind(replies, kind):
            return replies.text(PREFIX + kind)


        def status(replies, status):
            return replies.text("cards.status.{}".format(status))


        def area(replies, key, level):
            return replies.text(f"{key}_{level}")


        def centre(replies):
            return area(replies, "cards.centre_area", "district")
    """
    root = _write_tree(tmp_path / "code", {"bot/content/bits.py": source})
    scan = scan_code(root)
    assert scan.keys == set()  # "cards.centre_area" is only the start of a key
    assert scan.optional_prefixes == {"export.sector_label."}
    folder = _replies_folder(tmp_path, 'cards:\n  x: "x"\n')
    problems = [str(p) for p in validate_replies(folder, root)[1]]
    hint = (
        "a reply key built at run time that validation cannot check; write each key out"
        " in full, or test `key in replies` first and fall back when it is missing"
    )
    assert problems == [
        f"bot/content/bits.py:12: PREFIX + kind: {hint}",
        f"bot/content/bits.py:16: 'cards.status.{{}}'.format(status): {hint}",
        f"bot/content/bits.py:20: f'{{key}}_{{level}}': {hint}",
    ]


def test_missing_code_sources_refuse_rather_than_pass_unchecked(
    replies_copy: Path, tmp_path: Path
) -> None:
    """An install without the .py files must not make every edit pass unchecked."""
    empty = tmp_path / "site-packages"
    empty.mkdir()
    problems = [str(p) for p in validate_replies(replies_copy, empty)[1]]
    assert problems == [
        f"{empty}:1: (code): no Python source of bot/ or handlers/ here:"
        " the reply keys cannot be checked"
    ]


def test_keys_followed_into_helpers_of_other_modules(tmp_path: Path) -> None:
    """A key returned by one module's helper and said by another's gets that call's names."""
    root = _write_tree(
        tmp_path / "code",
        {
            "bot/__init__.py": "",
            "bot/content/__init__.py": "",
            "bot/content/parts.py": """\
                def note_key(sample):
                    return "cards.note_sample" if sample else "cards.note_check"


                def say_note(replies, key, who):
                    return replies.text(key, agency=who)
            """,
            "bot/content/card.py": """\
                from .parts import note_key, say_note


                def card(replies, entry):
                    return say_note(replies, note_key(entry.sample), entry.agency)
            """,
        },
    )
    scan = scan_code(root)
    assert {(u.key, u.params, u.params_known) for u in scan.uses} == {
        ("cards.note_sample", frozenset({"agency"}), True),
        ("cards.note_check", frozenset({"agency"}), True),
    }
    folder = _replies_folder(
        tmp_path, 'cards:\n  note_sample: "ตัวอย่าง {agency}"\n  note_check: "ตรวจสอบ {agenc}"\n'
    )
    problems = [str(p) for p in validate_replies(folder, root)[1]]
    assert problems == [
        f"{folder / 'replies.yaml'}:3: cards.note_check: placeholder {{agenc}} is not supplied"
        " by the code (it supplies: {agency})"
    ]


# -- where the code is read --------------------------------------------------------------------


def test_the_code_is_read_in_a_child_process_with_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The scan's syntax trees (~60 MB) stay out of the serving process; what comes back is
    exactly what reading the code here finds, and with no child to run it is read here."""
    root = tmp_path / "code"
    shutil.copytree(ROOT / "bot", root / "bot")
    shutil.copytree(ROOT / "handlers", root / "handlers")
    here = reply_usage._scan(root)
    assert len(here.uses) >= 300 and here.built

    reply_usage.start_scan(root)  # as a knowledge load does, before its parsing
    with monkeypatch.context() as m:  # from the child: reading here would fail
        m.setattr(reply_usage, "_scan", lambda _root: pytest.fail("read in this process"))
        assert scan_code(root) == here
    assert root not in reply_usage._running

    other = tmp_path / "other"
    shutil.copytree(root, other)

    def no_child(_root: Path) -> None:
        raise OSError("no fork here")

    monkeypatch.setattr(reply_usage, "_spawn", no_child)
    reply_usage.start_scan(other)  # refused quietly: scan_code reads the code itself
    with caplog.at_level("WARNING", logger="bot.kb.reply_usage"):
        assert scan_code(other) == here
    assert "reading them here" in caplog.text


def _copy_code(to: Path) -> Path:
    shutil.copytree(ROOT / "bot", to / "bot")
    shutil.copytree(ROOT / "handlers", to / "handlers")
    return to


@pytest.mark.parametrize(
    "child",
    [
        "import sys; sys.stderr.write('boom'); sys.exit(3)",  # the child fails
        "print('not json')",  # or answers nonsense
        "import time; time.sleep(30)",  # or hangs past the time-out
    ],
    ids=["exits-3", "bad-json", "hangs"],
)
def test_a_failing_child_means_reading_the_code_here(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    child: str,
) -> None:
    import subprocess
    import sys

    root = _copy_code(tmp_path / "code")
    here = reply_usage._scan(root)
    started: list[subprocess.Popen[bytes]] = []

    def spawn(_root: Path) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE))
        return started[-1]

    monkeypatch.setattr(reply_usage, "_spawn", spawn)
    monkeypatch.setattr(reply_usage, "SCAN_TIMEOUT_SECONDS", 3.0)
    with caplog.at_level("WARNING", logger="bot.kb.reply_usage"):
        assert scan_code(root) == here
    assert "reading them here" in caplog.text
    assert started and started[0].poll() is not None  # no child left running


def test_a_relative_root_is_read_from_where_the_caller_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_code(tmp_path / "code")
    monkeypatch.chdir(tmp_path)
    scan = scan_code(Path("code"))
    assert scan.files == reply_usage._scan(root).files > 100
    assert scan_code(root) is scan  # one answer per folder, however it was named


def test_a_load_that_stops_early_leaves_no_child_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.kb import loader

    root = _copy_code(tmp_path / "code").resolve()

    def broken(*_args: object) -> None:
        raise RuntimeError("the load stopped")

    monkeypatch.setattr(loader, "_load", broken)
    with pytest.raises(RuntimeError):
        loader.load_knowledge(SHIPPED, root)
    assert root not in reply_usage._running  # the started child was read ...
    assert scan_code(root).files > 100  # ... and its answer kept
