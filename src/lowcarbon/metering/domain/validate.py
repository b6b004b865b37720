"""Validation of meter readings: pure functions from raw rows to accepted readings or rejections with reasons.

Check order follows domain.md §4.6: schema and units → monotonic cumulative / replacement / rollover → dates →
subject rules (for PV: grid-connection date, physical ceiling, export ≤ generation). Each rejection carries a stable
snake_case reason code; the message is translated by the caller. An identical duplicate is not an error: it is
counted and changes nothing, so re-importing a file is a no-op (§4.5 upsert by meter and time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lowcarbon.core.domain.units import q_kwh

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")

# Stable reason codes (never renamed; messages are translated elsewhere).
UNKNOWN_METER = "unknown_meter"
MISSING_FIELD = "missing_field"
UNPARSEABLE_FIELD = "unparseable_field"
UNIT_MISMATCH = "unit_mismatch"
FUTURE_TIMESTAMP = "future_timestamp"
BEFORE_METER_INSTALLED = "before_meter_installed"
AFTER_METER_REMOVED = "after_meter_removed"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
CUMULATIVE_DECREASE = "cumulative_decrease"
CUMULATIVE_OUT_OF_ORDER = "cumulative_out_of_order"
NEGATIVE_ENERGY = "negative_energy"
EXPORT_NOT_METERED = "export_not_metered"
VALUE_TOO_LARGE = "value_too_large"

GENERIC_REASONS = (
    UNKNOWN_METER,
    MISSING_FIELD,
    UNPARSEABLE_FIELD,
    UNIT_MISMATCH,
    FUTURE_TIMESTAMP,
    BEFORE_METER_INSTALLED,
    AFTER_METER_REMOVED,
    CONFLICTING_DUPLICATE,
    CUMULATIVE_DECREASE,
    CUMULATIVE_OUT_OF_ORDER,
    NEGATIVE_ENERGY,
    EXPORT_NOT_METERED,
    VALUE_TOO_LARGE,
)

#: integer digits a stored energy or register value may have: the reading columns are 16 digits with 4 after the
#: point (metering.models.Reading), so a value in the canonical unit must stay below 10**12
MAX_INTEGER_DIGITS = 12
VALUE_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
#: the largest value that can be stored, as shown in a rejection
LARGEST_VALUE = "999999999999.9999"

#: Header aliases accepted in files (Chinese column names that meter vendors and utilities use).
FIELD_ALIASES: dict[str, str] = {
    "meter_serial": "meter_serial",
    "serial": "meter_serial",
    "meter": "meter_serial",
    "表号": "meter_serial",
    "电表编号": "meter_serial",
    "timestamp": "timestamp",
    "time": "timestamp",
    "时间": "timestamp",
    "interval_minutes": "interval_minutes",
    "interval": "interval_minutes",
    "间隔分钟": "interval_minutes",
    "energy": "energy",
    "电量": "energy",
    "cumulative": "cumulative",
    "累计读数": "cumulative",
    "export": "export",
    "上网电量": "export",
    "export_cumulative": "export_cumulative",
    "上网累计读数": "export_cumulative",
    "unit": "unit",
    "单位": "unit",
    "tz": "tz",
    "时区": "tz",
}


def canonical_field(name: str) -> str:
    """Map a header cell to its canonical field name (unknown headers are kept as written, lower-case)."""
    key = name.strip().lstrip("\ufeff").lower().replace(" ", "_")
    return FIELD_ALIASES.get(key, FIELD_ALIASES.get(name.strip(), key))


@dataclass(slots=True)
class RawRow:
    """One row as received: its number in the file (1 = first data row after the header), fields and text."""

    row_number: int
    fields: Mapping[str, str | None]
    raw: str


@dataclass(slots=True)
class Rejection:
    """A refused row with its reason code, the field concerned and a detail (values, limits)."""

    row_number: int
    reason: str
    field: str
    detail: str
    raw: str
    serial: str = ""


@dataclass(slots=True)
class Candidate:
    """A reading that passed the generic checks; subject rules (PV etc.) look at it before it is accepted."""

    meter_id: int
    ts: datetime  # end of interval, UTC
    interval_s: int  # 0 marks a baseline register read that carries no energy
    energy: Decimal  # in the meter's canonical unit
    cumulative: Decimal | None
    export: Decimal | None
    export_cumulative: Decimal | None

    @property
    def start(self) -> datetime:
        return self.ts - timedelta(seconds=self.interval_s)


class Rule(Protocol):
    """A subject-specific check plugged into ingest (e.g. the PV physical ceiling)."""

    def check(self, c: Candidate) -> tuple[str, str, str] | None:
        """Return (reason code, field, detail) to reject, or None to pass."""
        ...


@dataclass(frozen=True)
class MeterSpec:
    """What validation needs to know about a meter."""

    meter_id: int
    serial: str
    unit_factors: Mapping[str, Decimal]  # accepted units (lower case) → factor to the canonical unit
    default_interval_s: int
    installed_at: datetime | None = None
    removed_at: datetime | None = None
    initial_register: Decimal | None = None
    register_wrap: Decimal | None = None
    supports_export: bool = False
    rules: Sequence[Rule] = ()


@dataclass
class MeterState:
    """Last accepted register values of a meter (for cumulative deltas)."""

    last_ts: datetime | None = None
    last_cumulative: Decimal | None = None
    last_export_cumulative: Decimal | None = None


@dataclass(slots=True)
class Stored:
    """The values already stored for a (meter, ts), to tell identical from conflicting duplicates."""

    energy: Decimal
    cumulative: Decimal | None
    export: Decimal | None
    interval_s: int


@dataclass(slots=True)
class ParsedRow:
    row_number: int
    serial: str
    ts: datetime
    interval_s: int | None
    unit: str
    energy: Decimal | None
    cumulative: Decimal | None
    export: Decimal | None
    export_cumulative: Decimal | None
    raw: str


@dataclass
class Outcome:
    """Result of validating rows: accepted candidates, identical duplicates and rejections."""

    accepted: list[Candidate] = field(default_factory=list)
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def _clean(v: str | None) -> str:
    return v.strip() if v else ""


def _decimal(v: str) -> Decimal:
    d = Decimal(v.replace(",", "")) if v else Decimal("NaN")
    if not d.is_finite():
        raise InvalidOperation
    return d


def parse_timestamp(text: str, tz_text: str = "") -> datetime:
    """Parse an ISO-8601-like timestamp; without an offset it is local time in `tz_text` or Asia/Shanghai. → UTC."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        t = text.strip().replace("/", "-")
        if t.endswith("Z"):
            t = t[:-1] + "+00:00"
        dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        tz = DEFAULT_TZ
        if tz_text:
            if tz_text[0] in "+-":
                dt2 = datetime.fromisoformat("2000-01-01T00:00:00" + tz_text)
                tzinfo = dt2.tzinfo
                assert tzinfo is not None
                return dt.replace(tzinfo=tzinfo).astimezone(UTC)
            tz = ZoneInfo(tz_text)
        dt = dt.replace(tzinfo=tz)
    return dt if dt.utcoffset() == _ZERO and dt.tzinfo is UTC else dt.astimezone(UTC)


