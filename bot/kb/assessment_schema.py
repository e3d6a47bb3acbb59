"""The skills assessment as data: ``knowledge/assessment.yaml`` and its answer phrases.

Operators edit the questions, the button labels, the scoring and the stage names in
``knowledge/assessment.yaml``, and the phrases people type for each option in
``intents/answers/*.yaml``. This module holds their pydantic schema and every check that
needs more than one entry (fixed question ids, topic and sector references, the stage
ladder, LINE's button limits), each reported as ``FILE:LINE: field: message`` like the
other knowledge files. ``bot.kb.loader`` calls :func:`load_assessment` once the topics
and sectors are known; a file with problems stops the whole snapshot, so the running bot
keeps its previous one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from bot.kb.schemas import Meta, Slug, Stage, Strict, friendly
from bot.kb.sources import Located, Problem, dotted, read_yaml
from bot.line.messages import LABEL_MAX, QUICK_REPLY_MAX, line_length

FILE = "assessment.yaml"
#: Folder (inside an intents folder) of the phrases people type for each option.
ANSWERS_DIR = "answers"

#: The questions other pieces read from ``Assessment.answers`` (the contract): all required.
QUESTION_IDS = (
    "business_stage",
    "sector",
    "sales_channels",
    "digital_skill",
    "goal",
    "province",
    "notify",
)
QuestionId = Literal[
    "business_stage", "sector", "sales_channels", "digital_skill", "goal", "province", "notify"
]
#: Option ids other pieces rely on, per question (operators may change labels, not ids).
FIXED_OPTIONS: dict[str, frozenset[str]] = {
    "business_stage": frozenset({"idea", "new", "running", "exporting"}),
    "notify": frozenset({"yes", "no"}),
}
#: Phrase groups that are not options: "that's all" on a multi-choice question, and
#: "skip" on the place question.
DONE = "_done"
SKIP = "_skip"
#: Buttons the bot adds beside the options: "back" on every question after the first,
#: "exit" after answers it could not read, "done" on a multi-choice question once something
#: is picked, "share location" and "skip" on the place question.
_EXTRA_BUTTONS = {"choice": 2, "multi": 3, "place": 4}
Kind = Literal["choice", "multi", "place"]


class Option(Strict):
    """One answer: its button, its points towards the stage, and the topics it points to."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=24)]
    label: Annotated[str, Field(min_length=1)]
    points: Annotated[int, Field(ge=0, le=20)] = 0
    min_stage: Stage | None = None
    max_stage: Stage | None = None
    needs: list[Slug] = Field(default_factory=list)
    strong: list[Slug] = Field(default_factory=list)
    entities: list[Annotated[str, Field(pattern=r"^(topic|sector):[a-z0-9][a-z0-9_\-]*$")]] = Field(
        default_factory=list
    )
    exclusive: bool = False
    suggest_centre: bool = False
    export_ready: bool = False

    @field_validator("label")
    @classmethod
    def _short_label(cls, value: str) -> str:
        if line_length(value) > LABEL_MAX:
            raise ValueError(
                f"{value!r} is {line_length(value)} characters; LINE shows at most "
                f"{LABEL_MAX} on a button"
            )
        return value

    @model_validator(mode="after")
    def _stage_range(self) -> Option:
        if self.min_stage and self.max_stage and self.min_stage > self.max_stage:
            raise ValueError("min_stage is larger than max_stage")
        return self


class Question(Strict):
    """One question: its wording, what kind of answer it takes, and its options."""

    id: QuestionId
    text: Annotated[str, Field(min_length=1)]
    kind: Kind = "choice"
    #: How much this question's ``needs`` count when ranking the topics to learn.
    weight: Annotated[float, Field(ge=0, le=10)] = 1.0
    options: list[Option] = Field(default_factory=list)

    @model_validator(mode="after")
    def _options(self) -> Question:
        if self.kind != "place" and len(self.options) < 2:
            raise ValueError("a question needs at least 2 options")
        room = QUICK_REPLY_MAX - _EXTRA_BUTTONS[self.kind]
        if len(self.options) > room:
            raise ValueError(
                f"{len(self.options)} options: at most {room} fit beside the bot's own "
                f"buttons (LINE shows {QUICK_REPLY_MAX} quick replies)"
            )
        return self

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


class StageDef(Strict):
    """A rung of the readiness ladder and the points needed to reach it."""

    stage: Stage
    min_points: Annotated[int, Field(ge=0)]
    name: Annotated[str, Field(min_length=1)]
    summary: Annotated[str, Field(min_length=1)]


