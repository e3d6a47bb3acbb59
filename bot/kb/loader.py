"""Load and validate the whole knowledge folder into one immutable snapshot.

``load_knowledge(folder)`` reads every file, checks each entry against its
schema and every reference between files, and returns either a
``Knowledge`` snapshot or the complete list of problems (never a
half-loaded snapshot). ``bot kb validate`` prints those problems; the
running bot keeps its previous snapshot when there are any.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.content.replies import ContentError, Replies
from bot.kb.assessment_schema import AssessmentDef, load_assessment
from bot.kb.geo import GeoIndex
from bot.kb.guides import GuideSet, read_guides
from bot.kb.places import Gazetteer
from bot.kb.reply_usage import code_root, scan_code, settle_scan, start_scan
from bot.kb.richmenus import check_richmenus
from bot.kb.schemas import (
    CENTRE_COLUMNS,
    CENTRE_REQUIRED_COLUMNS,
    REQUIRED_TOPICS,
    Agency,
    Centre,
    Course,
    ExportProgramme,
    Market,
    Office,
    RichMenu,
    Sector,
    Topic,
    centre_fields,
    friendly,
)
from bot.kb.sources import Located, Problem, dotted, iter_items, read_csv, read_yaml

if TYPE_CHECKING:
    from bot.nlu.data import IntentData

M = TypeVar("M", bound=BaseModel)

#: The files of a knowledge folder, in the order they are read.
FILES = (
    "topics.yaml",
    "agencies.yaml",
    "markets.yaml",
    "sectors.yaml",
    "courses.yaml",
    "export_programmes.yaml",
    "offices.yaml",
    "digital_centres.csv",
    "replies.yaml",
    "richmenus.yaml",
)
#: Files a folder may leave out.
OPTIONAL = frozenset({"offices.yaml", "richmenus.yaml"})
PLACES = "places"
#: Extra reply files, one per capability (``replies/assessment.yaml``, ...).
REPLIES_DIR = "replies"
_WORD = re.compile(r"[a-z_]+")


@dataclass(frozen=True)
class Knowledge:
    """One consistent version of everything the bot knows; never changed once built."""

    version: str
    loaded_at: float
    topics: dict[str, Topic]
    agencies: dict[str, Agency]
    markets: dict[str, Market]
    sectors: dict[str, Sector]
    courses: tuple[Course, ...]
    programmes: tuple[ExportProgramme, ...]
    centres: tuple[Centre, ...]
    replies: Replies
    places: Gazetteer
    #: Open and unknown-status centres by location, for nearest-centre questions.
    centre_index: GeoIndex[Centre]
    #: The skills assessment (assessment.yaml) and the answer phrases (intents/answers/).
    assessment: AssessmentDef
    #: Short sourced answers to common questions (``guides/*.yaml``).
    guides: GuideSet = field(default_factory=lambda: GuideSet({}, {}, {}))
    #: Provincial offices by (agency code, province code).
    offices: dict[tuple[str, str], Office] = field(default_factory=dict)
    #: The rich menus under the chat (``richmenus.yaml``) by id, in file order.
    richmenus: dict[str, RichMenu] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: What an operator should look at but that does not stop the bot (stale guides).
    warnings: tuple[Problem, ...] = ()
    #: The folders it was read from: the knowledge folder, then the intent folder(s).
    folders: tuple[Path, ...] = ()


@dataclass
class LoadResult:
    """A snapshot, or the problems that stopped it."""

    knowledge: Knowledge | None
    problems: list[Problem]

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return self.knowledge.warnings if self.knowledge is not None else ()

    @property
    def ok(self) -> bool:
        return self.knowledge is not None and not self.problems


def folder_version(folder: Path, *also: Path) -> str:
    """A hash of every file's bytes in the folders: equal hashes mean equal knowledge."""
    digest = hashlib.sha256()
    for index, base in enumerate((folder, *also)):
        files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
        for path in files:
            digest.update(f"{index}:{path.relative_to(base)}".encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _label(folder: Path, name: str) -> str:
    return str(folder / name)


def _errors_to_problems(
    doc: Located, base: tuple[str | int, ...], label: str, exc: ValidationError
) -> list[Problem]:
    out: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = (*base, *loc)
        message = friendly(error)
        # A check across fields names the field at fault: point at its line.
        for word in _WORD.findall(message):
            if (*path, word) in doc.lines:
                path = (*path, word)
                loc = (*loc, word)
                break
        out.append(Problem(doc.file, doc.line_of(path), f"{label}{dotted(loc)}", message))
    return out


def _validate_items(doc: Located, model: type[M], id_field: str) -> tuple[list[M], list[Problem]]:
    items: list[M] = []
    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return [], [Problem(doc.file, 1, "items", "the file needs an 'items:' list of entries")]
    unknown_top = set(data) - {"meta", "items"}
    for key in sorted(unknown_top):
        problems.append(
            Problem(doc.file, doc.line_of((key,)), key, "unknown section (use meta and items)")
        )
    for index, raw in iter_items(doc):
        if not isinstance(raw, dict):
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(("items", index)),
                    f"items[{index}]",
                    "each entry must be a group of fields",
                )
            )
            continue
        ident = raw.get(id_field)
        label = f"{ident}." if isinstance(ident, str) and ident else f"items[{index}]."
        try:
            items.append(model.model_validate(raw))
        except ValidationError as exc:
            problems += _errors_to_problems(doc, ("items", index), label, exc)
    return items, problems


