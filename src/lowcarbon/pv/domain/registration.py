"""Validation of one PV-system registration record (web form, API call or a row of a bulk file).

Pure Python: a record (a mapping of strings or already typed values) becomes either a clean `Registration` or a list
of `FieldError` (field, stable reason code, message arguments); the caller translates the codes into messages.
Rules: domain.md §2.2 (grid-connected system inside Zhongshan, 0 < capacity ≤ the versioned limit, grid-connection
date and metering arrangement required) and §2.8 (periods already claimed in other programmes).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final


@dataclass(frozen=True)
class BoundingBox:
    """A latitude/longitude rectangle in decimal degrees (WGS-84)."""

    lat_min: Decimal
    lat_max: Decimal
    lon_min: Decimal
    lon_max: Decimal

    def contains_lat(self, lat: Decimal) -> bool:
        return self.lat_min <= lat <= self.lat_max

    def contains_lon(self, lon: Decimal) -> bool:
        return self.lon_min <= lon <= self.lon_max


#: Zhongshan city (中山市), generously rounded: the city spans about 22.2–22.8 N and 113.1–113.7 E. The platform
#: serves Xiaolan Town, but any site inside Zhongshan is accepted (domain.md §2.2: "in Zhongshan for this platform").
ZHONGSHAN_BBOX: Final = BoundingBox(Decimal("22.2"), Decimal("22.8"), Decimal("113.1"), Decimal("113.7"))

#: Metering arrangements accepted by the methodology's monitoring chapter (domain.md §2.5).
METERING_CHOICES: Final = ("generation_meter", "bidirectional")
#: Other programmes whose claims block the same period for PHCER (domain.md §2.8).
PROGRAMME_CHOICES: Final = ("ccer", "gec", "other")

#: Meter serial numbers: letters, digits, dash and underscore, 4 to 64 characters.
METER_SERIAL_RE: Final = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
#: Mainland mobile numbers (11 digits starting 13–19) or fixed lines with area code (0760-88xxxxxx).
PHONE_RE: Final = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")

TILT_RANGE: Final = (Decimal(0), Decimal(90))
AZIMUTH_RANGE: Final = (Decimal(0), Decimal(360))

MAX_LENGTHS: Final = {"name": 200, "address": 300, "installer": 200, "reference": 100, "owner_real_name": 100}

_COORD_Q = Decimal("0.00001")
_CAPACITY_Q = Decimal("0.001")
_ANGLE_Q = Decimal("0.01")
_REGISTER_Q = Decimal("0.0001")
_DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: `code` is a stable snake_case reason, `args` fill the translated message."""

    field: str
    code: str
    args: Mapping[str, str] = dc_field(default_factory=dict)


@dataclass(frozen=True)
class ProgrammePeriod:
    """A period of the system's generation claimed in another programme (CCER, green certificates ...)."""

    programme: str
    period_start: date
    period_end: date
    reference: str = ""


@dataclass(frozen=True)
class Registration:
    """A validated registration record, with exact decimals and dates."""

    name: str
    address: str
    community: str
    latitude: Decimal
    longitude: Decimal
    capacity_kwp: Decimal
    tilt_deg: Decimal
    azimuth_deg: Decimal
    grid_connection_date: date
    metering: str
    meter_serial: str
    initial_register: Decimal | None = None
    installer: str = ""
    programme_claims: tuple[ProgrammePeriod, ...] = ()


@dataclass(frozen=True)
class HouseholdOwner:
    """A household owner identified by real name and phone (bulk files and aggregator registrations)."""

    real_name: str
    phone: str


class _Collector:
    """Gathers errors while parsing so that one pass reports every problem of the record."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def add(self, name: str, code: str, **args: str) -> None:
        self.errors.append(FieldError(self.prefix + name, code, dict(args)))

    def text(self, record: Mapping[str, object], name: str, *, required: bool = True) -> str:
        value = as_text(record.get(name))
        if not value:
            if required:
                self.add(name, "required")
            return ""
        limit = MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            self.add(name, "too_long", max=str(limit))
        return value

    def number(self, record: Mapping[str, object], name: str, *, required: bool = True) -> Decimal | None:
        raw = record.get(name)
        if is_blank(raw):
            if required:
                self.add(name, "required")
            return None
        value = parse_decimal(raw)
        if value is None:
            self.add(name, "invalid_number", value=as_text(raw))
        return value

    def day(self, record: Mapping[str, object], name: str, *, required: bool = True) -> date | None:
        raw = record.get(name)
        if is_blank(raw):
            if required:
                self.add(name, "required")
            return None
        value = parse_date(raw)
        if value is None:
            self.add(name, "invalid_date", value=as_text(raw))
        return value

    def choice(self, record: Mapping[str, object], name: str, choices: Collection[str]) -> str:
        value = as_text(record.get(name))
        if not value:
            self.add(name, "required")
            return ""
        if value not in choices:
            self.add(name, "invalid_choice", value=value, choices=", ".join(sorted(choices)))
        return value


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def as_text(value: object) -> str:
    """Text of a cell: numbers written without a trailing '.0' (Excel stores serials and phones as floats)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def parse_decimal(value: object) -> Decimal | None:
    """An exact finite Decimal from a str/int/float/Decimal, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("，", "")
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def parse_date(value: object) -> date | None:
    """A date from a date/datetime or from text as 2024-05-01, 2024/5/1, 2024.5.1 or 2024年5月1日."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if " " in text:  # "2024-05-01 00:00:00" as written by spreadsheets
        head, _, tail = text.partition(" ")
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", tail.strip()):
            text = head
    m = _DATE_RE.match(text)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def normalise_serial(value: object) -> str:
    return as_text(value)


