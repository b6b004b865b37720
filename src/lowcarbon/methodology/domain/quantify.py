"""Quantification of avoided emissions under the Guangdong distributed-PV carbon-inclusion methodology.

ER = BE − PE − LE with PE = LE = 0 for PV; BE = EG × EF_CM; EF_CM = w_OM·EF_OM + w_BM·EF_BM
(AMS-I.D / CMS-002 logic, domain.md §2.3). Computation in kWh × kgCO2/kWh with exact decimals.

The month is the monitoring period (domain.md §2.5 [A]). A month is credited only from the grid-connection month on,
under the methodology version in force in that month and the factor edition that methodology assigns (§2.4, §2.7).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar

from lowcarbon.core.domain.units import month_start, next_month, q_kg

T = TypeVar("T")

#: decimal places of EF_CM kept on a stored quantification (Quantification.ef_cm); a factor needing more is refused
EF_PLACES = 6

# Reason codes for months that are not credited (stable snake_case; messages are translated by the caller).
BEFORE_GRID_CONNECTION = "before_grid_connection"
BEFORE_METHODOLOGY = "before_methodology"
NO_METHODOLOGY = "no_methodology"
NO_FACTOR = "no_factor"
FACTOR_NOT_CREDITABLE = "factor_not_creditable"
FACTOR_INVALID = "factor_invalid"
PLAUSIBILITY_FLAG = "plausibility_flag"
NEGATIVE_GENERATION = "negative_generation"
NO_GENERATION = "no_generation"

EXCLUSION_REASONS = (
    BEFORE_GRID_CONNECTION,
    BEFORE_METHODOLOGY,
    NO_METHODOLOGY,
    NO_FACTOR,
    FACTOR_NOT_CREDITABLE,
    FACTOR_INVALID,
    PLAUSIBILITY_FLAG,
    NEGATIVE_GENERATION,
    NO_GENERATION,
)

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def combined_margin(
    ef_om: Decimal | None, ef_bm: Decimal | None, w_om: Decimal | None, w_bm: Decimal | None
) -> Decimal:
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


def select_by_date(items: Sequence[tuple[date, T]], on: date) -> T | None:
    """From (valid_from, item) pairs, the item in force on `on` (latest valid_from ≤ on), or None."""
    best: tuple[date, T] | None = None
    for valid_from, item in items:
        if valid_from <= on and (best is None or valid_from > best[0]):
            best = (valid_from, item)
    return best[1] if best else None


def month_end(month: date) -> date:
    """Last day of the month of `month`."""
    return next_month(month) - timedelta(days=1)


def parse_month(text: str) -> date:
    """'YYYY-MM' → first day of that month; ValueError for anything else."""
    m = _MONTH_RE.match(text.strip())
    if m is None:
        raise ValueError(f"not a month in the form YYYY-MM: {text!r}")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12 or year < 1:
        raise ValueError(f"not a month in the form YYYY-MM: {text!r}")
    return date(year, month, 1)


def format_month(month: date) -> str:
    """First day of a month → 'YYYY-MM'."""
    return f"{month.year:04d}-{month.month:02d}"


class FactorUnusable(ValueError):
    """A grid-factor record that cannot be used for crediting, with the reason code of the months it blocks."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def crediting_ef(
    is_combined_margin: bool,
    ef_om: Decimal | None,
    ef_bm: Decimal | None,
    w_om: Decimal | None,
    w_bm: Decimal | None,
) -> Decimal:
    """EF_CM of a factor record for crediting PV. Only baseline combined-margin factors credit PV; average grid
    factors do not (domain.md §2.4, §8.3). The value must be storable exactly with EF_PLACES decimals, so a stored
    result always equals its stored generation × its stored factor."""
    if not is_combined_margin:
        raise FactorUnusable(
            FACTOR_NOT_CREDITABLE, "only combined-margin baseline factors credit PV generation"
        )
    try:
        ef = combined_margin(ef_om, ef_bm, w_om, w_bm)
    except ValueError as exc:
        raise FactorUnusable(FACTOR_INVALID, str(exc)) from exc
    exponent = ef.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -EF_PLACES:
        raise FactorUnusable(FACTOR_INVALID, f"EF_CM {ef} has more than {EF_PLACES} decimal places")
    return ef


@dataclass(frozen=True)
class FactorVersion:
    """A factor record as assigned to a methodology from `valid_from` on; `ef_cm` is None when it cannot credit PV,
    and `unusable_reason` says why."""

    factor_id: int
    valid_from: date
    ef_cm: Decimal | None
    unusable_reason: str | None = None


@dataclass(frozen=True)
class MethodologyVersion:
    """A methodology version, its period of validity and its factor assignments."""

    methodology_id: int
    effective_from: date
    effective_to: date | None
    factors: tuple[FactorVersion, ...] = ()


