"""Spec-driven validation for the fake LINE Messaging API.

Why this exists: the fake is the only stand-in for LINE in the test suite, so a request
that real LINE would reject has to be caught here, not in production. Three layers:

1. LINE's own OpenAPI 3.0 spec (``messaging-api.yml`` beside this file, vendored and
   unmodified). Schemas are compiled once into plain Python closures (one per schema,
   cached), so a request costs a walk over its JSON and nothing else.
2. Documented limits the spec does not encode (text length, quick reply labels, flex
   size, postback data bytes, ...): :func:`message_limit_issues`.
3. Our product policy (retry key required on push/multicast/narrowcast/broadcast) and
   LINE's id formats: :func:`policy_issues`.

Polymorphism: the spec writes it as ``discriminator`` + ``mapping`` on a base schema
(``Message``, ``Action``, ``FlexComponent``...) whose concrete schemas ``allOf`` the
base. Plain JSON-Schema validators ignore ``discriminator`` and would accept a text
message without ``text``. Here, validating against a discriminated base picks the
concrete schema by the property value (an unknown value is an error) and validates
against it; inside that concrete schema the base is checked *without* dispatching again
(no infinite recursion), but the discriminator value must be one that maps to that
concrete schema, so e.g. a carousel item ``{"type": "box"}`` (items are ``FlexBubble``)
is rejected too.

OpenAPI 3.0 specifics handled: ``nullable``, boolean ``exclusiveMinimum/Maximum``,
``$ref`` siblings ignored, ``format`` (int32/int64 ranges, uri, uuid, date-time).
``additionalProperties`` is applied exactly as written (absent means allowed). Any
schema keyword this module does not understand makes loading fail, so a future spec
cannot silently be checked less strictly.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

SPEC_PATH: Final = Path(__file__).with_name("messaging-api.yml")

PathT = tuple[str | int, ...]
"""Location of a value inside a request body, e.g. ``("messages", 0, "text")``."""

Sink = list[tuple[PathT, str]]
"""Where compiled checks append ``(path, message)`` problems."""

Check = Callable[[Any, PathT, Sink], None]
"""A compiled schema: ``check(value, path, sink)`` appends problems to ``sink``."""


class SpecError(Exception):
    """The spec uses something this validator does not implement (fail loudly)."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation problem, shaped like an entry of LINE's error ``details``."""

    property: str
    message: str

    def __str__(self) -> str:
        return f"{self.property}: {self.message}" if self.property else self.message


# --------------------------------------------------------------------------------------
# Documented limits that the spec does not encode (LINE Messaging API reference).
# Character limits are counted in UTF-16 code units, as LINE counts them; Thai text is
# all in the BMP, so for Thai this equals the number of characters.
# --------------------------------------------------------------------------------------
MAX_MESSAGES: Final = 5
TEXT_MAX_UTF16: Final = 5000
QUICK_REPLY_MAX_ITEMS: Final = 13
QUICK_REPLY_LABEL_MAX: Final = 20
FLEX_BUTTON_LABEL_MAX: Final = 40
FLEX_ALT_TEXT_MAX: Final = 1500
FLEX_CAROUSEL_MAX_BUBBLES: Final = 12
# "The maximum size of JSON data that defines a bubble is 30 KB" / "... a carousel is
# 50 KB". Measured as compact UTF-8 JSON of the container; KB taken as 1000 bytes
# (the stricter reading).
FLEX_BUBBLE_MAX_BYTES: Final = 30_000
FLEX_CAROUSEL_MAX_BYTES: Final = 50_000
POSTBACK_DATA_MAX_BYTES: Final = 300
POSTBACK_DISPLAY_TEXT_MAX: Final = 300
MULTICAST_MAX_TO: Final = 500
LOADING_SECONDS_STEP: Final = 5

USER_ID_RE: Final = re.compile(r"^U[0-9a-f]{32}$")
PUSH_TO_RE: Final = re.compile(r"^[UCR][0-9a-f]{32}$")
UUID_RE: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

RETRY_KEY_HEADER: Final = "x-line-retry-key"
RETRY_KEY_REQUIRED_FOR: Final = frozenset({"pushMessage", "multicast", "narrowcast", "broadcast"})
"""Product policy: every send that LINE lets us make idempotent must carry a retry key."""


def utf16_len(s: str) -> int:
    """Length as LINE counts it (UTF-16 code units; an emoji outside the BMP is 2)."""
    return len(s.encode("utf-16-le")) // 2