_ZERO = timedelta(0)


def _reject(row: RawRow, serial: str, code: str, fld: str, detail: str) -> Rejection:
    return Rejection(row.row_number, code, fld, detail, row.raw, serial)


def _number(text: str | None) -> Decimal | None:
    """A finite Decimal from a cell, None for an empty cell; raises ValueError when unreadable."""
    if not text or not (text := text.strip()):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        try:
            d = Decimal(text.replace(",", ""))  # thousands separators
        except InvalidOperation:
            raise ValueError(text)
    if not d.is_finite():
        raise ValueError(text)
    return d


_MAX_INTERVAL_MIN = 60 * 24 * 31


def parse_row(row: RawRow) -> ParsedRow | Rejection:
    """Schema check of one row: required fields present and parseable. Units are checked against the meter later."""
    f = row.fields
    serial = _clean(f.get("meter_serial"))
    if not serial:
        return _reject(row, serial, MISSING_FIELD, "meter_serial", "")
    ts_text = _clean(f.get("timestamp"))
    if not ts_text:
        return _reject(row, serial, MISSING_FIELD, "timestamp", "")
    unit = _clean(f.get("unit"))
    if not unit:
        return _reject(row, serial, MISSING_FIELD, "unit", "")
    unit = unit.lower().replace("³", "3")
    try:
        ts = parse_timestamp(ts_text, _clean(f.get("tz")))
    except (ValueError, ZoneInfoNotFoundError, AssertionError):
        return _reject(row, serial, UNPARSEABLE_FIELD, "timestamp", ts_text[:60])
    name = "energy"
    try:
        energy = _number(f.get("energy"))
        name = "cumulative"
        cumulative = _number(f.get("cumulative"))
        name = "export"
        export = _number(f.get("export"))
        name = "export_cumulative"
        export_cumulative = _number(f.get("export_cumulative"))
    except ValueError:
        return _reject(row, serial, UNPARSEABLE_FIELD, name, _clean(f.get(name))[:60])
    if energy is None and cumulative is None:
        return _reject(row, serial, MISSING_FIELD, "energy", "energy or cumulative")
    interval_text = f.get("interval_minutes")
    interval_s: int | None = None
    if interval_text and (interval_text := interval_text.strip()):
        if interval_text.isdigit():
            minutes = Decimal(int(interval_text))
        else:
            try:
                minutes = _decimal(interval_text)
            except (InvalidOperation, ValueError):
                return _reject(row, serial, UNPARSEABLE_FIELD, "interval_minutes", interval_text[:60])
        seconds = minutes * 60
        if minutes <= 0 or minutes > _MAX_INTERVAL_MIN or seconds != seconds.to_integral_value():
            return _reject(row, serial, UNPARSEABLE_FIELD, "interval_minutes", interval_text[:60])
        interval_s = int(seconds)
    return ParsedRow(
        row.row_number, serial, ts, interval_s, unit, energy, cumulative, export, export_cumulative, row.raw
    )


