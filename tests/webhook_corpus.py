"""Webhook bodies for the bad-input tests: generated from LINE's webhook spec, then mutated.

``well_formed(n)`` draws ``CallbackRequest`` bodies from ``tests/fakeline/webhook.yml`` with
hypothesis-jsonschema (deterministic: ``derandomize``), one schema per event type (the spec's
discriminators turned into ``anyOf``; refs inlined, ``allOf`` merged), and gives them what LINE always sends and the spec does
not constrain: ids in LINE's shape, a fresh timestamp, a unique event id. They must all be
accepted and handled without a crash or a dead letter.

``mutated(bodies, seed)`` breaks them the ways a broken or hostile sender would: wrong types,
huge strings, deep nesting, invalid UTF-8, duplicate keys, lone surrogates, huge numbers,
truncation, other top-level shapes. They must never get a 5xx.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers import ServerThread, sign

SPEC = Path(__file__).parent / "fakeline" / "webhook.yml"
_REF = "#/components/schemas/"
#: JSON Schema keywords kept from the OpenAPI schemas (the rest are annotations).
_KEEP = {
    "type",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "required",
}


def _components() -> dict[str, Any]:
    data = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return dict(data["components"]["schemas"])


def _schema(components: dict[str, Any], node: Any, as_base: bool = False) -> dict[str, Any]:
    """An OpenAPI schema as plain JSON Schema: refs inlined, allOf merged, discriminators as
    ``anyOf`` over their concrete schemas (each with its ``type`` value fixed)."""
    if "$ref" in node:
        return _schema(components, components[node["$ref"][len(_REF) :]], as_base)
    if "discriminator" in node and not as_base:
        prop = node["discriminator"]["propertyName"]
        options = []
        for value, ref in node["discriminator"]["mapping"].items():
            concrete = _schema(components, components[ref[len(_REF) :]])
            concrete.setdefault("properties", {})[prop] = {"const": value}
            options.append(concrete)
        return {"anyOf": options}
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    if out.get("type") == "integer":
        out.setdefault("minimum", 0)
        out.setdefault("maximum", 2**53)
    properties = {
        name: _schema(components, sub) for name, sub in (node.get("properties") or {}).items()
    }
    if "items" in node:
        out["items"] = _schema(components, node["items"])
        out.setdefault("maxItems", 3)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _schema(components, node["additionalProperties"])
    for member in node.get("allOf") or ():
        merged = _schema(components, member, as_base=True)
        properties = {**merged.get("properties", {}), **properties}
        required = set(out.get("required", [])) | set(merged.get("required", []))
        out["required"] = sorted(required)
        out.setdefault("type", merged.get("type", "object"))
    if properties:
        out["properties"] = properties
    return out


def event_schemas() -> list[dict[str, Any]]:
    """One JSON Schema per webhook event type the spec knows (message, follow, ...)."""
    components = _components()
    return list(_schema(components, components["Event"])["anyOf"])


def _line_id(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:32]


def _realistic(body: dict[str, Any], n: int, batch: int | None = None) -> dict[str, Any]:
    """What LINE always sends and the spec leaves open: ids, a fresh time, unique event ids."""
    now = int(time.time() * 1000)
    tag = f"{n}" if batch is None else f"{batch}.{n}"
    for i, event in enumerate(body.get("events", [])):
        event["timestamp"] = now
        event["webhookEventId"] = (
            "01" + hashlib.sha256(f"{tag}.{i}".encode()).hexdigest()[:24].upper()
        )
        source = event.get("source")
        if isinstance(source, dict):
            who = f"{n % 200}"
            if "userId" in source or source.get("type") == "user":
                source["userId"] = _line_id("U", who)
            if source.get("type") == "group":
                source["groupId"] = _line_id("C", who)
            if source.get("type") == "room":
                source["roomId"] = _line_id("R", who)
    return body


def well_formed(n: int, batch: int | None = None) -> list[bytes]:
    """``n`` schema-valid webhook bodies (the same ones on every run).

    ``batch``: a different, equally reproducible set (hypothesis seeded with it), with
    event ids of its own, so batches made in parallel processes add up without repeats.
    """
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st
    from hypothesis_jsonschema import from_schema

    found: list[dict[str, Any]] = []
    # Each event type drawn as often as the others (one schema of all of them together
    # favours the smallest), one to three events a body, as LINE sends.
    events = st.one_of(*(from_schema(schema) for schema in event_schemas()))
    bodies = st.fixed_dictionaries(
        {
            "destination": st.just(_line_id("U", "bot")),
            "events": st.lists(events, min_size=1, max_size=3),
        }
    )

    @seed(batch or 0)
    @settings(
        max_examples=n,
        derandomize=batch is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(bodies)
    def collect(body: dict[str, Any]) -> None:
        if len(found) < n:
            found.append(body)

    collect()
    return [
        json.dumps(_realistic(copy.deepcopy(b), i, batch), ensure_ascii=False).encode()
        for i, b in enumerate(found)
    ]


# -- mutations ------------------------------------------------------------------------------


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    yield path, node


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = node
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return node


_OTHER_TYPES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], {}, [1, "a"], {"a": None}]


def _mutate(body: bytes, rng: random.Random) -> bytes:
    data = json.loads(body)
    kind = rng.randrange(11)
    paths = [p for p, _ in _leaves(data)]
    path = rng.choice(paths)
    if kind == 0:  # wrong type anywhere (the whole body included)
        return json.dumps(_set(data, path, rng.choice(_OTHER_TYPES))).encode()
    if kind == 1:  # a huge string
        return json.dumps(_set(data, path, "ก" * rng.choice((10_000, 200_000)))).encode()
    if kind == 2:  # deep nesting
        depth = rng.choice((50, 1_000, 100_000))
        return (
            json.dumps(data)
            .replace('"events"', '"x":' + "[" * depth + "]" * depth + ',"events"', 1)
            .encode()
        )
    if kind == 3:  # invalid UTF-8 bytes
        at = rng.randrange(len(body) + 1)
        return body[:at] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80")) + body[at:]
    if kind == 4:  # duplicate keys
        text = body.decode()
        return (
            text.replace('"events":', '"events": "dup", "events":', 1)
            .replace('"type":', '"type": 1, "type":', 1)
            .encode()
        )
    if kind == 5:  # a lone surrogate in a string (valid JSON, not valid Unicode)
        raw = json.dumps(_set(data, path, "ab\ud800cd"), ensure_ascii=True)
        return raw.encode()
    if kind == 6:  # numbers out of any range
        return json.dumps(_set(data, path, rng.choice((10**40, -(10**40), 1e308, -0.0)))).encode()
    if kind == 7:  # cut short
        return body[: rng.randrange(len(body))]
    if kind == 8:  # other top-level shapes
        return rng.choice((b"[]", b"null", b"123", b'"events"', b"{}", b'{"events": null}', b""))
    if kind == 9:  # an id too long for any column
        return json.dumps(_set(data, path, "U" + "f" * rng.choice((64, 65, 1000)))).encode()
    # control characters and NUL in text
    return json.dumps(_set(data, path, "a\x00b\x1f\u2028c")).encode()


def mutated(bodies: list[bytes], seed: int = 0) -> list[bytes]:
    """One mutated copy of each body (the same ones for the same seed)."""
    rng = random.Random(seed)
    return [_mutate(b, rng) for b in bodies]


def post_body(
    client: httpx.Client, server: ServerThread, secret: str, body: bytes, signature: str | None
) -> int:
    """POST ``body`` to the bot's webhook (``signature``: "auto" signs it, None leaves it out,
    else sent as is); the status, 413 for a body past ``MAX_BODY_BYTES`` whose connection the
    server closed while it was still being sent, and 599 for no answer at all."""
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Line-Signature"] = sign(secret, body)
    elif signature is not None:
        headers["X-Line-Signature"] = signature
    try:
        return client.post(f"{server.base_url}/callback", content=body, headers=headers).status_code
    except httpx.TransportError:
        return 413 if len(body) > server.settings.max_body_bytes else 599
