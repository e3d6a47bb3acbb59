"""Knowledge snapshot: load and validation time, nearest-centre, where-am-i and place lookups.

Everything runs in this process on synthetic but valid data, each figure next to a naive
baseline measured in the same run (on a shared, noisy machine the ratios are the portable
figures):

1. ``kb.load.*``: ``load_knowledge`` on a copy of ``knowledge/`` whose
   ``digital_centres.csv`` holds 10,000 centres (points jittered around real subdistrict
   reference points) and whose ``courses.yaml`` holds 5,000 courses. ``validated_s`` is a
   full load in a fresh folder (the place gazetteer is built too, as at start-up); from the
   second run on, the previous snapshot is still alive, as in a live reload. Baseline:
   parsing the same files only (``yaml.load`` with ``CSafeLoader``, ``csv.DictReader``).
   Target: validated ≤ 2 s.
   ``*_gc_off_s`` repeat one of each with the cyclic garbage collector paused: most of the
   time of both is the collector walking the growing heap.
2. ``kb.nearest_centre.*``: ``nearest_centres(kb, lat, lng, k=5)`` at 2,000 random points in
   Thailand, against haversine to every centre plus a sort; the answers must agree.
   Target: p99 ≤ 1 ms.
3. ``kb.where_am_i.*``: ``where_am_i`` at the same points, against haversine to every
   subdistrict reference point; the answers must agree. Target: p99 ≤ 1 ms.
4. ``kb.resolve.*``: ``kb.places.resolve`` on 300 typed places (exact names, names with
   จ./อ./ต./จังหวัด/อำเภอ/ตำบล prefixes, nicknames, one-letter misspellings), against
   rapidfuzz ``process.extractOne`` over every place name with no index. ``found_pct`` is
   the share of queries whose answer names the intended place. Target: p99 ≤ 2 ms.

Usage: ``.venv/bin/python benchmarks/knowledge_bench.py [--profile] [--seed N]``
(about 100 s on a 2-core machine; ``--profile`` adds a cProfile of one full load, top 20 by
cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import datetime as dt
import functools
import gc
import io
import json
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import _common as c
import yaml

c.ensure_root_on_path()
from rapidfuzz import fuzz, process  # noqa: E402

from bot.kb.geo import THAILAND_BBOX, haversine_km  # noqa: E402
from bot.kb.loader import FILES, PLACES, Knowledge, load_knowledge  # noqa: E402
from bot.kb.places import Subdistrict  # noqa: E402
from bot.kb.queries import nearest_centres, where_am_i  # noqa: E402
from bot.kb.schemas import CENTRE_COLUMNS  # noqa: E402

KNOWLEDGE = c.ROOT / "knowledge"
#: Subdistrict points ``where_am_i`` answers from (fallback means are left out by design).
REFERENCE_PRECISIONS = frozenset({"subdistrict_ref", "manual"})
T = TypeVar("T")


# -- synthetic knowledge ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceRow:
    """One row of ``knowledge/places/subdistricts.csv``."""

    code: str
    district_code: str
    province_code: str
    name_th: str
    name_en: str
    postal_code: str
    lat: float
    lng: float


def read_subdistricts(folder: Path) -> list[PlaceRow]:
    """The subdistrict table the synthetic centres take their codes and points from."""
    with (folder / PLACES / "subdistricts.csv").open(encoding="utf-8-sig", newline="") as f:
        return [
            PlaceRow(
                r["code"],
                r["district_code"],
                r["province_code"],
                r["name_th"],
                r["name_en"],
                (r["postal_codes"].split() or ["10000"])[0],
                float(r["lat"]),
                float(r["lng"]),
            )
            for r in csv.DictReader(f)
        ]


def read_district_names(folder: Path) -> dict[str, str]:
    """District code to its short Thai name."""
    with (folder / PLACES / "districts.csv").open(encoding="utf-8-sig", newline="") as f:
        return {r["code"]: r["name_th_short"] for r in csv.DictReader(f)}


def inside(lat: float, lng: float) -> tuple[float, float]:
    """The point clamped into Thailand's bounding box (with a small margin)."""
    lat_min, lat_max, lng_min, lng_max = THAILAND_BBOX
    return (
        min(lat_max - 0.001, max(lat_min + 0.001, lat)),
        min(lng_max - 0.001, max(lng_min + 0.001, lng)),
    )