def to_stored(value: Decimal, factor: Decimal) -> Decimal | None:
    """A value sent in some unit, in the canonical unit at the stored precision (0.0001, half up); None when it
    has more than MAX_INTEGER_DIGITS integer digits and so cannot be stored (refused as VALUE_TOO_LARGE)."""
    if value.adjusted() >= MAX_INTEGER_DIGITS + 6:  # too large in any unit: no arithmetic on it (no overflow)
        return None
    try:
        stored = q_kwh(value if factor == 1 else value * factor)
    except ArithmeticError:  # a factor beyond the units the platform knows: nothing to store
        return None
    return stored if abs(stored) < VALUE_LIMIT else None


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return q_kwh(a) == q_kwh(b)


class _Duplicate:
    """Marker for an identical duplicate."""


_DUPLICATE = _Duplicate()


def validate_rows(
    rows: Sequence[ParsedRow | Rejection],
    specs: Mapping[str, MeterSpec],
    states: Mapping[int, MeterState],
    stored: Mapping[tuple[int, datetime], Stored],
    now: datetime,
    future_tolerance: timedelta = timedelta(minutes=5),
) -> Outcome:
    """Validate parsed rows in order against meter specs, register states (updated in place) and stored readings."""
    out = Outcome()
    seen: dict[tuple[int, datetime], Stored] = {}
    latest_allowed = now + future_tolerance
    accepted = out.accepted
    rejections = out.rejections
    for p in rows:
        if isinstance(p, Rejection):
            rejections.append(p)
            continue
        result = _validate_one(p, specs.get(p.serial), states, stored, seen, latest_allowed)
        if isinstance(result, Candidate):
            accepted.append(result)
        elif isinstance(result, _Duplicate):
            out.duplicates += 1
        else:
            code, fld, detail = result
            rejections.append(Rejection(p.row_number, code, fld, detail, p.raw, p.serial))
    return out


