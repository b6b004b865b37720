"""Quantification of avoided emissions under the Guangdong distributed-PV carbon-inclusion methodology.

ER = BE − PE − LE with PE = LE = 0 for PV; BE = EG × EF_CM; EF_CM = w_OM·EF_OM + w_BM·EF_BM
(AMS-I.D / CMS-002 logic, domain.md §2.3). Computation in kWh × kgCO2/kWh with exact decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lowcarbon.core.domain.units import q_kg


def combined_margin(ef_om: Decimal | None, ef_bm: Decimal | None, w_om: Decimal | None, w_bm: Decimal | None) -> Decimal:
    """EF_CM = w_OM × EF_OM + w_BM × EF_BM (CDM grid tool; 0.75/0.25 for solar). Weights must sum to 1."""
    if ef_om is None or ef_bm is None or w_om is None or w_bm is None:
        raise ValueError("combined margin needs EF_OM, EF_BM and both weights")
    if w_om + w_bm != 1:
        raise ValueError("weights w_OM and w_BM must sum to 1")
    if ef_om < 0 or ef_bm < 0 or w_om < 0 or w_bm < 0:
        raise ValueError("factors and weights must not be negative")
    return w_om * ef_om + w_bm * ef_bm


@dataclass(frozen=True)
class MonthResult:
    """Avoided emissions of one system in one month."""

    month: date
    generation_kwh: Decimal
    ef_cm: Decimal
    er_kg: Decimal


def avoided_emissions_kg(generation_kwh: Decimal, ef_cm: Decimal) -> Decimal:
    """ER (kg CO2e) = EG (kWh) × EF_CM (kgCO2/kWh), rounded half-up to the gram. Negative generation is refused."""
    if generation_kwh < 0:
        raise ValueError("generation must not be negative")
    return q_kg(generation_kwh * ef_cm)


def quantify_month(month: date, generation_kwh: Decimal, ef_cm: Decimal) -> MonthResult:
    """The month's result with the factor used."""
    return MonthResult(month, generation_kwh, ef_cm, avoided_emissions_kg(generation_kwh, ef_cm))


def select_by_date(items: list[tuple[date, object]], on: date) -> object | None:
    """From (valid_from, item) pairs, the item in force on `on` (latest valid_from ≤ on), or None."""
    best: tuple[date, object] | None = None
    for valid_from, item in items:
        if valid_from <= on and (best is None or valid_from > best[0]):
            best = (valid_from, item)
    return best[1] if best else None
