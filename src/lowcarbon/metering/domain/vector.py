"""Array form of the reading checks, for bulk deliveries: a chunk of rows is read column by column and the common
case (a well-formed interval reading of a known meter) is checked on arrays, with no Python work per row.

The array checks are a conservative filter, never a second set of rules: a row they cannot prove to be accepted
by `validate.validate_rows` exactly as computed here is *flagged* and validated row by row by that function, so
every rejection keeps its reason code, field, detail and original text. Values are exact: quantities are integers
of 0.0001 of the canonical unit (the stored precision, `units.KWH_Q`), times are integers of microseconds since
1970-01-01 UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lowcarbon.metering.domain.validate import MAX_INTEGER_DIGITS, MeterSpec, RawRow

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.uint32]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
#: quantities are handled on arrays below 10**12 (0.0001 units below 10**16), what the stored columns hold (16 digits,
#: 4 after the point); a larger value, as sent or once converted, goes row by row and is refused as value_too_large
UNIT_LIMIT = 10 ** (MAX_INTEGER_DIGITS + 4)
#: Asia/Shanghai has kept UTC+8 without daylight saving since 1991; earlier local times go row by row
LOCAL_OFFSET_S = 8 * 3600
FIRST_FIXED_OFFSET_YEAR = 1992
#: interval_minutes accepted by validate.parse_row: 1 .. 31 days
MAX_INTERVAL_MIN = 60 * 24 * 31


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    return (dt - EPOCH) // timedelta(microseconds=1)


def day_of(days: int) -> date:
    """The date `days` days after 1970-01-01."""
    return date.fromordinal(719163 + days)


# ---- a chunk of cells ---------------------------------------------------------------------------------------------


@dataclass
class CellChunk:
    """A chunk of CSV rows as read (cells as text), with their row numbers in the file (blank rows skipped)."""

    names: list[str]  # canonical field name of each header column
    rows: list[list[str]]
    numbers: list[int]
    _columns: dict[str, Sequence[str]] | None = field(default=None, repr=False)
    _ragged: Mask | None = field(default=None, repr=False)

    def raw_row(self, i: int) -> RawRow:
        """Row i exactly as the row-by-row reader gives it."""
        cells = self.rows[i]
        return RawRow(self.numbers[i], dict(zip(self.names, cells, strict=False)), ",".join(cells))

    def ragged(self) -> Mask:
        """Rows whose number of cells differs from the header's (they go row by row)."""
        if self._ragged is None:
            width = len(self.names)
            lens = np.fromiter(map(len, self.rows), dtype=np.int64, count=len(self.rows))
            self._ragged = lens != width
        return self._ragged

    def column(self, name: str) -> Sequence[str] | None:
        """The cells of a field (the last header column of that name, as in the row-by-row reader), or None."""
        if self._columns is None:
            self._columns = {}
        if name in self._columns:
            return self._columns[name]
        if name not in self.names:
            return None
        j = len(self.names) - 1 - self.names[::-1].index(name)
        rows = self.rows
        if self.ragged().any():
            rows = [r if len(r) > j else [""] * (j + 1) for r in rows]
        col = list(map(itemgetter(j), rows))
        self._columns[name] = col
        return col


# ---- parsing text columns -------------------------------------------------------------------------------------


def _codes(cells: Sequence[str], width: int, shrink: bool = False) -> tuple[Codes, I64]:
    """Cells as an (n × width) matrix of code points (cut at width) and their lengths; with `shrink`, only as wide
    as the longest cell when that is narrower."""
    n = len(cells)
    lens = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint32), lens
    if shrink:
        width = max(1, min(width, int(lens.max())))
    arr = np.array(cells, dtype=f"<U{width}") if int(lens.max()) <= width else _cut(cells, lens, width)
    return arr.view(np.uint32).reshape(n, width), lens


def _cut(cells: Sequence[str], lens: I64, width: int) -> npt.NDArray[np.str_]:
    long = set(np.flatnonzero(lens > width).tolist())
    return np.array([("" if i in long else c) for i, c in enumerate(cells)], dtype=f"<U{width}")


def _digit(c: Codes) -> Mask:
    return (c >= 48) & (c <= 57)


def _val(c: Codes) -> I64:
    return c.astype(np.int64) - 48