def validate_meter_serial(value: object, field_name: str = "meter_serial") -> tuple[str, list[FieldError]]:
    """A meter serial must be 4–64 characters of letters, digits, '-' or '_'."""
    serial = normalise_serial(value)
    if not serial:
        return "", [FieldError(field_name, "required")]
    if not METER_SERIAL_RE.match(serial):
        return serial, [FieldError(field_name, "invalid_serial", {"value": serial})]
    return serial, []


def normalise_phone(value: object) -> str:
    """Phone without spaces, and without the +86 / 0086 country prefix of a mobile number."""
    text = re.sub(r"[\s()（）]", "", as_text(value))
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11 and text[len(prefix)] == "1":
            return text[len(prefix) :]
    return text


def validate_household_owner(
    record: Mapping[str, object], prefix: str = "owner_"
) -> HouseholdOwner | list[FieldError]:
    """Real name (required, ≤ 100 characters) and phone (mainland mobile or fixed line) of a household owner."""
    c = _Collector()
    name = c.text(record, prefix + "real_name")
    phone = normalise_phone(record.get(prefix + "phone"))
    if not phone:
        c.add(prefix + "phone", "required")
    elif not PHONE_RE.match(phone):
        c.add(prefix + "phone", "invalid_phone", value=phone)
    if c.errors:
        return c.errors
    return HouseholdOwner(real_name=name, phone=phone)


def validate_programme_claim(
    record: Mapping[str, object], prefix: str = ""
) -> ProgrammePeriod | list[FieldError]:
    """A claim in another programme: a programme of the list and a period with start ≤ end (domain.md §2.8)."""
    c = _Collector(prefix)
    programme = c.choice(record, "programme", PROGRAMME_CHOICES)
    start = c.day(record, "period_start")
    end = c.day(record, "period_end")
    reference = c.text(record, "reference", required=False)
    if start is not None and end is not None and end < start:
        c.add("period_end", "period_order", start=start.isoformat(), end=end.isoformat())
    if c.errors or start is None or end is None:
        return c.errors
    return ProgrammePeriod(programme=programme, period_start=start, period_end=end, reference=reference)


def _quantize(value: Decimal, q: Decimal) -> Decimal:
    return value.quantize(q, rounding=ROUND_HALF_UP)


