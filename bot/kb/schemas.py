"""The shape of every knowledge file, as pydantic models.

Models check what a single entry can check on its own: required fields,
types, allowed values, real dates, an end not before its start, coordinates
inside Thailand. References between files (topic, agency, market, sector
and place codes) are checked by ``bot.kb.loader`` once every file is read.
Unknown fields are errors, because a misspelt field would otherwise be
silently ignored. Field names follow ``shared/KNOWLEDGE-DATA.md`` §3.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.kb.geo import in_thailand

REQUIRED_TOPICS = (
    "business_start",
    "digital_skills",
    "online_selling",
    "digital_marketing",
    "branding_packaging",
    "accounting_finance",
    "product_development",
    "logistics",
    "language",
    "export_trade",
)

Stage = Annotated[int, Field(ge=1, le=5)]
Language = Literal["th", "en", "zh", "ja", "my", "lo", "km", "vi", "ms"]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=80)]
Code = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=24)]
Url = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=500)]
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


_ISO_DAY = re.compile(r"^(\d{4})-\d{2}-\d{2}$")


def _gregorian(value: Any) -> Any:
    """2568-06-13 is a Thai-calendar year typed into a Gregorian field: say so."""
    match = _ISO_DAY.match(value) if isinstance(value, str) else None
    if match and int(match[1]) >= 2400:
        year = int(match[1])
        raise ValueError(
            f"{value!r} looks like a Buddhist-era year; dates here use the Gregorian "
            f"year ({year} − 543 = {year - 543})"
        )
    return value


#: A calendar date written YYYY-MM-DD in the Gregorian calendar.
Day = Annotated[dt.date, BeforeValidator(_gregorian)]


class Strict(BaseModel):
    """Base: unknown fields are errors; values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Text(Strict):
    """Thai text with an optional English version (the bot answers in Thai)."""

    th: Annotated[str, Field(min_length=1)]
    en: str | None = None


class Name(Strict):
    """A name required in both Thai and English."""

    th: Annotated[str, Field(min_length=1)]
    en: Annotated[str, Field(min_length=1)]


class Contact(Strict):
    """Ways to reach a person or office."""

    phone: str | None = None
    line: str | None = None
    email: str | None = None
    facebook: str | None = None
    url: Url | None = None
    address: Text | None = None
    hours: Text | None = None