class Scoring(Strict):
    """How answers turn into recommendations."""

    #: Export programmes are shown from this stage on (or when an answer is ``export_ready``).
    programmes_from_stage: Stage = 4
    #: Topics named in the summary as "what to learn next" (and kept for notices).
    show_topics: Annotated[int, Field(ge=1, le=5)] = 3
    #: Cards in the result carousel.
    max_cards: Annotated[int, Field(ge=1, le=10)] = 10
    #: Export programme cards at most, so courses keep room.
    max_programmes: Annotated[int, Field(ge=0, le=10)] = 4


class AssessmentFile(Strict):
    """The whole ``assessment.yaml``."""

    meta: Meta = Field(default_factory=Meta)
    scoring: Scoring = Field(default_factory=Scoring)
    stages: Annotated[list[StageDef], Field(min_length=5, max_length=5)]
    questions: list[Question]


@dataclass(frozen=True)
class AnswerPhrases:
    """What people type for each option (``intents/answers/*.yaml``), as written."""

    #: question id -> option id (or ``_done`` / ``_skip``) -> phrases.
    options: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    #: Words that never change an answer (particles, "ข้อ", "ตอบ").
    ignore: tuple[str, ...] = ()
    #: Words that turn a phrase around ("ไม่", "ยังไม่"): a phrase with one never matches
    #: a text without one as well as a phrase that agrees.
    negations: tuple[str, ...] = ()


@dataclass(frozen=True)
class AssessmentDef:
    """The assessment of one knowledge snapshot: questions in order, ladder, phrases."""

    questions: tuple[Question, ...]
    stages: tuple[StageDef, ...]
    scoring: Scoring
    phrases: AnswerPhrases = field(default_factory=AnswerPhrases)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.questions)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def number(self, question_id: str) -> int:
        """1-based position of a question (for "ข้อ 2/7")."""
        return self.ids.index(question_id) + 1

    def after(self, question_id: str) -> str | None:
        """The next question's id (None after the last)."""
        i = self.ids.index(question_id)
        return self.ids[i + 1] if i + 1 < len(self.ids) else None

    def before(self, question_id: str) -> str | None:
        """The previous question's id (None before the first)."""
        i = self.ids.index(question_id)
        return self.ids[i - 1] if i > 0 else None

    def stage_def(self, stage: int) -> StageDef:
        return next(s for s in self.stages if s.stage == stage)


def _validation_problems(
    doc: Located, exc: ValidationError, base: tuple[str | int, ...] = ()
) -> list[Problem]:
    out: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = (*base, *error["loc"])
        label = _label(doc, loc)
        out.append(Problem(doc.file, doc.line_of(loc), label, friendly(error)))
    return out


def _label(doc: Located, loc: Sequence[str | int]) -> str:
    """A field name an operator recognises: ``sales_channels.social.label``, not indexes."""
    parts: list[str] = []
    node: Any = doc.data
    i = 0
    while i < len(loc):
        key = loc[i]
        following = loc[i + 1] if i + 1 < len(loc) else None
        if key in ("questions", "options") and isinstance(following, int):
            items = node.get(key) if isinstance(node, dict) else None
            item = items[following] if isinstance(items, list) and following < len(items) else None
            ident = item.get("id") if isinstance(item, dict) else None
            parts.append(ident if isinstance(ident, str) and ident else f"{key}[{following}]")
            node = item
            i += 2
            continue
        if isinstance(key, int):
            if parts:
                parts[-1] += f"[{key}]"
            else:
                parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            parts.append(key)
            node = node.get(key) if isinstance(node, dict) else None
        i += 1
    return ".".join(parts) or dotted(loc)


@dataclass(frozen=True)
class ParsedQuestion:
    """A question as far as it validated: its valid options even when others are not."""

    index: int
    id: str | None
    kind: str
    options: tuple[tuple[int, Option], ...]
    #: The whole question, when it is valid.
    question: Question | None


def parse_question(doc: Located, index: int, raw: Any) -> tuple[ParsedQuestion, list[Problem]]:
    """Validate one question and, separately, each of its options (all problems at once)."""
    base: tuple[str | int, ...] = ("questions", index)
    problems: list[Problem] = []
    options: list[tuple[int, Option]] = []
    raw_options = raw.get("options") if isinstance(raw, dict) else None
    for oi, raw_option in enumerate(raw_options if isinstance(raw_options, list) else []):
        try:
            options.append((oi, Option.model_validate(raw_option)))
        except ValidationError as exc:
            problems += _validation_problems(doc, exc, (*base, "options", oi))
    question: Question | None = None
    try:
        question = Question.model_validate(raw)
    except ValidationError as exc:
        for problem in _validation_problems(doc, exc, base):
            if problem not in problems:
                problems.append(problem)
    ident = raw.get("id") if isinstance(raw, dict) else None
    kind = raw.get("kind", "choice") if isinstance(raw, dict) else "choice"
    parsed = ParsedQuestion(
        index,
        ident if isinstance(ident, str) else None,
        kind if isinstance(kind, str) else "choice",
        tuple(options),
        question,
    )
    return parsed, problems


