"""Cash flows of a rooftop PV investment: yearly generation with degradation, self-consumed and exported energy,
avoided emissions turned into whole units with a carried remainder (domain.md §2.6), revenue, O&M, and the
investor's measures: cumulative cash flow, payback year, net present value and internal rate of return.

Pure arithmetic on Decimal (CNY, kWh, kg CO2e); no Django. Every number comes from `Assumptions`, which the
platform fills from versioned parameters and the user may edit per calculation. Revenue from units is indicative,
never a quote (domain.md §3.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

#: precision of stored/displayed results
KWH_Q = Decimal("0.01")
CNY_Q = Decimal("0.01")
KG_Q = Decimal("0.001")
RATE_Q = Decimal("0.000001")
YEARS_Q = Decimal("0.01")

#: IRR search: bracket and tolerance on the rate (bisection on NPV, which falls as the rate rises for an
#: investment whose only negative flow is the year-0 outlay)
IRR_LOW = Decimal("-0.99")
IRR_HIGH_MAX = Decimal("100")
IRR_TOLERANCE = Decimal("0.0000001")

# reason codes of `check_assumptions` (stable snake_case; the services translate them)
NOT_POSITIVE = "not_positive"
NEGATIVE = "negative"
OUT_OF_RANGE = "out_of_range"
NOT_WHOLE = "not_whole"


@dataclass(frozen=True)
class Assumptions:
    """Inputs of one calculation. Shares and rates are fractions (0.05 = 5 %); money in CNY."""

    capacity_kwp: Decimal
    specific_yield_kwh_per_kwp: Decimal  # first-year AC generation per kWp
    self_consumption_share: Decimal  # share of generation used on site
    tariff_cny_per_kwh: Decimal  # price of grid electricity the self-consumed kWh replaces
    feed_in_cny_per_kwh: Decimal  # price paid for exported kWh
    grid_factor_kg_per_kwh: Decimal  # EF_CM of the methodology in force (domain.md §2.3–2.4)
    unit_price_cny_per_t: Decimal  # indicative PHCER price (domain.md §3.5)
    capex_cny_per_kwp: Decimal
    om_cny_per_kwp_year: Decimal
    degradation_per_year: Decimal  # output falls by this fraction each year after the first
    lifetime_years: int
    discount_rate: Decimal


@dataclass(frozen=True)
class Problem:
    """An assumption outside its allowed range: the field, a reason code and the allowed bounds."""

    field: str
    code: str
    low: Decimal | None = None
    high: Decimal | None = None


#: allowed ranges (inclusive low/high unless the flag says open): field → (low, high, low_open, high_open)
RANGES: dict[str, tuple[Decimal, Decimal, bool, bool]] = {
    "capacity_kwp": (Decimal(0), Decimal(6000), True, True),  # domain.md §2.2: 0 < kWp < 6 MW
    "specific_yield_kwh_per_kwp": (Decimal(0), Decimal(2500), True, False),  # clear sky ≈ 1,818 (§4.4)
    "self_consumption_share": (Decimal(0), Decimal(1), False, False),
    "tariff_cny_per_kwh": (Decimal(0), Decimal(10), False, False),
    "feed_in_cny_per_kwh": (Decimal(0), Decimal(10), False, False),
    "grid_factor_kg_per_kwh": (Decimal(0), Decimal(2), False, False),
    "unit_price_cny_per_t": (Decimal(0), Decimal(1000), False, False),
    "capex_cny_per_kwp": (Decimal(0), Decimal(50000), True, False),
    "om_cny_per_kwp_year": (Decimal(0), Decimal(5000), False, False),
    "degradation_per_year": (Decimal(0), Decimal("0.2"), False, True),
    "lifetime_years": (Decimal(1), Decimal(50), False, False),
    "discount_rate": (Decimal("-0.5"), Decimal(1), True, True),
}


def check_assumptions(a: Assumptions) -> list[Problem]:
    """Every assumption outside its range (empty when all are usable)."""
    problems: list[Problem] = []
    for name, (low, high, low_open, high_open) in RANGES.items():
        value = Decimal(getattr(a, name))
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above:
            problems.append(Problem(name, OUT_OF_RANGE, low, high))
    return problems


@dataclass(frozen=True)
class YearRow:
    """One year of the project. Year 0 is the investment; years 1…n are operation."""

    year: int
    generation_kwh: Decimal
    self_kwh: Decimal
    export_kwh: Decimal
    er_kg: Decimal
    units: int
    carry_kg: Decimal
    revenue_self: Decimal
    revenue_export: Decimal
    revenue_units: Decimal
    om: Decimal
    net: Decimal
    cumulative: Decimal
    discounted: Decimal


@dataclass(frozen=True)
class CashflowResult:
    """Year rows and the investor's measures. `payback_year` is the first year whose cumulative cash flow is
    ≥ 0 (None if never within the lifetime); `payback_years` interpolates within that year."""

    capex: Decimal
    rows: tuple[YearRow, ...]
    npv: Decimal
    irr: Decimal | None
    payback_year: int | None
    payback_years: Decimal | None

    @property
    def total_generation_kwh(self) -> Decimal:
        return sum((r.generation_kwh for r in self.rows), Decimal(0))

    @property
    def total_er_kg(self) -> Decimal:
        return sum((r.er_kg for r in self.rows), Decimal(0))

    @property
    def total_units(self) -> int:
        return sum(r.units for r in self.rows)

    @property
    def total_net(self) -> Decimal:
        return sum((r.net for r in self.rows), Decimal(0))

    @property
    def first_year(self) -> YearRow | None:
        return next((r for r in self.rows if r.year == 1), None)


def _q(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def npv(rate: Decimal, flows: Sequence[Decimal]) -> Decimal:
    """Net present value of flows[t] at the end of year t (flows[0] undiscounted)."""
    base = Decimal(1) + rate
    total = Decimal(0)
    factor = Decimal(1)
    for t, cf in enumerate(flows):
        if t:
            factor *= base
        total += cf / factor
    return total


def irr(flows: Sequence[Decimal]) -> Decimal | None:
    """The rate at which NPV = 0, by bisection within [-0.99, 100]; None when NPV does not change sign there
    (e.g. the project never earns its outlay back)."""
    low, high = IRR_LOW, Decimal(1)
    f_low = npv(low, flows)
    f_high = npv(high, flows)
    while f_high > 0 and high < IRR_HIGH_MAX:
        high *= 2
        f_high = npv(high, flows)
    if f_low == 0:
        return _q(low, RATE_Q)
    if (f_low > 0) == (f_high > 0):
        return None
    while high - low > IRR_TOLERANCE:
        mid = (low + high) / 2
        f_mid = npv(mid, flows)
        if f_mid == 0:
            return _q(mid, RATE_Q)
        if (f_mid > 0) == (f_low > 0):
            low, f_low = mid, f_mid
        else:
            high = mid
    return _q((low + high) / 2, RATE_Q)


def compute(a: Assumptions) -> CashflowResult:
    """Year-by-year cash flows of the project (year 0 = −capex) and NPV, IRR and payback.

    generation_y = kWp × yield × (1 − degradation)^(y−1); self = generation × share; export = the rest;
    ER_kg = generation × EF; units_y = floor((ER_kg + carry) / 1000), the remainder carried (domain.md §2.6);
    net_y = self × tariff + export × feed-in + units × price − kWp × O&M.
    Raises ValueError when an assumption is out of range (see `check_assumptions`).
    """
    problems = check_assumptions(a)
    if problems:
        raise ValueError("assumptions out of range: " + ", ".join(p.field for p in problems))
    if int(a.lifetime_years) != a.lifetime_years:
        raise ValueError("lifetime_years must be whole")
    capex = _q(a.capacity_kwp * a.capex_cny_per_kwp, CNY_Q)
    om = _q(a.capacity_kwp * a.om_cny_per_kwp_year, CNY_Q)
    rows: list[YearRow] = []
    zero = Decimal(0)
    cumulative = -capex
    rows.append(
        YearRow(0, zero, zero, zero, zero, 0, zero, zero, zero, zero, zero, -capex, cumulative, -capex)
    )
    flows = [-capex]
    carry = Decimal(0)
    keep = Decimal(1) - a.degradation_per_year
    discount = Decimal(1)
    payback_year: int | None = None
    payback_years: Decimal | None = None
    for year in range(1, a.lifetime_years + 1):
        generation = _q(a.capacity_kwp * a.specific_yield_kwh_per_kwp * keep ** (year - 1), KWH_Q)
        self_kwh = _q(generation * a.self_consumption_share, KWH_Q)
        export_kwh = generation - self_kwh
        er_kg = _q(generation * a.grid_factor_kg_per_kwh, KG_Q)
        pooled = er_kg + carry
        units = int((pooled / 1000).to_integral_value(rounding=ROUND_FLOOR))
        carry = pooled - units * 1000
        r_self = _q(self_kwh * a.tariff_cny_per_kwh, CNY_Q)
        r_export = _q(export_kwh * a.feed_in_cny_per_kwh, CNY_Q)
        r_units = _q(units * a.unit_price_cny_per_t, CNY_Q)
        net = r_self + r_export + r_units - om
        previous = cumulative
        cumulative = previous + net
        discount *= Decimal(1) + a.discount_rate
        if payback_year is None and cumulative >= 0 and net > 0:
            payback_year = year
            payback_years = _q(Decimal(year - 1) + (-previous) / net, YEARS_Q)
        rows.append(
            YearRow(
                year,
                generation,
                self_kwh,
                export_kwh,
                er_kg,
                units,
                carry,
                r_self,
                r_export,
                r_units,
                om,
                net,
                cumulative,
                _q(net / discount, CNY_Q),
            )
        )
        flows.append(net)
    return CashflowResult(
        capex=capex,
        rows=tuple(rows),
        npv=_q(npv(a.discount_rate, flows), CNY_Q),
        irr=irr(flows),
        payback_year=payback_year,
        payback_years=payback_years,
    )
