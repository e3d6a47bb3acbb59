"""``centre_import_columns.yaml``: the operators' table of header spellings and keywords.

Which source header feeds which of our fields, the words that tell a host type, a status
or a service, Thai month names, place prefixes, and the ``location_source`` texts. A
knowledge folder may hold its own copy; else the shipped one is used. A wrong table stops
the import with problems that name the line, like ``bot kb validate``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.kb.schemas import CENTRE_SERVICES, Centre
from bot.kb.sources import Located, Problem, read_yaml
from bot.paths import shipped
from bot.tools.import_centres.cells import header_key, keyword_text

__all__ = [
    "CENTRE_STATUSES",
    "COLUMNS_FILE",
    "FIELDS",
    "HOST_TYPES",
    "LOCATION_SOURCES",
    "SHIPPED_COLUMNS",
    "ImportConfigError",
    "ImportTable",
    "load_table",
]

#: The operator-extendable table of header spellings and keywords, in a knowledge folder.
COLUMNS_FILE = "centre_import_columns.yaml"
#: The table shipped with the code; used when the target folder has none of its own.
SHIPPED_COLUMNS = shipped("knowledge") / COLUMNS_FILE


#: Our fields a source column can be mapped to (``--map COLUMN=field``). The place fields take
#: names or DOPA codes; ``latlng`` is one cell holding both ("13.75, 100.50" or a map link).
FIELDS: tuple[str, ...] = (
    "name_th",
    "name_en",
    "host_type",
    "host_name_th",
    "address_th",
    "province",
    "district",
    "subdistrict",
    "province_code",
    "district_code",
    "subdistrict_code",
    "postal_code",
    "lat",
    "lng",
    "latlng",
    "services",
    "contact_phone",
    "contact_line",
    "contact_facebook",
    "contact_email",
    "opening_hours_th",
    "opened_on",
    "status",
)
HOST_TYPES: tuple[str, ...] = typing.get_args(Centre.model_fields["host_type"].annotation)
CENTRE_STATUSES: tuple[str, ...] = ("active", "unknown", "closed")
LOCATION_SOURCES = (
    "coordinates",
    "coordinates_swapped",
    "subdistrict",
    "subdistrict_fallback",
    "district",
)


class ImportConfigError(ValueError):
    """The column table cannot be used; ``problems`` say where it is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@dataclass(frozen=True)
class ImportTable:
    """``centre_import_columns.yaml``: header spellings and keywords, normalised for matching."""

    headers: Mapping[str, str]
    host_types: tuple[tuple[str, tuple[str, ...]], ...]
    host_ignore: tuple[str, ...]
    statuses: Mapping[str, str]
    services: tuple[tuple[str, tuple[str, ...]], ...]
    months: Mapping[str, int]
    place_prefixes: tuple[str, ...]
    location_source: Mapping[str, str]
    path: Path

    @classmethod
    def load(cls, path: Path) -> ImportTable:
        """Read and check the table; a wrong table stops the import (ImportConfigError)."""
        doc, problems = read_yaml(path)
        if doc is None:
            raise ImportConfigError(problems)
        data = doc.data if isinstance(doc.data, dict) else {}
        checker = _TableChecker(doc)
        for key in sorted(set(data) - set(_TABLE_SECTIONS)):
            checker.problem((key,), "unknown section; use " + ", ".join(_TABLE_SECTIONS))

        headers: dict[str, str] = {}
        for name, words in checker.groups("columns", FIELDS, required=True).items():
            for i, word in enumerate(words):
                key = header_key(word)
                other = headers.get(key)
                if other is not None and other != name:
                    checker.problem(("columns", name, i), f"{word!r} is also listed under {other}")
                headers.setdefault(key, name)
        host_types = tuple(
            (name, tuple(keyword_text(w) for w in words))
            for name, words in checker.groups("host_types", HOST_TYPES).items()
        )
        host_ignore = tuple(keyword_text(w) for w in checker.words(("host_ignore_words",)))
        statuses: dict[str, str] = {}
        for name, words in checker.groups("statuses", CENTRE_STATUSES).items():
            statuses.update((header_key(w), name) for w in words)
        services = tuple(
            (name, tuple(keyword_text(w) for w in words))
            for name, words in checker.groups("services", CENTRE_SERVICES).items()
        )
        months: dict[str, int] = {}
        for name, words in checker.groups("months", tuple(str(m) for m in range(1, 13))).items():
            months.update((header_key(w), int(name)) for w in words)
        prefixes = tuple(sorted(checker.words(("place_prefixes",)), key=lambda p: (-len(p), p)))
        sources: dict[str, str] = {}
        raw_sources = data.get("location_source")
        if not isinstance(raw_sources, dict):
            checker.problem(("location_source",), "required: the texts for location_source")
        else:
            for key in LOCATION_SOURCES:
                text = raw_sources.get(key)
                if not isinstance(text, str) or not text.strip():
                    checker.problem(("location_source", key), "required text is missing")
                    continue
                try:
                    text.format(file="", code="", name="", precision="")
                except (KeyError, IndexError, ValueError):
                    checker.problem(
                        ("location_source", key),
                        "use only the placeholders {file}, {code}, {name} and {precision}",
                    )
                    continue
                sources[key] = text.strip()
            for key in sorted(set(raw_sources) - set(LOCATION_SOURCES)):
                checker.problem(("location_source", key), "unknown key")
        if checker.problems:
            raise ImportConfigError(checker.problems)
        return cls(
            headers=headers,
            host_types=host_types,
            host_ignore=host_ignore,
            statuses=statuses,
            services=services,
            months=months,
            place_prefixes=prefixes,
            location_source=sources,
            path=path,
        )


_TABLE_SECTIONS = (
    "columns",
    "host_types",
    "host_ignore_words",
    "statuses",
    "services",
    "months",
    "place_prefixes",
    "location_source",
)


class _TableChecker:
    """Reads the sections of the column table, noting every problem with its line."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data if isinstance(doc.data, dict) else {}
        self.problems: list[Problem] = []

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        where = ".".join(str(p) for p in path)
        self.problems.append(Problem(self.doc.file, self.doc.line_of(path), where, message))

    def words(self, path: tuple[str | int, ...]) -> list[str]:
        node: Any = self.data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return []
        if not isinstance(node, list):
            self.problem(path, "must be a list such as [word, other word]")
            return []
        out: list[str] = []
        for i, item in enumerate(node):
            if isinstance(item, bool) or item is None:
                self.problem((*path, i), "put this word in quotes (YAML reads it as true/false)")
            elif not header_key(str(item)):
                self.problem((*path, i), "an empty word (or only punctuation) would match anything")
            else:
                out.append(str(item).strip())
        return out

    def groups(
        self, section: str, allowed: Sequence[str], required: bool = False
    ) -> dict[str, list[str]]:
        node = self.data.get(section)
        if node is None:
            if required:
                self.problem((section,), "required section is missing")
            return {}
        if not isinstance(node, dict):
            self.problem((section,), "must be a group of name: [words]")
            return {}
        out: dict[str, list[str]] = {}
        for name in node:
            if name not in allowed:
                self.problem((section, name), "unknown name; use one of: " + ", ".join(allowed))
                continue
            out[name] = self.words((section, name))
        return out


def load_table(folder: Path) -> ImportTable:
    """The knowledge folder's own column table, or the shipped one."""
    own = folder / COLUMNS_FILE
    return ImportTable.load(own if own.is_file() else SHIPPED_COLUMNS)