class Provenance(Strict):
    """Where an entry's facts come from and how sure we are of them."""

    status: Literal["sample", "verified", "partly_verified"]
    source_urls: list[Url] = Field(default_factory=list)
    facts_as_of: str | None = None
    last_checked: Day
    #: When an operator must check the entry again (``bot kb validate`` warns after it).
    review_by: Day | None = None
    unverified_fields: list[str] = Field(default_factory=list)

    @field_validator("facts_as_of", mode="before")
    @classmethod
    def _partial_date(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        if not _PARTIAL_DATE.match(text):
            raise ValueError(
                "must be a year, year-month or date such as 2025, 2025-08 or 2025-08-21"
            )
        if len(text) == 10:
            dt.date.fromisoformat(text)
        return text

    @model_validator(mode="after")
    def _sources_for_verified(self) -> Provenance:
        if self.status != "sample" and not self.source_urls:
            raise ValueError("a verified entry needs at least one source URL (source_urls)")
        return self


class Meta(Strict):
    """The header of every YAML file."""

    schema_version: int = 1
    generated_on: Day | None = None
    source_note: str | None = None


class Topic(Strict):
    """A user-facing topic: what people want to learn; the recommender and NLU use these."""

    id: Slug
    label: Name
    stage: Stage | None = None
    synonyms: list[str] = Field(default_factory=list)
    tags: list[Slug] = Field(default_factory=list)


class Agency(Strict):
    """A government agency or partner organisation, with its public contact."""

    code: Code
    name: Name
    short_th: str | None = None
    parent: Code | None = None
    url: Url | None = None
    contact: Contact | None = None
    #: Where the contact details were checked (a hotline the bot gives is a fact).
    provenance: Provenance | None = None


class Office(Strict):
    """A provincial office of an agency, named when a user asks about their province."""

    id: Slug
    agency: Code
    province: Annotated[str, Field(pattern=r"^\d{2}$")]
    name: Text
    contact: Contact | None = None
    provenance: Provenance


class Market(Strict):
    """An export market: an ISO 3166 country code or a region such as ASEAN."""

    code: Code
    name: Name
    kind: Literal["country", "region", "global", "domestic"] = "country"
    members: list[Code] = Field(default_factory=list)
    synonyms: list[str] = Field(default_factory=list)


class Sector(Strict):
    """A business sector used to match export programmes."""

    id: Slug
    label: Name
    synonyms: list[str] = Field(default_factory=list)


class Cost(Strict):
    """What taking part costs, or what support it gives."""

    type: Literal["free", "fee", "co_payment", "grant", "unknown"]
    fee_thb: Annotated[int, Field(ge=0)] | None = None
    max_support_thb: Annotated[int, Field(ge=0)] | None = None
    co_payment_pct: (
        tuple[Annotated[int, Field(ge=0, le=100)], Annotated[int, Field(ge=0, le=100)]] | None
    ) = None

    @model_validator(mode="after")
    def _range(self) -> Cost:
        if self.co_payment_pct and self.co_payment_pct[0] > self.co_payment_pct[1]:
            raise ValueError("co_payment_pct: the first number (minimum) is larger than the second")
        return self


class Eligibility(Strict):
    """Who may apply; the pre-screen explains a mismatch in plain Thai."""

    requires_juristic_person: bool = False
    requires_dbd_registration: bool = False
    requires_membership: list[str] = Field(default_factory=list)
    min_avg_export_thb: Annotated[int, Field(ge=0)] | None = None
    max_avg_export_thb: Annotated[int, Field(ge=0)] | None = None
    text: Text | None = None

    @model_validator(mode="after")
    def _range(self) -> Eligibility:
        low, high = self.min_avg_export_thb, self.max_avg_export_thb
        if low is not None and high is not None and low > high:
            raise ValueError("min_avg_export_thb is larger than max_avg_export_thb")
        return self


class Schedule(Strict):
    """When one can apply and when it runs (ISO dates, Gregorian)."""

    kind: Literal["rolling", "cohort", "event"]
    status: Literal["open", "closed", "unknown", "upcoming"]
    apply_from: Day | None = None
    apply_to: Day | None = None
    start_date: Day | None = None
    end_date: Day | None = None
    fiscal_year_be: Annotated[int, Field(ge=2500, le=2700)] | None = None

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        if self.apply_from and self.apply_to and self.apply_to < self.apply_from:
            raise ValueError("apply_to is before apply_from")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class Coverage(Strict):
    """Where an offer is available: nationwide, or some provinces."""

    nationwide: bool = False
    province_codes: list[Annotated[str, Field(pattern=r"^\d{2}$")]] = Field(default_factory=list)


class Course(Strict):
    """A course or support offer (training, mentoring, voucher, co-payment, certification)."""

    id: Annotated[str, Field(pattern=r"^course-[a-z0-9][a-z0-9\-]*$")]
    offer_type: Literal["course", "mentoring", "voucher", "co_payment_subsidy", "certification"]
    name: Name
    agency: Code
    partners: list[Code | Name] = Field(default_factory=list)
    summary: Text
    stage: Stage
    level: Literal["beginner", "intermediate", "advanced"]
    topics: Annotated[list[Slug], Field(min_length=1)]
    tags: list[Slug] = Field(default_factory=list)
    target_groups: list[
        Literal[
            "citizen",
            "elderly",
            "youth_student",
            "farmer",
            "community_enterprise",
            "otop",
            "micro_entrepreneur",
            "grocery_retailer",
            "sme",
            "juristic_person",
            "pre_exporter",
            "exporter",
            "restaurant",
        ]
    ] = Field(default_factory=list)
    format: Literal["online", "onsite", "hybrid"]
    language: list[Language] = Field(default_factory=lambda: list[Language](["th"]))
    duration_text: Text | None = None
    cost: Cost
    eligibility: Eligibility | None = None
    schedule: Schedule
    places: Coverage = Field(default_factory=lambda: Coverage(nationwide=True))
    url: Url | None = None
    contact: Contact | None = None
    provenance: Provenance


class Venue(Strict):
    """Where a fair or event takes place."""

    venue: Text | None = None
    city: str | None = None
    country: Code
    start_date: Day | None = None
    end_date: Day | None = None

    @model_validator(mode="after")
    def _order(self) -> Venue:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class ExportProgramme(Strict):
    """An export-promotion programme: funds, fairs, matching, marks, platforms."""

    id: Annotated[str, Field(pattern=r"^prog-[a-z0-9][a-z0-9\-]*$")]
    programme_type: Literal[
        "fund_support",
        "trade_fair",
        "overseas_fair",
        "business_matching",
        "certification_mark",
        "platform",
        "membership",
        "training",
    ]
    name: Name
    agency: Code
    partners: list[Code | Name] = Field(default_factory=list)
    summary: Text
    markets: Annotated[list[Code], Field(min_length=1)]
    sectors: Annotated[list[Slug], Field(min_length=1)]
    readiness_required: Stage
    topics: list[Slug] = Field(default_factory=list)
    tags: list[Slug] = Field(default_factory=list)
    target_groups: list[str] = Field(default_factory=list)
    event: Venue | None = None
    benefits: Text | None = None
    application_docs: list[Text] = Field(default_factory=list)
    eligibility: Eligibility | None = None
    cost: Cost
    schedule: Schedule
    url: Url | None = None
    contact: Contact | None = None
    provenance: Provenance


CENTRE_SERVICES = (
    "internet",
    "wifi",
    "computers",
    "printer",
    "training",
    "e_commerce_support",
    "e_government",
    "cctv",
)


class Centre(Strict):
    """A community digital centre (ศูนย์ดิจิทัลชุมชน); one CSV row, nested fields flattened."""

    id: Annotated[str, Field(pattern=r"^dcc-[a-z0-9][a-z0-9\-]*$")]
    name_th: Annotated[str, Field(min_length=1)]
    name_en: str | None = None
    operator: Code
    host_type: Literal[
        "sao",
        "municipality",
        "school",
        "bpp_school",
        "temple",
        "mosque",
        "library",
        "nfe",
        "village_office",
        "government_office",
        "other",
    ]
    host_name_th: str | None = None
    address_th: str | None = None
    province_code: Annotated[str, Field(pattern=r"^\d{2}$")]
    district_code: Annotated[str, Field(pattern=r"^\d{4}$")]
    subdistrict_code: Annotated[str, Field(pattern=r"^\d{6}$")] | None = None
    postal_code: Annotated[str, Field(pattern=r"^\d{5}$")] | None = None
    location_lat: float
    location_lng: float
    location_precision: Literal[
        "exact", "subdistrict_ref", "district_mean", "province_mean", "manual"
    ]
    location_source: str | None = None
    services: list[Literal[CENTRE_SERVICES]] = Field(default_factory=list)  # type: ignore[valid-type]
    contact_phone: str | None = None
    contact_line: str | None = None
    contact_facebook: str | None = None
    contact_email: str | None = None
    opening_hours_th: str | None = None
    opened_on: Day | None = None
    status: Literal["active", "unknown", "closed"] = "unknown"
    provenance_status: Literal["sample", "verified", "partly_verified"]
    provenance_source_urls: list[Url] = Field(default_factory=list)
    provenance_facts_as_of: str | None = None
    provenance_last_checked: Day
    provenance_unverified_fields: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _inside_thailand(self) -> Centre:
        if not in_thailand(self.location_lat, self.location_lng):
            raise ValueError(
                f"location_lat/location_lng ({self.location_lat}, {self.location_lng}) is outside "
                "Thailand; check that latitude and longitude are not swapped"
            )
        if not self.district_code.startswith(self.province_code):
            raise ValueError("district_code does not belong to province_code")
        if self.subdistrict_code and not self.subdistrict_code.startswith(self.district_code):
            raise ValueError("subdistrict_code does not belong to district_code")
        return self

    @property
    def provenance(self) -> Provenance:
        """The flattened provenance columns as one value, like the YAML kinds have."""
        return Provenance(
            status=self.provenance_status,
            source_urls=self.provenance_source_urls,
            facts_as_of=self.provenance_facts_as_of,
            last_checked=self.provenance_last_checked,
            unverified_fields=self.provenance_unverified_fields,
        )


#: LINE's two rich menu image sizes (width, height) in pixels.
RICHMENU_SIZES = {"full": (2500, 1686), "half": (2500, 843)}
#: LINE's limits: areas per menu, chat bar text and action label in UTF-16 units.
RICHMENU_MAX_AREAS = 20
CHAT_BAR_TEXT_MAX = 14
RICHMENU_LABEL_MAX = 20

Colour = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]
HttpsUrl = Annotated[str, Field(pattern=r"^https://\S+$", max_length=1000)]


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class Bounds(Strict):
    """A tappable rectangle of a rich menu image, in pixels from its top-left corner."""

    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(ge=1)]
    height: Annotated[int, Field(ge=1)]

    def overlaps(self, other: Bounds) -> bool:
        return (
            self.x < other.x + other.width
            and other.x < self.x + self.width
            and self.y < other.y + other.height
            and other.y < self.y + self.height
        )