def check_assessment(
    doc: Located,
    questions: Sequence[ParsedQuestion],
    stages: Sequence[StageDef],
    topic_ids: Iterable[str],
    sector_ids: Iterable[str],
) -> list[Problem]:
    """Checks across entries and files: fixed ids, references, the stage ladder."""
    topics = set(topic_ids)
    sectors = set(sector_ids)
    problems: list[Problem] = []

    def add(path: Sequence[str | int], message: str) -> None:
        problems.append(Problem(doc.file, doc.line_of(tuple(path)), _label(doc, path), message))

    seen: dict[str, int] = {}
    for q in questions:
        base: tuple[str | int, ...] = ("questions", q.index)
        if q.id is None:
            continue
        if q.id in seen:
            add((*base, "id"), f"question '{q.id}' twice; also item {seen[q.id] + 1}")
            continue
        seen[q.id] = q.index
        if q.id == "province" and q.kind != "place":
            add((*base, "kind"), "the province question must be kind: place")
        if q.id != "province" and q.kind == "place":
            add((*base, "kind"), "only the province question can be kind: place")
        if q.kind == "place" and q.options:
            add((*base, "options"), "a place question has no options (people type or share)")
        option_ids: dict[str, int] = {}
        for oi, option in q.options:
            path: tuple[str | int, ...] = (*base, "options", oi)
            if option.id in option_ids:
                add((*path, "id"), f"option '{option.id}' twice in this question")
            option_ids.setdefault(option.id, oi)
            for name in ("needs", "strong"):
                for ti, topic in enumerate(getattr(option, name)):
                    if topic not in topics:
                        add(
                            (*path, name, ti),
                            f"unknown topic '{topic}'; use one of the ids in topics.yaml",
                        )
            for ei, entity in enumerate(option.entities):
                kind, value = entity.split(":", 1)
                known = topics if kind == "topic" else sectors
                if value not in known:
                    add(
                        (*path, "entities", ei),
                        f"unknown {kind} '{value}'; use an id from {kind}s.yaml",
                    )
            if q.id == "sector" and option.id not in sectors:
                add((*path, "id"), f"'{option.id}' is not a sector id; use one from sectors.yaml")
            if option.exclusive and q.kind != "multi":
                add((*path, "exclusive"), "exclusive only means something in a multi question")
        fixed = FIXED_OPTIONS.get(q.id)
        if q.question is not None and fixed is not None and set(option_ids) != fixed:
            want = ", ".join(sorted(fixed))
            add((*base, "options"), f"the options of '{q.id}' must have exactly the ids: {want}")
    for qid in QUESTION_IDS:
        if qid not in seen:
            problems.append(
                Problem(doc.file, doc.line_of(("questions",)), "questions", f"'{qid}' is missing")
            )

    numbers = [s.stage for s in stages]
    for si, s in enumerate(stages):
        if numbers.count(s.stage) > 1:
            add(("stages", si, "stage"), f"stage {s.stage} twice; list stages 1 to 5 once each")
    ordered = sorted(stages, key=lambda s: s.stage)
    if ordered and ordered[0].min_points != 0:
        index = list(stages).index(ordered[0])
        add(("stages", index, "min_points"), "the lowest stage must start at 0 points")
    for low, high in itertools.pairwise(ordered):
        if high.min_points <= low.min_points:
            index = list(stages).index(high)
            add(
                ("stages", index, "min_points"),
                f"stage {high.stage} needs more points than stage {low.stage} ({low.min_points})",
            )
    return problems