_HOSTS = (
    ("sao", "ศูนย์ดิจิทัลชุมชน อบต.{sub}", "องค์การบริหารส่วนตำบล{sub}", "{en} SAO"),
    ("municipality", "ศูนย์ดิจิทัลชุมชน เทศบาลตำบล{sub}", "เทศบาลตำบล{sub}", "{en} Municipality"),
    ("school", "ศูนย์ดิจิทัลชุมชน โรงเรียนบ้าน{sub}", "โรงเรียนบ้าน{sub}", "Ban {en} School"),
    ("temple", "ศูนย์ดิจิทัลชุมชน วัด{sub}", "วัด{sub}", "Wat {en}"),
    ("library", "ศูนย์ดิจิทัลชุมชน ห้องสมุดประชาชนอำเภอ{dist}", "ห้องสมุดประชาชนอำเภอ{dist}", "{en}"),
    ("nfe", "ศูนย์ดิจิทัลชุมชน กศน.ตำบล{sub}", "กศน.ตำบล{sub}", "{en} NFE"),
    ("village_office", "ศูนย์ดิจิทัลชุมชนตำบล{sub}", "ที่ทำการผู้ใหญ่บ้าน{sub}", "{en}"),
    ("other", "ศูนย์ดิจิทัลชุมชนตำบล{sub}", "", "{en}"),
)
_SERVICES = ("internet", "wifi", "computers", "printer", "training", "e_commerce_support")
_HOURS = ("จันทร์–ศุกร์ 08:30–16:30", "ทุกวัน 09:00–18:00", "จันทร์–เสาร์ 08:00–17:00", "")


def centre_rows(
    n: int, places: Sequence[PlaceRow], districts: dict[str, str], rnd: random.Random
) -> Iterator[dict[str, str]]:
    """``n`` valid centre rows as dicts over every CSV column (ids unique)."""
    order = list(places)
    rnd.shuffle(order)
    for i in range(n):
        sub = order[i % len(order)]
        host, name, host_name, en = rnd.choice(_HOSTS)
        fill = {"sub": sub.name_th, "dist": districts.get(sub.district_code, sub.name_th)}
        lat, lng = inside(sub.lat + rnd.uniform(-0.01, 0.01), sub.lng + rnd.uniform(-0.01, 0.01))
        opened = dt.date(2008, 1, 1) + dt.timedelta(days=rnd.randrange(6000))
        verified = rnd.random() < 0.3
        yield {
            "id": f"dcc-{sub.code}-{host.replace('_', '-')}-{i:05d}",
            "name_th": name.format(**fill),
            "name_en": en.format(en=sub.name_en) + " Community Digital Centre",
            "operator": rnd.choice(("MDES", "MDES", "MDES", "ONDE", "DEPA")),
            "host_type": host,
            "host_name_th": host_name.format(**fill),
            "address_th": f"หมู่ {rnd.randint(1, 15)} ต.{sub.name_th} อ.{fill['dist']}",
            "province_code": sub.province_code,
            "district_code": sub.district_code,
            "subdistrict_code": sub.code,
            "postal_code": sub.postal_code,
            "location_lat": f"{lat:.6f}",
            "location_lng": f"{lng:.6f}",
            "location_precision": "exact",
            "location_source": "benchmark: subdistrict reference point with random jitter",
            "services": ";".join(rnd.sample(_SERVICES, rnd.randint(1, 4))),
            "contact_phone": f"0{rnd.randint(2, 9)}-{rnd.randint(100, 999)}-{i % 10000:04d}",
            "contact_line": f"@dcc{i:05d}" if rnd.random() < 0.3 else "",
            "contact_facebook": "",
            "contact_email": f"dcc{i:05d}@example.go.th" if rnd.random() < 0.2 else "",
            "opening_hours_th": rnd.choice(_HOURS),
            "opened_on": opened.isoformat(),
            "status": rnd.choice(("active", "active", "unknown")),
            "provenance_status": "verified" if verified else "sample",
            "provenance_source_urls": f"https://example.go.th/dcc/{i}" if verified else "",
            "provenance_facts_as_of": f"{opened.year}-{opened.month:02d}",
            "provenance_last_checked": "2026-11-01",
            "provenance_unverified_fields": "" if verified else "services;status",
        }