class RichMenuArea(Strict):
    """One tile of a rich menu: where it is, what it says and what a tap does.

    A tap does exactly one thing: runs an ``intent`` (as the bot's menu buttons do),
    opens a web page (``uri``, https only) or opens LINE's location picker
    (``location_picker: true``), whose shared location the bot answers with centres.
    """

    label: Annotated[str, Field(min_length=1)]
    caption: str | None = None
    bounds: Bounds
    intent: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)] | None = None
    uri: HttpsUrl | None = None
    location_picker: bool = False
    #: What the chat shows as the user's message after the tap (default: the label).
    display_text: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    colour: Colour | None = None
    text_colour: Colour | None = None

    @field_validator("label")
    @classmethod
    def _label_length(cls, value: str) -> str:
        if _utf16(value) > RICHMENU_LABEL_MAX:
            raise ValueError(
                f"is too long ({_utf16(value)} characters; LINE allows {RICHMENU_LABEL_MAX})"
            )
        return value

    @model_validator(mode="after")
    def _one_action(self) -> RichMenuArea:
        chosen = [
            name
            for name, given in (
                ("intent", self.intent is not None),
                ("uri", self.uri is not None),
                ("location_picker", self.location_picker),
            )
            if given
        ]
        if len(chosen) != 1:
            raise ValueError(
                "give exactly one action: intent, uri or location_picker: true"
                + (f" (found: {', '.join(chosen)})" if chosen else "")
            )
        return self