def parse_timestamps(cells: Sequence[str], tz_empty: Mask) -> tuple[Mask, I64]:
    """ISO timestamps `YYYY-MM-DD?HH:MM[:SS][Z|±HH:MM]` → (readable on arrays, µs since epoch UTC).

    Equal to `validate.parse_timestamp` for the rows marked readable: a time without offset is Asia/Shanghai
    local time when the row names no time zone (from 1992 on, a fixed UTC+8); anything else is not marked."""
    n = len(cells)
    c, lens = _codes(cells, 25)
    if n == 0:
        return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int64)
    ok = np.isin(lens, (16, 17, 19, 20, 22, 25))
    for j in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15):
        ok &= _digit(c[:, j])
    ok &= (c[:, 4] == 45) & (c[:, 7] == 45) & (c[:, 13] == 58)
    ok &= (c[:, 10] == 84) | (c[:, 10] == 32)
    has_sec = np.isin(lens, (19, 20, 25))
    ok &= ~has_sec | ((c[:, 16] == 58) & _digit(c[:, 17]) & _digit(c[:, 18]))
    start = np.where(has_sec, 19, 16)
    tail = lens - start
    rows = np.arange(n)

    def at(k: int) -> Codes:
        out: Codes = c[rows, np.minimum(start + k, 24)]
        return out

    naive = tail == 0
    zulu = tail == 1
    offset = tail == 6
    ok &= naive | (zulu & (at(0) == 90)) | offset
    sign = np.where(at(0) == 45, -1, 1)
    ok &= ~offset | (
        ((at(0) == 43) | (at(0) == 45))
        & _digit(at(1))
        & _digit(at(2))
        & (at(3) == 58)
        & _digit(at(4))
        & _digit(at(5))
    )
    oh = _val(at(1)) * 10 + _val(at(2))
    om = _val(at(4)) * 10 + _val(at(5))
    ok &= ~offset | ((oh <= 23) & (om <= 59))
    year = _val(c[:, 0]) * 1000 + _val(c[:, 1]) * 100 + _val(c[:, 2]) * 10 + _val(c[:, 3])
    month = _val(c[:, 5]) * 10 + _val(c[:, 6])
    day = _val(c[:, 8]) * 10 + _val(c[:, 9])
    hour = _val(c[:, 11]) * 10 + _val(c[:, 12])
    minute = _val(c[:, 14]) * 10 + _val(c[:, 15])
    second = np.where(has_sec, _val(c[:, 17]) * 10 + _val(c[:, 18]), 0)
    ok &= (year >= FIRST_FIXED_OFFSET_YEAR) & (year <= 9998)
    ok &= ~naive | tz_empty
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    mdays = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)[
        np.clip(month - 1, 0, 11)
    ]
    mdays = mdays + ((month == 2) & leap)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= mdays)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    off_s = np.where(naive, LOCAL_OFFSET_S, np.where(offset, sign * (oh * 3600 + om * 60), 0))
    # days from the civil date (proleptic Gregorian), H. Hinnant's algorithm
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    us = (days * 86400 + hour * 3600 + minute * 60 + second - off_s) * US
    return ok, np.where(ok, us, 0).astype(np.int64)


def parse_quantities(cells: Sequence[str]) -> tuple[Mask, Mask, I64]:
    """Plain decimals `digits[.1-4 digits]` (≤ 12 integer digits) → (readable, present, value in 0.0001 units).

    An empty cell is readable and absent. Signs, exponents, separators, spaces, more decimals, more integer digits
    than can be stored: not readable here (the row goes row by row, where a too large value is refused)."""
    n = len(cells)
    c, lens = _codes(
        cells, 17, shrink=True
    )  # no wider than the longest cell: the columns past it hold nothing
    if n == 0:
        z = np.zeros(0, dtype=np.bool_)
        return z, z, np.zeros(0, dtype=np.int64)
    j = np.arange(c.shape[1])
    inside = j[None, :] < lens[:, None]
    dot = (c == 46) & inside
    dig = _digit(c) & inside
    ndots = dot.sum(axis=1)
    dotpos = np.where(ndots == 1, dot.argmax(axis=1), lens)
    nfrac = np.where(ndots == 1, lens - dotpos - 1, 0)
    ok = ((dig | dot) == inside).all(axis=1) & (ndots <= 1)
    ok &= (dotpos >= 1) & (dotpos <= MAX_INTEGER_DIGITS) & (nfrac <= 4) & ((ndots == 0) | (nfrac >= 1))
    present = lens > 0
    ok |= ~present
    d = np.where(dig, _val(c), 0)
    int_exp = dotpos[:, None] - 1 - j[None, :]
    frac_exp = 3 - (j[None, :] - dotpos[:, None] - 1)
    pow10 = 10 ** np.arange(12, dtype=np.int64)
    int_part = (d * np.where(int_exp >= 0, pow10[np.clip(int_exp, 0, 11)], 0)).sum(axis=1)
    in_frac = (j[None, :] > dotpos[:, None]) & inside
    frac_part = (d * np.where(in_frac, pow10[np.clip(frac_exp, 0, 11)], 0)).sum(axis=1)
    value = np.where(ok & present, int_part * 10_000 + frac_part, 0).astype(np.int64)
    return ok, present & ok, value


