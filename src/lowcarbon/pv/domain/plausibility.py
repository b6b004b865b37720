"""Plausibility checks of a PV system's monthly generation: clear-sky ceiling and specific-yield bands.

Implements check steps 4 and 5 of domain.md §4.6 on monthly data: the clear-sky bound of §4.4 and the monthly and
annual bands of §4.2. Every threshold is passed in with the version of the parameter record it came from, so a
finding can say which rule produced it. Generation before the grid-connection date is refused at ingest (step 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

#: Precision of the value and limit of a finding (the stored precision of energy, 0.1 Wh).
VALUE_Q = Decimal("0.0001")
ZERO = Decimal("0.0000")


class Severity(StrEnum):
    """How a finding counts: a warning needs a reviewer note, a reject excludes the month (domain.md §4.6)."""

    WARN = "warn"
    REJECT = "reject"


class Code(StrEnum):
    """Stable reason codes of plausibility findings (domain.md §4.2, §4.4)."""

    ABOVE_CLEAR_SKY = "above_clear_sky"
    MONTHLY_YIELD_HIGH = "monthly_yield_high"
    MONTHLY_YIELD_REJECT = "monthly_yield_reject"
    ANNUAL_YIELD_LOW = "annual_yield_low"
    ANNUAL_YIELD_HIGH = "annual_yield_high"
    ANNUAL_YIELD_REJECT = "annual_yield_reject"
    ZERO_MONTH = "zero_month"


#: Unit of a finding's value and limit, by code.
UNITS: dict[Code, str] = {
    Code.ABOVE_CLEAR_SKY: "kWh",
    Code.MONTHLY_YIELD_HIGH: "kWh/kWp",
    Code.MONTHLY_YIELD_REJECT: "kWh/kWp",
    Code.ANNUAL_YIELD_LOW: "kWh/kWp",
    Code.ANNUAL_YIELD_HIGH: "kWh/kWp",
    Code.ANNUAL_YIELD_REJECT: "kWh/kWp",
    Code.ZERO_MONTH: "kWh",
}


@dataclass(frozen=True)
class Threshold:
    """One threshold value with the key and version of the parameter record it was read from (DESIGN.md §3)."""

    key: str
    value: Decimal
    version: int


@dataclass(frozen=True)
class Bands:
    """The thresholds of the checks (domain.md §4.2 bands, §4.4 clear-sky margin), each a versioned parameter."""

    clear_sky_margin: Threshold
    monthly_yield_warn: Threshold
    monthly_yield_reject: Threshold
    annual_yield_warn_low: Threshold
    annual_yield_warn_high: Threshold
    annual_yield_reject: Threshold

    def versions(self, *thresholds: Threshold) -> dict[str, int]:
        """{parameter key: version} of the given thresholds, for storing with a finding."""
        return {t.key: t.version for t in thresholds}


@dataclass(frozen=True)
class Finding:
    """A failed check for one month: code, severity, the value seen, the limit it broke and the parameter
    versions behind the limit (domain.md §4.2, §4.4)."""

    code: Code
    severity: Severity
    month: date
    value: Decimal
    limit: Decimal
    parameter_versions: Mapping[str, int]

    @property
    def unit(self) -> str:
        """Unit of value and limit (kWh for energies, kWh/kWp for specific yields)."""
        return UNITS[self.code]


def _q(value: Decimal) -> Decimal:
    """Round a value or limit to the stored precision, half up."""
    return value.quantize(VALUE_Q, rounding=ROUND_HALF_UP)


def _month_after(d: date) -> date:
    """First day of the month after d."""
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """First days of every month from first to last inclusive (both first days of months)."""
    out: list[date] = []
    m = first.replace(day=1)
    while m <= last:
        out.append(m)
        m = _month_after(m)
    return out


def check_month(
    month: date,
    generation_kwh: Decimal,
    capacity_kwp: Decimal,
    clear_sky_kwh_per_kwp: Decimal | None,
    bands: Bands,
) -> list[Finding]:
    """Checks of a single month: clear-sky ceiling (reject, domain.md §4.4) and monthly specific-yield band
    (warn above the warn line, reject above the reject line, §4.2); only the stronger band finding is returned."""
    findings: list[Finding] = []
    if clear_sky_kwh_per_kwp is not None:
        limit = bands.clear_sky_margin.value * clear_sky_kwh_per_kwp * capacity_kwp
        if generation_kwh > limit:
            findings.append(
                Finding(
                    Code.ABOVE_CLEAR_SKY,
                    Severity.REJECT,
                    month,
                    _q(generation_kwh),
                    _q(limit),
                    bands.versions(bands.clear_sky_margin),
                )
            )
    specific = generation_kwh / capacity_kwp
    if specific > bands.monthly_yield_reject.value:
        findings.append(
            Finding(
                Code.MONTHLY_YIELD_REJECT,
                Severity.REJECT,
                month,
                _q(specific),
                _q(bands.monthly_yield_reject.value),
                bands.versions(bands.monthly_yield_reject),
            )
        )
    elif specific > bands.monthly_yield_warn.value:
        findings.append(
            Finding(
                Code.MONTHLY_YIELD_HIGH,
                Severity.WARN,
                month,
                _q(specific),
                _q(bands.monthly_yield_warn.value),
                bands.versions(bands.monthly_yield_warn),
            )
        )
    return findings


def check_year(year: int, annual_kwh: Decimal, capacity_kwp: Decimal, bands: Bands) -> Finding | None:
    """Annual specific-yield band of a complete calendar year (domain.md §4.2): reject above the reject line,
    warn outside the warn band; the finding is attached to December of that year."""
    december = date(year, 12, 1)
    specific = annual_kwh / capacity_kwp
    if specific > bands.annual_yield_reject.value:
        t, code, severity = bands.annual_yield_reject, Code.ANNUAL_YIELD_REJECT, Severity.REJECT
    elif specific > bands.annual_yield_warn_high.value:
        t, code, severity = bands.annual_yield_warn_high, Code.ANNUAL_YIELD_HIGH, Severity.WARN
    elif specific < bands.annual_yield_warn_low.value:
        t, code, severity = bands.annual_yield_warn_low, Code.ANNUAL_YIELD_LOW, Severity.WARN
    else:
        return None
    return Finding(code, severity, december, _q(specific), _q(t.value), bands.versions(t))


def check_system(
    generation_kwh: Mapping[date, Decimal],
    capacity_kwp: Decimal,
    clear_sky_kwh_per_kwp: Mapping[date, Decimal],
    bands: Bands,
) -> list[Finding]:
    """All monthly and annual findings of one system (domain.md §4.2, §4.4, check order §4.6 steps 4–5).

    `generation_kwh` maps first days of months with data to metered generation; `clear_sky_kwh_per_kwp` maps
    first days of months to the clear-sky yield per kWp (months without a bound skip the ceiling check). A month
    between the first and last month with data that has no or zero generation is a `zero_month` warning; annual
    bands apply only to calendar years with data for all 12 months."""
    if capacity_kwp <= 0:
        raise ValueError(f"capacity must be positive, got {capacity_kwp}")
    if not generation_kwh:
        return []
    months = sorted(generation_kwh)
    if any(m.day != 1 for m in months):
        raise ValueError("generation must be keyed by the first day of each month")
    if any(v < 0 for v in generation_kwh.values()):
        raise ValueError("generation must not be negative")
    findings: list[Finding] = []
    for month in months_between(months[0], months[-1]):
        energy = generation_kwh.get(month)
        if energy is None or energy == 0:
            findings.append(Finding(Code.ZERO_MONTH, Severity.WARN, month, ZERO, ZERO, {}))
        if energy is not None:
            findings.extend(check_month(month, energy, capacity_kwp, clear_sky_kwh_per_kwp.get(month), bands))
    for year in sorted({m.year for m in months}):
        in_year = [generation_kwh[m] for m in months if m.year == year]
        if len(in_year) == 12:
            annual = check_year(year, sum(in_year, Decimal(0)), capacity_kwp, bands)
            if annual is not None:
                findings.append(annual)
    findings.sort(key=lambda f: (f.month, f.code))
    return findings


def affected_months(changed: set[date], data_months: set[date]) -> set[date]:
    """Months whose findings can change when the data of `changed` months changes: every month of the calendar
    years touched (annual bands sit on December, §4.2) and the gaps to the neighbouring months with data (a new
    month can turn a gap into zero months)."""
    out: set[date] = set()
    known = sorted(data_months | changed)
    for m in changed:
        out.update(months_between(date(m.year, 1, 1), date(m.year, 12, 1)))
        before = [d for d in known if d < m]
        after = [d for d in known if d > m]
        out.update(months_between(before[-1] if before else m, after[0] if after else m))
    return out