def write_centres(path: Path, rows: Iterable[dict[str, str]]) -> int:
    """Write the centre CSV in ``CENTRE_COLUMNS`` order; returns the number of rows."""
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CENTRE_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


_OFFERS = ("course", "mentoring", "voucher", "co_payment_subsidy", "certification")
_TARGETS = ("citizen", "elderly", "youth_student", "farmer", "otop", "micro_entrepreneur", "sme")
_KINDS = ("rolling", "cohort", "event")
_STATES = ("open", "closed", "unknown", "upcoming")


def course_items(
    n: int,
    topics: dict[str, dict[str, Any]],
    agencies: Sequence[str],
    provinces: Sequence[str],
    rnd: random.Random,
) -> list[dict[str, Any]]:
    """``n`` valid courses varying topic, agency, format, stage, schedule and provinces."""
    topic_ids = sorted(topics)
    items: list[dict[str, Any]] = []
    for i in range(n):
        chosen = rnd.sample(topic_ids, rnd.choice((1, 1, 2, 3)))
        first = topics[chosen[0]]
        tags = [t for tid in chosen for t in topics[tid].get("tags", [])]
        agency = rnd.choice(agencies)
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rnd.randrange(1000))
        end = start + dt.timedelta(days=rnd.randrange(1, 120))
        cost_type = rnd.choice(("free", "free", "fee", "co_payment", "grant", "unknown"))
        cost: dict[str, Any] = {"type": cost_type}
        if cost_type == "fee":
            cost["fee_thb"] = rnd.randrange(500, 20000, 100)
        elif cost_type == "co_payment":
            cost["co_payment_pct"] = [50, rnd.choice((50, 70, 80))]
        elif cost_type == "grant":
            cost["max_support_thb"] = rnd.randrange(10000, 500000, 10000)
        item: dict[str, Any] = {
            "id": f"course-bench-{i:05d}-{chosen[0].replace('_', '-')}",
            "offer_type": rnd.choice(_OFFERS),
            "name": {
                "th": f"{first['label']['th']} สำหรับผู้ประกอบการ รุ่นที่ {i % 40 + 1}",
                "en": f"{first['label']['en']} for entrepreneurs, cohort {i % 40 + 1}",
            },
            "agency": agency,
            "partners": rnd.sample([a for a in agencies if a != agency], rnd.randint(0, 2)),
            "summary": {
                "th": f"อบรมเรื่อง{first['label']['th']} ลงมือทำจริง มีพี่เลี้ยงให้คำปรึกษา",
                "en": f"Hands-on training in {first['label']['en'].lower()}, with mentoring.",
            },
            "stage": rnd.randint(1, 5),
            "level": rnd.choice(("beginner", "intermediate", "advanced")),
            "topics": chosen,
            "tags": rnd.sample(tags, min(len(tags), rnd.randint(0, 3))),
            "target_groups": rnd.sample(_TARGETS, rnd.randint(1, 3)),
            "format": rnd.choice(("online", "onsite", "hybrid")),
            "language": ["th"] if rnd.random() < 0.8 else ["th", "en"],
            "duration_text": {"th": f"{rnd.randint(1, 10)} วัน"},
            "cost": cost,
            "schedule": {
                "kind": rnd.choice(_KINDS),
                "status": rnd.choice(_STATES),
                "apply_from": start - dt.timedelta(days=30),
                "apply_to": start - dt.timedelta(days=1),
                "start_date": start,
                "end_date": end,
                "fiscal_year_be": start.year + 543,
            },
            "places": (
                {"nationwide": True}
                if rnd.random() < 0.4
                else {"province_codes": sorted(rnd.sample(provinces, rnd.randint(1, 5)))}
            ),
            "url": f"https://example.go.th/courses/{i}",
            "contact": {"phone": f"02-{rnd.randint(100, 999)}-{rnd.randint(1000, 9999)}"},
            "provenance": (
                {
                    "status": "verified",
                    "source_urls": [f"https://example.go.th/news/{i}"],
                    "facts_as_of": f"{start.year}-{start.month:02d}",
                    "last_checked": dt.date(2026, 11, 1),
                }
                if rnd.random() < 0.3
                else {
                    "status": "sample",
                    "last_checked": dt.date(2026, 11, 1),
                    "unverified_fields": ["schedule.start_date", "cost"],
                }
            ),
        }
        if rnd.random() < 0.3:
            item["eligibility"] = {
                "requires_juristic_person": rnd.random() < 0.5,
                "text": {"th": "ผู้ประกอบการที่จดทะเบียนในประเทศไทย"},
            }
        items.append(item)
    return items


