"""Spec-driven validation for the fake LINE Messaging API.

Why this exists: the fake is the only stand-in for LINE in the test suite, so a request
that real LINE would reject has to be caught here, not in production. Three layers:

1. LINE's own OpenAPI 3.0 spec (``messaging-api.yml`` beside this file, vendored and
   unmodified), checked by the maintained ``jsonschema`` library (Draft 2020-12) with a
   ``referencing`` registry holding the spec's component schemas.
2. Documented limits the spec does not encode (text length, quick reply labels, flex
   size, postback data bytes, ...): :func:`message_limit_issues`; rich menus (size,
   areas, actions; the image): :func:`rich_menu_issues`, :func:`rich_menu_image_issues`.
3. Our product policy (retry key required on push/multicast/narrowcast/broadcast) and
   LINE's id formats: :func:`policy_issues`.

Why jsonschema: schema validation is a solved problem, and a home-made compiler of the
spec was over 600 lines to keep correct. How: jsonschema speaks JSON Schema, not OpenAPI
3.0's dialect of it, so :class:`ComponentSchemas` converts each component schema once,
at load time, into one registry resource:

- ``nullable: true`` adds ``"null"`` to ``type`` (and ``None`` to ``enum``); boolean
  ``exclusiveMinimum/Maximum`` take the numeric form; siblings of ``$ref`` are dropped
  (OpenAPI 3.0 ignores them), and so are annotations.
- ``format``: our own ``FormatChecker`` checks int32/int64 ranges, uri, uuid, date-time
  and date (jsonschema's ``uri`` needs an optional package and is stricter than LINE,
  which takes ``tel:`` and ``line:`` URIs); other formats (``double``) are annotations.
- ``discriminator`` + ``mapping``: JSON Schema ignores it and would accept a text
  message without ``text``. A discriminated base (``Message``, ``Action``,
  ``FlexComponent``...) becomes a dispatching schema with the keyword ``x-discriminator``,
  added with :func:`jsonschema.validators.extend`: it picks the concrete schema by the
  property value (an unknown value is an error) and validates against it. A concrete
  schema ``allOf``-s its base; there the base is inlined without its dispatch (which
  would lead back to the concrete schema), plus an ``enum`` of the values that map to
  this concrete schema, so e.g. a carousel item ``{"type": "box"}`` (items are
  ``FlexBubble``) is rejected too. ``allOf`` members are merged into their parent where
  that means the same (:func:`_fold`): fewer levels for jsonschema to walk.
- ``required`` is replaced by a keyword that reports the missing property's own path,
  as LINE's error ``details`` do; every other error is reworded LINE-style by
  :func:`_describe` (``messages[0].text: is required``).

Keywords outside OpenAPI 3.0's Schema Object (``patternProperties``, ``const``...) make
loading fail with :class:`SpecError`, so a future spec cannot silently be checked less
strictly.

Speed: jsonschema interprets the schema on every call, one ``descend`` per JSON value, so
it is about 12 times slower than the closures this module used to compile (a typical
reply, two text messages and six quick replies: 0.5 ms instead of 0.04; a 12-bubble flex
carousel: 9-10 ms instead of 0.8). A validator is built once per schema (each
operation's body and parameters) and shared, and the problems found in each message are
cached by its JSON text (:data:`MESSAGE_CACHE_SIZE`): bots send the same cards again and
again, and then a reply costs 0.06 ms and the carousel 0.6 ms, mostly JSON parsing and
the layer-2 walk.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH: Final = Path(__file__).with_name("messaging-api.yml")

PathT = tuple[str | int, ...]
"""Location of a value inside a request body, e.g. ``("messages", 0, "text")``."""

Sink = list[tuple[PathT, str]]
"""Where checks append ``(path, message)`` problems."""


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
#: LINE emoji in one text message (``emojis``), each at a "$" of the text.
TEXT_EMOJIS_MAX: Final = 20
#: Sticker packages a bot may send (developers.line.biz, "Sticker list").
SENDABLE_STICKER_PACKAGES: Final = frozenset(
    {
        "446",
        "789",
        "1070",
        "6136",
        "6325",
        "6359",
        "6362",
        "6370",
        "6632",
        "8515",
        "8522",
        "8525",
        "11537",
        "11538",
        "11539",
    }
)
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

MESSAGE_CACHE_SIZE: Final = 512
"""Messages whose schema problems are remembered, by their JSON text (jsonschema takes
about 0.2 ms for a small message and 10 ms for a big carousel; the benchmarks send
hundreds of requests per second through the fake, mostly the same messages)."""

# Rich menus ("Rich menu object", "Upload rich menu image" in LINE's reference).
RICH_MENU_OPERATIONS: Final = frozenset({"createRichMenu", "validateRichMenuObject"})
RICH_MENU_REQUIRED: Final = ("size", "selected", "name", "chatBarText", "areas")
RICH_MENU_MAX_AREAS: Final = 20
RICH_MENU_CHAT_BAR_MAX: Final = 14
RICH_MENU_NAME_MAX: Final = 300
RICH_MENU_ACTION_LABEL_MAX: Final = 20
RICH_MENU_MIN_WIDTH: Final = 800
RICH_MENU_MAX_WIDTH: Final = 2500
RICH_MENU_MIN_HEIGHT: Final = 250
RICH_MENU_MIN_ASPECT: Final = 1.45
RICH_MENU_IMAGE_MAX_BYTES: Final = 1_000_000
""""Max file size: 1 MB", read as 1000 * 1000 bytes (the stricter reading, as for flex)."""
RICH_MENU_IMAGE_TYPES: Final = ("image/png", "image/jpeg")
QUICK_REPLY_ONLY_ACTIONS: Final = frozenset({"camera", "cameraRoll", "location"})
""""These are the actions that are available only for quick reply buttons"."""

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
# jsonschema, extended for OpenAPI: discriminator dispatch, required at the property's
# path, OpenAPI's formats, LINE-style messages
# --------------------------------------------------------------------------------------
# `validator` is Any: jsonschema's Validator protocol does not declare `descend`.
def _discriminate(
    validator: Any, disc: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``x-discriminator``: validate against the schema the property value maps to."""
    if not isinstance(instance, dict):
        return  # `type` reports it
    prop, mapping = disc["propertyName"], disc["mapping"]
    value = instance.get(prop)
    target = mapping.get(value) if isinstance(value, str) else None
    if target is not None:
        yield from validator.descend(instance, target)
        return
    allowed = ", ".join(sorted(mapping))
    if prop not in instance:
        yield ValidationError(f"is required ({disc['name']} {prop}: one of {allowed})", path=[prop])
    else:
        problem = f"unknown {disc['name']} {prop} {value!r}; expected one of: {allowed}"
        yield ValidationError(problem, path=[prop])


