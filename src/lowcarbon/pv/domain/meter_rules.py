"""PV rules plugged into metering ingest (domain.md §4.2, §4.3): no generation before grid connection, interval
energy under the physical ceiling (capacity × hours × margin), export not above generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from lowcarbon.metering.domain.validate import Candidate

BEFORE_GRID_CONNECTION = "before_grid_connection"
ABOVE_PHYSICAL_CEILING = "above_physical_ceiling"
EXPORT_ABOVE_GENERATION = "export_above_generation"

PV_REASONS = (BEFORE_GRID_CONNECTION, ABOVE_PHYSICAL_CEILING, EXPORT_ABOVE_GENERATION)


@dataclass(frozen=True)
class GridConnectionRule:
    """Generation before the grid-connection date is refused (§4.2 'Generation before grid-connection date')."""

    connected_at: datetime

    def check(self, c: Candidate) -> tuple[str, str, str] | None:
        if c.ts - timedelta(seconds=c.interval_s) < self.connected_at and (c.energy > 0 or c.interval_s == 0):
            return (BEFORE_GRID_CONNECTION, "timestamp", self.connected_at.date().isoformat())
        return None


@dataclass(frozen=True)
class PhysicalCeilingRule:
    """Interval energy ≤ capacity (kWp) × interval hours × margin (FEA registry rule, §4.3; margin versioned)."""

    capacity_kwp: Decimal
    margin: Decimal
    _limits: dict[int, Decimal] = field(default_factory=dict, compare=False, repr=False)

    def limit_kwh(self, interval_s: int) -> Decimal:
        limit = self._limits.get(interval_s)
        if limit is None:
            limit = self._limits[interval_s] = (
                self.capacity_kwp * Decimal(interval_s) / Decimal(3600) * self.margin
            )
        return limit

    def check(self, c: Candidate) -> tuple[str, str, str] | None:
        if c.interval_s > 0:
            limit = self.limit_kwh(c.interval_s)
            if c.energy > limit:
                return (
                    ABOVE_PHYSICAL_CEILING,
                    "energy",
                    f"{c.energy} > {limit.quantize(Decimal('0.001'))} kWh",
                )
        return None


@dataclass(frozen=True)
class ExportRule:
    """Export over an interval cannot exceed generation over it (§4.2: eg_self = eg_total − eg_export ≥ 0)."""

    def check(self, c: Candidate) -> tuple[str, str, str] | None:
        if c.export is not None and c.interval_s > 0 and c.export > c.energy:
            return (EXPORT_ABOVE_GENERATION, "export", f"{c.export} > {c.energy}")
        return None