def format_path(path: PathT) -> str:
    """Render a path LINE-style: ``messages[0].quickReply.items[2].action.label``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --------------------------------------------------------------------------------------
# Schema compiler
# --------------------------------------------------------------------------------------
_MISSING: Final = object()

_IGNORED_KEYWORDS: Final = frozenset(
    {
        "description",
        "externalDocs",
        "example",
        "examples",
        "default",
        "title",
        "readOnly",
        "writeOnly",
        "deprecated",
        "xml",
    }
)
_KNOWN_KEYWORDS: Final = (
    frozenset(
        {
            "type",
            "nullable",
            "enum",
            "format",
            "minLength",
            "maxLength",
            "pattern",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "items",
            "minItems",
            "maxItems",
            "uniqueItems",
            "properties",
            "required",
            "additionalProperties",
            "minProperties",
            "maxProperties",
            "allOf",
            "oneOf",
            "anyOf",
            "not",
            "$ref",
            "discriminator",
        }
    )
    | _IGNORED_KEYWORDS
)

_INT_RANGES: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# A URI needs a scheme and no whitespace/control characters. Deliberately no stricter:
# LINE accepts https, http, tel and line schemes in actions, and the spec says only "uri".
_URI_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]*$")
_DATE_TIME_RE: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STRING_FORMATS: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "uri": (_URI_RE, "must be an absolute URI"),
    "uuid": (UUID_RE, "must be a UUID (hex with hyphens)"),
    "date-time": (_DATE_TIME_RE, "must be an RFC 3339 date-time"),
    "date": (_DATE_RE, "must be a date (YYYY-MM-DD)"),
}


def _is_integer(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPE_TESTS: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "object": (lambda x: isinstance(x, dict), "must be an object"),
    "array": (lambda x: isinstance(x, list), "must be an array"),
    "string": (lambda x: isinstance(x, str), "must be a string"),
    "integer": (_is_integer, "must be an integer"),
    "number": (_is_number, "must be a number"),
    "boolean": (lambda x: isinstance(x, bool), "must be a boolean"),
}


def _ref_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise SpecError(f"unsupported $ref {ref!r} (only {prefix}... is supported)")
    return ref[len(prefix) :]


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality (``True`` is not ``1``) for ``enum`` membership."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _run_all(checks: Sequence[Check]) -> Check:
    if not checks:
        return lambda x, p, out: None
    if len(checks) == 1:
        return checks[0]
    checks_t = tuple(checks)

    def run(x: Any, p: PathT, out: Sink) -> None:
        for c in checks_t:
            c(x, p, out)

    return run


@dataclass(slots=True)
class _Shape:
    """A schema with its ``allOf`` members merged: the conjunction of all of them."""

    type_name: str | None
    nullable: bool
    required: list[str]
    props: dict[str, list[Check]]
    extra: list[Check]  # other keyword checks, each guarding its own type

    def merge(self, other: _Shape) -> bool:
        """AND ``other`` into this shape; False if the types conflict (keep separate)."""
        if other.type_name is not None:
            if self.type_name is None:
                self.type_name, self.nullable = other.type_name, other.nullable
            elif self.type_name == other.type_name:
                self.nullable = self.nullable and other.nullable
            else:
                return False
        self.required.extend(other.required)
        for name, chks in other.props.items():
            self.props.setdefault(name, []).extend(chks)
        self.extra.extend(other.extra)
        return True


class SchemaCompiler:
    """Compiles the spec's component schemas into closures, once, with caching."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self._schemas = schemas
        self._shapes: dict[tuple[str, str | None], _Shape] = {}
        self._shaping: set[tuple[str, str | None]] = set()
        # key: (schema name, concrete schema it is the allOf-base of, or None = dispatch)
        self._cache: dict[tuple[str, str | None], Check] = {}

    def ref(self, ref: str, base_of: str | None = None) -> Check:
        """Compiled check for ``#/components/schemas/NAME`` (recursion-safe)."""
        name = _ref_name(ref)
        if name not in self._schemas:
            raise SpecError(f"$ref to unknown schema {name!r}")
        key = (name, base_of)
        found = self._cache.get(key)
        if found is not None:
            return found
        holder: list[Check] = []

        def forward(x: Any, p: PathT, out: Sink) -> None:
            holder[0](x, p, out)

        self._cache[key] = forward  # recursive references resolve through this
        compiled = self.compile(self._schemas[name], where=name, owner=name, base_of=base_of)
        holder.append(compiled)
        self._cache[key] = compiled
        return compiled

    def compile(
        self,
        schema: Mapping[str, Any],
        where: str,
        owner: str | None = None,
        base_of: str | None = None,
    ) -> Check:
        """Compile one schema object. ``owner`` names the component being compiled (its
        top-level ``allOf`` bases are checked without dispatch); ``base_of`` says this
        discriminated schema is being checked as the base of that concrete schema."""
        if not isinstance(schema, Mapping):
            raise SpecError(f"{where}: schema must be a mapping")
        if "$ref" in schema:  # OpenAPI 3.0: siblings of $ref are ignored
            return self.ref(schema["$ref"])
        disc = schema.get("discriminator")
        if disc is not None and base_of is None:
            self._check_keywords(schema, where)
            return self._dispatch(schema, disc, where)
        return self._finish(self._shape(schema, where, owner, base_of), where)

    @staticmethod
    def _check_keywords(schema: Mapping[str, Any], where: str) -> None:
        unknown = {k for k in schema if k not in _KNOWN_KEYWORDS and not k.startswith("x-")}
        if unknown:
            raise SpecError(f"{where}: unsupported schema keywords {sorted(unknown)}")
        type_name = schema.get("type")
        if type_name is not None and type_name not in _TYPE_TESTS:
            raise SpecError(f"{where}: unsupported type {type_name!r}")

    def _shape(
        self, schema: Mapping[str, Any], where: str, owner: str | None, base_of: str | None
    ) -> _Shape:
        """Collect a schema's keywords, with ``allOf`` members merged in (flattened), so
        that an object is checked in one pass instead of once per ``allOf`` layer."""
        self._check_keywords(schema, where)
        shape = _Shape(
            type_name=schema.get("type"),
            nullable=bool(schema.get("nullable", False)),
            required=list(schema.get("required") or ()),
            props={
                name: [self.compile(sub, where=f"{where}.{name}")]
                for name, sub in (schema.get("properties") or {}).items()
            },
            extra=[],
        )
        shape.extra.extend(self._string_checks(schema, where))
        shape.extra.extend(self._number_checks(schema, where))
        shape.extra.extend(self._array_checks(schema, where))
        shape.extra.extend(self._object_checks(schema, where))
        if "enum" in schema:
            shape.extra.append(self._enum_check(schema["enum"]))
        for sub in schema.get("allOf", ()):
            sub_shape: _Shape | None = None
            if "$ref" in sub:
                name = _ref_name(sub["$ref"])
                if self._is_discriminated(sub["$ref"]):
                    if owner is not None:  # the base of the concrete schema `owner`
                        sub_shape = self._ref_shape(name, base_of=owner)
                else:
                    sub_shape = self._ref_shape(name, base_of=None)
            elif "discriminator" not in sub:
                sub_shape = self._shape(sub, f"{where}.allOf", owner=None, base_of=None)
            if sub_shape is None or not shape.merge(sub_shape):
                shape.extra.append(self.compile(sub, where=f"{where}.allOf"))
        if "oneOf" in schema or "anyOf" in schema:
            shape.extra.append(self._combinator(schema, where))
        if "not" in schema:
            inner = self.compile(schema["not"], where=f"{where}.not")

            def not_check(x: Any, p: PathT, out: Sink) -> None:
                tmp: Sink = []
                inner(x, p, tmp)
                if not tmp:
                    out.append((p, "must not match the excluded schema"))

            shape.extra.append(not_check)
        disc = schema.get("discriminator")
        if disc is not None and base_of is not None:
            shape.extra.append(self._discriminator_consistency(schema, disc, base_of))
        return shape

    def _ref_shape(self, name: str, base_of: str | None) -> _Shape:
        key = (name, base_of)
        found = self._shapes.get(key)
        if found is None:
            if key in self._shaping:
                raise SpecError(f"{name}: allOf cycle")
            self._shaping.add(key)
            found = self._shape(self._schemas[name], name, owner=name, base_of=base_of)
            self._shaping.discard(key)
            self._shapes[key] = found
        return found

    @staticmethod
    def _finish(shape: _Shape, where: str) -> Check:
        """Turn a flattened shape into one closure (type test, required, properties,
        then the remaining keyword checks)."""
        required = tuple(dict.fromkeys(shape.required))
        props = {name: _run_all(chks) for name, chks in shape.props.items()}
        lookup = props.get
        extra = tuple(shape.extra)
        nullable = shape.nullable
        type_name = shape.type_name

        def object_part(x: dict[str, Any], p: PathT, out: Sink) -> None:
            for name in required:
                if name not in x:
                    out.append(((*p, name), "is required"))
            if props:
                # Iterate the instance (a handful of keys), not the schema (dozens).
                for name, v in x.items():
                    chk = lookup(name)
                    if chk is not None:
                        chk(v, (*p, name), out)

        if type_name is None:
            # No declared type (typically an allOf wrapper): keywords guard their own
            # types, and typed allOf members (merged above) still reject null.
            has_object_part = bool(required or props)

            def untyped(x: Any, p: PathT, out: Sink) -> None:
                if has_object_part and isinstance(x, dict):
                    object_part(x, p, out)
                for c in extra:
                    c(x, p, out)

            return untyped
        test, type_msg = _TYPE_TESTS[type_name]
        if type_name == "object":

            def typed_object(x: Any, p: PathT, out: Sink) -> None:
                if not isinstance(x, dict):
                    if x is None:
                        if not nullable:
                            out.append((p, f"{type_msg}, not null"))
                    else:
                        out.append((p, type_msg))
                    return
                object_part(x, p, out)
                for c in extra:
                    c(x, p, out)

            return typed_object

        py_type = {"string": str, "boolean": bool}.get(type_name)
        if py_type is not None and not extra:
            # Fast path for the most common leaf: a plain string/boolean property.
            def plain_leaf(x: Any, p: PathT, out: Sink) -> None:
                if type(x) is py_type:
                    return
                if x is None:
                    if not nullable:
                        out.append((p, f"{type_msg}, not null"))
                elif not test(x):
                    out.append((p, type_msg))

            return plain_leaf

        def typed(x: Any, p: PathT, out: Sink) -> None:
            if x is None:
                if not nullable:
                    out.append((p, f"{type_msg}, not null"))
                return
            if not test(x):
                out.append((p, type_msg))
                return
            for c in extra:
                c(x, p, out)

        return typed

    # -- discriminator ---------------------------------------------------------------
    def _is_discriminated(self, ref: str) -> bool:
        target = self._schemas.get(_ref_name(ref))
        return isinstance(target, Mapping) and "discriminator" in target

    @staticmethod
    def _mapping(disc: Mapping[str, Any], where: str) -> tuple[str, dict[str, str]]:
        prop = disc.get("propertyName")
        mapping = disc.get("mapping")
        if not isinstance(prop, str) or not isinstance(mapping, Mapping) or not mapping:
            raise SpecError(f"{where}: discriminator needs propertyName and an explicit mapping")
        return prop, {str(k): _ref_name(v) for k, v in mapping.items()}

    def _dispatch(self, schema: Mapping[str, Any], disc: Mapping[str, Any], where: str) -> Check:
        prop, mapping = self._mapping(disc, where)
        targets = {
            value: self.ref(f"#/components/schemas/{name}") for value, name in mapping.items()
        }
        allowed = ", ".join(sorted(targets))
        nullable = bool(schema.get("nullable", False))

        def dispatch(x: Any, p: PathT, out: Sink) -> None:
            if x is None and nullable:
                return
            if not isinstance(x, dict):
                out.append((p, "must be an object"))
                return
            value = x.get(prop, _MISSING)
            if value is _MISSING:
                out.append(((*p, prop), f"is required ({where} {prop}: one of {allowed})"))
                return
            target = targets.get(value) if isinstance(value, str) else None
            if target is None:
                out.append(
                    ((*p, prop), f"unknown {where} {prop} {value!r}; expected one of: {allowed}")
                )
                return
            target(x, p, out)

        return dispatch

    def _discriminator_consistency(
        self, schema: Mapping[str, Any], disc: Mapping[str, Any], concrete: str
    ) -> Check:
        """Inside concrete schema C, the base's discriminator value must map to C."""
        prop, mapping = self._mapping(disc, concrete)
        values = frozenset(v for v, name in mapping.items() if name == concrete)
        if not values:
            return lambda x, p, out: None
        expected = " or ".join(repr(v) for v in sorted(values))
        required_by_schema = prop in (schema.get("required") or ())

        def consistent(x: Any, p: PathT, out: Sink) -> None:
            if not isinstance(x, dict):
                return
            value = x.get(prop, _MISSING)
            if value is _MISSING:
                if not required_by_schema:
                    out.append(((*p, prop), f"is required (must be {expected})"))
            elif not (isinstance(value, str) and value in values):
                out.append(((*p, prop), f"must be {expected} here ({concrete}), got {value!r}"))

        return consistent

    # -- keyword groups --------------------------------------------------------------
    def _string_checks(self, s: Mapping[str, Any], where: str) -> list[Check]:
        checks: list[Check] = []
        min_len, max_len = s.get("minLength"), s.get("maxLength")
        if min_len is not None or max_len is not None:
            lo = int(min_len or 0)
            hi = int(max_len) if max_len is not None else None

            def length(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, str):
                    n = len(x)
                    if n < lo:
                        out.append(
                            (
                                p,
                                f"must be at least {lo} characters"
                                if lo > 1
                                else "may not be empty",
                            )
                        )
                    elif hi is not None and n > hi:
                        out.append((p, f"must be at most {hi} characters (got {n})"))

            checks.append(length)
        if "pattern" in s:
            rx = re.compile(s["pattern"])
            pat = s["pattern"]

            def pattern(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, str) and rx.search(x) is None:
                    out.append((p, f"must match {pat}"))

            checks.append(pattern)
        fmt = s.get("format")
        if fmt in _STRING_FORMATS:
            frx, fmsg = _STRING_FORMATS[fmt]

            def string_format(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, str) and frx.match(x) is None:
                    out.append((p, f"{fmsg} (got {x[:80]!r})"))

            checks.append(string_format)
        return checks

    def _number_checks(self, s: Mapping[str, Any], where: str) -> list[Check]:
        checks: list[Check] = []
        bounds: list[tuple[float, bool, bool]] = []  # (limit, is_min, exclusive)
        if "minimum" in s:
            bounds.append((s["minimum"], True, bool(s.get("exclusiveMinimum", False))))
        if "maximum" in s:
            bounds.append((s["maximum"], False, bool(s.get("exclusiveMaximum", False))))
        fmt = s.get("format")
        if fmt in _INT_RANGES:
            lo, hi = _INT_RANGES[fmt]
            bounds.append((lo, True, False))
            bounds.append((hi, False, False))
        if bounds:
            bounds_t = tuple(bounds)

            def numeric_bounds(x: Any, p: PathT, out: Sink) -> None:
                if not _is_number(x):
                    return
                for limit, is_min, exclusive in bounds_t:
                    if is_min:
                        bad = x <= limit if exclusive else x < limit
                        if bad:
                            out.append(
                                (p, f"must be {'>' if exclusive else '>='} {limit} (got {x})")
                            )
                            return
                    else:
                        bad = x >= limit if exclusive else x > limit
                        if bad:
                            out.append(
                                (p, f"must be {'<' if exclusive else '<='} {limit} (got {x})")
                            )
                            return

            checks.append(numeric_bounds)
        if "multipleOf" in s:
            step = s["multipleOf"]

            def multiple(x: Any, p: PathT, out: Sink) -> None:
                if _is_number(x) and (x / step) != int(x / step):
                    out.append((p, f"must be a multiple of {step}"))

            checks.append(multiple)
        return checks

    def _array_checks(self, s: Mapping[str, Any], where: str) -> list[Check]:
        checks: list[Check] = []
        min_items, max_items = s.get("minItems"), s.get("maxItems")
        if min_items is not None or max_items is not None:
            lo = int(min_items or 0)
            hi = int(max_items) if max_items is not None else None

            def count(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, list):
                    n = len(x)
                    if n < lo:
                        out.append(
                            (
                                p,
                                f"must have at least {lo} item(s)"
                                if lo > 1
                                else "may not be empty",
                            )
                        )
                    elif hi is not None and n > hi:
                        out.append((p, f"must have at most {hi} items (got {n})"))

            checks.append(count)
        if s.get("uniqueItems"):

            def unique(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, list):
                    seen = {json.dumps(v, sort_keys=True) for v in x}
                    if len(seen) != len(x):
                        out.append((p, "items must be unique"))

            checks.append(unique)
        if "items" in s:
            item = self.compile(s["items"], where=f"{where}[]")

            def items(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, list):
                    for i, v in enumerate(x):
                        item(v, (*p, i), out)

            checks.append(items)
        return checks

    def _object_checks(self, s: Mapping[str, Any], where: str) -> list[Check]:
        """Object keywords other than ``required``/``properties`` (those live in the
        shape). ``additionalProperties`` sees only this schema's own ``properties``, as
        JSON Schema defines it."""
        checks: list[Check] = []
        known = frozenset(s.get("properties") or ())
        extra = s.get("additionalProperties", True)
        if extra is False:

            def no_extra(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, dict):
                    for name in x:
                        if name not in known:
                            out.append(((*p, name), "is not an allowed property"))

            checks.append(no_extra)
        elif isinstance(extra, Mapping):
            extra_check = self.compile(extra, where=f"{where}.*")

            def extra_values(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, dict):
                    for name, v in x.items():
                        if name not in known:
                            extra_check(v, (*p, name), out)

            checks.append(extra_values)
        min_p, max_p = s.get("minProperties"), s.get("maxProperties")
        if min_p is not None or max_p is not None:
            lo = int(min_p or 0)
            hi = int(max_p) if max_p is not None else None

            def prop_count(x: Any, p: PathT, out: Sink) -> None:
                if isinstance(x, dict) and (len(x) < lo or (hi is not None and len(x) > hi)):
                    out.append((p, f"must have between {lo} and {hi} properties"))

            checks.append(prop_count)
        return checks

    @staticmethod
    def _enum_check(values: Sequence[Any]) -> Check:
        shown = ", ".join(repr(v) for v in values)
        if all(isinstance(v, str) for v in values):
            allowed = frozenset(values)

            def str_enum(x: Any, p: PathT, out: Sink) -> None:
                if not (isinstance(x, str) and x in allowed):
                    out.append((p, f"must be one of: {shown} (got {x!r})"))

            return str_enum
        values_t = tuple(values)

        def any_enum(x: Any, p: PathT, out: Sink) -> None:
            if not any(_same_json(x, v) for v in values_t):
                out.append((p, f"must be one of: {shown} (got {x!r})"))

        return any_enum

    def _combinator(self, s: Mapping[str, Any], where: str) -> Check:
        one = tuple(self.compile(sub, where=f"{where}.oneOf") for sub in s.get("oneOf", ()))
        any_ = tuple(self.compile(sub, where=f"{where}.anyOf") for sub in s.get("anyOf", ()))

        def combinator(x: Any, p: PathT, out: Sink) -> None:
            if one:
                ok = 0
                for c in one:
                    tmp: Sink = []
                    c(x, p, tmp)
                    ok += not tmp
                if ok != 1:
                    out.append((p, f"must match exactly one allowed schema (matched {ok})"))
            if any_:
                for c in any_:
                    tmp2: Sink = []
                    c(x, p, tmp2)
                    if not tmp2:
                        break
                else:
                    out.append((p, "must match at least one allowed schema"))

        return combinator