def build_folder(target: Path, n_centres: int, n_courses: int, seed: int) -> None:
    """A copy of ``knowledge/`` with ``n_centres`` centres and ``n_courses`` courses."""
    rnd = random.Random(seed)
    shutil.copytree(KNOWLEDGE, target)
    places = read_subdistricts(target)
    written = write_centres(
        target / "digital_centres.csv",
        centre_rows(n_centres, places, read_district_names(target), rnd),
    )
    assert written == n_centres
    topics_doc = yaml.load((target / "topics.yaml").read_text("utf-8"), Loader=yaml.CSafeLoader)
    topics = {t["id"]: t for t in topics_doc["items"]}
    agencies_doc = yaml.load((target / "agencies.yaml").read_text("utf-8"), Loader=yaml.CSafeLoader)
    agencies = [a["code"] for a in agencies_doc["items"]]
    provinces = sorted({p.province_code for p in places})
    doc = {
        "meta": {"schema_version": 1, "generated_on": dt.date(2026, 11, 21)},
        "items": course_items(n_courses, topics, agencies, provinces, rnd),
    }
    with (target / "courses.yaml").open("w", encoding="utf-8") as f:
        f.write("\n".join(yaml_lines(doc)) + "\n")


_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_RESERVED = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})


def yaml_scalar(value: Any) -> str:
    """A scalar as an operator would type it: plain ids and codes, quoted text, ISO dates."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | dt.date):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def yaml_lines(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML of nested dicts and lists (``yaml.dump`` takes seconds for 5,000)."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{key}:")
                out += yaml_lines(item, indent + 2)
            else:
                out.append(f"{pad}{key}: {'[]' if item == [] else yaml_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = yaml_lines(item, indent + 2)
                out.append(f"{pad}- {nested[0].lstrip()}")
                out += nested[1:]
            else:
                out.append(f"{pad}- {yaml_scalar(item)}")
    return out


# -- timing helpers -----------------------------------------------------------------------------


def timed(fn: Callable[[], T], gc_off: bool = False) -> tuple[float, T]:
    """Seconds one call takes (optionally with the cyclic GC paused), and its result."""
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def per_call_ms(
    fn: Callable[..., T], args: Sequence[tuple[Any, ...]]
) -> tuple[list[float], list[T]]:
    """Milliseconds of each call ``fn(*a)`` and its results, in order."""
    gc.collect()
    clock = time.perf_counter_ns
    times: list[float] = []
    results: list[T] = []
    for a in args:
        start = clock()
        result = fn(*a)
        times.append((clock() - start) / 1e6)
        results.append(result)
    return times, results


def ratio(a: float, b: float) -> float:
    """``a / b``, or infinity when ``b`` rounds to nothing."""
    return a / b if b > 0 else float("inf")


def emit_latency(prefix: str, times: Sequence[float]) -> tuple[float, float]:
    """Print p50 and p99 (and max) in ms; returns (p50, p99)."""
    p50, p99 = c.percentile(times, 50), c.percentile(times, 99)
    c.emit(f"{prefix}p50_ms", p50)
    c.emit(f"{prefix}p99_ms", p99)
    c.emit(f"{prefix}max_ms", max(times))
    return p50, p99


# -- 1. load ------------------------------------------------------------------------------------


def parse_only(folder: Path) -> int:
    """Parse every file ``load_knowledge`` reads, without validating: the baseline."""
    n = 0
    for name in FILES:
        path = folder / name
        if name.endswith(".yaml"):
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
            n += len(data.get("items", data)) if isinstance(data, dict) else 0
        else:
            with path.open(encoding="utf-8-sig", newline="") as f:
                n += sum(1 for _ in csv.DictReader(f))
    for path in sorted((folder / PLACES).glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as f:
            n += sum(1 for _ in csv.DictReader(f))
    return n


def load_or_die(folder: Path) -> Knowledge:
    """``load_knowledge`` that stops the benchmark on any problem (the data must be valid)."""
    result = load_knowledge(folder)
    if result.problems or result.knowledge is None:
        for problem in result.problems[:20]:
            print(f"PROBLEM {problem}", file=sys.stderr)
        raise SystemExit(
            f"load_knowledge reported {len(result.problems)} problems on the synthetic data"
        )
    return result.knowledge


def bench_load(work: Path, args: argparse.Namespace) -> Knowledge:
    """Section 1: full loads in fresh folders and the parse-only baseline."""
    t0 = time.perf_counter()
    source = work / "synthetic"
    build_folder(source, args.centres, args.courses, args.seed)
    c.note(f"synthetic folder built in {time.perf_counter() - t0:.1f} s")
    load_or_die(KNOWLEDGE)  # imports, the Thai word list and the code's reply keys, once

    full: list[float] = []
    kb: Knowledge | None = None
    for run in range(args.repeats):
        folder = work / f"run{run}"  # a new path: the gazetteer is built again, as at start-up
        shutil.copytree(source, folder)
        seconds, kb = timed(functools.partial(load_or_die, folder))
        full.append(seconds)
    assert kb is not None
    counts = kb.counts
    if counts["digital_centres"] != args.centres or counts["courses"] != args.courses:
        raise SystemExit(f"unexpected counts after load: {counts}")
    parse = [timed(lambda: parse_only(source))[0] for _ in range(args.repeats)]
    shutil.copytree(source, work / "gc_off")
    load_gc_off = timed(lambda: load_or_die(work / "gc_off"), gc_off=True)[0]
    parse_gc_off = timed(lambda: parse_only(source), gc_off=True)[0]

    best, parse_best = min(full), min(parse)
    c.emit("kb.load.centres", counts["digital_centres"])
    c.emit("kb.load.courses", counts["courses"])
    c.emit("kb.load.courses_yaml_mb", (source / "courses.yaml").stat().st_size / 1e6)
    c.emit("kb.load.centres_csv_mb", (source / "digital_centres.csv").stat().st_size / 1e6)
    c.emit("kb.load.validated_s", best)
    c.emit("kb.load.validated_median_s", statistics.median(full))
    c.emit("kb.load.parse_only_s", parse_best)
    c.emit("kb.load.parse_only_median_s", statistics.median(parse))
    c.emit("kb.load.ratio", ratio(best, parse_best))
    c.emit("kb.load.validated_gc_off_s", load_gc_off)
    c.emit("kb.load.parse_only_gc_off_s", parse_gc_off)
    c.emit("kb.load.ratio_gc_off", ratio(load_gc_off, parse_gc_off))
    c.target(
        "kb.load.validated_s",
        best <= 2.0,
        f"full validated load of {args.centres:,} centres and {args.courses:,} courses "
        f"{best:.2f} s (best of {args.repeats}), target ≤ 2 s",
    )
    if args.profile:
        profile_load(source, work / "profiled")
    return kb


def compose_only(folder: Path) -> int:
    """Compose the YAML files to nodes (libyaml), as the loader does to keep line numbers."""
    n = 0
    for name in FILES:
        if name.endswith(".yaml"):
            node = yaml.compose(
                (folder / name).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader
            )
            n += node is not None
    return n


def profile_load(source: Path, folder: Path) -> None:
    """cProfile of one full load (fresh folder), top 20 by cumulative time, as comments.

    Also times composing the YAML files alone: the floor of a loader that reports lines.
    """
    c.emit("kb.load.compose_only_s", timed(lambda: compose_only(source))[0])
    shutil.copytree(source, folder)
    profiler = cProfile.Profile()
    profiler.enable()
    load_or_die(folder)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(20)
    for line in out.getvalue().splitlines():
        if line.strip():
            c.note(line)


# -- 2 and 3. points ----------------------------------------------------------------------------


def random_points(kb: Knowledge, n: int, rnd: random.Random) -> list[tuple[float, float]]:
    """``n`` points in Thailand: random subdistrict points moved up to ~5 km."""
    subs = list(kb.places.subdistricts.values())
    out = []
    for _ in range(n):
        s = rnd.choice(subs)
        out.append(inside(s.lat + rnd.uniform(-0.05, 0.05), s.lng + rnd.uniform(-0.05, 0.05)))
    return out


def brute_nearest(
    points: Sequence[tuple[float, float, str]], lat: float, lng: float, k: int
) -> list[tuple[str, float]]:
    """Haversine to every point, sorted (ties by position, like the index)."""
    scored = [(haversine_km(lat, lng, p[0], p[1]), i) for i, p in enumerate(points)]
    scored.sort()
    return [(points[i][2], d) for d, i in scored[:k]]


def agree(a: Sequence[tuple[str, float]], b: Sequence[tuple[str, float]]) -> bool:
    """Same ids in the same order, distances equal within 1e-9 km."""
    return len(a) == len(b) and all(
        x[0] == y[0] and abs(x[1] - y[1]) <= 1e-9 for x, y in zip(a, b, strict=True)
    )


def bench_nearest(kb: Knowledge, points: Sequence[tuple[float, float]], k: int = 5) -> None:
    """Section 2: the centre index against a scan of every centre."""
    args = [(kb, lat, lng, k) for lat, lng in points]
    nearest_centres(*args[0])  # warm-up
    times, found = per_call_ms(nearest_centres, args)
    centres = [(x.location_lat, x.location_lng, x.id) for x in kb.centres if x.status != "closed"]
    brute_times, brute = per_call_ms(brute_nearest, [(centres, lat, lng, k) for lat, lng in points])
    bad = sum(
        not agree([(x.id, d) for x, d in got], want) for got, want in zip(found, brute, strict=True)
    )
    c.emit("kb.nearest_centre.points", len(points))
    c.emit("kb.nearest_centre.centres", len(centres))
    _, p99 = emit_latency("kb.nearest_centre.", times)
    _, brute_p99 = emit_latency("kb.nearest_centre.brute_", brute_times)
    c.emit(
        "kb.nearest_centre.speedup", ratio(statistics.fmean(brute_times), statistics.fmean(times))
    )
    c.emit("kb.nearest_centre.speedup_p99", ratio(brute_p99, p99))
    c.emit("kb.nearest_centre.disagreements", bad)
    c.target("kb.nearest_centre.p99_ms", p99 <= 1.0, f"p99 {p99:.3f} ms, target ≤ 1 ms")
    c.target(
        "kb.nearest_centre.agreement",
        bad == 0,
        f"{bad} of {len(points)} points differ from the full scan (ids of all {k}, 1e-9 km)",
    )


def brute_subdistrict(
    subs: Sequence[Subdistrict], lat: float, lng: float
) -> tuple[Subdistrict, float]:
    """Haversine to every reference point, the closest (ties by code, like the index)."""
    d, i = min((haversine_km(lat, lng, s.lat, s.lng), i) for i, s in enumerate(subs))
    return subs[i], d


def bench_where(kb: Knowledge, points: Sequence[tuple[float, float]]) -> None:
    """Section 3: the subdistrict index against a scan of every reference point."""
    args = [(kb, lat, lng) for lat, lng in points]
    where_am_i(*args[0])
    times, found = per_call_ms(where_am_i, args)
    subs = sorted(
        (s for s in kb.places.subdistricts.values() if s.coord_precision in REFERENCE_PRECISIONS),
        key=lambda s: s.code,
    )
    brute_times, brute = per_call_ms(brute_subdistrict, [(subs, lat, lng) for lat, lng in points])
    bad = sum(
        not agree([(got[0].code, got[1])], [(want[0].code, want[1])])
        for got, want in zip(found, brute, strict=True)
    )
    c.emit("kb.where_am_i.points", len(points))
    c.emit("kb.where_am_i.subdistrict_points", len(subs))
    _, p99 = emit_latency("kb.where_am_i.", times)
    _, brute_p99 = emit_latency("kb.where_am_i.brute_", brute_times)
    c.emit("kb.where_am_i.speedup", ratio(statistics.fmean(brute_times), statistics.fmean(times)))
    c.emit("kb.where_am_i.speedup_p99", ratio(brute_p99, p99))
    c.emit("kb.where_am_i.disagreements", bad)
    c.target("kb.where_am_i.p99_ms", p99 <= 1.0, f"p99 {p99:.3f} ms, target ≤ 1 ms")
    c.target(
        "kb.where_am_i.agreement",
        bad == 0,
        f"{bad} of {len(points)} points differ from the full scan",
    )


# -- 4. typed places ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Typed:
    """A typed place, the area it means and how it was made."""

    text: str
    level: str
    code: str
    name: str
    kind: str


_PREFIXES = {
    "province": ("จ.", "จังหวัด", "จ. "),
    "district": ("อ.", "อำเภอ", "อ. "),
    "subdistrict": ("ต.", "ตำบล", "ต. "),
}
_THAI_LETTERS = range(0x0E01, 0x0E5C)


def misspell(name: str, rnd: random.Random) -> str:
    """Drop one Thai character or swap two neighbours (never the first letter)."""
    positions = [i for i in range(1, len(name)) if ord(name[i]) in _THAI_LETTERS]
    if not positions:
        return name
    i = rnd.choice(positions)
    if rnd.random() < 0.5 or i + 1 >= len(name):
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


def typed_places(kb: Knowledge, n: int, rnd: random.Random) -> list[Typed]:
    """``n`` typed places: exact, prefixed, nicknames and misspellings, about a quarter each."""
    g = kb.places
    areas: list[tuple[str, str, str]] = [
        ("province", p.code, p.name_th) for p in g.provinces.values()
    ]
    areas += [("district", d.code, d.name_th_short) for d in g.districts.values()]
    areas += [("subdistrict", s.code, s.name_th) for s in g.subdistricts.values()]
    provinces = [a for a in areas if a[0] == "province"]
    with (KNOWLEDGE / PLACES / "nicknames.csv").open(encoding="utf-8-sig", newline="") as f:
        nicknames = [(r["name"], r["level"], r["code"]) for r in csv.DictReader(f)]
    name_of = {(level, code): name for level, code, name in areas}

    def pick() -> tuple[str, str, str]:
        # a third provinces, the rest any area (as users ask)
        return rnd.choice(provinces) if rnd.random() < 0.33 else rnd.choice(areas)

    out: list[Typed] = []
    for i in range(n):
        kind = ("exact", "prefixed", "nickname", "misspelt")[i % 4]
        if kind == "nickname":
            text, level, code = nicknames[(i // 4) % len(nicknames)]
            out.append(Typed(text, level, code, name_of[(level, code)], kind))
            continue
        level, code, name = pick()
        if kind == "exact":
            text = name
        elif kind == "prefixed":
            text = rnd.choice(_PREFIXES[level]) + name
        else:
            text = misspell(name, rnd)
        out.append(Typed(text, level, code, name, kind))
    return out


def bench_resolve(kb: Knowledge, n: int, rnd: random.Random) -> None:
    """Section 4: ``resolve`` against an unindexed rapidfuzz scan of every place name."""
    queries = typed_places(kb, n, rnd)
    g = kb.places
    for q in queries[:20]:
        g.resolve(q.text)  # warm-up
    times, results = per_call_ms(g.resolve, [(q.text,) for q in queries])
    names = [p.name_th for p in g.provinces.values()]
    names += [d.name_th_short for d in g.districts.values()]
    names += [s.name_th for s in g.subdistricts.values()]
    brute_times, brute = per_call_ms(
        lambda text: process.extractOne(text, names, scorer=fuzz.ratio),
        [(q.text,) for q in queries],
    )

    def bare(name: str) -> str:
        return name.removeprefix("เขต")

    found = sum(
        any(m.code == q.code or bare(m.name_th) == bare(q.name) for m in r.top)
        for q, r in zip(queries, results, strict=True)
    )
    brute_found = sum(b is not None and b[0] == q.name for q, b in zip(queries, brute, strict=True))
    c.emit("kb.resolve.queries", len(queries))
    c.emit("kb.resolve.place_names", len(names))
    _, p99 = emit_latency("kb.resolve.", times)
    _, brute_p99 = emit_latency("kb.resolve.brute_", brute_times)
    c.emit("kb.resolve.speedup", ratio(statistics.fmean(brute_times), statistics.fmean(times)))
    c.emit("kb.resolve.speedup_p99", ratio(brute_p99, p99))
    c.emit("kb.resolve.found_pct", 100.0 * found / len(queries))
    c.emit("kb.resolve.brute_found_pct", 100.0 * brute_found / len(queries))
    for kind in ("exact", "prefixed", "nickname", "misspelt"):
        picked = [i for i, q in enumerate(queries) if q.kind == kind]
        kind_times = [times[i] for i in picked]
        c.emit(f"kb.resolve.{kind}.p99_ms", c.percentile(kind_times, 99))
    slow = sorted(range(len(queries)), key=lambda i: -times[i])[:3]
    c.note("slowest: " + ", ".join(f"{queries[i].text!r} {times[i]:.2f} ms" for i in slow))
    c.target("kb.resolve.p99_ms", p99 <= 2.0, f"p99 {p99:.3f} ms, target ≤ 2 ms")


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the four sections and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--centres", type=int, default=10_000)
    parser.add_argument("--courses", type=int, default=5_000)
    parser.add_argument("--points", type=int, default=2_000, help="query points (sections 2, 3)")
    parser.add_argument("--places", type=int, default=300, help="typed places (section 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed loads of each kind")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--profile", action="store_true", help="cProfile one full load")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    c.note(f"{c.background_load(0.5):.2f} cores busy before the start (other jobs)")
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        kb = bench_load(Path(tmp), args)
    points = random_points(kb, args.points, rnd)
    bench_nearest(kb, points)
    bench_where(kb, points)
    bench_resolve(kb, args.places, rnd)
    c.note(f"finished in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