@dataclass(frozen=True)
class MonthPlan:
    """What a month is credited with: the inputs used and the result (kg CO2e, rounded to the gram)."""

    month: date
    methodology_id: int
    factor_id: int
    ef_cm: Decimal
    generation_kwh: Decimal
    export_kwh: Decimal
    er_kg: Decimal

    def same_inputs(
        self,
        methodology_id: int,
        factor_id: int,
        ef_cm: Decimal,
        generation_kwh: Decimal,
        export_kwh: Decimal,
    ) -> bool:
        """True when a stored result used exactly these inputs (it then stands unchanged)."""
        return (
            self.methodology_id == methodology_id
            and self.factor_id == factor_id
            and self.ef_cm == ef_cm
            and self.generation_kwh == generation_kwh
            and self.export_kwh == export_kwh
        )


@dataclass(frozen=True)
class Exclusion:
    """A month that is not credited, with its reason code."""

    month: date
    reason: str


def methodology_for_month(
    methodologies: Sequence[MethodologyVersion], month: date
) -> MethodologyVersion | None:
    """The methodology in force in the month: effective_from ≤ last day and effective_to empty or ≥ first day.
    Where two overlap in one month the newer version applies [A]."""
    first, last = month_start(month), month_end(month)
    best: MethodologyVersion | None = None
    for m in methodologies:
        in_force = m.effective_from <= last and (m.effective_to is None or m.effective_to >= first)
        if in_force and (best is None or m.effective_from > best.effective_from):
            best = m
    return best


def factor_for_month(methodology: MethodologyVersion, month: date) -> FactorVersion | None:
    """The factor the methodology assigns for the month: latest valid_from ≤ the month's first day, or ≤ the
    methodology's own start in its first (partial) month."""
    on = max(month_start(month), methodology.effective_from)
    return select_by_date([(f.valid_from, f) for f in methodology.factors], on)


def plan_month(
    month: date,
    generation_kwh: Decimal,
    export_kwh: Decimal,
    *,
    grid_connection_date: date,
    methodologies: Sequence[MethodologyVersion],
    flagged: bool,
) -> MonthPlan | Exclusion:
    """Credit one system-month, or say why it is not credited. Checks in order: grid connection (§2.7), methodology
    in force (§2.1), factor assignment (§2.4), open reject-level plausibility flag (§4.2), generation ≥ 0."""
    month = month_start(month)
    if month < month_start(grid_connection_date):
        return Exclusion(month, BEFORE_GRID_CONNECTION)
    methodology = methodology_for_month(methodologies, month)
    if methodology is None:
        later = all(m.effective_from > month_end(month) for m in methodologies)
        return Exclusion(month, BEFORE_METHODOLOGY if later else NO_METHODOLOGY)
    factor = factor_for_month(methodology, month)
    if factor is None:
        return Exclusion(month, NO_FACTOR)
    if factor.ef_cm is None:
        return Exclusion(month, factor.unusable_reason or FACTOR_INVALID)
    if flagged:
        return Exclusion(month, PLAUSIBILITY_FLAG)
    if generation_kwh < 0:
        return Exclusion(month, NEGATIVE_GENERATION)
    return MonthPlan(
        month=month,
        methodology_id=methodology.methodology_id,
        factor_id=factor.factor_id,
        ef_cm=factor.ef_cm,
        generation_kwh=generation_kwh,
        export_kwh=export_kwh,
        er_kg=avoided_emissions_kg(generation_kwh, factor.ef_cm),
    )


@dataclass(frozen=True)
class ExcludedMonth:
    """A system-month left out of a quantification run, and why."""

    system_code: str
    month: date
    reason: str


@dataclass
class QuantifySummary:
    """Outcome of one quantification run. `months_superseded` counts earlier results replaced by a new row or
    withdrawn because their month is now excluded; `total_er_kg` sums the results that count after the run."""

    systems: int = 0
    months_computed: int = 0
    months_unchanged: int = 0
    months_superseded: int = 0
    months_excluded: dict[str, int] = field(default_factory=dict)
    total_er_kg: Decimal = field(default_factory=Decimal)
    excluded: list[ExcludedMonth] = field(default_factory=list)

    def exclude(self, system_code: str, month: date, reason: str) -> None:
        """Record an excluded month under its reason."""
        self.months_excluded[reason] = self.months_excluded.get(reason, 0) + 1
        self.excluded.append(ExcludedMonth(system_code, month, reason))

    @property
    def months_excluded_total(self) -> int:
        return sum(self.months_excluded.values())

    @property
    def total_er_t(self) -> Decimal:
        """The total in tCO2e, exact (kg / 1000)."""
        return self.total_er_kg / 1000