def _validate_one(
    p: ParsedRow,
    spec: MeterSpec | None,
    states: Mapping[int, MeterState],
    stored: Mapping[tuple[int, datetime], Stored],
    seen: dict[tuple[int, datetime], Stored],
    latest_allowed: datetime,
) -> Candidate | _Duplicate | tuple[str, str, str]:
    """One row: a Candidate to store, _DUPLICATE for an identical duplicate, or (reason, field, detail)."""
    if spec is None:
        return (UNKNOWN_METER, "meter_serial", p.serial)
    factor = spec.unit_factors.get(p.unit)
    if factor is None:
        return (UNIT_MISMATCH, "unit", f"{p.unit} ∉ {', '.join(sorted(spec.unit_factors))}")
    if p.ts > latest_allowed:
        return (FUTURE_TIMESTAMP, "timestamp", p.ts.isoformat())
    if spec.removed_at is not None and p.ts > spec.removed_at:
        return (AFTER_METER_REMOVED, "timestamp", spec.removed_at.isoformat())
    if (p.export is not None or p.export_cumulative is not None) and not spec.supports_export:
        return (EXPORT_NOT_METERED, "export", "")
    sent = (
        ("energy", p.energy),
        ("cumulative", p.cumulative),
        ("export", p.export),
        ("export_cumulative", p.export_cumulative),
    )
    values: list[Decimal | None] = []
    for name, value in sent:
        if value is None:
            values.append(None)
            continue
        converted = to_stored(value, factor)
        if converted is None:
            canonical = next((u for u, f in spec.unit_factors.items() if f == 1), p.unit)
            sent_text = str(value) if len(str(value)) <= 40 else f"{str(value)[:37]}..."
            return (
                VALUE_TOO_LARGE,
                name,
                f"{name} = {sent_text} {p.unit}; at most {LARGEST_VALUE} {canonical} can be stored",
            )
        values.append(converted)
    energy, cumulative, export, export_cum = values

    key = (spec.meter_id, p.ts)
    prev = seen.get(key) or stored.get(key)
    if prev is not None:
        identical = (cumulative is None or _same(cumulative, prev.cumulative)) and (
            energy is None or _same(energy, prev.energy)
        )
        if identical and (export is None or _same(export, prev.export)):
            return _DUPLICATE
        return (
            CONFLICTING_DUPLICATE,
            "energy" if energy is not None else "cumulative",
            f"stored {prev.energy}",
        )

    state = states.get(spec.meter_id)
    interval_s = p.interval_s or spec.default_interval_s
    if cumulative is not None:
        assert state is not None, "a register state is needed for cumulative readings"
        if state.last_ts is not None and p.ts <= state.last_ts:
            return (CUMULATIVE_OUT_OF_ORDER, "timestamp", f"last {state.last_ts.isoformat()}")
        base = state.last_cumulative if state.last_cumulative is not None else spec.initial_register
        if base is None:
            delta, interval_s = Decimal(0), 0  # first read of the register only sets the baseline (§4.5)
        else:
            delta = cumulative - base
            if delta < 0:
                if spec.register_wrap is not None and base <= spec.register_wrap and cumulative < base:
                    delta = spec.register_wrap - base + cumulative
                else:
                    return (CUMULATIVE_DECREASE, "cumulative", f"{base} → {cumulative}")
            if state.last_ts is not None:
                interval_s = int((p.ts - state.last_ts).total_seconds())
        if energy is not None and interval_s and not _same(energy, delta):
            return (CONFLICTING_DUPLICATE, "energy", f"energy {energy} ≠ register delta {delta}")
        energy = delta
        if export_cum is not None:
            ebase = state.last_export_cumulative
            if ebase is not None:
                edelta = export_cum - ebase
                if edelta < 0:
                    return (CUMULATIVE_DECREASE, "export_cumulative", f"{ebase} → {export_cum}")
                export = edelta if export is None else export
            elif interval_s == 0:
                export = Decimal(0)
    assert energy is not None
    if energy < 0:
        return (NEGATIVE_ENERGY, "energy", str(energy))
    if export is not None and export < 0:
        return (NEGATIVE_ENERGY, "export", str(export))
    if spec.installed_at is not None and p.ts - timedelta(seconds=interval_s) < spec.installed_at:
        return (BEFORE_METER_INSTALLED, "timestamp", spec.installed_at.isoformat())
    cand = Candidate(spec.meter_id, p.ts, interval_s, energy, cumulative, export, export_cum)
    for rule in spec.rules:
        failed = rule.check(cand)
        if failed is not None:
            return failed
    seen[key] = Stored(energy, cumulative, export, interval_s)
    if cumulative is not None and state is not None:
        state.last_ts = p.ts
        state.last_cumulative = cumulative
        if export_cum is not None:
            state.last_export_cumulative = export_cum
    return cand