def _required(
    validator: Any, required: Sequence[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``required``, reported at the missing property (LINE's ``details`` do so)."""
    if isinstance(instance, dict):
        for name in required:
            if name not in instance:
                yield ValidationError("is required", path=[name])


_LineValidator: Final = validators.extend(
    Draft202012Validator, {"x-discriminator": _discriminate, "required": _required}
)
_WORDED_HERE: Final = frozenset({"x-discriminator", "required"})


def _matches(rx: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda x: not isinstance(x, str) or rx.match(x) is not None


def _within(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda x: isinstance(x, bool) or not isinstance(x, (int, float)) or lo <= x <= hi


# A URI needs a scheme and no whitespace/control characters. Deliberately no stricter:
# LINE accepts https, http, tel and line schemes in actions, and the spec says only "uri".
_URI_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]*$")
_DATE_TIME_RE: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_FORMATS: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "int32": (_within(-(2**31), 2**31 - 1), "must be an int32 (-2**31 to 2**31-1)"),
    "int64": (_within(-(2**63), 2**63 - 1), "must be an int64 (-2**63 to 2**63-1)"),
    "uri": (_matches(_URI_RE), "must be an absolute URI"),
    "uuid": (_matches(UUID_RE), "must be a UUID (hex with hyphens)"),
    "date-time": (_matches(_DATE_TIME_RE), "must be an RFC 3339 date-time"),
    "date": (_matches(re.compile(r"^\d{4}-\d{2}-\d{2}$")), "must be a date (YYYY-MM-DD)"),
}
FORMATS: Final = FormatChecker(formats=())
"""The formats this module checks; the spec's others (``double``...) are annotations."""
for _format, (_test, _) in _FORMATS.items():
    FORMATS.checks(_format)(_test)

_TYPE_MESSAGES: Final = {
    t: f"must be {'an' if t[0] in 'aeiou' else 'a'} {t}"
    for t in ("object", "array", "string", "integer", "number", "boolean")
}
_MESSAGES: Final = {
    "enum": "must be one of: {shown} (got {x!r})",
    "minLength": "must be at least {want} characters",
    "maxLength": "must be at most {want} characters (got {n})",
    "minItems": "must have at least {want} item(s)",
    "maxItems": "must have at most {want} items (got {n})",
    "pattern": "must match {want}",
    "minimum": "must be >= {want} (got {x})",
    "maximum": "must be <= {want} (got {x})",
    "exclusiveMinimum": "must be > {want} (got {x})",
    "exclusiveMaximum": "must be < {want} (got {x})",
    "multipleOf": "must be a multiple of {want}",
    "uniqueItems": "items must be unique",
    "minProperties": "must have at least {want} properties",
    "maxProperties": "must have at most {want} properties",
    "oneOf": "must match exactly one allowed schema",
    "anyOf": "must match at least one allowed schema",
    "not": "must not match the excluded schema",
}
"""LINE-style wording of jsonschema's errors, by keyword."""


def _describe(error: ValidationError) -> Iterator[tuple[PathT, str]]:
    """One jsonschema error as ``(path, message)`` problems."""
    path: PathT = tuple(error.path)
    kw, want, x = error.validator, error.validator_value, error.instance
    if kw == "additionalProperties":  # `false` (a schema descends): name each extra
        known = error.schema.get("properties") or {}
        yield from (
            ((*path, name), "is not an allowed property") for name in x if name not in known
        )
        return
    if kw in _WORDED_HERE:
        message = error.message
    elif kw == "type":
        type_name = want if isinstance(want, str) else want[0]  # [type, "null"]: nullable
        message = _TYPE_MESSAGES[type_name] + (", not null" if x is None else "")
    elif kw == "enum" and "x-concrete" in error.schema:  # see ComponentSchemas._base_of
        expected = " or ".join(repr(v) for v in want)
        message = f"must be {expected} here ({error.schema['x-concrete']}), got {x!r}"
    elif kw == "format":
        message = _FORMATS[want][1] + (f" (got {x[:80]!r})" if isinstance(x, str) else f", got {x}")
    elif kw in ("minLength", "minItems") and want <= 1:
        message = "may not be empty"
    elif kw in _MESSAGES:
        shown = ", ".join(repr(v) for v in want) if kw == "enum" else ""
        n = len(x) if isinstance(x, (str, list, dict)) else 0
        message = _MESSAGES[kw].format(want=want, x=x, n=n, shown=shown)
    else:  # a keyword the conversion does not produce
        message = error.message
    yield path, message


class SchemaCheck:
    """A jsonschema validator for one schema, built once and shared between threads;
    ``check(value, path, sink)`` appends the value's problems to ``sink``.

    With ``cache_size``, problems are remembered by the value's JSON text (an exact key:
    ``true`` is not ``1``), least recently used out first: validation is a pure function
    of the value, and jsonschema interprets the schema anew on every call.
    """

    def __init__(
        self, schema: Mapping[str, Any], registry: Registry[Any], cache_size: int = 0
    ) -> None:
        self._validator = _LineValidator(schema, registry=registry, format_checker=FORMATS)
        self._cached = functools.lru_cache(cache_size)(self._issues_in) if cache_size else None

    def _issues(self, value: Any) -> tuple[tuple[PathT, str], ...]:
        return tuple(i for e in self._validator.iter_errors(value) for i in _describe(e))

    def _issues_in(self, text: str) -> tuple[tuple[PathT, str], ...]:
        return self._issues(json.loads(text))

    def __call__(self, value: Any, path: PathT, out: Sink) -> None:
        if self._cached is None:
            found = self._issues(value)
        else:
            found = self._cached(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        out.extend(((*path, *p), m) for p, m in found)


# --------------------------------------------------------------------------------------
# OpenAPI 3.0 schemas -> JSON Schema 2020-12
# --------------------------------------------------------------------------------------
_REF_PREFIX: Final = "#/components/schemas/"
_URI: Final = "https://fakeline.invalid/schemas/"
"""Registry URI of a converted component: ``_URI + name``."""
_ANNOTATIONS: Final = frozenset(
    [
        "description",
        "externalDocs",
        "example",
        "default",
        "title",
        "readOnly",
        "writeOnly",
        "deprecated",
        "xml",
    ]
)
_SAME_MEANING: Final = frozenset(
    [
        "format",
        "minLength",
        "maxLength",
        "pattern",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "required",
        "minProperties",
        "maxProperties",
    ]
)
"""OpenAPI 3.0 keywords that mean the same in JSON Schema 2020-12 (copied as they are)."""
_CONVERTED: Final = frozenset(
    [
        "type",
        "nullable",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "items",
        "properties",
        "additionalProperties",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "discriminator",
    ]
)


def _ref_name(ref: str) -> str:
    if not ref.startswith(_REF_PREFIX):
        raise SpecError(f"unsupported $ref {ref!r} (only {_REF_PREFIX}... is supported)")
    return ref[len(_REF_PREFIX) :]


def _discriminator(disc: Any, where: str) -> tuple[str, dict[str, str]]:
    """``(propertyName, {value: concrete schema name})``; the mapping must be explicit."""
    prop = disc.get("propertyName") if isinstance(disc, Mapping) else None
    mapping = disc.get("mapping") if isinstance(disc, Mapping) else None
    if not isinstance(prop, str) or not isinstance(mapping, Mapping) or not mapping:
        raise SpecError(f"{where}: discriminator needs propertyName and an explicit mapping")
    return prop, {str(k): _ref_name(v) for k, v in mapping.items()}


class ComponentSchemas:
    """The spec's ``components/schemas``, converted to JSON Schema 2020-12 once and
    registered in a ``referencing`` registry, one resource per component."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = schemas
        self.resources: dict[str, dict[str, Any]] = {}
        self._unlinked: list[dict[str, Any]] = []
        self._inlining: set[str] = set()
        for name, schema in schemas.items():
            self.resources[_URI + name] = self.convert(schema, name, owner=name)
        self._link()
        self.registry: Registry[Any] = Registry().with_resources(
            (uri, DRAFT202012.create_resource(s)) for uri, s in self.resources.items()
        )

    def check(
        self, schema: Mapping[str, Any], where: str = "schema", cache_size: int = 0
    ) -> SchemaCheck:
        """A check for an OpenAPI schema object, e.g. ``{"$ref": "#/components/..."}``."""
        converted = self.convert(schema, where)
        self._link()
        return SchemaCheck(converted, self.registry, cache_size)

    def _link(self) -> None:
        """Point dispatch mappings straight at the converted concrete schemas (saves a
        ``$ref`` lookup per polymorphic object)."""
        for targets in self._unlinked:
            for value, target in targets.items():
                targets[value] = self.resources[target["$ref"]]
        self._unlinked.clear()

    def _uri(self, ref: str, where: str) -> str:
        name = _ref_name(ref)
        if name not in self.schemas:
            raise SpecError(f"{where}: $ref to unknown schema {name!r}")
        return _URI + name

    def convert(
        self, schema: Any, where: str, owner: str | None = None, as_base: bool = False
    ) -> dict[str, Any]:
        """One schema object. ``owner`` names the component whose top level this is (its
        discriminated ``allOf`` bases are inlined); ``as_base``: convert a discriminated
        schema as a plain base, without its dispatch."""
        if not isinstance(schema, Mapping):
            raise SpecError(f"{where}: schema must be a mapping")
        if "$ref" in schema:  # OpenAPI 3.0: siblings of $ref are ignored
            return {"$ref": self._uri(schema["$ref"], where)}
        unknown = [
            k
            for k in schema
            if k not in _SAME_MEANING | _CONVERTED | _ANNOTATIONS and not k.startswith("x-")
        ]
        if unknown:
            raise SpecError(f"{where}: unsupported schema keywords {sorted(unknown)}")
        type_name = schema.get("type", "object")
        if not isinstance(type_name, str) or type_name not in _TYPE_MESSAGES:
            raise SpecError(f"{where}: unsupported type {type_name!r}")
        nullable = schema.get("nullable") is True
        if "discriminator" in schema and not as_base:
            prop, mapping = _discriminator(schema["discriminator"], where)
            targets = {v: {"$ref": self._uri(_REF_PREFIX + n, where)} for v, n in mapping.items()}
            self._unlinked.append(targets)
            return {
                "type": ["object", "null"] if nullable else "object",
                "x-discriminator": {"propertyName": prop, "mapping": targets, "name": where},
            }
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _SAME_MEANING:
                out[key] = value
            elif key == "type":
                out[key] = [value, "null"] if nullable else value
            elif key == "enum":
                out[key] = [*value, None] if nullable and None not in value else list(value)
            elif key in ("minimum", "maximum"):
                exclusive = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
                out[exclusive if schema.get(exclusive) is True else key] = value
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                if not isinstance(value, bool) or (value and bound not in schema):
                    raise SpecError(f"{where}: {key} must be a boolean next to {bound}")
            elif key == "properties":
                out[key] = {n: self.convert(s, f"{where}.{n}") for n, s in value.items()}
            elif key in ("items", "not"):
                out[key] = self.convert(value, f"{where}.{key}")
            elif key == "additionalProperties":
                out[key] = value if isinstance(value, bool) else self.convert(value, f"{where}.*")
            elif key == "allOf" and owner is not None:
                out[key] = [self._base_of(owner, s, f"{where}.allOf") for s in value]
            elif key in ("allOf", "oneOf", "anyOf"):
                out[key] = [self.convert(s, f"{where}.{key}") for s in value]
        if "allOf" in out:  # fewer levels for jsonschema to walk through
            out["allOf"] = [member for member in out["allOf"] if not _fold(out, member)]
            if not out["allOf"]:
                del out["allOf"]
        return out

    def _base_of(self, owner: str, sub: Any, where: str) -> dict[str, Any]:
        """A member of the component ``owner``'s ``allOf``. A discriminated base is
        inlined without dispatch (which would lead back here), and its discriminator
        value must be one that maps to ``owner``."""
        ref = sub.get("$ref") if isinstance(sub, Mapping) else None
        name = _ref_name(ref) if isinstance(ref, str) else ""
        base = self.schemas.get(name)
        if not isinstance(base, Mapping) or "discriminator" not in base:
            return self.convert(sub, where)
        if name in self._inlining or name == owner:
            raise SpecError(f"{where}: allOf cycle through {name}")
        self._inlining.add(name)
        try:
            member = self.convert(base, name, owner=name, as_base=True)
        finally:
            self._inlining.discard(name)
        prop, mapping = _discriminator(base["discriminator"], name)
        values = [value for value, target in mapping.items() if target == owner]
        if values:
            same = {"properties": {prop: {"enum": values, "x-concrete": owner}}, "required": [prop]}
            if not _fold(member, same):
                member = {"allOf": [member, same]}
        return member


def _fold(into: dict[str, Any], other: dict[str, Any]) -> bool:
    """AND the schema ``other`` into ``into`` where that means ``allOf: [into, other]``:
    keywords in one only or with equal values, ``required`` and ``properties`` (merged
    per property). False, and ``into`` untouched, if it cannot."""
    if "$ref" in other or "additionalProperties" in into or "additionalProperties" in other:
        return False  # additionalProperties depends on the sibling properties
    if any(
        k in into and into[k] != v and k not in ("required", "properties") for k, v in other.items()
    ):
        return False
    for key, value in other.items():
        if key == "required" and key in into:
            into[key] = list(dict.fromkeys([*into[key], *value]))
        elif key == "properties" and key in into:
            props = dict(into[key])
            for name, sub in value.items():
                mine = props.get(name)
                if mine is None or mine == sub:
                    props[name] = sub
                else:
                    both = dict(mine)
                    props[name] = both if _fold(both, sub) else {"allOf": [mine, sub]}
            into[key] = props
        else:
            into[key] = value
    return True


# --------------------------------------------------------------------------------------
# Operations and routing
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Param:
    """A path/query/header parameter of an operation, with its schema check."""

    name: str
    location: str  # "path" | "query" | "header"
    required: bool
    type_name: str | None
    item_type: str | None
    check: SchemaCheck


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path) of the spec, with everything needed to validate a request."""

    operation_id: str
    method: str
    path_template: str
    params: tuple[Param, ...]
    body_types: tuple[str, ...]  # media types the spec accepts; () = no request body
    body_required: bool
    body_check: SchemaCheck | None  # for application/json bodies
    success_status: int
    sends_messages: bool  # body has `messages: Message[]` (reply/push/multicast/...)
    messages_count_in_spec: bool  # spec already encodes 1..5 messages
    data_host: bool = False  # served by https://api-data.line.me (the spec's `servers`)

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
    """The vendored spec, loaded: routes requests to operations and validates them.

    Build it once per process (:func:`load_validator`); it is immutable afterwards (but
    for the thread-safe message cache) and safe to share between threads and fake-server
    instances.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        schemas = spec.get("components", {}).get("schemas", {})
        self.schemas = ComponentSchemas(schemas)
        self._message_check: SchemaCheck | None = None
        if "Message" in schemas:  # one check, so one cache, for every sending operation
            self._message_check = self.schemas.check(
                {"$ref": _REF_PREFIX + "Message"}, "Message", cache_size=MESSAGE_CACHE_SIZE
            )
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
                    check=self.schemas.check(schema, where=f"{op_id}.{name}"),
                )
            )
        body = op.get("requestBody")
        body_types: tuple[str, ...] = ()
        body_check: SchemaCheck | None = None
        body_required = False
        sends_messages = False
        count_in_spec = False
        if body is not None:
            content = body.get("content", {})
            body_types = tuple(content)
            body_required = bool(body.get("required", False))
            json_schema = content.get("application/json", {}).get("schema")
            if json_schema is not None:
                resolved = json_schema
                if "$ref" in json_schema:
                    resolved = schemas[_ref_name(json_schema["$ref"])]
                props = resolved.get("properties") or {}
                msgs = props.get("messages")
                if (
                    isinstance(msgs, Mapping)
                    and (msgs.get("items") or {}).get("$ref") == _REF_PREFIX + "Message"
                ):
                    sends_messages = True
                    count_in_spec = (
                        msgs.get("minItems") == 1 and msgs.get("maxItems") == MAX_MESSAGES
                    )
                    # Each message is checked apart, by the cached Message check.
                    no_items = {k: v for k, v in msgs.items() if k != "items"}
                    json_schema = {**resolved, "properties": {**props, "messages": no_items}}
                body_check = self.schemas.check(json_schema, where=f"{op_id}.body")
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
            data_host=any(
                "api-data." in str(server.get("url", "")) for server in op.get("servers", ())
            ),
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
                    messages = body.get("messages") if isinstance(body, dict) else None
                    if op.sends_messages and isinstance(messages, list):
                        assert self._message_check is not None
                        for i, message in enumerate(messages):
                            self._message_check(message, ("messages", i), out)
        elif op.body_required:
            out.append(((), "request body is required"))
        schema_paths = {p for p, _ in out}
        extra: Sink = []
        if body_ok:
            if op.sends_messages:
                message_limit_issues(body, extra, check_count=not op.messages_count_in_spec)
            policy_issues(op.operation_id, body, headers, extra)
            if op.operation_id in RICH_MENU_OPERATIONS:
                rich_menu_issues(body, extra)
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
    """Parse and convert the spec once per process (shared by every fake instance)."""
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
    alt = msg.get("altText")
    _check_chars(alt, 1, FLEX_ALT_TEXT_MAX, (*path, "altText"), "altText", out)
    if isinstance(alt, str) and alt and not alt.strip():
        out.append(((*path, "altText"), "altText must say what the message is, not be blank"))
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


def _emoji_issues(msg: Mapping[str, Any], path: PathT, out: Sink) -> None:
    """LINE emoji: at most 20, each ``index`` at a "$" of the text (UTF-16 positions)."""
    emojis, text = msg.get("emojis"), msg.get("text")
    if not isinstance(emojis, list) or not isinstance(text, str):
        return
    if len(emojis) > TEXT_EMOJIS_MAX:
        out.append(((*path, "emojis"), f"at most {TEXT_EMOJIS_MAX} emojis, got {len(emojis)}"))
    units = text.encode("utf-16-le")
    for i, emoji in enumerate(emojis):
        index = emoji.get("index") if isinstance(emoji, dict) else None
        if not _is_integer(index):
            continue
        at = int(index) * 2
        if not 0 <= at < len(units) or units[at : at + 2].decode("utf-16-le", "replace") != "$":
            out.append(((*path, "emojis", i, "index"), f"index {index} is not at a '$' of text"))


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
            if kind == "text":
                _emoji_issues(msg, path, out)
        elif kind == "sticker" and str(msg.get("packageId")) not in SENDABLE_STICKER_PACKAGES:
            out.append(
                ((*path, "packageId"), "a bot can send only the stickers of LINE's sticker list")
            )
        elif kind == "flex":
            _flex_issues(msg, path, out)
        if "quickReply" in msg:
            _quick_reply_issues(msg["quickReply"], (*path, "quickReply"), out)
        _walk_actions(msg, path, None, out)


def _is_integer(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


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


def _int(x: Any) -> int | None:
    return int(x) if _is_integer(x) else None


def rich_menu_issues(body: Any, out: Sink) -> None:
    """Rich menu object limits the spec does not encode: required properties, size
    (width 800-2500, height >= 250, width/height >= 1.45), at most 20 areas inside the
    menu, actions a rich menu can hold, and the action limits of messages."""
    if not isinstance(body, dict):
        return
    for name in RICH_MENU_REQUIRED:
        if name not in body:
            out.append(((name,), "is required"))
    _check_chars(body.get("name"), 1, RICH_MENU_NAME_MAX, ("name",), "name", out)
    chat = body.get("chatBarText")
    _check_chars(chat, 1, RICH_MENU_CHAT_BAR_MAX, ("chatBarText",), "chatBarText", out)
    size = body.get("size")
    width = height = None
    if isinstance(size, dict):
        width, height = _int(size.get("width")), _int(size.get("height"))
        if width is None or height is None:
            out.append((("size",), "needs an integer width and height"))
        else:
            if not RICH_MENU_MIN_WIDTH <= width <= RICH_MENU_MAX_WIDTH:
                lo, hi = RICH_MENU_MIN_WIDTH, RICH_MENU_MAX_WIDTH
                out.append((("size", "width"), f"must be {lo} to {hi} pixels, got {width}"))
            if height < RICH_MENU_MIN_HEIGHT:
                most = RICH_MENU_MIN_HEIGHT
                out.append((("size", "height"), f"must be at least {most} pixels, got {height}"))
            elif width / height < RICH_MENU_MIN_ASPECT:
                ratio = f"{width / height:.3f}"
                out.append(
                    (
                        ("size",),
                        f"width/height must be at least {RICH_MENU_MIN_ASPECT}, got {ratio}",
                    )
                )
    areas = body.get("areas")
    if not isinstance(areas, list):
        return
    if len(areas) > RICH_MENU_MAX_AREAS:
        out.append((("areas",), f"at most {RICH_MENU_MAX_AREAS} areas, got {len(areas)}"))
    for i, area in enumerate(areas):
        path: PathT = ("areas", i)
        if not isinstance(area, dict):
            continue
        bounds, action = area.get("bounds"), area.get("action")
        if not isinstance(bounds, dict):
            out.append(((*path, "bounds"), "is required"))
        elif width is not None and height is not None:
            x, y = _int(bounds.get("x")), _int(bounds.get("y"))
            w, h = _int(bounds.get("width")), _int(bounds.get("height"))
            if None in (x, y, w, h):
                out.append(((*path, "bounds"), "needs integer x, y, width and height"))
            elif x + w > width or y + h > height:  # type: ignore[operator]
                out.append(((*path, "bounds"), f"must lie inside the {width}x{height} rich menu"))
        if not isinstance(action, dict):
            out.append(((*path, "action"), "is required"))
            continue
        kind = action.get("type")
        if kind in QUICK_REPLY_ONLY_ACTIONS:
            problem = f"a {kind} action is available only on quick reply buttons"
            out.append(((*path, "action", "type"), problem))
        label = action.get("label")
        if label is not None:
            where = (*path, "action", "label")
            _check_chars(label, 1, RICH_MENU_ACTION_LABEL_MAX, where, "action label", out)
    _walk_actions(areas, ("areas",), None, out)


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """``(media type, width, height)`` read from a PNG or JPEG header, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return "image/png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(data):  # JPEG segments up to the first start-of-frame
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            return "image/jpeg", int.from_bytes(data[i + 7 : i + 9], "big"), height
        i += 2 + length
    return None


def rich_menu_image_issues(
    content_type: str | None, data: bytes, size: Mapping[str, Any]
) -> list[Issue]:
    """ "Upload rich menu image": PNG or JPEG as the Content-Type says, exactly the
    menu's size, at most 1 MB."""
    issues: list[Issue] = []
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in RICH_MENU_IMAGE_TYPES:
        got = content_type or "none"
        issues.append(Issue("Content-Type", f"must be image/png or image/jpeg, got {got!r}"))
    if len(data) > RICH_MENU_IMAGE_MAX_BYTES:
        most = RICH_MENU_IMAGE_MAX_BYTES
        issues.append(Issue("", f"the image must be at most {most} bytes, got {len(data)}"))
    found = image_size(data)
    if found is None:
        issues.append(Issue("", "the body is not a PNG or JPEG image"))
        return issues
    kind, width, height = found
    if media in RICH_MENU_IMAGE_TYPES and kind != media:
        issues.append(Issue("Content-Type", f"says {media} but the image is {kind}"))
    want = (size.get("width"), size.get("height"))
    if (width, height) != want:
        issues.append(
            Issue("", f"the image is {width}x{height}, the rich menu {want[0]}x{want[1]}")
        )
    return issues


def summarize(issues: Iterable[Issue]) -> str:
    """One line for ``FakeLine.errors``."""
    return "; ".join(str(i) for i in issues)
