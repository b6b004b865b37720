"""Rooftop potential of a building or an industrial park: usable roof area → installable kWp (packing density in
m² per kWp) → expected kWh per year (specific yield of the roof's orientation) → avoided tCO2e per year
(generation × EF_CM, domain.md §2.3) and the investment (kWp × capex per kWp). Pure Decimal arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

KWP_Q = Decimal("0.01")
KWH_Q = Decimal("1")
T_Q = Decimal("0.01")
CNY_Q = Decimal("1")

#: reason codes
AREA_NOT_POSITIVE = "area_not_positive"
AREA_TOO_LARGE = "area_too_large"
PACKING_OUT_OF_RANGE = "packing_out_of_range"
TILT_OUT_OF_RANGE = "tilt_out_of_range"
AZIMUTH_OUT_OF_RANGE = "azimuth_out_of_range"

#: bounds: one roof at most 1 km² of usable area; 2–30 m² per kWp covers flush-mounted to widely spaced rows
MAX_AREA_M2 = Decimal(1_000_000)
PACKING_MIN = Decimal(2)
PACKING_MAX = Decimal(30)


@dataclass(frozen=True)
class Roof:
    """One building's usable roof: name, area (m²) and the orientation of the modules on it."""

    name: str
    area_m2: Decimal
    tilt_deg: Decimal
    azimuth_deg: Decimal


@dataclass(frozen=True)
class RoofProblem:
    """A refused roof row (index from 0) or parameter: field and reason code."""

    row: int | None
    field: str
    code: str


@dataclass(frozen=True)
class RoofEstimate:
    """What one roof can carry and yield per year."""

    roof: Roof
    capacity_kwp: Decimal
    specific_yield_kwh_per_kwp: Decimal
    annual_kwh: Decimal
    annual_t: Decimal
    investment_cny: Decimal


@dataclass(frozen=True)
class ParkEstimate:
    """Every roof of a building or park and their sums."""

    roofs: tuple[RoofEstimate, ...]

    @property
    def area_m2(self) -> Decimal:
        return sum((r.roof.area_m2 for r in self.roofs), Decimal(0))

    @property
    def capacity_kwp(self) -> Decimal:
        return sum((r.capacity_kwp for r in self.roofs), Decimal(0))

    @property
    def annual_kwh(self) -> Decimal:
        return sum((r.annual_kwh for r in self.roofs), Decimal(0))

    @property
    def annual_t(self) -> Decimal:
        return sum((r.annual_t for r in self.roofs), Decimal(0))

    @property
    def investment_cny(self) -> Decimal:
        return sum((r.investment_cny for r in self.roofs), Decimal(0))


def check_roofs(roofs: Sequence[Roof], packing_m2_per_kwp: Decimal) -> list[RoofProblem]:
    """Every refused row and parameter; empty when the estimate can run."""
    problems: list[RoofProblem] = []
    if not PACKING_MIN <= packing_m2_per_kwp <= PACKING_MAX:
        problems.append(RoofProblem(None, "packing_m2_per_kwp", PACKING_OUT_OF_RANGE))
    for i, r in enumerate(roofs):
        if r.area_m2 <= 0:
            problems.append(RoofProblem(i, "area_m2", AREA_NOT_POSITIVE))
        elif r.area_m2 > MAX_AREA_M2:
            problems.append(RoofProblem(i, "area_m2", AREA_TOO_LARGE))
        if not Decimal(0) <= r.tilt_deg <= Decimal(90):
            problems.append(RoofProblem(i, "tilt_deg", TILT_OUT_OF_RANGE))
        if not Decimal(0) <= r.azimuth_deg <= Decimal(360):
            problems.append(RoofProblem(i, "azimuth_deg", AZIMUTH_OUT_OF_RANGE))
    return problems


def capacity_from_area(area_m2: Decimal, packing_m2_per_kwp: Decimal) -> Decimal:
    """Installable kWp on a usable roof area, to 0.01 kWp."""
    return (area_m2 / packing_m2_per_kwp).quantize(KWP_Q, rounding=ROUND_HALF_UP)


def estimate(
    roofs: Sequence[Roof],
    packing_m2_per_kwp: Decimal,
    specific_yield: Callable[[Decimal, Decimal], Decimal],
    grid_factor_kg_per_kwh: Decimal,
    capex_cny_per_kwp: Decimal,
) -> ParkEstimate:
    """Estimate every roof; `specific_yield(tilt, azimuth)` gives the expected kWh per kWp and year.
    Raises ValueError when `check_roofs` finds a problem."""
    if check_roofs(roofs, packing_m2_per_kwp):
        raise ValueError("roof rows out of range")
    out = []
    for r in roofs:
        kwp = capacity_from_area(r.area_m2, packing_m2_per_kwp)
        y = specific_yield(r.tilt_deg, r.azimuth_deg)
        kwh = (kwp * y).quantize(KWH_Q, rounding=ROUND_HALF_UP)
        t = (kwh * grid_factor_kg_per_kwh / 1000).quantize(T_Q, rounding=ROUND_HALF_UP)
        invest = (kwp * capex_cny_per_kwp).quantize(CNY_Q, rounding=ROUND_HALF_UP)
        out.append(RoofEstimate(r, kwp, y, kwh, t, invest))
    return ParkEstimate(tuple(out))