# --------------------------------------------------------------------------------------
# Operations and routing
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Param:
    """A path/query/header parameter of an operation, with its compiled schema."""

    name: str
    location: str  # "path" | "query" | "header"
    required: bool
    type_name: str | None
    item_type: str | None
    check: Check


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path) of the spec, with everything needed to validate a request."""

    operation_id: str
    method: str
    path_template: str
    params: tuple[Param, ...]
    body_types: tuple[str, ...]  # media types the spec accepts; () = no request body
    body_required: bool
    body_check: Check | None  # for application/json bodies
    success_status: int
    sends_messages: bool  # body has `messages: Message[]` (reply/push/multicast/...)
    messages_count_in_spec: bool  # spec already encodes 1..5 messages

    @property
    def json_body(self) -> bool:
        """Whether the body must be ``application/json``."""
        return "application/json" in self.body_types


@dataclass(frozen=True, slots=True)
class Match:
    """Result of routing a request."""

    operation: Operation | None
    path_params: dict[str, str]
    path_known: bool  # the path exists in the spec (maybe with another method)


_SEGMENT_PARAM_RE: Final = re.compile(r"\{([^}/]+)\}")


def _coerce(raw: str, type_name: str | None) -> tuple[Any, str | None]:
    """Turn a path/query/header string into the declared JSON type."""
    if type_name == "integer":
        try:
            return int(raw), None
        except ValueError:
            return raw, "must be an integer"
    if type_name == "number":
        try:
            return float(raw), None
        except ValueError:
            return raw, "must be a number"
    if type_name == "boolean":
        if raw in ("true", "false"):
            return raw == "true", None
        return raw, "must be true or false"
    return raw, None


class SpecValidator:
    """The vendored spec, compiled: routes requests to operations and validates them.

    Build it once per process (:func:`load_validator`); it is immutable afterwards and
    safe to share between threads and fake-server instances.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        schemas = spec.get("components", {}).get("schemas", {})
        self.compiler = SchemaCompiler(schemas)
        self._exact: dict[str, dict[str, Operation]] = {}
        templated: list[tuple[int, re.Pattern[str], dict[str, Operation]]] = []
        self.operations: dict[str, Operation] = {}
        for path, item in spec["paths"].items():
            path_params = item.get("parameters", [])
            ops: dict[str, Operation] = {}
            for method, op in item.items():
                if method == "parameters" or method.startswith("x-"):
                    continue
                operation = self._build_operation(method.upper(), path, op, path_params, schemas)
                ops[method.upper()] = operation
                self.operations[operation.operation_id] = operation
            names = _SEGMENT_PARAM_RE.findall(path)
            if names:
                parts = re.split(r"(\{[^}/]+\})", path)
                rx = re.compile(
                    "^"
                    + "".join(
                        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
                        for part in parts
                    )
                    + "$"
                )
                templated.append((len(names), rx, ops))
            else:
                self._exact[path] = ops
        templated.sort(key=lambda t: t[0])  # fewer parameters = more literal = first
        self._templated = tuple((rx, ops) for _, rx, ops in templated)

    def _build_operation(
        self,
        method: str,
        path: str,
        op: Mapping[str, Any],
        path_level: Sequence[Mapping[str, Any]],
        schemas: Mapping[str, Any],
    ) -> Operation:
        op_id = str(op.get("operationId") or f"{method} {path}")
        merged: dict[tuple[str, str], Mapping[str, Any]] = {}
        for prm in list(path_level) + list(op.get("parameters", [])):
            if "$ref" in prm:
                raise SpecError(f"{op_id}: parameter $ref is not supported")
            merged[(prm["in"], prm["name"])] = prm
        params: list[Param] = []
        for (loc, name), prm in merged.items():
            if loc not in ("path", "query", "header"):
                continue  # cookies: LINE has none
            schema = prm.get("schema", {})
            item_schema = schema.get("items") if isinstance(schema.get("items"), Mapping) else None
            params.append(
                Param(
                    name=name,
                    location=loc,
                    required=bool(prm.get("required", loc == "path")),
                    type_name=schema.get("type"),
                    item_type=item_schema.get("type") if item_schema else None,
                    check=self.compiler.compile(schema, where=f"{op_id}.{name}"),
                )
            )
        body = op.get("requestBody")
        body_types: tuple[str, ...] = ()
        body_check: Check | None = None
        body_required = False
        sends_messages = False
        count_in_spec = False
        if body is not None:
            content = body.get("content", {})
            body_types = tuple(content)
            body_required = bool(body.get("required", False))
            json_schema = content.get("application/json", {}).get("schema")
            if json_schema is not None:
                body_check = self.compiler.compile(json_schema, where=f"{op_id}.body")
                resolved = json_schema
                if "$ref" in json_schema:
                    resolved = schemas[_ref_name(json_schema["$ref"])]
                msgs = (resolved.get("properties") or {}).get("messages")
                if (
                    isinstance(msgs, Mapping)
                    and (msgs.get("items") or {}).get("$ref") == "#/components/schemas/Message"
                ):
                    sends_messages = True
                    count_in_spec = (
                        msgs.get("minItems") == 1 and msgs.get("maxItems") == MAX_MESSAGES
                    )
        codes = sorted(
            int(c) for c in op.get("responses", {}) if str(c).isdigit() and str(c).startswith("2")
        )
        return Operation(
            operation_id=op_id,
            method=method,
            path_template=path,
            params=tuple(params),
            body_types=body_types,
            body_required=body_required,
            body_check=body_check,
            success_status=codes[0] if codes else 200,
            sends_messages=sends_messages,
            messages_count_in_spec=count_in_spec,
        )

    def match(self, method: str, path: str) -> Match:
        """Find the operation for ``method path``; literal paths win over templates."""
        known = False
        ops = self._exact.get(path)
        if ops is not None:
            known = True
            op = ops.get(method)
            if op is not None:
                return Match(op, {}, True)
        for rx, tops in self._templated:
            m = rx.match(path)
            if m is None:
                continue
            known = True
            op = tops.get(method)
            if op is not None:
                return Match(op, m.groupdict(), True)
        return Match(None, {}, known)

    def validate(
        self,
        op: Operation,
        path_params: Mapping[str, str],
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        content_type: str | None,
        raw: bytes,
    ) -> tuple[Any, list[Issue]]:
        """Check one request. Returns the parsed JSON body (or None) and the problems.

        ``headers`` must have lower-cased names; ``query`` maps a name to all its values.
        """
        out: Sink = []
        self._check_params(op, path_params, query, headers, out)
        body: Any = None
        body_ok = False
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if raw:
            if media == "application/json" or (op.json_body and not media):
                try:
                    body = json.loads(raw)
                    body_ok = True
                except (ValueError, UnicodeDecodeError) as exc:
                    out.append(((), f"request body is not valid JSON: {exc}"))
            if op.body_types and op.json_body:
                if media != "application/json":
                    got = content_type or "none"
                    out.append(((), f"Content-Type must be application/json, got {got!r}"))
                elif body_ok and op.body_check is not None:
                    op.body_check(body, (), out)
        elif op.body_required:
            out.append(((), "request body is required"))
        schema_paths = {p for p, _ in out}
        extra: Sink = []
        if body_ok:
            if op.sends_messages:
                message_limit_issues(body, extra, check_count=not op.messages_count_in_spec)
            policy_issues(op.operation_id, body, headers, extra)
        else:
            policy_issues(op.operation_id, None, headers, extra)
        # The spec's own error on a property wins; a limit repeating it would be noise.
        out.extend((p, m) for p, m in extra if p not in schema_paths)
        return body, [Issue(format_path(p) if p else "", m) for p, m in out]

    @staticmethod
    def _check_params(
        op: Operation,
        path_params: Mapping[str, str],
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        out: Sink,
    ) -> None:
        for prm in op.params:
            raws: list[str]
            if prm.location == "path":
                raws = [path_params[prm.name]] if prm.name in path_params else []
            elif prm.location == "query":
                raws = list(query.get(prm.name, ()))
            else:
                h = headers.get(prm.name.lower())
                raws = [h] if h is not None else []
            where: PathT = (prm.name,)
            if not raws:
                if prm.required:
                    out.append((where, f"{prm.location} parameter is required"))
                continue
            if prm.type_name == "array":
                values: list[Any] = []
                for r in raws:
                    for piece in r.split(","):
                        v, err = _coerce(piece, prm.item_type)
                        if err:
                            out.append((where, err))
                        values.append(v)
                prm.check(values, where, out)
            else:
                v, err = _coerce(raws[-1], prm.type_name)
                if err:
                    out.append((where, err))
                    continue
                prm.check(v, where, out)