class RichMenu(Strict):
    """A rich menu: the panel of big buttons under the chat (``richmenus.yaml``)."""

    #: Also the menu's alias in LINE (richMenuAliasId): a-z, 0-9, _ and -, at most 32.
    id: Annotated[str, Field(pattern=r"^[a-z0-9_\-]{1,32}$")]
    #: For operators in LINE's console; users never see it.
    name: Annotated[str, Field(min_length=1, max_length=300)]
    chat_bar_text: Annotated[str, Field(min_length=1)]
    size: Literal["full", "half"]
    #: The menu every user sees until the bot links another one to them.
    default: bool = False
    #: Open the menu when the chat opens (LINE's ``selected``).
    selected: bool = False
    #: Linked to a person when they finish an assessment (the business menu); at most one
    #: menu, never the default. Delete-my-data takes it away again.
    after_assessment: bool = False
    background: Colour = "#FFFFFF"
    tile_colour: Colour = "#06C755"
    text_colour: Colour = "#FFFFFF"
    areas: Annotated[list[RichMenuArea], Field(min_length=1)]

    @field_validator("chat_bar_text")
    @classmethod
    def _chat_bar_length(cls, value: str) -> str:
        if _utf16(value) > CHAT_BAR_TEXT_MAX:
            raise ValueError(
                f"is too long ({_utf16(value)} characters; LINE allows {CHAT_BAR_TEXT_MAX})"
            )
        return value

    @property
    def width(self) -> int:
        return RICHMENU_SIZES[self.size][0]

    @property
    def height(self) -> int:
        return RICHMENU_SIZES[self.size][1]


