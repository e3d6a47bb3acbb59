"""Measuring the engine: accuracy, macro-F1, per-intent scores, confusions, errors.

``evaluate`` runs messages through ``IntentEngine.parse`` exactly as the bot does; the
predicted intent is the engine's best guess (``Parse.best``), so a message the engine was
unsure of but got right counts as right, and ``answered`` says how often it was sure.
``cross_validate`` trains one engine per fold on the rest of the examples.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.kb.guides import GUIDE_PREFIX
from bot.nlu.data import Example
from bot.nlu.engine import OUT_OF_SCOPE, IntentEngine, Parse

__all__ = ["Report", "cross_validate", "evaluate", "score"]


@dataclass(frozen=True)
class Report:
    """Figures of one evaluation."""

    n: int
    accuracy: float
    macro_f1: float
    answered: float
    answered_accuracy: float
    per_intent: dict[str, dict[str, float]]
    confusions: list[tuple[str, str, int]]
    errors: list[dict[str, Any]]
    out_of_scope_recall: float | None
    #: Accuracy by kind of expected answer: guides, capabilities (intents), off-topic.
    groups: dict[str, dict[str, float]] | None = None
    #: Of messages with a second request (``second`` column), how many had it offered.
    second_offered: tuple[int, int] | None = None

    @property
    def guide_confusions(self) -> list[tuple[str, str, int]]:
        """Pairs of guides that are mistaken for each other (operators fix their examples)."""
        return [
            (a, b, c)
            for a, b, c in self.confusions
            if a.startswith(GUIDE_PREFIX) and b.startswith(GUIDE_PREFIX)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "answered": round(self.answered, 4),
            "answered_accuracy": round(self.answered_accuracy, 4),
            "out_of_scope_recall": (
                None if self.out_of_scope_recall is None else round(self.out_of_scope_recall, 4)
            ),
            "groups": self.groups,
            "second_offered": list(self.second_offered) if self.second_offered else None,
            "per_intent": self.per_intent,
            "confused": [{"expected": a, "got": b, "count": c} for a, b, c in self.confusions],
            "confused_guides": [
                {"expected": a, "got": b, "count": c} for a, b, c in self.guide_confusions
            ],
            "errors": self.errors,
        }

    def lines(self, max_errors: int = 50) -> list[str]:
        """The human-readable report."""
        out = [
            f"messages: {self.n}",
            f"accuracy: {self.accuracy:.4f}",
            f"macro-F1: {self.macro_f1:.4f}",
            f"answered without asking: {self.answered:.4f} "
            f"(accuracy of those: {self.answered_accuracy:.4f})",
        ]
        if self.out_of_scope_recall is not None:
            out.append(f"out-of-scope caught: {self.out_of_scope_recall:.4f}")
        for name, g in (self.groups or {}).items():
            out.append(
                f"{name}: {g['accuracy']:.4f} right first ({int(g['n'])} messages; "
                f"answered at once {g['answered']:.4f}, right among the buttons offered "
                f"{g['in_top3']:.4f})"
            )
        if self.second_offered:
            got, of = self.second_offered
            out.append(f"second request offered: {got} of {of}")
        out.append("")
        out.append(f"{'intent':<28} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>6}")
        for name, s in sorted(self.per_intent.items()):
            out.append(
                f"{name:<28} {s['precision']:>6.3f} {s['recall']:>6.3f} {s['f1']:>6.3f} "
                f"{int(s['support']):>6}"
            )
        if self.confusions:
            out.append("")
            out.append("most confused (expected -> got: count):")
            out += [f"  {a} -> {b}: {c}" for a, b, c in self.confusions[:15]]
        if self.guide_confusions:
            out.append("")
            out.append("guides confused with each other (expected -> got: count):")
            out += [f"  {a} -> {b}: {c}" for a, b, c in self.guide_confusions[:15]]
        if self.errors:
            out.append("")
            out.append(f"misclassified ({len(self.errors)}; first {max_errors}):")
            for e in self.errors[:max_errors]:
                out.append(f"  [{e['expected']} -> {e['got']} {e['confidence']:.2f}] {e['text']}")
        return out


def score(rows: Sequence[tuple[str, str]], parses: Sequence[Parse]) -> Report:
    """Compare expected intents with the engine's readings."""
    gold = [intent for _, intent in rows]
    pred = [p.best or "" for p in parses]
    n = len(rows)
    labels = sorted(set(gold) | {p for p in pred if p})
    per: dict[str, dict[str, float]] = {}
    f1s: list[float] = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        support = tp + fn
        per[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
        if support:
            f1s.append(f1)
    correct = sum(1 for g, p in zip(gold, pred, strict=True) if g == p)
    answered = [i for i, p in enumerate(parses) if p.intent is not None]
    answered_ok = sum(1 for i in answered if parses[i].intent == gold[i])
    confusions = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    errors = [
        {
            "text": text,
            "expected": g,
            "got": p,
            "confidence": round(parse.confidence, 3),
        }
        for (text, g), p, parse in zip(rows, pred, parses, strict=True)
        if g != p
    ]
    oos = [i for i, g in enumerate(gold) if g == OUT_OF_SCOPE]
    oos_recall = sum(1 for i in oos if pred[i] == OUT_OF_SCOPE) / len(oos) if oos else None
    groups = _groups(gold, pred, parses)
    return Report(
        n=n,
        accuracy=correct / n if n else 0.0,
        macro_f1=sum(f1s) / len(f1s) if f1s else 0.0,
        answered=len(answered) / n if n else 0.0,
        answered_accuracy=answered_ok / len(answered) if answered else 0.0,
        per_intent=per,
        confusions=[(a, b, c) for (a, b), c in confusions.most_common()],
        errors=errors,
        out_of_scope_recall=oos_recall,
        groups=groups,
    )


def _kind(label: str) -> str:
    if label.startswith(GUIDE_PREFIX):
        return "guides"
    return "off-topic" if label == OUT_OF_SCOPE else "capabilities"


def _groups(
    gold: Sequence[str], pred: Sequence[str], parses: Sequence[Parse]
) -> dict[str, dict[str, float]] | None:
    """Accuracy per kind of expected answer (only when guides are among the labels)."""
    if not any(g.startswith(GUIDE_PREFIX) for g in gold):
        return None
    out: dict[str, dict[str, float]] = {}
    for kind in ("guides", "capabilities", "off-topic"):
        rows = [i for i, g in enumerate(gold) if _kind(g) == kind]
        if not rows:
            continue
        n = len(rows)
        out[kind] = {
            "n": n,
            "accuracy": round(sum(pred[i] == gold[i] for i in rows) / n, 4),
            "answered": round(sum(parses[i].intent == gold[i] for i in rows) / n, 4),
            "in_top3": round(
                sum(gold[i] in {c.intent for c in parses[i].candidates[:3]} for i in rows) / n, 4
            ),
        }
    return out


def evaluate(
    engine: IntentEngine,
    rows: Sequence[tuple[str, str]],
    seconds: Sequence[str] | None = None,
) -> Report:
    """Parse every ``(text, intent)`` row with ``engine`` and score the result.

    ``seconds`` (one per row, "" for none) are second requests the engine should offer.
    """
    parses = [engine.parse(text) for text, _ in rows]
    report = score(rows, parses)
    if seconds is None or not any(seconds):
        return report
    wanted = [(p, s) for p, s in zip(parses, seconds, strict=True) if s]
    offered = sum(1 for p, s in wanted if p.also == s)
    return dataclasses.replace(report, second_offered=(offered, len(wanted)))


def cross_validate(
    examples: Sequence[Example],
    build: Callable[[Sequence[Example]], IntentEngine],
    folds: int = 5,
    seed: int = 0,
) -> Report:
    """Stratified K-fold: each example is judged by an engine trained without it."""
    from sklearn.model_selection import StratifiedKFold

    labels = [e.intent for e in examples]
    k = max(2, min(folds, min(Counter(labels).values())))
    parses: list[Parse | None] = [None] * len(examples)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split([e.text for e in examples], labels):
        engine = build([examples[i] for i in train_idx])
        for i in test_idx:
            parses[i] = engine.parse(examples[i].text)
    rows = [(e.text, e.intent) for e in examples]
    return score(rows, [p for p in parses if p is not None])