@functools.cache
def load_validator(path: Path = SPEC_PATH) -> SpecValidator:
    """Parse and compile the spec once per process (shared by every fake instance)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        spec = yaml.load(fh, Loader=loader)
    return SpecValidator(spec)


# --------------------------------------------------------------------------------------
# Documented limits and product policy
# --------------------------------------------------------------------------------------
def _check_chars(value: Any, lo: int, hi: int, path: PathT, what: str, out: Sink) -> None:
    if not isinstance(value, str):
        if lo > 0:
            out.append((path, f"{what} is required (1..{hi} characters)"))
        return
    n = utf16_len(value)
    if n < lo:
        out.append((path, f"{what} may not be empty"))
    elif n > hi:
        out.append((path, f"{what} must be at most {hi} characters (UTF-16 units), got {n}"))


def _compact_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


_Link = tuple[Any, str | int] | None
"""A path as a linked list ``(parent_link, key)``: O(1) to extend while walking."""


def _unlink(link: _Link, base: PathT) -> PathT:
    keys: list[str | int] = []
    while link is not None:
        link, key = link
        keys.append(key)
    return (*base, *reversed(keys))


def _walk_actions(node: Any, base: PathT, link: _Link, out: Sink) -> None:
    """Limits on actions wherever they sit in a message (one walk for all of them):
    postback ``data`` bytes and ``displayText`` length, and flex button labels (LINE:
    "required for the button of Flex Message ... max 40 characters")."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "postback":
            data = node.get("data")
            if isinstance(data, str) and len(data) * 4 > POSTBACK_DATA_MAX_BYTES:
                n = len(data.encode("utf-8"))
                if n > POSTBACK_DATA_MAX_BYTES:
                    limit = POSTBACK_DATA_MAX_BYTES
                    msg = f"postback data must be at most {limit} bytes (UTF-8), got {n}"
                    out.append(((*_unlink(link, base), "data"), msg))
            display = node.get("displayText")
            if isinstance(display, str) and len(display) * 2 > POSTBACK_DISPLAY_TEXT_MAX:
                where = (*_unlink(link, base), "displayText")
                _check_chars(display, 0, POSTBACK_DISPLAY_TEXT_MAX, where, "displayText", out)
        elif kind == "button":  # only flex has "button" components
            action = node.get("action")
            if isinstance(action, dict):
                label = action.get("label")
                if not (
                    isinstance(label, str)
                    and len(label) > 0
                    and len(label) * 2 <= FLEX_BUTTON_LABEL_MAX
                ):
                    where = (*_unlink(link, base), "action", "label")
                    _check_chars(label, 1, FLEX_BUTTON_LABEL_MAX, where, "flex button label", out)
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                _walk_actions(v, base, (link, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, (dict, list)):
                _walk_actions(v, base, (link, i), out)


def _flex_issues(msg: Mapping[str, Any], path: PathT, out: Sink) -> None:
    _check_chars(msg.get("altText"), 1, FLEX_ALT_TEXT_MAX, (*path, "altText"), "altText", out)
    contents = msg.get("contents")
    if not isinstance(contents, dict):
        return
    kind = contents.get("type")
    if kind == "carousel":
        bubbles = contents.get("contents")
        if isinstance(bubbles, list) and len(bubbles) > FLEX_CAROUSEL_MAX_BUBBLES:
            most = FLEX_CAROUSEL_MAX_BUBBLES
            problem = f"a carousel may hold at most {most} bubbles, got {len(bubbles)}"
            out.append(((*path, "contents", "contents"), problem))
        limit = FLEX_CAROUSEL_MAX_BYTES
    else:
        limit = FLEX_BUBBLE_MAX_BYTES
    size = _compact_size(contents)
    if size > limit:
        out.append(
            (
                (*path, "contents"),
                f"flex {kind or 'container'} JSON must be at most {limit} bytes, got {size}",
            )
        )


def _quick_reply_issues(qr: Any, path: PathT, out: Sink) -> None:
    if not isinstance(qr, dict):
        return
    items = qr.get("items")
    if not isinstance(items, list):
        return
    if len(items) > QUICK_REPLY_MAX_ITEMS:
        out.append(
            (
                (*path, "items"),
                f"at most {QUICK_REPLY_MAX_ITEMS} quick reply items, got {len(items)}",
            )
        )
    for i, item in enumerate(items):
        ipath = (*path, "items", i)
        if not isinstance(item, dict):
            continue
        action = item.get("action")
        if not isinstance(action, dict):
            out.append(((*ipath, "action"), "quick reply item needs an action"))
            continue
        _check_chars(
            action.get("label"),
            1,
            QUICK_REPLY_LABEL_MAX,
            (*ipath, "action", "label"),
            "quick reply label",
            out,
        )


def message_limit_issues(body: Any, out: Sink, check_count: bool = True) -> None:
    """Append problems with documented per-message limits the spec does not encode."""
    if not isinstance(body, dict):
        return
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    if check_count and not 1 <= len(messages) <= MAX_MESSAGES:
        out.append((("messages",), f"must hold 1 to {MAX_MESSAGES} messages, got {len(messages)}"))
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        path: PathT = ("messages", i)
        kind = msg.get("type")
        if kind in ("text", "textV2"):
            _check_chars(msg.get("text"), 1, TEXT_MAX_UTF16, (*path, "text"), "text", out)
        elif kind == "flex":
            _flex_issues(msg, path, out)
        if "quickReply" in msg:
            _quick_reply_issues(msg["quickReply"], (*path, "quickReply"), out)
        _walk_actions(msg, path, None, out)


def policy_issues(operation_id: str, body: Any, headers: Mapping[str, str], out: Sink) -> None:
    """Retry-key policy and LINE id formats for the operations the bot uses."""
    if operation_id in RETRY_KEY_REQUIRED_FOR:
        key = headers.get(RETRY_KEY_HEADER)
        if key is None:
            out.append((("X-Line-Retry-Key",), "header is required by policy for this endpoint"))
        elif UUID_RE.match(key) is None:
            out.append(
                (("X-Line-Retry-Key",), f"must be a UUID (hex with hyphens), got {key[:60]!r}")
            )
    if not isinstance(body, dict):
        return
    if operation_id == "pushMessage":
        to = body.get("to")
        if isinstance(to, str) and PUSH_TO_RE.match(to) is None:
            out.append(
                (
                    ("to",),
                    f"must be a user, group or room id (^[UCR][0-9a-f]{{32}}$), got {to[:60]!r}",
                )
            )
    elif operation_id == "multicast":
        to = body.get("to")
        if isinstance(to, list):
            if not 1 <= len(to) <= MULTICAST_MAX_TO:
                out.append((("to",), f"must hold 1 to {MULTICAST_MAX_TO} user ids, got {len(to)}"))
            for i, uid in enumerate(to):
                if isinstance(uid, str) and USER_ID_RE.match(uid) is None:
                    out.append(
                        (("to", i), f"must be a user id (^U[0-9a-f]{{32}}$), got {uid[:60]!r}")
                    )
    elif operation_id == "showLoadingAnimation":
        chat = body.get("chatId")
        if isinstance(chat, str) and USER_ID_RE.match(chat) is None:
            out.append((("chatId",), f"must be a user id (^U[0-9a-f]{{32}}$), got {chat[:60]!r}"))
        secs = body.get("loadingSeconds")
        if secs is not None and _is_integer(secs) and secs % LOADING_SECONDS_STEP:
            out.append(
                (("loadingSeconds",), f"must be a multiple of {LOADING_SECONDS_STEP}, got {secs}")
            )


def summarize(issues: Iterable[Issue]) -> str:
    """One line for ``FakeLine.errors``."""
    return "; ".join(str(i) for i in issues)
