"""Names and bounds of the range partitions of the large time-series tables (pure: no database).

On PostgreSQL `metering_reading` is partitioned by RANGE (ts) into one partition per calendar month and
`metering_dailyrollup` by RANGE (day) into one partition per calendar year (DESIGN.md §5).

Reading months are **UTC** months: `ts` is a timestamptz (the end of the interval), and a partition holds
[first instant of the month in UTC, first instant of the next month in UTC). The bounds are written with an explicit
`+00` offset so they do not depend on the session's time zone. A reading ending in the first eight hours of a local
(Asia/Shanghai, UTC+8) month therefore lives in the previous month's partition; nothing relies on partitions
matching local months (rollups, not partitions, carry the local calendar). Daily-rollup years are years of the
local `day` column (a date, no time zone).

Partition names: `metering_reading_p2026_01` (month), `metering_dailyrollup_p2026` (year).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

Unit = Literal["month", "year"]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RangePartitioning:
    """A table partitioned by RANGE on one column into calendar months or years."""

    table: str
    column: str
    unit: Unit
    #: the column is a timestamptz (bounds are UTC instants) rather than a date
    timestamptz: bool = False

    def period(self, value: date | datetime) -> date:
        """First day of the month or year holding `value` (an aware datetime is taken in UTC)."""
        if isinstance(value, datetime):
            value = (value.astimezone(UTC) if value.tzinfo is not None else value).date()
        return date(value.year, value.month, 1) if self.unit == "month" else date(value.year, 1, 1)

    def periods(self, values: Iterable[date | datetime]) -> set[date]:
        return {self.period(v) for v in values}

    def following(self, start: date) -> date:
        """First day of the period after the one starting on `start`."""
        if self.unit == "year":
            return date(start.year + 1, 1, 1)
        return date(start.year + (start.month == 12), start.month % 12 + 1, 1)

    def name(self, start: date) -> str:
        if self.unit == "year":
            return f"{self.table}_p{start.year:04d}"
        return f"{self.table}_p{start.year:04d}_{start.month:02d}"

    def literal(self, start: date) -> str:
        """SQL literal of the lower bound of the period starting on `start`."""
        if self.timestamptz:
            return f"'{start.isoformat()} 00:00:00+00'"
        return f"'{start.isoformat()}'"

    def create_sql(self, start: date) -> str:
        """The statement creating the partition of the period starting on `start` (if it is not there)."""
        start = self.period(start)
        return (
            f'CREATE TABLE IF NOT EXISTS "{self.name(start)}" PARTITION OF "{self.table}" '
            f"FOR VALUES FROM ({self.literal(start)}) TO ({self.literal(self.following(start))})"
        )

    def ahead(self, start: date, n: int) -> list[date]:
        """The n periods from the one holding `start` on."""
        out = [self.period(start)]
        while len(out) < n:
            out.append(self.following(out[-1]))
        return out[:n]


READINGS = RangePartitioning("metering_reading", "ts", "month", timestamptz=True)
DAILY_ROLLUPS = RangePartitioning("metering_dailyrollup", "day", "year")
#: every range-partitioned table, by name
PARTITIONED: dict[str, RangePartitioning] = {p.table: p for p in (READINGS, DAILY_ROLLUPS)}


def months_of_us(ts_us: I64) -> list[date]:
    """The distinct UTC months (first days) of times given in microseconds since the epoch."""
    if not len(ts_us):
        return []
    months = np.unique(ts_us.astype("datetime64[us]").astype("datetime64[M]"))
    return [date.fromisoformat(f"{m}-01") for m in months.astype(str).tolist()]


def local_years_of_us(ts_us: I64, offset: timedelta, back: timedelta) -> list[date]:
    """The distinct years (first days) of the local days (UTC + `offset`) from `back` before each time up to it: a
    superset of the daily-rollup years that a reading of interval up to `back` ending at that time can touch."""
    if not len(ts_us):
        return []
    local = ts_us + offset // timedelta(microseconds=1)
    both = np.concatenate((local, local - back // timedelta(microseconds=1)))
    years = np.unique(both.astype("datetime64[us]").astype("datetime64[Y]"))
    return [date(int(y), 1, 1) for y in years.astype(str).tolist()]
