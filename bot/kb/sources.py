"""Reading YAML and CSV files while remembering the line of every field.

Operators need errors that point at a line. PyYAML's node tree carries
marks, so YAML is *composed* (the fast C parser when available) and turned
into plain Python values here, recording ``path -> line`` on the way. CSV
rows keep the line the csv module reports. ``Problem`` is the one error
type every check produces, printed as ``FILE:LINE: field: message``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml is several times faster on big files
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_WORDS = frozenset(
    w
    for base in ("yes", "no", "true", "false", "on", "off")
    for w in (base, base.title(), base.upper())
)
_NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})


class _FastLoader(_Loader):
    """The safe loader with a quicker answer for scalars that can only be text.

    Most values in the knowledge files are Thai sentences or field names; asking
    YAML's regex resolvers about each of them was a third of the load time.
    Numbers, dates and other symbols still go through the standard resolvers.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR_TAG if implicit[1] else super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            if value in _BOOL_WORDS:
                return _BOOL
            if value in _NULL_WORDS:
                return _NULL
            if value[0].isalpha() or ord(value[0]) > 127:
                return _STR_TAG
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if kind is yaml.MappingNode:
            return "tag:yaml.org,2002:map"
        if kind is yaml.SequenceNode:
            return "tag:yaml.org,2002:seq"
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a knowledge file, in words an operator can act on."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass
class Located:
    """A parsed file: its data plus the line of every key and list item.

    Lines are worked out from the node tree only when a problem needs one, so
    a valid file (the usual case) is not walked twice.
    """

    file: str
    data: Any
    node: yaml.Node | None = None
    _lines: dict[Path_, int] | None = field(default=None, repr=False)

    @property
    def lines(self) -> dict[Path_, int]:
        """``path -> line`` for every key and list item."""
        if self._lines is None:
            self._lines = {(): 1}
            if self.node is not None:
                _record_lines(self.node, (), self._lines)
        return self._lines

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of the deepest part of ``path`` that exists (1 when unknown)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


def dotted(path: Sequence[str | int]) -> str:
    """``('items', 3, 'name', 'th')`` → ``items[3].name.th``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def _scalar(node: yaml.ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == _INT:
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return int(value.replace("_", ""))
    if tag == _FLOAT:
        low = value.lower()
        if low in (".inf", "+.inf"):
            return float("inf")
        if low == "-.inf":
            return float("-inf")
        if low == ".nan":
            return float("nan")
        return float(value.replace("_", ""))
    if tag == _BOOL:
        return value.lower() in ("true", "yes", "on", "y")
    if tag == _NULL:
        return None
    return value  # strings, and dates kept as ISO text for the schemas to parse


def _build(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(child) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else key_node)
            if key in out:
                raise DuplicateKey(key, key_node.start_mark.line + 1)
            out[key] = _build(value_node)
        return out
    raise ValueError(f"unsupported YAML node {type(node).__name__}")


def _record_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _record_lines(child, (*path, i), lines)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else key_node)
            _record_lines(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1


class DuplicateKey(ValueError):
    """The same key twice in one mapping: the second would silently win."""

    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line


def read_yaml(path: Path, name: str | None = None) -> tuple[Located | None, list[Problem]]:
    """Parse a YAML file into values with line numbers, or say precisely why not."""
    label = name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(label, 1, "(file)", "file is missing")]
    except UnicodeDecodeError as exc:
        return None, [
            Problem(label, 1, "(file)", f"not UTF-8 text (byte {exc.start}); save as UTF-8")
        ]
    try:
        node = yaml.compose(text, Loader=_FastLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or "syntax error"
        return None, [Problem(label, line, "(syntax)", f"YAML syntax error: {what}")]
    if node is None:
        return Located(label, None), []
    try:
        data = _build(node)
    except DuplicateKey as exc:
        return None, [Problem(label, exc.line, exc.key, "this key appears twice in the same entry")]
    return Located(label, data, node), []


@dataclass(frozen=True)
class CsvRow:
    """One data row of a CSV file and the line it started on."""

    line: int
    values: dict[str, str]


def read_csv(
    path: Path, required_columns: Sequence[str], name: str | None = None
) -> tuple[list[CsvRow], list[Problem]]:
    """Read a CSV (UTF-8, with or without BOM) whose first row names the columns."""
    label = name or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], [Problem(label, 1, "(file)", "file is missing")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [
            Problem(label, 1, "(file)", f"not UTF-8 text (byte {exc.start}); save as 'CSV UTF-8'")
        ]
    return parse_csv(text, required_columns, label)


def parse_csv(
    text: str, required_columns: Sequence[str], label: str
) -> tuple[list[CsvRow], list[Problem]]:
    """Parse CSV text; every row must have exactly as many cells as the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[Problem] = []
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], [
            Problem(label, 1, "(file)", "the file is empty; the first row must name the columns")
        ]
    except csv.Error as exc:
        return [], [Problem(label, 1, "(syntax)", f"CSV syntax error: {exc}")]
    missing = [c for c in required_columns if c not in header]
    if missing:
        problems.append(
            Problem(label, 1, ", ".join(missing), "column missing from the first row (header)")
        )
    dupes = {h for h in header if header.count(h) > 1 and h}
    if dupes:
        problems.append(
            Problem(label, 1, ", ".join(sorted(dupes)), "column named twice in the header")
        )
    rows: list[CsvRow] = []
    line = reader.line_num
    try:
        for cells in reader:
            start = line + 1
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines are fine
            if len(cells) != len(header):
                problems.append(
                    Problem(
                        label,
                        start,
                        "(row)",
                        f"has {len(cells)} cells but the header has {len(header)} columns "
                        "(a comma inside a value needs quotes)",
                    )
                )
                continue
            rows.append(CsvRow(start, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    except csv.Error as exc:
        problems.append(Problem(label, reader.line_num, "(syntax)", f"CSV syntax error: {exc}"))
    return rows, problems


def iter_items(doc: Located, key: str = "items") -> Iterator[tuple[int, Any]]:
    """Entries of a ``{meta: ..., items: [...]}`` file, with their index."""
    data = doc.data if isinstance(doc.data, dict) else {}
    items = data.get(key)
    if isinstance(items, list):
        yield from enumerate(items)
