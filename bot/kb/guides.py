"""Guides: short, sourced answers to the common questions of citizens and SMEs.

``knowledge/guides/*.yaml`` holds one file per theme (``meta`` + ``guides``). Each guide has
example questions (the engine learns them together with the intents, as ``guide:<id>``), an
answer that fits one LINE bubble, optional details behind a button, the agency that owns the
answer, related topics/markets/sectors for next steps, and provenance with a review date.
Problems are reported ``FILE:LINE: field: message`` like every knowledge file; a guide past
its ``review_by`` date is a warning, not an error (the bot keeps serving it, hedged).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from bot.kb.schemas import Code, Day, Slug, Strict, Url
from bot.kb.sources import Located, Problem, read_yaml

__all__ = [
    "ANSWER_MAX",
    "DETAILS_MAX",
    "GUIDE_PREFIX",
    "MIN_EXAMPLES",
    "Guide",
    "GuideSet",
    "guide_label",
    "read_guides",
]

GUIDES_DIR = "guides"
#: The engine's label of a guide: ``guide:<id>``.
GUIDE_PREFIX = "guide:"
#: One LINE bubble or text: the answer is read on a phone.
ANSWER_MAX = 600
DETAILS_MAX = 1800
MIN_EXAMPLES = 6
#: LINE quick-reply labels are at most 20 characters.
SHORT_MAX = 20
GuideId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]


def guide_label(guide_id: str) -> str:
    """The engine's intent label of a guide."""
    return GUIDE_PREFIX + guide_id


class GuideProvenance(Strict):
    """Where a guide's facts come from, when they were checked, and when to check again."""

    status: Literal["sample", "verified"]
    source_urls: Annotated[list[Url], Field(min_length=1)]
    checked_on: Day
    review_by: Day
    note: str | None = None

    @model_validator(mode="after")
    def _order(self) -> GuideProvenance:
        if self.review_by < self.checked_on:
            raise ValueError("review_by is before checked_on")
        return self


class Related(Strict):
    """What to offer next: matching courses (topics), programmes (markets, sectors), guides."""

    topics: list[Slug] = Field(default_factory=list)
    markets: list[Code] = Field(default_factory=list)
    sectors: list[Slug] = Field(default_factory=list)
    guides: list[GuideId] = Field(default_factory=list)


class Guide(Strict):
    """One question people ask, its short answer and where the answer comes from."""

    id: GuideId
    title: Annotated[str, Field(min_length=1, max_length=80)]
    short: Annotated[str, Field(min_length=1, max_length=SHORT_MAX)]
    examples: Annotated[list[str], Field(min_length=MIN_EXAMPLES)]
    answer: Annotated[str, Field(min_length=1, max_length=ANSWER_MAX)]
    details: Annotated[str, Field(max_length=DETAILS_MAX)] | None = None
    agency: Code
    local_offices: list[Code] = Field(default_factory=list)
    related: Related = Field(default_factory=Related)
    provenance: GuideProvenance

    @field_validator("examples", mode="before")
    @classmethod
    def _phrases(cls, value: object) -> object:
        if isinstance(value, list):
            return [
                str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for v in value
            ]
        return value

    @property
    def label(self) -> str:
        return guide_label(self.id)

    @property
    def verified(self) -> bool:
        return self.provenance.status == "verified"

    def stale(self, today: dt.date) -> bool:
        """Past its review date: still served, but an operator must check it."""
        return self.provenance.review_by < today


@dataclass(frozen=True)
class GuideSet:
    """Every guide of the folder, by id, with the theme (file) each came from."""

    guides: dict[str, Guide]
    themes: dict[str, str]
    #: (theme file, line) of each guide, for warnings and reports.
    where: dict[str, tuple[str, int]]
    #: The line of each guide's ``review_by`` (where a stale warning points).
    review_lines: dict[str, int] = field(default_factory=dict)

    def get(self, guide_id: str) -> Guide | None:
        return self.guides.get(guide_id)

    def by_label(self, label: str | None) -> Guide | None:
        """The guide an engine label (``guide:<id>``) names, else None."""
        if not label or not label.startswith(GUIDE_PREFIX):
            return None
        return self.guides.get(label[len(GUIDE_PREFIX) :])

    def stale(self, today: dt.date) -> list[Problem]:
        """One warning per guide past its ``review_by`` date."""
        out = []
        for guide in self.guides.values():
            if guide.stale(today):
                file, line = self.where[guide.id]
                out.append(
                    Problem(
                        file,
                        self.review_lines.get(guide.id, line),
                        f"{guide.id}.provenance.review_by",
                        f"review date {guide.provenance.review_by.isoformat()} has passed; "
                        "check the answer at its sources and set a new review_by",
                    )
                )
        return out


@dataclass(frozen=True)
class _Refs:
    """The codes a guide may refer to (from the other knowledge files)."""

    agencies: set[str]
    topics: set[str]
    markets: set[str]
    sectors: set[str]


def _problems(
    doc: Located,
    base: tuple[str | int, ...],
    label: str,
    exc: ValidationError,
) -> list[Problem]:
    from bot.kb.loader import _errors_to_problems

    return _errors_to_problems(doc, base, label, exc)


