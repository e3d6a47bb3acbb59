"""Writing ``digital_centres.csv``: rendered like the operators' file, checked, then atomic.

The merged file is checked with :func:`~bot.kb.loader.load_knowledge` on a temporary copy
of the knowledge folder, so nothing the bot reads changes until the result is known to be
good; it then replaces the old file by a rename, never leaving half a file.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.kb.loader import load_knowledge
from bot.kb.schemas import CENTRE_COLUMNS, CENTRE_REQUIRED_COLUMNS
from bot.kb.sources import Problem, read_csv

__all__ = ["CENTRES_FILE", "read_existing", "render", "validate_folder", "write_atomic"]

#: The file of the knowledge folder the import writes.
CENTRES_FILE = "digital_centres.csv"


def read_existing(path: Path) -> tuple[list[dict[str, str]], str, bytes, list[Problem]]:
    """The centres already there, as their own cells (kept byte for byte), and the newline."""
    if not path.is_file():
        return [], "\n", b"", []
    raw = path.read_bytes()
    rows, problems = read_csv(path, CENTRE_REQUIRED_COLUMNS)
    newline = "\r\n" if b"\r\n" in raw else "\n"
    out = [{c: row.values.get(c, "") for c in CENTRE_COLUMNS} for row in rows]
    return out, newline, raw, problems


def render(rows: Sequence[Mapping[str, str]], newline: str, bom: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(CENTRE_COLUMNS)
    for row in rows:
        writer.writerow([row.get(c, "") for c in CENTRE_COLUMNS])
    return (codecs.BOM_UTF8 if bom else b"") + buffer.getvalue().encode("utf-8")


def validate_folder(folder: Path, data: bytes, origin: Mapping[int, str]) -> list[Problem]:
    """Problems of the folder as it would be with ``data`` as its centres file.

    Checked on a temporary copy so nothing the bot reads changes until the result is known
    to be good; the places folder (the bulk) is linked, not copied, where the system allows.
    """
    with tempfile.TemporaryDirectory(prefix="import-centres-") as tmp:
        copy = Path(tmp) / "knowledge"
        shutil.copytree(
            folder,
            copy,
            ignore=lambda where, names: ["places"] if Path(where) == folder else [],
        )
        places = folder / "places"
        if places.is_dir():
            try:
                (copy / "places").symlink_to(places.resolve(), target_is_directory=True)
            except OSError:
                shutil.copytree(places, copy / "places")
        (copy / CENTRES_FILE).write_bytes(data)
        result = load_knowledge(copy)
        out: list[Problem] = []
        for problem in result.problems:
            name = problem.file.replace(str(copy), str(folder), 1)
            message = problem.message
            if Path(problem.file).name == CENTRES_FILE and problem.line in origin:
                message += f" (from {origin[problem.line]})"
            out.append(Problem(name, problem.line, problem.field, message))
        return out


def write_atomic(path: Path, data: bytes) -> None:
    """Write a temporary file beside the target, then rename it over: never a half file."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copymode(path, temp)
        else:
            temp.chmod(0o644)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
