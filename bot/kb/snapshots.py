"""A knowledge set as one archive: what ``bot kb publish`` stores and every process serves.

A snapshot is the knowledge folder and the intent folder packed into one gzip'd tar
(``knowledge/...`` and ``intents/...``). Packing is deterministic (sorted names, fixed
times and owners), so equal files give equal bytes. Unpacked anywhere, the folders
load exactly as the originals did and give the same version hash
(``bot.kb.loader.folder_version`` hashes relative names and bytes only).

``diff`` compares two snapshots per entry (a course, a guide, an intent, a reply, a CSV
row) rather than per line, so an operator reads "courses.yaml course-x: title changed"
instead of a text diff of a YAML file.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Folder names inside an archive, in the order the loader takes them.
KNOWLEDGE = "knowledge"
INTENTS = "intents"

#: Keys that name an item of a YAML list (the first one an item has wins).
_ITEM_KEYS = ("id", "code", "name")


def _files(folder: Path) -> list[Path]:
    """The files a snapshot takes from a folder: what ``folder_version`` hashes."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_folders(knowledge: Path, intents: Path) -> dict[str, bytes]:
    """Every file of both folders by archive name (``knowledge/courses.yaml`` ...)."""
    out: dict[str, bytes] = {}
    for prefix, base in ((KNOWLEDGE, knowledge), (INTENTS, intents)):
        for path in _files(base):
            out[f"{prefix}/{path.relative_to(base).as_posix()}"] = path.read_bytes()
    return out


def pack(files: Mapping[str, bytes]) -> bytes:
    """A deterministic tar.gz of ``files`` (name -> bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def unpack(archive: bytes) -> dict[str, bytes]:
    """The files of an archive by name; refuses names that would leave the folder."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive)), mode="r") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            parts = Path(member.name).parts
            if member.name.startswith("/") or ".." in parts or parts[0] not in (KNOWLEDGE, INTENTS):
                raise ValueError(f"unexpected name in a knowledge archive: {member.name!r}")
            handle = tar.extractfile(member)
            if handle is not None:
                out[member.name] = handle.read()
    return out


def write_folders(files: Mapping[str, bytes], dest: Path) -> tuple[Path, Path]:
    """Write ``files`` under ``dest`` (replacing what was there); the two folders."""
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, data in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp / KNOWLEDGE).mkdir(parents=True, exist_ok=True)
    (tmp / INTENTS).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest / KNOWLEDGE, dest / INTENTS


# --- per-entry differences ------------------------------------------------------------


@dataclass
class EntryChange:
    """One entry that differs between two snapshots."""

    file: str
    entry: str
    kind: str  # added | removed | changed
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.file} {self.entry}".strip()
        if self.kind != "changed":
            return f"{self.kind}: {where}"
        return f"changed: {where}" + (f" ({', '.join(self.fields)})" if self.fields else "")


def _item_name(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in _ITEM_KEYS:
            if isinstance(item.get(key), str | int):
                return str(item[key])
    return None


def _yaml_entries(data: bytes) -> dict[str, Any]:
    """Entries of a YAML file: list items by id/code/name, else keys two levels deep."""
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return {"": data}
    if not isinstance(doc, dict):
        return {"": doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        names = [_item_name(v) for v in value] if isinstance(value, list) else []
        if names and all(names) and len(set(names)) == len(names):
            for name, item in zip(names, value, strict=True):
                out[f"{key}[{name}]"] = item
        elif isinstance(value, dict) and key != "meta":
            for sub, item in value.items():
                out[f"{key}.{sub}"] = item
        else:
            out[str(key)] = value
    return out


def _csv_entries(data: bytes) -> dict[str, Any]:
    """Entries of a CSV file: rows by their first column."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return {"": data}
    if not rows:
        return {}
    header, out = rows[0], {}
    for row in rows[1:]:
        if row:
            out[row[0]] = dict(zip(header, row, strict=False))
    return out


def entries(name: str, data: bytes) -> dict[str, Any]:
    """A file's entries for ``diff``: what an operator thinks of as one thing."""
    if name.endswith((".yaml", ".yml")):
        return _yaml_entries(data)
    if name.endswith(".csv"):
        return _csv_entries(data)
    return {"": data}


def _fields(before: Any, after: Any) -> list[str]:
    """Which fields of a changed entry differ (lists of phrases: how many added/removed)."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after), key=str)
        return [str(k) for k in keys if before.get(k) != after.get(k)]
    if isinstance(before, list) and isinstance(after, list):
        old, new = [repr(x) for x in before], [repr(x) for x in after]
        added = len([x for x in new if x not in old])
        removed = len([x for x in old if x not in new])
        return [f"+{added} -{removed}"] if added or removed else ["order"]
    return []


def diff(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[EntryChange]:
    """Per-entry changes from ``old`` to ``new`` (archive name -> bytes)."""
    changes: list[EntryChange] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None:
            changes.append(EntryChange(name, "", "added"))
            continue
        if b is None:
            changes.append(EntryChange(name, "", "removed"))
            continue
        before, after = entries(name, a), entries(name, b)
        for key in sorted(set(before) | set(after)):
            if key not in after:
                changes.append(EntryChange(name, key, "removed"))
            elif key not in before:
                changes.append(EntryChange(name, key, "added"))
            elif before[key] != after[key]:
                changes.append(EntryChange(name, key, "changed", _fields(before[key], after[key])))
        if before == after:  # same entries, other bytes (comments, layout)
            changes.append(EntryChange(name, "", "changed", ["layout or comments"]))
    return changes


def summary(changes: Iterable[EntryChange], limit: int = 12) -> list[str]:
    """The first ``limit`` changes as text, then how many more."""
    lines = [str(c) for c in changes]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])
