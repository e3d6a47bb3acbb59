"""A source row as a centre of our schema: its cells, how it was placed, what was inferred.

The place and point come from :func:`~bot.tools.import_centres.locating.locate`; the host
type, services and status from keywords of the column table; a postal code the file lacks
from the subdistrict's only one. What was inferred rather than read is listed in
``provenance_unverified_fields``, and everything doubtful is noted for the operator.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from bot.kb.loader import today
from bot.kb.places import Subdistrict
from bot.kb.schemas import CENTRE_COLUMNS, CENTRE_SERVICES, Centre, centre_fields, friendly
from bot.kb.sources import Problem
from bot.tools.import_centres.cells import (
    centre_id,
    fmt_coord,
    header_key,
    keyword_text,
    thai_digits_to_ascii,
)
from bot.tools.import_centres.column_table import HOST_TYPES, ImportTable
from bot.tools.import_centres.dates import parse_date
from bot.tools.import_centres.locating import PlacedBy, locate
from bot.tools.import_centres.placing import Placer, Unplaced

__all__ = ["ImportedRow", "RowBuilder", "validate_row"]


@dataclass(frozen=True)
class ImportedRow:
    """One centre made from a source row: its CSV cells and how it was placed."""

    line: int
    cells: Mapping[str, str]
    placed_by: PlacedBy
    swapped: bool = False

    @property
    def id(self) -> str:
        return self.cells["id"]


class RowBuilder:
    """Builds the centre of one source row, or says why the row cannot be imported."""

    def __init__(
        self,
        placer: Placer,
        table: ImportTable,
        label: str,
        file_name: str,
        provenance: Mapping[str, str],
        operator: str,
    ) -> None:
        self.placer = placer
        self.table = table
        self.label = label
        self.file_name = file_name
        self.provenance = provenance
        self.operator = operator
        self.notes: list[Problem] = []

    def note(self, line: int, column: str, message: str) -> None:
        self.notes.append(Problem(self.label, line, column, message))

    def build(self, line: int, values: Mapping[str, str]) -> ImportedRow:
        """The row as a centre; raises Unplaced (with the field at fault) to skip it."""
        name = values.get("name_th", "")
        if not name:
            raise Unplaced("name_th", "empty; every centre needs its Thai name")
        where = locate(self.placer, values, lambda message: self.note(line, "lat/lng", message))
        place, sub = where.place, where.sub
        source = self.table.location_source[where.source]
        area_code = place.subdistrict or place.district
        area_name = (sub or where.district).name_th
        unverified: list[str] = []

        cells = dict.fromkeys(CENTRE_COLUMNS, "")
        cells.update(
            id=centre_id(area_code, name),
            name_th=name,
            name_en=values.get("name_en", ""),
            operator=self.operator,
            host_name_th=values.get("host_name_th", ""),
            address_th=values.get("address_th", ""),
            province_code=place.province,
            district_code=place.district,
            subdistrict_code=place.subdistrict or "",
            location_lat=fmt_coord(where.lat),
            location_lng=fmt_coord(where.lng),
            location_precision=where.precision,
            location_source=source.format(
                file=self.file_name, code=area_code, name=area_name, precision=where.precision
            ),
            contact_phone=thai_digits_to_ascii(values.get("contact_phone", "")),
            contact_line=values.get("contact_line", ""),
            contact_facebook=values.get("contact_facebook", ""),
            contact_email=values.get("contact_email", ""),
            opening_hours_th=values.get("opening_hours_th", ""),
        )
        cells["host_type"], inferred = self._host_type(values)
        if inferred:
            unverified.append("host_type")
        cells["postal_code"], filled = self._postal_code(line, values, sub)
        if filled:
            unverified.append("postal_code")
        cells["services"] = ";".join(self._services(line, values.get("services", "")))
        if values.get("opened_on"):
            opened, problem = parse_date(values["opened_on"], self.table.months)
            if problem:
                self.note(line, "opened_on", problem + "; left empty")
            elif opened is not None and opened > today() + dt.timedelta(days=1):
                self.note(line, "opened_on", f"{opened} is in the future; left empty")
            elif opened is not None:
                cells["opened_on"] = opened.isoformat()
        cells["status"] = self._status(line, values.get("status", ""))
        cells.update(self.provenance)
        cells["provenance_unverified_fields"] = ";".join(unverified)
        return ImportedRow(line, cells, where.placed_by, where.swapped)

    def _host_type(self, values: Mapping[str, str]) -> tuple[str, bool]:
        """(host_type, inferred): an explicit column first, then keywords in the names."""
        given = values.get("host_type", "")
        if given.strip().lower() in HOST_TYPES:
            return given.strip().lower(), False
        if given:
            found = self._keyword(given)
            if found:
                return found, False
        for text in (values.get("host_name_th", ""), values.get("name_th", "")):
            found = self._keyword(text)
            if found:
                return found, True
        return "other", True

    def _keyword(self, text: str) -> str | None:
        """The host type whose keyword starts earliest in the text (longest on a tie):
        "โรงเรียนวัด…" is a school and "อบต.วัดดาว" a SAO, whatever the table's order."""
        value = keyword_text(text)
        for word in self.table.host_ignore:
            value = value.replace(word, "|" * len(word))
        best: tuple[int, int, str] | None = None
        for name, words in self.table.host_types:
            for word in words:
                at = value.find(word)
                if at >= 0 and (best is None or (at, -len(word)) < best[:2]):
                    best = (at, -len(word), name)
        return best[2] if best else None

    def _postal_code(
        self, line: int, values: Mapping[str, str], sub: Subdistrict | None
    ) -> tuple[str, bool]:
        """(postal code, filled from the gazetteer): the file's own, else the subdistrict's
        only one."""
        given = re.sub(r"\s", "", thai_digits_to_ascii(values.get("postal_code", "")))
        if given:
            if not re.fullmatch(r"\d{5}", given):
                self.note(line, "postal_code", f"{given!r} is not a 5-digit postal code; ignored")
                given = ""
            elif sub is not None and sub.postal_codes and given not in sub.postal_codes:
                self.note(
                    line,
                    "postal_code",
                    f"{given} is not a postal code of {sub.name_th} ({sub.code}): "
                    + ", ".join(sub.postal_codes),
                )
        if given:
            return given, False
        if sub is not None and len(sub.postal_codes) == 1:
            return sub.postal_codes[0], True
        return "", False

    def _services(self, line: int, text: str) -> list[str]:
        """Our service codes named in a free-text cell; unknown pieces are noted, not guessed."""
        if not text:
            return []
        found: set[str] = set()
        for piece in re.split(r"[,;/|\n、]+", text):
            value = keyword_text(piece)
            if not value:
                continue
            hits = {name for name, words in self.table.services if any(w in value for w in words)}
            if not hits:
                self.note(line, "services", f"{piece.strip()!r} is not a service we list; ignored")
            found |= hits
        return [name for name in CENTRE_SERVICES if name in found]

    def _status(self, line: int, text: str) -> str:
        """active/closed only when the list says so in words of the table; else unknown."""
        if not text:
            return "unknown"
        status = self.table.statuses.get(header_key(text))
        if status is None:
            self.note(line, "status", f"{text!r} is not a known status; imported as unknown")
            return "unknown"
        return status


def validate_row(row: ImportedRow, label: str) -> list[Problem]:
    """The row against the schema, as the loader would read it back from the CSV."""
    data = centre_fields(row.cells)
    try:
        Centre.model_validate(data)
    except ValidationError as exc:
        return [
            Problem(label, row.line, str(e["loc"][0]) if e["loc"] else "(row)", friendly(e))
            for e in exc.errors(include_url=False)
        ]
    return []