def validate_registration(
    record: Mapping[str, object],
    *,
    capacity_limit_kwp: Decimal,
    today: date,
    communities: Collection[str] | None = None,
    bbox: BoundingBox = ZHONGSHAN_BBOX,
) -> Registration | list[FieldError]:
    """Check one registration record; return the clean `Registration` or every error found.

    `capacity_limit_kwp` is the versioned parameter `pv.capacity_limit_kwp` in force (domain.md §2.2); `today` is
    the local date against which the grid-connection date may not lie in the future; `communities`, when given,
    are the known community codes. `record["programme_claims"]` is an optional sequence of mappings with
    programme, period_start, period_end and reference; their errors are named `programme_claims.<i>.<field>`.
    """
    c = _Collector()
    name = c.text(record, "name")
    address = c.text(record, "address")
    installer = c.text(record, "installer", required=False)

    community = as_text(record.get("community"))
    if not community:
        c.add("community", "required")
    elif communities is not None and community not in communities:
        c.add("community", "unknown_community", value=community)

    lat = c.number(record, "latitude")
    if lat is not None:
        lat = _quantize(lat, _COORD_Q)
        if not bbox.contains_lat(lat):
            c.add(
                "latitude",
                "outside_area",
                value=_plain(lat),
                min=_plain(bbox.lat_min),
                max=_plain(bbox.lat_max),
            )
    lon = c.number(record, "longitude")
    if lon is not None:
        lon = _quantize(lon, _COORD_Q)
        if not bbox.contains_lon(lon):
            c.add(
                "longitude",
                "outside_area",
                value=_plain(lon),
                min=_plain(bbox.lon_min),
                max=_plain(bbox.lon_max),
            )

    capacity = c.number(record, "capacity_kwp")
    if capacity is not None:
        capacity = _quantize(capacity, _CAPACITY_Q)
        if capacity <= 0:
            c.add("capacity_kwp", "capacity_not_positive", value=_plain(capacity))
        elif capacity > capacity_limit_kwp:
            c.add(
                "capacity_kwp",
                "capacity_above_limit",
                value=_plain(capacity),
                limit=_plain(capacity_limit_kwp),
            )

    tilt = c.number(record, "tilt_deg")
    if tilt is not None:
        tilt = _quantize(tilt, _ANGLE_Q)
        if not TILT_RANGE[0] <= tilt <= TILT_RANGE[1]:
            c.add("tilt_deg", "out_of_range", value=_plain(tilt), min="0", max="90")
    azimuth = c.number(record, "azimuth_deg")
    if azimuth is not None:
        azimuth = _quantize(azimuth, _ANGLE_Q)
        if not AZIMUTH_RANGE[0] <= azimuth <= AZIMUTH_RANGE[1]:
            c.add("azimuth_deg", "out_of_range", value=_plain(azimuth), min="0", max="360")

    grid_date = c.day(record, "grid_connection_date")
    if grid_date is not None and grid_date > today:
        c.add("grid_connection_date", "date_in_future", value=grid_date.isoformat())

    metering = c.choice(record, "metering", METERING_CHOICES)

    serial, serial_errors = validate_meter_serial(record.get("meter_serial"))
    c.errors.extend(serial_errors)

    initial = c.number(record, "initial_register", required=False)
    if initial is not None:
        initial = _quantize(initial, _REGISTER_Q)
        if initial < 0:
            c.add("initial_register", "negative", value=_plain(initial))

    claims: list[ProgrammePeriod] = []
    raw_claims = record.get("programme_claims") or ()
    if isinstance(raw_claims, Sequence) and not isinstance(raw_claims, str):
        for i, raw in enumerate(raw_claims):
            if isinstance(raw, ProgrammePeriod):
                claim: ProgrammePeriod | list[FieldError] = raw
                if raw.period_end < raw.period_start:
                    claim = [FieldError(f"programme_claims.{i}.period_end", "period_order")]
            elif isinstance(raw, Mapping):
                claim = validate_programme_claim(raw, prefix=f"programme_claims.{i}.")
            else:
                claim = [FieldError(f"programme_claims.{i}", "invalid_claim")]
            if isinstance(claim, list):
                c.errors.extend(claim)
            else:
                claims.append(claim)
    else:
        c.add("programme_claims", "invalid_claim")

    if c.errors:
        return c.errors
    assert lat is not None and lon is not None and capacity is not None
    assert tilt is not None and azimuth is not None and grid_date is not None
    return Registration(
        name=name,
        address=address,
        community=community,
        latitude=lat,
        longitude=lon,
        capacity_kwp=capacity,
        tilt_deg=tilt,
        azimuth_deg=azimuth,
        grid_connection_date=grid_date,
        metering=metering,
        meter_serial=serial,
        initial_register=initial,
        installer=installer,
        programme_claims=tuple(claims),
    )


def find_duplicate_serials(serials: Sequence[tuple[int, str]]) -> dict[int, str]:
    """Rows (by row number) whose meter serial already appeared on an earlier row, compared case-insensitively."""
    first_row: dict[str, int] = {}
    duplicates: dict[int, str] = {}
    for row, serial in serials:
        key = serial.upper()
        if not key:
            continue
        if key in first_row:
            duplicates[row] = str(first_row[key])
        else:
            first_row[key] = row
    return duplicates


def mask_person_name(name: str) -> str:
    """Show a person's name with only its first character: 麦润标 → 麦**, Li Ming → L*******."""
    text = (name or "").strip()
    if len(text) <= 1:
        return text
    return text[0] + "*" * (len(text) - 1)


def mask_address(address: str, keep: int = 6) -> str:
    """Keep the beginning of an address (town, road) and hide the rest (house number): 小榄镇测试路1号 → 小榄镇测试路***."""
    text = (address or "").strip()
    if len(text) <= keep:
        return text[: max(len(text) // 2, 0)] + "***"
    return text[:keep] + "***"


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 6000.000000 → 6000."""
    return format(value.normalize(), "f")