def _duplicates(
    doc_file: str, entries: Iterable[tuple[str, Any]], what: str, line: Callable[[Any], int]
) -> list[Problem]:
    """A problem for each repeated id; ``line`` turns an entry's position into its line."""
    seen: dict[str, Any] = {}
    out: list[Problem] = []
    for ident, where in entries:
        if ident in seen:
            first = line(seen[ident])
            out.append(
                Problem(doc_file, line(where), ident, f"duplicate {what}; also on line {first}")
            )
        else:
            seen[ident] = where
    return out


class _Refs:
    """Cross-file reference checks, reported at the line of the offending value."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def check_one(
        self,
        doc: Located,
        path: Sequence[str | int],
        label: str,
        value: str,
        known: set[str] | dict[str, Any],
        what: str,
        hint: str,
    ) -> None:
        if value not in known:
            self.problems.append(
                Problem(
                    doc.file,
                    doc.line_of(path),
                    f"{label}{dotted(tuple(path)[2:])}",
                    f"unknown {what} '{value}'; {hint}",
                )
            )

    def check(
        self,
        doc: Located,
        path: Sequence[str | int],
        label: str,
        values: Iterable[str],
        known: set[str] | dict[str, Any],
        what: str,
        hint: str,
    ) -> None:
        for i, value in enumerate(values):
            for part in str(value).split("|"):
                if part not in known:
                    sub = (*path, i)
                    self.problems.append(
                        Problem(
                            doc.file,
                            doc.line_of(sub),
                            f"{label}{dotted(sub[2:])}",
                            f"unknown {what} '{part}'; {hint}",
                        )
                    )


def _read_centres(
    path: Path, label: str
) -> tuple[list[Centre], list[tuple[str, int]], list[Problem]]:
    rows, problems = read_csv(path, CENTRE_REQUIRED_COLUMNS, label)
    centres: list[Centre] = []
    lines: list[tuple[str, int]] = []
    if problems and not rows:
        return centres, lines, problems
    for row in rows:
        extra = set(row.values) - set(CENTRE_COLUMNS)
        for column in sorted(extra):
            problems.append(
                Problem(label, 1, column, "unknown column (check the spelling, or remove it)")
            )
        data = centre_fields({c: v for c, v in row.values.items() if c not in extra})
        try:
            centre = Centre.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                column = str(error["loc"][0]) if error["loc"] else "(row)"
                ident = data.get("id", f"row {row.line}")
                problems.append(
                    Problem(
                        label,
                        row.line,
                        f"{ident}.{column}" if error["loc"] else str(ident),
                        friendly(error),
                    )
                )
            continue
        centres.append(centre)
        lines.append((centre.id, row.line))
    return centres, lines, problems


def _read_replies(doc: Located) -> tuple[Replies | None, list[Problem]]:
    texts: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        key = ".".join(path)
        if isinstance(node, str):
            texts[key] = (node.strip(),)
        elif isinstance(node, list) and node and all(isinstance(v, str) for v in node):
            texts[key] = tuple(v.strip() for v in node)
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, str(k)))
        else:
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(path),
                    key or "(file)",
                    "expected a text, a list of texts, or a group of keys",
                )
            )

    if not isinstance(doc.data, dict):
        return None, [Problem(doc.file, 1, "(file)", "expected groups of reply keys")]
    walk(doc.data, ())
    replies = Replies(texts=texts, source=doc.file)
    for key, variants in texts.items():
        for i, text in enumerate(variants):
            if not text:
                problems.append(
                    Problem(doc.file, doc.line_of(tuple(key.split("."))), key, "empty text")
                )
            try:
                replies.placeholders(key)
            except ValueError:
                problems.append(
                    Problem(
                        doc.file,
                        doc.line_of((*key.split("."), i)),
                        key,
                        "unbalanced { } braces; write {{ or }} for a literal brace",
                    )
                )
    return replies, problems


def load_replies(path: Path) -> Replies:
    """Just the reply texts (for tools and tests); raises on any problem.

    ``path`` is a knowledge folder (replies.yaml plus replies/*.yaml) or one file.
    """
    if path.is_dir():
        replies, problems = validate_replies(path)
    else:
        doc, problems = read_yaml(path)
        replies = None
        if doc is not None:
            replies, problems = _read_replies(doc)
    if replies is None or problems:
        raise ContentError("\n".join(str(p) for p in problems))
    return replies


def validate_replies(
    folder: Path, root: Path | None = None
) -> tuple[Replies | None, list[Problem]]:
    """The reply files of a knowledge folder, checked as ``bot kb validate`` checks them.

    Only the replies (milliseconds, no places or intents), so a test can try every key.
    """
    main, problems = read_yaml(folder / "replies.yaml", _label(folder, "replies.yaml"))
    replies, more = _all_replies(folder, main, root or code_root())
    return replies, problems + more


def _all_replies(
    folder: Path, main: Located | None, root: Path
) -> tuple[Replies | None, list[Problem]]:
    """``replies.yaml`` plus one file per capability in ``replies/``; a key lives in one file."""
    if main is None:
        return None, []
    docs = [main]
    problems: list[Problem] = []
    for path in sorted((folder / REPLIES_DIR).glob("*.yaml")):
        doc, found = read_yaml(path, _label(folder, f"{REPLIES_DIR}/{path.name}"))
        problems += found
        if doc is not None:
            docs.append(doc)
    texts: dict[str, tuple[str, ...]] = {}
    owners: dict[str, Located] = {}
    groups: dict[str, Located] = {}
    for doc in docs:
        if isinstance(doc.data, dict):
            for name in doc.data:
                groups.setdefault(str(name), doc)
        part, bad = _read_replies(doc)
        problems += bad
        if part is None:
            continue
        for key, variants in part.texts.items():
            if key in owners:
                first = owners[key]
                problems.append(
                    Problem(
                        doc.file,
                        doc.line_of(tuple(key.split("."))),
                        key,
                        f"this reply key is also in {first.file}:"
                        f"{first.line_of(tuple(key.split('.')))}; keep one",
                    )
                )
                continue
            texts[key] = variants
            owners[key] = doc
            parts = key.split(".")
            for end in range(1, len(parts)):
                groups.setdefault(".".join(parts[:end]), doc)
    replies = Replies(texts=texts, source=str(folder / "replies"))
    problems += check_reply_usage(main, replies, root, owners, groups)
    return replies, problems


def check_reply_usage(
    doc: Located,
    replies: Replies,
    root: Path,
    owners: dict[str, Located] | None = None,
    groups: dict[str, Located] | None = None,
) -> list[Problem]:
    """Keys the code uses must exist; placeholders must be ones the code supplies.

    ``owners`` maps a key to the file that defines it, ``groups`` a group (``menu``,
    ``cards.status``) to the file that holds it (default: ``doc``): a missing key is reported
    in the file of its nearest group, where the operator deleted or renamed it. A key the
    code builds at run time without a fallback is reported at its Python line: no edit of
    the files can be checked against it.
    """
    owners = owners or {}
    groups = groups or {}
    scan = scan_code(root)
    if not scan.files:
        return [
            Problem(
                str(root),
                1,
                "(code)",
                "no Python source of bot/ or handlers/ here: the reply keys cannot be checked",
            )
        ]
    problems: list[Problem] = [
        Problem(
            built.file,
            built.line,
            built.source,
            "a reply key built at run time that validation cannot check; write each key out"
            " in full, or test `key in replies` first and fall back when it is missing",
        )
        for built in scan.unchecked
    ]
    supplied: dict[str, set[str]] = {}
    open_keys: set[str] = set()
    reported: set[str] = set()
    for use in scan.uses:
        if use.key not in replies.texts:
            if use.key in reported:
                continue
            reported.add(use.key)
            parts = use.key.split(".")
            group = next(
                (
                    g
                    for end in range(len(parts) - 1, 0, -1)
                    if (g := ".".join(parts[:end])) in groups
                ),
                None,
            )
            home = groups[group] if group else doc
            hint = f"; put it back under {group}:" if group else " (replies.yaml or replies/*.yaml)"
            problems.append(
                Problem(
                    home.file,
                    1,
                    use.key,
                    f"the code uses this reply key ({use.where}) but no reply file has it{hint}",
                )
            )
            continue
        names = supplied.setdefault(use.key, set())
        if use.params_known:
            names.update(use.params)
        if use.open_params:
            open_keys.add(use.key)
    for key, names in supplied.items():
        if key in open_keys:
            continue
        owner = owners.get(key, doc)
        for name in sorted(replies.placeholders(key) - names):
            given = ", ".join("{" + n + "}" for n in sorted(names)) or "none"
            problems.append(
                Problem(
                    owner.file,
                    owner.line_of(tuple(key.split("."))),
                    key,
                    f"placeholder {{{name}}} is not supplied by the code (it supplies: {given})",
                )
            )
    return problems


def load_knowledge(folder: Path, root: Path | None = None, also: Sequence[Path] = ()) -> LoadResult:
    """Read, validate and cross-check every knowledge file; all problems at once.

    The cyclic garbage collector is paused meanwhile: parsing creates hundreds of
    thousands of objects that all stay alive, and collections that walk them
    repeatedly cost more than the parsing itself. Nothing here makes cycles (the code's
    syntax trees, which do, are read in a child process started first, ``start_scan``, unless
    no child can run).

    ``also`` are folders whose files count in the version without being knowledge
    (the intent phrases), so an edit there too moves every process to a new version.
    """
    start_scan(root or code_root())
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(folder, root, also)
    finally:
        if was_enabled:
            gc.enable()
        settle_scan(root or code_root())  # a load that stopped early read no answer


def _load(folder: Path, root: Path | None, also: Sequence[Path]) -> LoadResult:
    started = time.perf_counter()
    problems: list[Problem] = []
    docs: dict[str, Located | None] = {}
    for name in FILES:
        if name in OPTIONAL and not (folder / name).is_file():
            continue
        if name.endswith(".yaml"):
            doc, found = read_yaml(folder / name, _label(folder, name))
            docs[name] = doc
            problems += found
    refs = _Refs()

    def items(name: str, model: type[M], id_field: str) -> tuple[list[M], Located | None]:
        doc = docs.get(name)
        if doc is None:
            return [], None
        found, bad = _validate_items(doc, model, id_field)
        problems.extend(bad)
        problems.extend(
            _duplicates(
                doc.file,
                ((getattr(e, id_field), i) for i, e in _indexed(doc, found, id_field)),
                id_field,
                lambda i: doc.line_of(("items", i)),
            )
        )
        return found, doc

    topics, topics_doc = items("topics.yaml", Topic, "id")
    agencies, agencies_doc = items("agencies.yaml", Agency, "code")
    markets, markets_doc = items("markets.yaml", Market, "code")
    sectors, _ = items("sectors.yaml", Sector, "id")
    courses, courses_doc = items("courses.yaml", Course, "id")
    programmes, programmes_doc = items("export_programmes.yaml", ExportProgramme, "id")
    offices, offices_doc = items("offices.yaml", Office, "id")
    richmenus, richmenus_doc = items("richmenus.yaml", RichMenu, "id")
    centres, centre_lines, centre_problems = _read_centres(
        folder / "digital_centres.csv", _label(folder, "digital_centres.csv")
    )
    problems += centre_problems
    problems += _duplicates(
        _label(folder, "digital_centres.csv"), centre_lines, "id", lambda line: int(line)
    )

    try:
        places = _gazetteer(folder / PLACES)
    except Exception as exc:  # the generated files are missing or damaged
        problems.append(
            Problem(_label(folder, PLACES), 1, "(folder)", f"places could not be loaded: {exc}")
        )
        places = None

    topic_ids = {t.id for t in topics}
    tag_ids = {tag for t in topics for tag in t.tags}
    agency_codes = {a.code for a in agencies}
    market_codes = {m.code for m in markets}
    sector_ids = {s.id for s in sectors}
    if topics_doc is not None:
        for missing in [t for t in REQUIRED_TOPICS if t not in topic_ids]:
            problems.append(Problem(topics_doc.file, 1, missing, "required topic is missing"))
    if agencies_doc is not None:
        for i, agency in enumerate(agencies):
            if agency.parent and agency.parent not in agency_codes:
                refs.check_one(
                    agencies_doc,
                    ("items", i, "parent"),
                    f"{agency.code}.",
                    agency.parent,
                    agency_codes,
                    "agency",
                    "add it to agencies.yaml",
                )
    if markets_doc is not None:
        for i, market in enumerate(markets):
            refs.check(
                markets_doc,
                ("items", i, "members"),
                f"{market.code}.",
                market.members,
                market_codes,
                "market",
                "add it to markets.yaml",
            )

    topic_hint = "use one of the ids in topics.yaml"
    pairs: list[tuple[Located | None, Sequence[Course | ExportProgramme]]] = [
        (courses_doc, courses),
        (programmes_doc, programmes),
    ]
    for doc, entries in pairs:
        if doc is None:
            continue
        for i, entry in _indexed(doc, entries, "id"):
            label = f"{entry.id}."
            base = ("items", i)
            refs.check_one(
                doc,
                (*base, "agency"),
                label,
                entry.agency,
                agency_codes,
                "agency",
                "add it to agencies.yaml",
            )
            refs.check(doc, (*base, "topics"), label, entry.topics, topic_ids, "topic", topic_hint)
            refs.check(
                doc,
                (*base, "tags"),
                label,
                entry.tags,
                tag_ids,
                "tag",
                "use a tag listed under a topic in topics.yaml",
            )
            partner_codes = [p for p in entry.partners if isinstance(p, str)]
            refs.check(
                doc,
                (*base, "partners"),
                label,
                partner_codes,
                agency_codes,
                "agency",
                "add it to agencies.yaml",
            )
            if entry.eligibility:
                refs.check(
                    doc,
                    (*base, "eligibility", "requires_membership"),
                    label,
                    entry.eligibility.requires_membership,
                    agency_codes,
                    "organisation",
                    "add it to agencies.yaml",
                )
            if isinstance(entry, Course) and places is not None:
                refs.check(
                    doc,
                    (*base, "places", "province_codes"),
                    label,
                    entry.places.province_codes,
                    _codes(places, 2),
                    "province code",
                    "use a 2-digit DOPA code from knowledge/places/provinces.csv",
                )
            if isinstance(entry, ExportProgramme):
                refs.check(
                    doc,
                    (*base, "markets"),
                    label,
                    entry.markets,
                    market_codes,
                    "market",
                    "use a code from markets.yaml",
                )
                refs.check(
                    doc,
                    (*base, "sectors"),
                    label,
                    entry.sectors,
                    sector_ids,
                    "sector",
                    "use an id from sectors.yaml",
                )
    csv_label = _label(folder, "digital_centres.csv")
    line_of = dict(centre_lines)
    for centre in centres:
        line = line_of.get(centre.id, 1)
        if centre.operator not in agency_codes:
            problems.append(
                Problem(
                    csv_label,
                    line,
                    f"{centre.id}.operator",
                    f"unknown agency '{centre.operator}'; add it to agencies.yaml",
                )
            )
        if places is None:
            continue
        for column, code in (
            ("province_code", centre.province_code),
            ("district_code", centre.district_code),
            ("subdistrict_code", centre.subdistrict_code),
        ):
            if (
                code
                and code
                not in {2: places.provinces, 4: places.districts, 6: places.subdistricts}[len(code)]
            ):
                problems.append(
                    Problem(
                        csv_label,
                        line,
                        f"{centre.id}.{column}",
                        f"unknown place code '{code}'; see knowledge/places/",
                    )
                )

    if offices_doc is not None:
        province_codes = _codes(places, 2) if places is not None else set()
        for i, office in _indexed(offices_doc, offices, "id"):
            label = f"{office.id}."
            refs.check_one(
                offices_doc,
                ("items", i, "agency"),
                label,
                office.agency,
                agency_codes,
                "agency",
                "add it to agencies.yaml",
            )
            if places is not None:
                refs.check_one(
                    offices_doc,
                    ("items", i, "province"),
                    label,
                    office.province,
                    province_codes,
                    "province code",
                    "use a 2-digit DOPA code from knowledge/places/provinces.csv",
                )
    guides, bad = read_guides(folder, agency_codes, topic_ids, market_codes, sector_ids)
    problems += bad
    intents_dirs = [p for p in (*also, folder.parent / "intents") if p.is_dir()][:1]
    intent_data = _intent_data(intents_dirs[0]) if intents_dirs else None
    if intent_data is not None:
        problems += _guide_phrase_clashes(guides, intent_data)
    if richmenus_doc is not None:
        problems += check_richmenus(
            richmenus_doc,
            _indexed(richmenus_doc, richmenus, "id"),
            _known_intents(intent_data),
        )

    assessment, bad = load_assessment(
        folder,
        _label(folder, "assessment.yaml"),
        topic_ids,
        sector_ids,
        [p for p in (*also, folder.parent / "intents") if (p / "answers").is_dir()][:1],
    )
    problems += bad
    replies, bad = _all_replies(folder, docs.get("replies.yaml"), root or code_root())
    problems += bad
    problems += refs.problems

    if problems or replies is None or places is None or assessment is None:
        return LoadResult(None, sorted(set(problems)))
    counts = {
        "topics": len(topics),
        "agencies": len(agencies),
        "markets": len(markets),
        "sectors": len(sectors),
        "courses": len(courses),
        "export_programmes": len(programmes),
        "digital_centres": len(centres),
        "replies": len(replies.texts),
        "assessment_questions": len(assessment.questions),
        "guides": len(guides.guides),
        "offices": len(offices),
        "richmenus": len(richmenus),
    }
    knowledge = Knowledge(
        version=folder_version(folder, *also),
        loaded_at=time.time(),
        topics={t.id: t for t in topics},
        agencies={a.code: a for a in agencies},
        markets={m.code: m for m in markets},
        sectors={s.id: s for s in sectors},
        courses=tuple(courses),
        programmes=tuple(programmes),
        centres=tuple(centres),
        replies=replies,
        places=places,
        centre_index=GeoIndex(
            [(c.location_lat, c.location_lng, c) for c in centres if c.status != "closed"]
        ),
        assessment=assessment,
        guides=guides,
        offices={(o.agency, o.province): o for o in offices},
        richmenus={m.id: m for m in richmenus},
        warnings=tuple(guides.stale(today())),
        folders=(folder, *also),
        counts=counts | {"load_ms": int((time.perf_counter() - started) * 1000)},
    )
    return LoadResult(knowledge, [])


def _intent_data(intents_dir: Path) -> IntentData | None:
    """The intent phrases, or None when their files have problems.

    The intent files report their own problems (``bot nlu eval``, start-up).
    """
    from bot.nlu.data import IntentFileError, read_intents

    try:
        return read_intents(intents_dir, frozenset())
    except IntentFileError:
        return None


def _known_intents(data: IntentData | None) -> set[str]:
    """Intents a rich menu may run: those with phrases, and those the handlers rely on."""
    from bot.nlu.data import REQUIRED_INTENTS

    return set(REQUIRED_INTENTS) | (data.intents if data is not None else set())


def _guide_phrase_clashes(guides: GuideSet, data: IntentData) -> list[Problem]:
    """A guide's example that is also an intent's example: one phrase has one meaning."""
    from bot.nlu.text import normalise

    owner = {normalise(e.text): e for e in data.examples}
    out: list[Problem] = []
    for guide_id, guide in guides.guides.items():
        file, line = guides.where[guide_id]
        for i, phrase in enumerate(guide.examples):
            hit = owner.get(normalise(phrase))
            if hit is not None:
                out.append(
                    Problem(
                        file,
                        line,
                        f"{guide_id}.examples[{i}]",
                        f"'{phrase}' is also an example of intent {hit.intent} "
                        f"({hit.file}:{hit.line}); one phrase belongs to one answer",
                    )
                )
    return out


_GAZETTEERS: dict[Path, tuple[tuple[tuple[str, int, int], ...], Gazetteer]] = {}


def _gazetteer(folder: Path) -> Gazetteer:
    """The places, reused across reloads while their generated files are unchanged."""
    key = folder.resolve()
    signature = tuple(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.glob("*"))
        if p.is_file()
    )
    cached = _GAZETTEERS.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    places = Gazetteer.load(folder)
    _GAZETTEERS[key] = (signature, places)
    return places


def _indexed(doc: Located, entries: Sequence[M], id_field: str) -> list[tuple[int, M]]:
    """Pair validated entries with their index in the file (invalid ones were skipped)."""
    by_id: dict[str, list[int]] = {}
    for index, raw in iter_items(doc):
        if isinstance(raw, dict) and isinstance(raw.get(id_field), str):
            by_id.setdefault(raw[id_field], []).append(index)
    out: list[tuple[int, M]] = []
    used: dict[str, int] = {}
    for entry in entries:
        ident = str(getattr(entry, id_field))
        k = used.get(ident, 0)
        indexes = by_id.get(ident, [0])
        out.append((indexes[min(k, len(indexes) - 1)], entry))
        used[ident] = k + 1
    return out


def _codes(places: Gazetteer, length: int) -> set[str]:
    table = {2: places.provinces, 4: places.districts, 6: places.subdistricts}[length]
    return set(table)


def today() -> dt.date:
    """Today in Thailand (dates in the knowledge are Thai dates)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()
