"""Units and exact decimal arithmetic: energy in kWh, emissions in kg CO2e, units in whole tCO2e."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

KWH = "kWh"
#: energy units accepted in readings and their factor to kWh
ENERGY_UNITS: dict[str, Decimal] = {"wh": Decimal("0.001"), "kwh": Decimal(1), "mwh": Decimal(1000)}
#: volume units accepted for water and gas meters, factor to m3
VOLUME_UNITS: dict[str, Decimal] = {"m3": Decimal(1), "l": Decimal("0.001")}
#: heat / cooling energy units, factor to kWh
HEAT_UNITS: dict[str, Decimal] = {
    "kwh": Decimal(1),
    "mwh": Decimal(1000),
    "gj": Decimal("277.7777777777777777777777778"),
}

KWH_Q = Decimal("0.0001")  # stored precision of energy (0.1 Wh)
KG_Q = Decimal("0.001")  # stored precision of emissions (1 g)


def to_decimal(value: object) -> Decimal:
    """Exact Decimal from str/int/Decimal; floats go through repr so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def q_kwh(value: Decimal) -> Decimal:
    """Round an energy to the stored precision (0.0001 kWh), half up."""
    return value.quantize(KWH_Q, rounding=ROUND_HALF_UP)


def q_kg(value: Decimal) -> Decimal:
    """Round an emission to the stored precision (1 g), half up."""
    return value.quantize(KG_Q, rounding=ROUND_HALF_UP)


def whole_tonnes(kg: Decimal) -> tuple[int, Decimal]:
    """Split kg CO2e into whole tCO2e (rounded down) and the kg left over (domain.md §2.6)."""
    tonnes = int((kg / 1000).to_integral_value(rounding=ROUND_DOWN))
    return tonnes, kg - Decimal(tonnes) * 1000


def month_start(d: date) -> date:
    """First day of the month of d."""
    return d.replace(day=1)


def next_month(d: date) -> date:
    """First day of the month after d."""
    return date(d.year + (d.month // 12), d.month % 12 + 1, 1)


def days_in_month(d: date) -> int:
    """Number of days in the month of d."""
    return (next_month(d) - month_start(d)).days
