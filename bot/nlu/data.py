"""Reading the operators' intent files, and labelled CSV files for evaluation.

Intent files are ``intents/*.yaml`` with ``intents: {name: {examples: [...]}}``. Every
mistake is reported as ``FILE:LINE: field: message`` (the knowledge files' style), all of
them at once, so an operator fixes a file in one go.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from bot.kb.sources import Problem, read_yaml
from bot.nlu.text import normalise

__all__ = [
    "REQUIRED_INTENTS",
    "Example",
    "IntentData",
    "IntentFileError",
    "file_digest",
    "read_intents",
    "read_labelled_csv",
]

#: The intents the rest of the bot relies on (handlers, dialogue, tests).
REQUIRED_INTENTS = frozenset(
    {
        "greet",
        "help",
        "start_assessment",
        "find_course",
        "export_programme",
        "find_centre",
        "subscribe",
        "unsubscribe",
        "my_profile",
        "delete_my_data",
        "contact_staff",
        "thanks",
        "goodbye",
        "cancel",
        "out_of_scope",
    }
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class IntentFileError(ValueError):
    """The intent files have problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the intent files:\n{shown}{more}")


@dataclass(frozen=True)
class Example:
    """One example phrase, where it was written, and its intent."""

    text: str
    intent: str
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class IntentData:
    """All examples of a folder (or of a CSV file) and the files they came from."""

    examples: tuple[Example, ...]
    files: tuple[Path, ...] = ()

    @property
    def intents(self) -> set[str]:
        return {e.intent for e in self.examples}


def file_digest(paths: list[Path]) -> str:
    """A hash of the files' names and contents (the cache key's part for them)."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes() if path.is_file() else b"")
        h.update(b"\0")
    return h.hexdigest()


def intent_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))


def read_intents(folder: Path, required: frozenset[str] = REQUIRED_INTENTS) -> IntentData:
    """Every example of every intent file; raises ``IntentFileError`` listing all problems."""
    files = intent_files(folder)
    problems: list[Problem] = []
    if not files:
        raise IntentFileError([Problem(str(folder), 1, "(folder)", "no intent files (*.yaml)")])
    examples: list[Example] = []
    owner: dict[str, tuple[str, str, int]] = {}
    for path in files:
        doc, found = read_yaml(path)
        problems.extend(found)
        if doc is None:
            continue
        label = str(path)
        data = doc.data
        intents = data.get("intents") if isinstance(data, dict) else None
        if not isinstance(intents, dict):
            problems.append(Problem(label, 1, "intents", "expected a mapping of intent names"))
            continue
        for name, body in intents.items():
            where = ("intents", name)
            if not isinstance(name, str) or not _NAME.match(name):
                problems.append(
                    Problem(
                        label,
                        doc.line_of(where),
                        f"intents.{name}",
                        "intent names are lower-case letters, digits and _",
                    )
                )
                continue
            phrases = body.get("examples") if isinstance(body, dict) else None
            if not isinstance(phrases, list) or not phrases:
                problems.append(
                    Problem(
                        label,
                        doc.line_of(where),
                        f"intents.{name}.examples",
                        "expected a list of example phrases",
                    )
                )
                continue
            for i, phrase in enumerate(phrases):
                path_i = (*where, "examples", i)
                line = doc.line_of(path_i)
                field = f"intents.{name}.examples[{i}]"
                if not isinstance(phrase, (str, int, float)) or isinstance(phrase, bool):
                    problems.append(
                        Problem(label, line, field, "expected a phrase (put it in quotes)")
                    )
                    continue
                text = str(phrase)
                key = normalise(text)
                if not key:
                    problems.append(Problem(label, line, field, "is empty"))
                    continue
                if key in owner and owner[key][0] != name:
                    other, other_file, other_line = owner[key]
                    problems.append(
                        Problem(
                            label,
                            line,
                            field,
                            f"'{text}' is also an example of {other} "
                            f"({other_file}:{other_line}); one phrase belongs to one intent",
                        )
                    )
                    continue
                owner.setdefault(key, (name, label, line))
                examples.append(Example(text, name, label, line))
    found_intents = {e.intent for e in examples}
    for name in sorted(required - found_intents):
        if not problems:
            problems.append(
                Problem(str(folder), 1, f"intents.{name}", "required intent has no examples")
            )
    if problems:
        raise IntentFileError(problems)
    return IntentData(tuple(examples), tuple(files))


def read_labelled_csv(path: Path) -> list[tuple[str, str]]:
    """``text,intent`` (or ``text,label``) rows of a CSV file (extra columns ignored, empty
    texts skipped)."""
    return [(text, label) for text, label, _ in read_labelled_rows(path)]


def read_labelled_rows(path: Path) -> list[tuple[str, str, str]]:
    """``(text, label, second)`` rows: ``second`` is a second request ("" when none)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        column = "intent" if "intent" in fields else "label"
        if "text" not in fields or column not in fields:
            raise ValueError(f"{path}:1: (header): needs the columns text and intent (or label)")
        return [
            (row["text"], row[column].strip(), (row.get("second") or "").strip())
            for row in reader
            if (row.get("text") or "").strip() and (row.get(column) or "").strip()
        ]
