"""Quality, speed, start-up and memory of the Thai intent engine (``bot.nlu``).

Every figure is one ``name value`` line; ``TARGET MISSED`` / ``TARGET MET`` lines follow the
figures that have a target. Public data (``../shared/benchmarks``) is trained and tested
through ``engine_from_examples``, the code path of ``bot nlu eval --train`` and of the
running bot (only the training data differs). Exit status is 0 whatever the figures.

    .venv/bin/python benchmarks/nlu_bench.py            # ~2 min
    .venv/bin/python benchmarks/nlu_bench.py --quick    # skip the public data sets
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.kb.loader import Knowledge, load_knowledge  # noqa: E402
from bot.nlu import build_engine, engine_from_examples, read_intents  # noqa: E402
from bot.nlu.data import Example, read_labelled_csv  # noqa: E402
from bot.nlu.engine import guide_examples  # noqa: E402
from bot.nlu.evaluate import cross_validate, evaluate  # noqa: E402
from bot.nlu.multipart import CLAUSES_FILE, load_markers  # noqa: E402
from bot.nlu.text import Spelling, load_spelling  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks"
HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.csv"
GUIDES_HELDOUT = ROOT / "tests" / "data" / "guides_heldout.csv"
ENTITY_DEV = ROOT / "benchmarks" / "data" / "entity_dev.csv"
PLACE_TYPES = ("province", "district", "subdistrict")


def figure(name: str, value: float | int | str, target: str | None = None, ok: bool = True) -> None:
    print(f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}", flush=True)
    if target is not None:
        print(f"TARGET {'MET' if ok else 'MISSED'} {name}: {value} (target {target})", flush=True)


def baseline(train: Sequence[tuple[str, str]], test: Sequence[tuple[str, str]]) -> float:
    """Plain newmm word 1-2-gram TF-IDF + LinearSVC, the usual published baseline."""
    from pythainlp.tokenize import word_tokenize
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    def words(text: str) -> list[str]:
        return [w for w in word_tokenize(text, engine="newmm") if w.strip()]

    vec = TfidfVectorizer(tokenizer=words, token_pattern=None, lowercase=False, ngram_range=(1, 2))
    model = LinearSVC().fit(vec.fit_transform([t for t, _ in train]), [i for _, i in train])
    predicted = model.predict(vec.transform([t for t, _ in test]))
    return sum(p == i for p, (_, i) in zip(predicted, test, strict=True)) / len(test)


def public(name: str, knowledge: Knowledge, spelling: Spelling, with_baseline: bool) -> None:
    folder = SHARED / name
    if not (folder / "train.csv").is_file():
        print(f"# {folder} not found; skipped")
        return
    train = read_labelled_csv(folder / "train.csv")
    test = read_labelled_csv(folder / "test.csv")
    started = time.perf_counter()
    engine = engine_from_examples([Example(t, i) for t, i in train], knowledge, spelling)
    figure(f"{name}.train_seconds", round(time.perf_counter() - started, 2))
    report = evaluate(engine, test)
    key = name.split("-")[0]
    if key == "truevoice":
        figure("truevoice.accuracy", report.accuracy, ">= 0.90", report.accuracy >= 0.90)
        figure("truevoice.macro_f1", report.macro_f1, ">= 0.91", report.macro_f1 >= 0.91)
    else:
        figure(f"{key}.accuracy", report.accuracy, ">= 0.95", report.accuracy >= 0.95)
        figure(f"{key}.macro_f1", report.macro_f1)
    seen = {t for t, _ in train}
    unseen = [row for row in test if row[0] not in seen]
    if unseen:
        figure(f"{key}.unseen_rows", len(unseen))
        figure(f"{key}.accuracy_unseen_rows", evaluate(engine, unseen).accuracy)
    if with_baseline:
        base = baseline(train, test)
        figure(f"{key}.baseline_tfidf_linearsvc_accuracy", base)
        figure(f"{key}.accuracy_over_baseline", round(report.accuracy / base, 4))


def heldout(engine: object, path: Path) -> None:
    from bot.nlu import IntentEngine

    assert isinstance(engine, IntentEngine)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pairs = [(r["text"], r["intent"].strip()) for r in rows]
    parses = [engine.parse(text) for text, _ in pairs]
    from bot.nlu.evaluate import score

    report = score(pairs, parses)
    figure("heldout.messages", report.n)
    figure("heldout.accuracy", report.accuracy, ">= 0.95", report.accuracy >= 0.95)
    figure("heldout.macro_f1", report.macro_f1)
    if report.out_of_scope_recall is not None:
        ok = report.out_of_scope_recall >= 0.90
        figure("heldout.out_of_scope_recall", report.out_of_scope_recall, ">= 0.90", ok)
    entity_figures("heldout", rows, parses, target=True)


def guides_heldout(engine: object, path: Path) -> None:
    """Guides, capabilities and off-topic on messages written apart from every training
    phrase (``tests/data/guides_heldout.md`` says how); never tuned on."""
    from bot.nlu import IntentEngine
    from bot.nlu.data import read_labelled_rows
    from bot.nlu.evaluate import evaluate

    assert isinstance(engine, IntentEngine)
    rows = read_labelled_rows(path)
    report = evaluate(engine, [(t, label) for t, label, _ in rows], [s for _, _, s in rows])
    figure("guides_heldout.messages", report.n)
    targets = {"guides": 0.85, "capabilities": 0.97, "off-topic": 0.95}
    for kind, g in (report.groups or {}).items():
        name = kind.replace("-", "_")
        target = targets[kind]
        figure(
            f"guides_heldout.{name}_right", g["accuracy"], f">= {target}", g["accuracy"] >= target
        )
        figure(f"guides_heldout.{name}_answered_at_once", g["answered"])
        figure(f"guides_heldout.{name}_in_buttons", g["in_top3"])
    if report.second_offered:
        got, of = report.second_offered
        figure("guides_heldout.second_request_offered", f"{got}/{of}")
    figure("guides_heldout.guide_pairs_confused", len(report.guide_confusions))


def entity_figures(
    prefix: str, rows: Sequence[dict[str, str]], parses: Sequence[Any], target: bool
) -> None:
    """Recall of each entity column (a place counts when its code is a value or candidate),
    topics+places+markets recall, and how many topics were found that the row does not name.
    """
    found_all = expected_all = 0
    for column, types in (
        ("topic", ("topic",)),
        ("place", PLACE_TYPES),
        ("market", ("market",)),
        ("sector", ("sector",)),
    ):
        found = expected = extra = 0
        for row, parse in zip(rows, parses, strict=True):
            wanted = [v.strip() for v in (row.get(column) or "").split(";") if v.strip()]
            got: set[str] = set()
            for e in parse.entities:
                if e.type in types:
                    got.add(e.value)
                    got.update(e.candidates)
            expected += len(wanted)
            found += sum(1 for v in wanted if v in got)
            if column == "topic":
                extra += len(got - set(wanted))
        if expected:
            figure(f"{prefix}.{column}_recall", found / expected)
            if column != "sector":
                found_all += found
                expected_all += expected
        if column == "topic":
            figure(f"{prefix}.topics_not_named_per_message", round(extra / max(1, len(rows)), 4))
    if expected_all:
        recall = found_all / expected_all
        if target:
            figure(f"{prefix}.entity_recall", recall, ">= 0.95", recall >= 0.95)
        else:
            figure(f"{prefix}.entity_recall", recall)


def entity_dev(engine: object, path: Path) -> None:
    """Our own entity set (written for tuning the matcher; the held-out file stays unread)."""
    from bot.nlu import IntentEngine

    assert isinstance(engine, IntentEngine)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    figure("entity_dev.messages", len(rows))
    entity_figures("entity_dev", rows, [engine.parse(r["text"]) for r in rows], target=False)


def speed(engine: object, messages: Sequence[str]) -> None:
    """Per-message latency of parse() against PyThaiNLP's newmm tokenisation alone."""
    from pythainlp.tokenize import word_tokenize

    from bot.nlu import IntentEngine

    assert isinstance(engine, IntentEngine)
    for text in messages[:200]:  # warm both up
        engine.parse(text)
        word_tokenize(text, engine="newmm")
    ours: list[float] = []
    plain: list[float] = []
    clock = time.perf_counter
    for text in messages:
        t0 = clock()
        engine.parse(text)
        t1 = clock()
        word_tokenize(text, engine="newmm")
        t2 = clock()
        ours.append((t1 - t0) * 1000)
        plain.append((t2 - t1) * 1000)

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    figure("speed.messages", len(messages))
    figure("speed.mean_chars", round(statistics.mean(len(m) for m in messages), 1))
    p50, p99 = pct(ours, 0.50), pct(ours, 0.99)
    figure("speed.parse_p50_ms", round(p50, 4), "<= 1 ms", p50 <= 1.0)
    figure("speed.parse_p99_ms", round(p99, 4), "<= 5 ms", p99 <= 5.0)
    figure("speed.pythainlp_newmm_p50_ms", round(pct(plain, 0.50), 4))
    figure("speed.pythainlp_newmm_p99_ms", round(pct(plain, 0.99), 4))
    figure("speed.parse_over_newmm_p50", round(p50 / pct(plain, 0.50), 2))
    figure("speed.parse_over_newmm_mean", round(statistics.mean(ours) / statistics.mean(plain), 2))