class _PhraseReader:
    """Collects the answer phrases of several files, with a problem for each mistake."""

    def __init__(self, questions: Sequence[Question] | None) -> None:
        self.questions: dict[str, Question] = {q.id: q for q in questions or ()}
        self.checked = questions is not None
        self.options: dict[str, dict[str, list[str]]] = {}
        self.ignore: list[str] = []
        self.negations: list[str] = []
        self.problems: list[Problem] = []
        #: (question, phrase as compared) -> (option, file, line) where it first appeared
        self.seen: dict[tuple[str, str], tuple[str, str, int]] = {}

    def problem(self, doc: Located, path: tuple[str | int, ...], name: str, text: str) -> None:
        self.problems.append(Problem(doc.file, doc.line_of(path), name, text))

    def read(self, path: Path) -> None:
        doc, found = read_yaml(path, str(path))
        self.problems += found
        if doc is None or doc.data is None:
            return
        data = doc.data
        if not isinstance(data, dict):
            self.problem(doc, (), "(file)", "expected ignore, negations and answers")
            return
        for key in sorted(set(data) - {"ignore", "negations", "answers"}):
            self.problem(doc, (key,), key, "unknown section (use ignore, negations, answers)")
        for name, target in (("ignore", self.ignore), ("negations", self.negations)):
            values = data.get(name) or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                self.problem(doc, (name,), name, "must be a list of words")
                continue
            target.extend(v.strip() for v in values if v.strip())
        answers = data.get("answers") or {}
        if not isinstance(answers, dict):
            self.problem(doc, ("answers",), "answers", "must be a group of question ids")
            return
        for qid, groups in answers.items():
            self.read_question(doc, str(qid), groups)

    def read_question(self, doc: Located, qid: str, groups: Any) -> None:
        q = self.questions.get(qid)
        if self.checked and q is None:
            known = ", ".join(QUESTION_IDS)
            self.problem(doc, ("answers", qid), f"answers.{qid}", f"unknown question; use {known}")
            return
        if not isinstance(groups, dict):
            self.problem(doc, ("answers", qid), f"answers.{qid}", "must be a group of option ids")
            return
        for oid, phrases in groups.items():
            where: tuple[str | int, ...] = ("answers", qid, oid)
            name = f"answers.{qid}.{oid}"
            if q is not None and not _known_option(q, oid):
                known = ", ".join(o.id for o in q.options)
                extra = {"multi": DONE, "place": SKIP}.get(q.kind)
                allowed = ", ".join(x for x in (known, extra) if x)
                self.problem(doc, where, name, f"unknown option; use one of: {allowed}")
                continue
            if not isinstance(phrases, list) or not all(isinstance(p, str | int) for p in phrases):
                self.problem(doc, where, name, "must be a list of phrases")
                continue
            bucket = self.options.setdefault(qid, {}).setdefault(oid, [])
            for pi, phrase in enumerate(phrases):
                text = str(phrase).strip()
                if not text:
                    continue
                key = (qid, " ".join(text.lower().split()))
                line = doc.line_of((*where, pi))
                first = self.seen.setdefault(key, (oid, doc.file, line))
                if first[0] != oid:
                    self.problems.append(
                        Problem(
                            doc.file,
                            line,
                            name,
                            f"'{text}' is also an answer for '{first[0]}' ({first[1]}:{first[2]});"
                            " keep it under one option",
                        )
                    )
                    continue
                bucket.append(text)

    def result(self) -> AnswerPhrases:
        options = {q: {o: tuple(v) for o, v in g.items()} for q, g in self.options.items()}
        return AnswerPhrases(options, tuple(self.ignore), tuple(self.negations))


def _known_option(q: Question, oid: str) -> bool:
    if q.option(oid) is not None:
        return True
    return (oid == DONE and q.kind == "multi") or (oid == SKIP and q.kind == "place")


def read_phrases(
    folders: Sequence[Path], questions: Sequence[Question] | None
) -> tuple[AnswerPhrases, list[Problem]]:
    """Answer phrases from every ``answers/*.yaml`` under the given intent folders.

    ``questions`` None: the assessment file itself is broken, so ids are not checked.
    """
    reader = _PhraseReader(questions)
    for folder in folders:
        for path in sorted((folder / ANSWERS_DIR).glob("*.yaml")):
            reader.read(path)
    return reader.result(), reader.problems


def load_assessment(
    folder: Path,
    label: str,
    topic_ids: Iterable[str],
    sector_ids: Iterable[str],
    intent_folders: Sequence[Path] = (),
) -> tuple[AssessmentDef | None, list[Problem]]:
    """Read and check ``assessment.yaml`` and the answer phrases; all problems at once."""
    doc, problems = read_yaml(folder / FILE, label)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, [Problem(doc.file, 1, "(file)", "expected meta, scoring, stages, questions")]
    data = doc.data
    head: AssessmentFile | None = None
    try:  # everything but the questions, which are checked one by one below
        head = AssessmentFile.model_validate({**data, "questions": []})
    except ValidationError as exc:
        problems += _validation_problems(doc, exc)
    parsed: list[ParsedQuestion] = []
    raw_questions = data.get("questions")
    if raw_questions is None:
        problems.append(Problem(doc.file, 1, "questions", "required, but missing"))
    elif not isinstance(raw_questions, list):
        line = doc.line_of(("questions",))
        problems.append(Problem(doc.file, line, "questions", "must be a list of questions"))
    else:
        for i, raw in enumerate(raw_questions):
            one, bad = parse_question(doc, i, raw)
            parsed.append(one)
            problems += bad
    stages = head.stages if head else []
    problems += check_assessment(doc, parsed, stages, topic_ids, sector_ids)
    valid = [q.question for q in parsed if q.question is not None]
    complete = head is not None and len(valid) == len(parsed)
    phrases, more = read_phrases(intent_folders, valid if complete else None)
    problems += more
    if problems or head is None:
        return None, problems
    return AssessmentDef(tuple(valid), tuple(head.stages), head.scoring, phrases), []
