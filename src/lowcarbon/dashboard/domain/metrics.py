"""Month arithmetic, data completeness and the pro-rated physical bound shown on the dashboards."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

_PCT = Decimal("0.1")


def month_start(d: date) -> date:
    """First day of the month of `d`."""
    return d.replace(day=1)


def add_months(first: date, n: int) -> date:
    """First day of the month n months after the month of `first` (n may be negative)."""
    idx = first.year * 12 + first.month - 1 + n
    return date(idx // 12, idx % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    """First days of the months from the month of `first` to the month of `last`, inclusive."""
    out: list[date] = []
    cur, end = month_start(first), month_start(last)
    while cur <= end:
        out.append(cur)
        cur = add_months(cur, 1)
    return out


def days_in_month(first: date) -> int:
    return calendar.monthrange(first.year, first.month)[1]


def parse_month(text: str) -> date:
    """'YYYY-MM' → first day of that month; ValueError when malformed."""
    parts = (text or "").strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise ValueError(f"not a month: {text!r}")
    return date(int(parts[0]), int(parts[1]), 1)


@dataclass(frozen=True)
class Window:
    """The part of a month a meter should have reported over: from its start (or the meter's first day) to now
    (or the month's end)."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> int:
        return max(0, int((self.end - self.start).total_seconds()))

    @property
    def days(self) -> int:
        """Whole or partial local days in the window."""
        if self.seconds == 0:
            return 0
        return (self.end - timedelta(microseconds=1)).date().toordinal() - self.start.date().toordinal() + 1


def expected_window(
    month_first: datetime, month_end: datetime, now: datetime, since: datetime | None
) -> Window:
    """The reporting window of a meter in a month, all times in the same (local) zone."""
    start = max(month_first, since) if since is not None else month_first
    end = min(month_end, now)
    return Window(start, max(start, end))


def share(part: Decimal | int | float, whole: Decimal | int | float) -> Decimal | None:
    """part / whole as a percentage to one decimal, capped at 100; None when nothing was expected."""
    w = Decimal(str(whole))
    if w <= 0:
        return None
    pct = Decimal(str(part)) * 100 / w
    return min(Decimal(100), max(Decimal(0), pct)).quantize(_PCT, ROUND_HALF_UP)


@dataclass(frozen=True)
class Completeness:
    """Data completeness of one meter or system over a window: share of the expected interval time covered by
    accepted readings (hourly completeness) and share of days with any reading (daily completeness)."""

    covered_s: int
    expected_s: int
    days_with_data: int
    days_expected: int

    @property
    def interval_pct(self) -> Decimal | None:
        return share(min(self.covered_s, self.expected_s), self.expected_s)

    @property
    def daily_pct(self) -> Decimal | None:
        return share(min(self.days_with_data, self.days_expected), self.days_expected)


def combine(items: Iterable[Completeness]) -> Completeness:
    """Completeness of several meters together (sums of covered and expected time and days)."""
    cov = exp = dd = de = 0
    for c in items:
        cov += min(c.covered_s, c.expected_s)
        exp += c.expected_s
        dd += min(c.days_with_data, c.days_expected)
        de += c.days_expected
    return Completeness(cov, exp, dd, de)


def prorated_bound(month_bound_kwh: Decimal, elapsed_s: int, month_s: int) -> Decimal:
    """The clear-sky bound of the part of a month elapsed so far (a linear share of the month's bound)."""
    if month_s <= 0:
        return Decimal(0)
    frac = Decimal(min(max(elapsed_s, 0), month_s)) / Decimal(month_s)
    return (month_bound_kwh * frac).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True)
class DayPoint:
    """One market day as published by the market statistics."""

    day: date
    open: Decimal | None
    close: Decimal | None
    volume_t: int
    value_cny: Decimal
    trades: int


@dataclass(frozen=True)
class MonthPoint:
    """Market figures of a month: volume, value, number of trades, the last close of the month and the
    volume-weighted average price (None without trades)."""

    month: date
    volume_t: int
    value_cny: Decimal
    trades: int
    close: Decimal | None

    @property
    def average_price(self) -> Decimal | None:
        if self.volume_t <= 0:
            return None
        return (self.value_cny / self.volume_t).quantize(Decimal("0.01"), ROUND_HALF_UP)


def monthly_market(days: Iterable[DayPoint]) -> list[MonthPoint]:
    """Daily market statistics rolled up into months (sums; close = last day's close with a close)."""
    acc: dict[date, list[DayPoint]] = {}
    for d in sorted(days, key=lambda x: x.day):
        acc.setdefault(month_start(d.day), []).append(d)
    out = []
    for m, ds in sorted(acc.items()):
        closes = [d.close for d in ds if d.close is not None]
        out.append(
            MonthPoint(
                month=m,
                volume_t=sum(d.volume_t for d in ds),
                value_cny=sum((d.value_cny for d in ds), Decimal(0)),
                trades=sum(d.trades for d in ds),
                close=closes[-1] if closes else None,
            )
        )
    return out