def parse_minutes(cells: Sequence[str]) -> tuple[Mask, I64]:
    """interval_minutes as ASCII digits, 1 .. 31 days → (readable, minutes; 0 = not given, the meter's default)."""
    n = len(cells)
    c, lens = _codes(cells, 5)
    if n == 0:
        return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int64)
    j = np.arange(5)
    inside = j[None, :] < lens[:, None]
    dig = _digit(c)
    ok = ((dig & inside) == inside).all(axis=1) & (lens <= 5)
    pow10 = 10 ** np.arange(5, dtype=np.int64)
    exp = lens[:, None] - 1 - j[None, :]
    minutes = (np.where(inside & dig, _val(c), 0) * pow10[np.clip(exp, 0, 4)]).sum(axis=1)
    ok &= (lens == 0) | ((minutes >= 1) & (minutes <= MAX_INTERVAL_MIN))
    return ok, np.where(ok, minutes, 0).astype(np.int64)


def is_empty(cells: Sequence[str]) -> Mask:
    """Cells that are exactly empty."""
    out: Mask = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells)) == 0
    return out


def scale(units: I64, exponent: I64) -> tuple[Mask, I64]:
    """Convert 0.0001-unit values by a factor 10**exponent (exponent -3, 0 or 3) with the stored rounding
    (half up, as `units.q_kwh`) → (in range, converted). Out of range (10**12 or more once converted, as
    `validate.to_stored` decides): the row goes row by row and is refused as value_too_large."""
    up = np.where(exponent == 3, units * 1000, units)
    out = np.where(exponent == -3, (units + 500) // 1000, up)
    return (out < UNIT_LIMIT) & (units < UNIT_LIMIT), out.astype(np.int64)


# ---- checks ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateColumns:
    """Interval readings of one meter as arrays (what `validate.Candidate` holds, one entry per reading)."""

    ts_us: I64
    interval_s: I64
    energy: I64  # 0.0001 units
    export: I64  # 0.0001 units; 0 where has_export is False
    has_export: Mask


class ArrayRule(Protocol):
    """A subject rule that can also flag, on arrays, every reading its `check` might refuse (more is allowed)."""

    def flag(self, c: CandidateColumns) -> Mask: ...


def duplicated(meter: I64, ts_us: I64) -> Mask:
    """Rows whose (meter, time) occurs more than once (all of them, the first included)."""
    n = len(meter)
    out = np.zeros(n, dtype=np.bool_)
    if n < 2:
        return out
    order = np.lexsort((ts_us, meter))
    m, t = meter[order], ts_us[order]
    same = (m[1:] == m[:-1]) & (t[1:] == t[:-1])
    hit = np.zeros(n, dtype=np.bool_)
    hit[1:] |= same
    hit[:-1] |= same
    out[order] = hit
    return out


@dataclass(frozen=True)
class DayGroups:
    """Accepted interval readings summed per meter and local day (the daily rollup of one chunk)."""

    meter_id: I64
    day: I64  # days since 1970-01-01 (local day of the interval's start)
    energy: I64
    export: I64
    n: I64
    covered_s: I64
    max_energy: I64


def day_groups(meter_id: I64, ts_us: I64, interval_s: I64, energy: I64, export: I64) -> DayGroups:
    """Group readings by meter and Asia/Shanghai day of the interval's start (a reading ending at 00:00 belongs to
    the day before), as the row-by-row rollup does."""
    day = (ts_us // US - interval_s + LOCAL_OFFSET_S) // 86400
    order = np.lexsort((day, meter_id))
    m, d = meter_id[order], day[order]
    if len(order) == 0:
        e = np.zeros(0, dtype=np.int64)
        return DayGroups(e, e, e, e, e, e, e)
    starts = np.flatnonzero(np.concatenate(([True], (m[1:] != m[:-1]) | (d[1:] != d[:-1]))))
    en = energy[order]
    return DayGroups(
        meter_id=m[starts],
        day=d[starts],
        energy=np.add.reduceat(en, starts),
        export=np.add.reduceat(export[order], starts),
        n=np.diff(np.append(starts, len(order))).astype(np.int64),
        covered_s=np.add.reduceat(interval_s[order], starts),
        max_energy=np.maximum.reduceat(en, starts),
    )


# ---- formatting for bulk storage --------------------------------------------------------------------------------


def format_units(units: I64) -> list[str]:
    """0.0001-unit integers (0 ≤ v < 10**16) as decimal text with four places, as `str(q_kwh(value))` writes."""
    n = len(units)
    if n == 0:
        return []
    digits = (units + UNIT_LIMIT).astype("<U17").view(np.uint32).reshape(n, 17)  # "1" + 16 digits
    whole = units // 10_000
    nd = np.ones(n, dtype=np.int64)
    for k in range(1, 12):
        nd += whole >= 10**k
    j = np.arange(17)[None, :]
    ndc = nd[:, None]
    src = np.where(j < ndc, j + 13 - ndc, j + 12 - ndc)
    out = np.take_along_axis(digits, np.clip(src, 0, 16), axis=1)
    out[j == ndc] = 46
    out[j > ndc + 4] = 0
    return out.view("<U17").ravel().tolist()


def format_ts(ts_us: I64, sep: str = " ") -> list[str]:
    """µs since the epoch as `YYYY-MM-DD HH:MM:SS` (whole seconds; naive UTC text as Django stores it on SQLite)."""
    n = len(ts_us)
    if n == 0:
        return []
    text = np.datetime_as_string(ts_us.astype("datetime64[us]"), unit="s").astype("<U19")
    codes = text.view(np.uint32).reshape(n, 19)
    codes[:, 10] = ord(sep)
    return codes.view("<U19").ravel().tolist()


#: PostgreSQL binary COPY: the file header (signature, flags, no extension) and trailer
PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
PG_COPY_TRAILER = b"\xff\xff"
#: µs from 1970-01-01 to 2000-01-01 UTC (PostgreSQL's timestamp epoch)
PG_EPOCH_US = 946_684_800 * US
_NUMERIC: list[tuple[str, str] | tuple[str, str, tuple[int]]] = [
    ("len", ">i4"),
    ("ndigits", ">i2"),
    ("weight", ">i2"),
    ("sign", ">i2"),
    ("dscale", ">i2"),
    ("d", ">i2", (4,)),
]


def _reading_dtype(with_export: bool) -> np.dtype[np.void]:
    fields: list[tuple[str, object]] = [
        ("nfields", ">i2"),
        ("meter_len", ">i4"),
        ("meter_id", ">i8"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("interval_len", ">i4"),
        ("interval_s", ">i4"),
        ("energy", np.dtype(_NUMERIC)),
        ("cumulative_len", ">i4"),
        ("export", np.dtype(_NUMERIC) if with_export else ">i4"),
        ("export_cumulative_len", ">i4"),
        ("batch_len", ">i4"),
        ("batch_id", ">i8"),
    ]
    return np.dtype(fields)


def _numeric_fields(out: npt.NDArray[np.void], units: I64) -> None:
    """0.0001-unit integers (0 ≤ v < 10**16) as PostgreSQL binary numerics of four base-10000 digits, weight 2,
    display scale 4 (the server strips the leading and trailing zero digits, as when it reads the text form)."""
    out["len"] = 16
    out["ndigits"] = 4
    out["weight"] = 2
    out["sign"] = 0
    out["dscale"] = 4
    whole = units // 10_000
    digits = np.stack((whole // 10**8, whole // 10**4 % 10**4, whole % 10**4, units % 10_000), axis=1)
    out["d"] = digits


def copy_binary_readings(
    meter_id: I64, ts_us: I64, interval_s: I64, energy: I64, export: I64, has_export: Mask, batch_id: int
) -> bytes:
    """Readings as one PostgreSQL binary COPY stream (header, rows, trailer) for the columns (meter_id, ts,
    interval_s, energy, cumulative, export, export_cumulative, batch_id); cumulative and export_cumulative NULL,
    export NULL where has_export is False. Quantities in 0.0001 units (0 ≤ v < 10**16), times whole µs."""
    parts: list[npt.NDArray[np.void]] = []
    sizes: list[int] = []
    for with_export in (False, True):
        rows = np.flatnonzero(has_export == with_export)
        dtype = _reading_dtype(with_export)
        rec = np.zeros(len(rows), dtype=dtype)
        rec["nfields"] = 8
        rec["meter_len"] = 8
        rec["meter_id"] = meter_id[rows]
        rec["ts_len"] = 8
        rec["ts"] = ts_us[rows] - PG_EPOCH_US
        rec["interval_len"] = 4
        rec["interval_s"] = interval_s[rows]
        _numeric_fields(rec["energy"], energy[rows])
        rec["cumulative_len"] = -1
        if with_export:
            _numeric_fields(rec["export"], export[rows])
        else:
            rec["export"] = -1
        rec["export_cumulative_len"] = -1
        rec["batch_len"] = 8
        rec["batch_id"] = batch_id
        parts.append(rec)
        sizes.append(dtype.itemsize)
    plain, exported = parts
    if not len(exported) or not len(plain):
        body = (plain if len(plain) else exported).tobytes()
    else:  # rows in their order, each in its own layout
        size = np.where(has_export, sizes[1], sizes[0]).astype(np.int64)
        start = np.cumsum(size) - size
        buf = np.empty(int(size.sum()), dtype=np.uint8)
        for rows_of, rec, width in ((~has_export, plain, sizes[0]), (has_export, exported, sizes[1])):
            at = start[rows_of][:, None] + np.arange(width)[None, :]
            buf[at] = rec.view(np.uint8).reshape(len(rec), width)
        body = buf.tobytes()
    return PG_COPY_HEADER + body + PG_COPY_TRAILER


def units_decimal(v: int) -> Decimal:
    """A 0.0001-unit integer as a Decimal with four places."""
    return Decimal(v).scaleb(-4)


# ---- reading a chunk --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellColumns:
    """The fields of a chunk of rows as arrays. Where `ok` is False the row is not in the common form and
    `validate.parse_row` reads it; elsewhere the arrays hold what parse_row would give."""

    ok: Mask
    serials: list[str]  # distinct serial numbers (stripped)
    serial_code: I64  # index into serials
    units: list[str]  # distinct units (stripped, lower case, ³ → 3)
    unit_code: I64
    ts_us: I64
    minutes: I64  # 0: not given
    energy: I64  # 0.0001 units, as sent (before the unit factor)
    export: I64
    has_export: Mask


def _distinct(cells: Sequence[str], how: str) -> tuple[Mask, list[str], I64]:
    """Distinct cell values, each row's index into them, and whether the normalised value is non-empty."""
    n = len(cells)
    lens = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    if n == 0:
        return np.zeros(0, dtype=np.bool_), [], np.zeros(0, dtype=np.int64)
    width = max(1, min(int(lens.max()), 256))
    arr = np.array(cells, dtype=f"<U{width}") if int(lens.max()) <= width else _cut(cells, lens, width)
    uniq, inv = np.unique(arr, return_inverse=True)
    values: list[str] = uniq.tolist()
    ulens = np.array([len(v) for v in values], dtype=np.int64)
    normed = [v.strip() if how == "strip" else v.strip().lower().replace("³", "3") for v in values]
    nonempty = np.array([bool(v) for v in normed], dtype=np.bool_)
    inv = inv.reshape(-1).astype(np.int64)
    # equal length guards against cells cut above or ending in NUL (which fixed-width strings drop)
    ok = nonempty[inv] & (ulens[inv] == lens)
    return ok, normed, inv


def read_cells(chunk: CellChunk) -> CellColumns:
    """Read every field of a chunk on arrays (see CellColumns)."""
    n = len(chunk.rows)
    none: Sequence[str] = ("",) * n

    def col(name: str) -> Sequence[str]:
        c = chunk.column(name)
        return none if c is None else c

    # a field the file does not have reads as empty cells everywhere, without looking at them
    def yes() -> Mask:
        return np.ones(n, dtype=np.bool_)

    def empty(name: str) -> Mask:
        c = chunk.column(name)
        return yes() if c is None else is_empty(c)

    def quantities(name: str) -> tuple[Mask, Mask, I64]:
        c = chunk.column(name)
        return (yes(), ~yes(), np.zeros(n, dtype=np.int64)) if c is None else parse_quantities(c)

    def minutes_of(name: str) -> tuple[Mask, I64]:
        c = chunk.column(name)
        return (yes(), np.zeros(n, dtype=np.int64)) if c is None else parse_minutes(c)

    ok = ~chunk.ragged()
    s_ok, serials, serial_code = _distinct(col("meter_serial"), "strip")
    u_ok, units, unit_code = _distinct(col("unit"), "unit")
    tz_empty = empty("tz")
    t_ok, ts_us = parse_timestamps(col("timestamp"), tz_empty)
    e_ok, e_present, energy = quantities("energy")
    x_ok, x_present, export = quantities("export")
    m_ok, minutes = minutes_of("interval_minutes")
    ok &= s_ok & u_ok & t_ok & e_ok & e_present & x_ok & m_ok
    ok &= empty("cumulative") & empty("export_cumulative")
    return CellColumns(
        ok=ok,
        serials=serials,
        serial_code=serial_code,
        units=units,
        unit_code=unit_code,
        ts_us=ts_us,
        minutes=minutes,
        energy=energy,
        export=export,
        has_export=x_present,
    )


# ---- the checks of validate._validate_one, for interval readings of distinct (meter, time) ----------------------


def unit_exponent(factor: Decimal | None) -> int | None:
    """k when a unit factor is 10**k with k in (0, -3, 3) (kWh, Wh, MWh; m3, l), else None (row by row)."""
    if factor is None:
        return None
    for k in (0, -3, 3):
        if factor == Decimal(10) ** k:
            return k
    return None


NO_EXPONENT = 99


@dataclass(frozen=True)
class MeterTable:
    """What the array checks need of the meters of a chunk, one entry per meter."""

    specs: list[MeterSpec]
    meter_id: I64
    installed_us: I64
    removed_us: I64
    supports_export: Mask
    default_interval_s: I64


def meter_table(specs: Sequence[MeterSpec]) -> MeterTable:
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    return MeterTable(
        specs=list(specs),
        meter_id=np.array([s.meter_id for s in specs], dtype=np.int64),
        installed_us=np.array(
            [lo if s.installed_at is None else to_us(s.installed_at) for s in specs], dtype=np.int64
        ),
        removed_us=np.array(
            [hi if s.removed_at is None else to_us(s.removed_at) for s in specs], dtype=np.int64
        ),
        supports_export=np.array([s.supports_export for s in specs], dtype=np.bool_),
        default_interval_s=np.array([s.default_interval_s for s in specs], dtype=np.int64),
    )


@dataclass(frozen=True)
class Checked:
    """Interval readings after the array checks: `flagged` rows go row by row; the others are accepted with
    these values (canonical unit, stored precision)."""

    flagged: Mask
    interval_s: I64
    energy: I64
    export: I64


def check_interval_rows(
    table: MeterTable,
    pos: I64,
    exponent: I64,
    ts_us: I64,
    minutes: I64,
    energy: I64,
    export: I64,
    has_export: Mask,
    latest_us: int,
) -> Checked:
    """The checks of `validate._validate_one` for interval readings (no register values) whose (meter, time)
    occurs once in the chunk and is not stored yet, in the same order of meaning: unit, future, after removal,
    export not metered, negative values, before installation, subject rules. A row that any of them might refuse
    is flagged; `pos` is each row's index into `table`, `exponent` its unit factor exponent (NO_EXPONENT: none)."""
    flagged = exponent == NO_EXPONENT
    flagged |= ts_us > latest_us
    flagged |= ts_us > table.removed_us[pos]
    flagged |= has_export & ~table.supports_export[pos]
    e_ok, energy = scale(energy, exponent)
    x_ok, export = scale(export, exponent)
    flagged |= ~e_ok | ~x_ok
    export = np.where(has_export, export, 0).astype(np.int64)
    interval_s = np.where(minutes > 0, minutes * 60, table.default_interval_s[pos]).astype(np.int64)
    flagged |= ts_us - interval_s * US < table.installed_us[pos]
    order = np.argsort(pos, kind="stable")
    sorted_pos = pos[order]
    bounds = np.flatnonzero(np.diff(sorted_pos)) + 1
    starts = np.concatenate(([0], bounds)).astype(np.int64)
    ends = np.concatenate((bounds, [len(order)])).astype(np.int64)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if a == b:
            continue
        rows = order[a:b]
        rules = table.specs[int(sorted_pos[a])].rules
        if not rules:
            continue
        cols = CandidateColumns(ts_us[rows], interval_s[rows], energy[rows], export[rows], has_export[rows])
        hit = np.zeros(b - a, dtype=np.bool_)
        for rule in rules:
            flag = getattr(rule, "flag", None)
            if flag is None:  # a rule without an array form: every reading of this meter goes row by row
                hit[:] = True
                break
            hit |= np.asarray(flag(cols), dtype=np.bool_)
        flagged[rows] |= hit
    return Checked(flagged=flagged, interval_s=interval_s, energy=energy, export=export)