def read_guides(
    folder: Path,
    agencies: Iterable[str],
    topics: Iterable[str],
    markets: Iterable[str],
    sectors: Iterable[str],
) -> tuple[GuideSet, list[Problem]]:
    """Read ``folder/guides/*.yaml``; every problem at once (an absent folder is no guides)."""
    refs = _Refs(set(agencies), set(topics), set(markets), set(sectors))
    guides: dict[str, Guide] = {}
    themes: dict[str, str] = {}
    problems: list[Problem] = []
    base = folder / GUIDES_DIR
    files = sorted(base.glob("*.yaml")) if base.is_dir() else []
    seen_examples: dict[str, tuple[str, str, int]] = {}
    located: dict[str, tuple[Located, int]] = {}
    unreadable = False
    for path in files:
        doc, found = read_yaml(path, str(path))
        problems += found
        if doc is None:
            unreadable = True
            continue
        problems += _read_file(doc, path.stem, refs, guides, themes, located, seen_examples)
    for guide_id, guide in guides.items():
        if unreadable:
            break  # a file that did not parse may hold the guides named: no cascade of errors
        doc, index = located[guide_id]
        for i, other in enumerate(guide.related.guides):
            if other not in guides:
                problems.append(
                    Problem(
                        doc.file,
                        doc.line_of(("guides", index, "related", "guides", i)),
                        f"{guide_id}.related.guides[{i}]",
                        f"unknown guide '{other}'",
                    )
                )
    where = {g: (doc.file, doc.line_of(("guides", i))) for g, (doc, i) in located.items()}
    review = {
        g: doc.line_of(("guides", i, "provenance", "review_by")) for g, (doc, i) in located.items()
    }
    return GuideSet(guides, themes, where, review), problems


def _read_file(
    doc: Located,
    theme: str,
    refs: _Refs,
    guides: dict[str, Guide],
    themes: dict[str, str],
    located: dict[str, tuple[Located, int]],
    seen_examples: dict[str, tuple[str, str, int]],
) -> list[Problem]:
    from bot.nlu.text import normalise

    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("guides"), list):
        return [Problem(doc.file, 1, "guides", "the file needs a 'guides:' list of entries")]
    for key in sorted(set(data) - {"meta", "guides"}):
        problems.append(
            Problem(doc.file, doc.line_of((key,)), key, "unknown section (use meta and guides)")
        )
    meta = data.get("meta")
    if isinstance(meta, dict) and meta.get("theme") not in (None, theme):
        problems.append(
            Problem(
                doc.file,
                doc.line_of(("meta", "theme")),
                "meta.theme",
                f"'{meta.get('theme')}' differs from the file name '{theme}'",
            )
        )
    for index, raw in enumerate(data["guides"]):
        line = doc.line_of(("guides", index))
        if not isinstance(raw, dict):
            problems.append(
                Problem(doc.file, line, f"guides[{index}]", "each guide must be a group of fields")
            )
            continue
        ident = raw.get("id")
        label = f"{ident}." if isinstance(ident, str) and ident else f"guides[{index}]."
        try:
            guide = Guide.model_validate(raw)
        except ValidationError as exc:
            problems += _problems(doc, ("guides", index), label, exc)
            continue
        if guide.id in guides:
            first, first_index = located[guide.id]
            problems.append(
                Problem(
                    doc.file,
                    line,
                    guide.id,
                    f"duplicate guide id; also at {first.file}:"
                    f"{first.line_of(('guides', first_index))}",
                )
            )
            continue
        problems += _check_refs(doc, index, guide, refs)
        for i, phrase in enumerate(guide.examples):
            key = normalise(phrase)
            at = doc.line_of(("guides", index, "examples", i))
            if not key:
                problems.append(Problem(doc.file, at, f"{guide.id}.examples[{i}]", "is empty"))
                continue
            other = seen_examples.get(key)
            if other is not None and other[0] != guide.id:
                problems.append(
                    Problem(
                        doc.file,
                        at,
                        f"{guide.id}.examples[{i}]",
                        f"'{phrase}' is also an example of guide {other[0]} "
                        f"({other[1]}:{other[2]}); one phrase belongs to one guide",
                    )
                )
                continue
            seen_examples.setdefault(key, (guide.id, doc.file, at))
        guides[guide.id] = guide
        themes[guide.id] = theme
        located[guide.id] = (doc, index)
    return problems


def _check_refs(doc: Located, index: int, guide: Guide, refs: _Refs) -> list[Problem]:
    out: list[Problem] = []

    def check(
        path: tuple[str | int, ...], value: str, known: set[str], what: str, hint: str
    ) -> None:
        if value not in known:
            field = guide.id + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            out.append(
                Problem(
                    doc.file,
                    doc.line_of(("guides", index, *path)),
                    field,
                    f"unknown {what} '{value}'; {hint}",
                )
            )

    check(("agency",), guide.agency, refs.agencies, "agency", "add it to agencies.yaml")
    for i, code in enumerate(guide.local_offices):
        check(("local_offices", i), code, refs.agencies, "agency", "add it to agencies.yaml")
    lists: tuple[tuple[str, list[str], set[str], str, str], ...] = (
        ("topics", guide.related.topics, refs.topics, "topic", "use an id from topics.yaml"),
        ("markets", guide.related.markets, refs.markets, "market", "use a code from markets.yaml"),
        ("sectors", guide.related.sectors, refs.sectors, "sector", "use an id from sectors.yaml"),
    )
    for name, values, known, what, hint in lists:
        for i, value in enumerate(values):
            check(("related", name, i), value, known, what, hint)
    return out
