"""The package as a platform installs it: a wheel (not editable) in a fresh virtual environment.

A wheel that misses a sub-package or a data file crashes on import or at the first message,
far from the developer who forgot it. So the wheel is built from this checkout, installed
into a new virtual environment, and every module of the source tree must import from the
installed copy (never from the checkout), and the installed bot must validate its shipped
knowledge and answer a message from a working directory that holds no ``knowledge/``.

The new environment reuses this one's third-party packages through a ``.pth`` line (so the
test needs no network and no second install of the locked dependencies); a line in a
``.pth`` file adds a folder to ``sys.path`` without running that folder's own ``.pth`` files,
so the checkout's editable install is not visible there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from bot.kb.loader import load_replies
from tests.helpers import environment, run_command

ROOT = Path(__file__).resolve().parent.parent


#: Alembic's environment script runs only inside an Alembic command (it reads
#: ``alembic.context.config``); the chat test below runs it through the migrations.
NOT_IMPORTABLE = {"bot.storage.migrations.env"}


def _source_modules() -> list[str]:
    """Every importable module of the checkout's ``bot`` and ``handlers`` packages."""
    names = []
    for package in ("bot", "handlers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if ".".join(parts) not in NOT_IMPORTABLE:
                names.append(".".join(parts))
    return names


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel built from this checkout installed."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheels[0])],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Third-party packages from this environment, after the wheel's own files.
    (Path(site) / "zz_locked_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    return env_dir


def _run(env_dir: Path, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = environment(
        "KNOWLEDGE_",
        "INTENTS_",
        "DATABASE_",
        "REDIS_",
        "PYTHON",
        DATA_DIR=str(cwd / "data"),
        LOG_LEVEL="WARNING",
    )
    return run_command(args, cwd=cwd, env=env, stdin=stdin, timeout=300)


def test_every_module_imports_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    modules = _source_modules()
    assert "bot.notices.runner" in modules  # the sub-package an earlier wheel left out
    script = (
        "import importlib, json, sys\n"
        f"names = {modules!r}\n"
        "files = {n: importlib.import_module(n).__file__ for n in names}\n"
        "print(json.dumps(files))\n"
    )
    result = _run(installed, tmp_path, str(installed / "bin" / "python"), "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    files = json.loads(result.stdout)
    outside = {name: path for name, path in files.items() if not path.startswith(str(installed))}
    assert outside == {}, "imported from outside the installed wheel"


def test_the_installed_bot_serves_its_shipped_knowledge(installed: Path, tmp_path: Path) -> None:
    bot = str(installed / "bin" / "bot")
    assert not (tmp_path / "knowledge").exists()
    checked = _run(installed, tmp_path, bot, "kb", "validate")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The knowledge served is the copy inside the installed package.
    assert checked.stdout.startswith(str(installed)), checked.stdout
    assert "bot/_shipped/knowledge: OK" in checked.stdout

    chat = _run(installed, tmp_path, bot, "chat", "--user", "Upkg", stdin="สวัสดีครับ\n")
    assert chat.returncode == 0, chat.stderr[-3000:]
    said = [
        line.removeprefix("bot> ") for line in chat.stdout.splitlines() if line.startswith("bot> ")
    ]
    assert said and said[0] in load_replies(ROOT / "knowledge").texts["greeting.hello"], said
    # The embedded database was created and migrated from the installed package's migrations.
    assert (tmp_path / "data" / "bot.db").exists()
