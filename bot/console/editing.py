"""Editing knowledge entries from the console, the way an operator edits the files.

An edit starts from the files of the version being served, changes one entry with
ruamel.yaml's round-trip mode (comments, order and layout of everything else stay as
they were, so ``bot kb export`` gives files a person can still read and diff), and goes
through the same validation and publication as ``bot kb publish``. A refused edit
changes nothing live; its problems come back by file, line and field.

Entries are found generically: a YAML file's list items by ``id``/``code`` (courses,
programmes, guides, agencies, topics ...), a reply file's ``group.key`` texts, an intent's
examples, a CSV file's rows by their first column. The form shows every field of the
entry: text, numbers, yes/no, lists of short texts (one per line), and anything more
nested as a small YAML block.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

#: Collections an operator edits: name -> (file pattern, list key, id field, title fields).
COLLECTIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "courses": ("knowledge/courses.yaml", "items", "id", ("name.th",)),
    "programmes": ("knowledge/export_programmes.yaml", "items", "id", ("name.th",)),
    "guides": ("knowledge/guides/*.yaml", "guides", "id", ("title",)),
    "agencies": ("knowledge/agencies.yaml", "items", "code", ("name_th", "name.th")),
    "offices": ("knowledge/offices.yaml", "items", "id", ("name_th", "name.th")),
    "topics": ("knowledge/topics.yaml", "items", "id", ("name_th", "name.th", "label_th")),
    "markets": ("knowledge/markets.yaml", "items", "code", ("name_th", "name.th")),
    "sectors": ("knowledge/sectors.yaml", "items", "id", ("name_th", "name.th")),
    "questions": ("knowledge/assessment.yaml", "questions", "id", ("text", "question")),
}
#: CSV collections: name -> (file, id column, title column).
CSV_COLLECTIONS: dict[str, tuple[str, str, str]] = {
    "centres": ("knowledge/digital_centres.csv", "id", "name_th"),
}
REPLY_FILES = ("knowledge/replies.yaml", "knowledge/replies/*.yaml")
INTENT_FILES = "intents/*.yaml"


class EditError(ValueError):
    """The form cannot be applied (a field that does not parse, an entry that is gone)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _yaml() -> YAML:
    loader = YAML()  # round-trip
    loader.preserve_quotes = True
    loader.width = 4096  # never re-wrap long Thai lines
    loader.indent(mapping=2, sequence=4, offset=2)
    # The files write an empty value as ``null``; keep it that way.
    loader.representer.add_representer(
        type(None), lambda r, _v: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return loader


def _load(data: bytes) -> Any:
    return _yaml().load(data.decode("utf-8"))


def _dump(doc: Any) -> bytes:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue().encode("utf-8")


def _get(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# --- listing -----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One editable entry, for lists and search."""

    collection: str
    file: str
    id: str
    title: str
    status: str | None = None
    review_by: str | None = None

    def stale(self, today: dt.date) -> bool:
        """Past its ``review_by`` date (facts must be checked again)."""
        try:
            return self.review_by is not None and dt.date.fromisoformat(self.review_by) < today
        except ValueError:
            return False


def _files(content: dict[str, bytes], pattern: str) -> list[str]:
    return sorted(name for name in content if fnmatch(name, pattern))


def _review(item: Any) -> tuple[str | None, str | None]:
    prov = item.get("provenance") if isinstance(item, dict) else None
    if not isinstance(prov, dict):
        return None, None
    review = prov.get("review_by")
    status = prov.get("status")
    return (str(status) if status else None), (str(review) if review else None)


def entries(content: dict[str, bytes], collection: str) -> list[Entry]:
    """Every entry of a collection in the served files."""
    if collection in CSV_COLLECTIONS:
        name, id_col, title_col = CSV_COLLECTIONS[collection]
        rows = csv.DictReader(io.StringIO(content.get(name, b"").decode("utf-8")))
        return [
            Entry(
                collection,
                name,
                row[id_col],
                row.get(title_col) or row[id_col],
                row.get("provenance_status"),
                None,
            )
            for row in rows
        ]
    if collection == "replies":
        return [
            Entry("replies", name, key, _preview(value))
            for name in _files(content, REPLY_FILES[0]) + _files(content, REPLY_FILES[1])
            for key, value in _reply_keys(yaml.safe_load(content[name]) or {})
        ]
    if collection == "intents":
        out = []
        for name in _files(content, INTENT_FILES):
            doc = yaml.safe_load(content[name]) or {}
            for intent, body in (doc.get("intents") or {}).items():
                count = len((body or {}).get("examples") or [])
                out.append(Entry("intents", name, str(intent), f"{count}"))
        return out
    pattern, key, id_field, titles = COLLECTIONS[collection]
    out = []
    for name in _files(content, pattern):
        doc = yaml.safe_load(content[name]) or {}
        for item in doc.get(key) or []:
            if not isinstance(item, dict) or id_field not in item:
                continue
            title = next((str(_get(item, t)) for t in titles if _get(item, t)), str(item[id_field]))
            status, review = _review(item)
            out.append(Entry(collection, name, str(item[id_field]), title, status, review))
    return out


def _reply_keys(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for group, body in doc.items():
        if group == "meta" or not isinstance(body, dict):
            continue
        for key, value in body.items():
            yield f"{group}.{key}", value


def _preview(value: Any) -> str:
    text = value[0] if isinstance(value, list) and value else value
    return str(text)[:120]


# --- the form ----------------------------------------------------------------------


@dataclass
class Field:
    """One form field: where it is in the entry, how it is edited, its current text."""

    path: str
    kind: str  # text | long | number | bool | lines | yaml
    value: str


def _kind_and_text(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, int | float):
        return "number", str(value)
    if isinstance(value, dt.date):
        return "text", value.isoformat()
    if value is None:
        return "text", ""
    if isinstance(value, str):
        return ("long" if len(value) > 80 or "\n" in value else "text"), value
    if isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return "lines", "\n".join(str(v) for v in value)
    return "yaml", yaml.safe_dump(_plain(value), allow_unicode=True, sort_keys=False).strip()


def _plain(value: Any) -> Any:
    """ruamel's containers as plain ones (for safe_dump)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for kind in (bool, str, int, float):  # ruamel's scalar subclasses as the plain type
        if isinstance(value, kind):
            return kind(value)
    return value


def _fields(item: Any, prefix: str = "") -> list[Field]:
    out: list[Field] = []
    for key, value in item.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _fields(value, path + ".")
        else:
            kind, text = _kind_and_text(value)
            out.append(Field(path, kind, text))
    return out


@dataclass
class Located:
    """An entry found in the files: its file's parsed document and the entry itself."""

    file: str
    doc: Any
    item: Any


def locate(content: dict[str, bytes], collection: str, entry_id: str) -> Located:
    """Find a YAML entry (``EditError`` when it is not there any more)."""
    if collection == "replies":
        group, _, key = entry_id.partition(".")
        for name in _files(content, REPLY_FILES[0]) + _files(content, REPLY_FILES[1]):
            doc = _load(content[name])
            if isinstance(doc, dict) and isinstance(doc.get(group), dict) and key in doc[group]:
                return Located(name, doc, doc[group])
        raise EditError(f"no reply {entry_id}")
    if collection == "intents":
        for name in _files(content, INTENT_FILES):
            doc = _load(content[name])
            intents = doc.get("intents") if isinstance(doc, dict) else None
            if isinstance(intents, dict) and entry_id in intents:
                return Located(name, doc, intents[entry_id])
        raise EditError(f"no intent {entry_id}")
    pattern, key, id_field, _titles = COLLECTIONS[collection]
    for name in _files(content, pattern):
        doc = _load(content[name])
        for item in (doc.get(key) if isinstance(doc, dict) else None) or []:
            if isinstance(item, dict) and str(item.get(id_field)) == entry_id:
                return Located(name, doc, item)
    raise EditError(f"no {collection} entry {entry_id}")


def form_fields(content: dict[str, bytes], collection: str, entry_id: str) -> list[Field]:
    """The fields of an entry's edit form."""
    if collection in CSV_COLLECTIONS:
        name, id_col, _title = CSV_COLLECTIONS[collection]
        for row in csv.DictReader(io.StringIO(content[name].decode("utf-8"))):
            if row[id_col] == entry_id:
                return [Field(k, "text", v or "") for k, v in row.items()]
        raise EditError(f"no {collection} entry {entry_id}")
    found = locate(content, collection, entry_id)
    if collection == "replies":
        key = entry_id.partition(".")[2]
        kind, text = _kind_and_text(found.item[key])
        return [Field(key, "long" if kind == "text" else kind, text)]
    if collection == "intents":
        return [Field("examples", "lines", "\n".join(found.item.get("examples") or []))]
    return _fields(found.item)


def _parse(field: Field, raw: str, old: Any) -> Any:
    raw = raw.replace("\r\n", "\n")
    if field.kind == "bool":
        return raw.strip().lower() in ("true", "1", "yes", "on")
    if field.kind == "number":
        text = raw.strip()
        if not text:
            return None
        try:
            return int(text) if isinstance(old, int) and text.lstrip("-").isdigit() else float(text)
        except ValueError as exc:
            raise EditError("not a number", field.path) from exc
    if field.kind == "lines":
        return CommentedSeq([line.strip() for line in raw.split("\n") if line.strip()])
    if field.kind == "yaml":
        try:
            return yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise EditError(f"not valid YAML: {exc}".splitlines()[0], field.path) from exc
    if isinstance(old, dt.date) and raw.strip():
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError as exc:
            raise EditError("a date is written YYYY-MM-DD", field.path) from exc
    text = raw if field.kind == "long" else raw.strip()
    if old is None and not text:
        return None
    return text


def _set(item: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    node = item
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def apply_form(
    content: dict[str, bytes], collection: str, entry_id: str, form: dict[str, str]
) -> dict[str, bytes]:
    """The files with one entry changed as the form says (unknown form names are ignored)."""
    fields = form_fields(content, collection, entry_id)
    if collection in CSV_COLLECTIONS:
        return _apply_csv(content, collection, entry_id, fields, form)
    found = locate(content, collection, entry_id)
    target: Any = found.item
    for field in fields:
        if field.path not in form:
            continue
        raw = form[field.path]
        if raw.replace("\r\n", "\n") == field.value:
            continue  # untouched: keep the original node (its quoting and comments)
        old = _get(target, field.path) if "." in field.path else target.get(field.path)
        _set(target, field.path, _parse(field, raw, old))
    return {**content, found.file: _dump(found.doc)}


def _apply_csv(
    content: dict[str, bytes],
    collection: str,
    entry_id: str,
    fields: list[Field],
    form: dict[str, str],
) -> dict[str, bytes]:
    name, id_col, _title = CSV_COLLECTIONS[collection]
    text = content[name].decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    rows = list(reader)
    for row in rows:
        if row[id_col] == entry_id:
            for field in fields:
                if field.path in form:
                    row[field.path] = form[field.path].strip()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return {**content, name: out.getvalue().encode("utf-8")}


def add_example(content: dict[str, bytes], target: str, text: str) -> tuple[dict[str, bytes], str]:
    """Add ``text`` as an example of an intent or of ``guide:<id>``; the file changed."""
    text = " ".join(text.split())
    if not text:
        raise EditError("empty example")
    if target.startswith("guide:"):
        found = locate(content, "guides", target.removeprefix("guide:"))
        examples = found.item.setdefault("examples", CommentedSeq())
    else:
        found = locate(content, "intents", target)
        examples = found.item.setdefault("examples", CommentedSeq())
    if text not in examples:
        examples.append(text)
    return {**content, found.file: _dump(found.doc)}, found.file


def new_guide(content: dict[str, bytes], theme_file: str, item: dict[str, Any]) -> dict[str, bytes]:
    """Append a new guide to a theme file (validation decides whether it is complete)."""
    if theme_file not in content or not fnmatch(theme_file, COLLECTIONS["guides"][0]):
        raise EditError("no such theme file", "theme")
    doc = _load(content[theme_file])
    guides = doc.setdefault("guides", CommentedSeq())
    if any(isinstance(g, dict) and g.get("id") == item.get("id") for g in guides):
        raise EditError("a guide with this id exists", "id")
    guides.append(CommentedMap(item))
    return {**content, theme_file: _dump(doc)}


def field_problems(problems: list[str], fields: list[Field]) -> dict[str, list[str]]:
    """Problems by the form field they name (``...: items[3].name.th: message``)."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        parts = problem.split(": ", 2)
        where = parts[1] if len(parts) == 3 else ""
        for field in fields:
            if where.endswith(field.path) or where.endswith("." + field.path.split(".")[0]):
                out.setdefault(field.path, []).append(parts[-1])
                break
    return out