_STARTUP = """
import json, sys, time, tracemalloc
from pathlib import Path
sys.path.insert(0, {root!r})
from bot.kb.loader import load_knowledge
knowledge = load_knowledge(Path({root!r}) / "knowledge").knowledge
if {trace!r}:
    tracemalloc.start()
t0 = time.perf_counter()
from bot.nlu import build_engine
engine = build_engine(Path({root!r}) / "intents", knowledge, Path({cache!r}))
seconds = time.perf_counter() - t0
engine.parse("warm up")
current, _peak = tracemalloc.get_traced_memory()
print(json.dumps({{"seconds": seconds, "source": engine.info["source"], "bytes": current,
                  "examples": engine.info["examples"], "features": engine.info["features"],
                  "sklearn": "sklearn" in sys.modules}}))
"""


def startup(cache: Path) -> None:
    """Fresh processes: training from the files, loading the cache it wrote, memory.

    Training imports scikit-learn (LinearSVC); loading the cache must not (it alone costs
    over half a second of start-up), so the load run reports whether it did.
    """
    for label in ("train", "load", "memory"):
        code = _STARTUP.format(root=str(ROOT), cache=str(cache), trace=label == "memory")
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        ).stdout
        info = json.loads(out.strip().splitlines()[-1])
        if label == "memory":  # tracemalloc slows Python down: its run is not timed
            figure("memory.engine_mb", round(info["bytes"] / 1e6, 1))
            continue
        seconds = round(info["seconds"], 3)
        figure(f"startup.{label}_seconds", seconds, "<= 3 s", seconds <= 3.0)
        figure(f"startup.{label}_source", info["source"])
        if label == "train":
            figure("startup.examples", info["examples"])
            figure("startup.features", info["features"])
        else:
            imported = "yes" if info["sklearn"] else "no"
            figure("startup.load_imports_sklearn", imported, "no", not info["sklearn"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="skip the public data sets")
    args = parser.parse_args()
    result = load_knowledge(ROOT / "knowledge")
    if result.knowledge is None:
        print("knowledge does not load; fix it first (bot kb validate)", file=sys.stderr)
        return 1
    knowledge = result.knowledge
    spelling, _problems = load_spelling(ROOT / "intents" / "spelling.csv")
    if not args.quick:
        public("truevoice-intent", knowledge, spelling, with_baseline=True)
        public("fb-multilingual-tod-th", knowledge, spelling, with_baseline=True)
    examples = list(read_intents(ROOT / "intents").examples)
    examples += guide_examples(knowledge, (e.text for e in examples))
    markers, _ = load_markers(ROOT / "intents" / CLAUSES_FILE)

    def build(train: Sequence[Example]) -> Any:
        return engine_from_examples(train, knowledge, spelling, markers=markers)

    report = cross_validate(examples, build)
    figure("intents.examples", len(examples))
    figure("intents.cv_accuracy", report.accuracy, ">= 0.95", report.accuracy >= 0.95)
    figure("intents.cv_macro_f1", report.macro_f1)
    if report.out_of_scope_recall is not None:
        figure("intents.cv_out_of_scope_recall", report.out_of_scope_recall)
    engine = build_engine(ROOT / "intents", knowledge, None)
    figure("engine.subdistricts_loaded", len(knowledge.places.subdistricts))
    if ENTITY_DEV.is_file():
        entity_dev(engine, ENTITY_DEV)
    if HELDOUT.is_file():
        heldout(engine, HELDOUT)
    else:
        print(f"# {HELDOUT} not found; held-out figures skipped")
    guides_heldout(engine, GUIDES_HELDOUT)
    messages = [e.text for e in examples]
    messages += [t for t, _ in read_labelled_csv(GUIDES_HELDOUT)]
    for name in ("truevoice-intent", "fb-multilingual-tod-th"):
        path = SHARED / name / "test.csv"
        if path.is_file():
            messages += [t for t, _ in read_labelled_csv(path)]
    speed(engine, messages)
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        startup(Path(cache))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