#: CSV columns whose cells hold ``;``-separated lists.
CENTRE_LIST_COLUMNS = ("services", "provenance_source_urls", "provenance_unverified_fields")
CENTRE_COLUMNS = tuple(Centre.model_fields)


def centre_fields(cells: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row's cells as ``Centre`` fields: empty cells left out, list cells split on ``;``."""
    data: dict[str, Any] = {}
    for column, cell in cells.items():
        if cell == "":
            continue
        if column in CENTRE_LIST_COLUMNS:
            data[column] = [v.strip() for v in cell.split(";") if v.strip()]
        else:
            data[column] = cell
    return data


CENTRE_REQUIRED_COLUMNS = tuple(name for name, f in Centre.model_fields.items() if f.is_required())


def friendly(error: Any) -> str:
    """A pydantic error in words an operator understands."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    given = error.get("input")
    shown = repr(given) if not isinstance(given, dict | list) else "this value"
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling, or remove it)"
    if kind in ("literal_error", "enum"):
        return f"{shown} is not allowed; use one of: {ctx.get('expected', '')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{shown} must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return f"{shown} must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return f"{shown} must be true or false"
    if kind.startswith("date") or kind.startswith("datetime"):
        return f"{shown} is not a real date; write it as YYYY-MM-DD (Gregorian, e.g. 2025-06-13)"
    if kind in ("string_type",):
        return f"{shown} must be text"
    if kind in ("list_type", "tuple_type"):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a group of fields (a mapping)"
    if kind == "string_pattern_mismatch":
        return f"{shown} is not in the expected form ({_pattern_hint(str(ctx.get('pattern', '')))})"
    if kind in ("too_short",):
        least = int(ctx.get("min_length") or 1)
        return "must not be empty" if least <= 1 else f"needs at least {least} entries"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("too_long", "string_too_long"):
        most = ctx.get("max_length")
        return f"is too long (at most {most} characters)" if most else "is too long"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{shown} must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"{shown} must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind in ("value_error", "assertion_error"):
        return (
            str(error.get("msg", ""))
            .removeprefix("Value error, ")
            .removeprefix("Assertion failed, ")
        )
    return str(error.get("msg", "invalid value"))


def _pattern_hint(pattern: str) -> str:
    hints = {
        r"^course-": "course- followed by lowercase letters, digits and hyphens",
        r"^prog-": "prog- followed by lowercase letters, digits and hyphens",
        r"^dcc-": "dcc- followed by lowercase letters, digits and hyphens",
        r"^\d{2}$": "a 2-digit province code such as 50",
        r"^\d{4}$": "a 4-digit district code such as 5001",
        r"^\d{6}$": "a 6-digit subdistrict code such as 500101",
        r"^\d{5}$": "a 5-digit postal code",
        r"^https?://": "a web address starting with https://",
        r"^https://": "a web address starting with https:// (http:// is not allowed)",
        r"^[a-z0-9_\-]{1,32}$": "at most 32 lowercase letters, digits, _ and -",
        r"^#[0-9A-Fa-f]{6}$": "a colour written #RRGGBB, such as #06C755",
        r"^[A-Z]": "an upper-case code such as DITP or CN",
        r"^[a-z0-9]": "lowercase letters, digits, _ and -",
    }
    for prefix, hint in hints.items():
        if pattern.startswith(prefix):
            return hint
    return pattern
