"""Plugs the PV rules into metering ingest: grid-connection date, physical ceiling from capacity (margin as a
versioned parameter), export ≤ generation; and says who may send readings for a PV system's meters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from lowcarbon.core.params import param_value
from lowcarbon.metering.domain.vector import US, CandidateColumns, Mask, to_us
from lowcarbon.metering.models import Meter
from lowcarbon.metering.services import SubjectProvider, register_ingest_hook, register_subject_provider
from lowcarbon.pv.domain.meter_rules import ExportRule, GridConnectionRule, PhysicalCeilingRule

SUBJECT_KIND = "pv_system"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


# The PV rules with their array form for bulk ingest: `flag` marks every reading `check` might refuse; ingest
# then runs `check` on those readings, so the reason and detail always come from `check`.


@dataclass(frozen=True)
class ArrayGridConnectionRule(GridConnectionRule):
    def flag(self, c: CandidateColumns) -> Mask:
        start = c.ts_us - c.interval_s * US
        out: Mask = (start < to_us(self.connected_at)) & ((c.energy > 0) | (c.interval_s == 0))
        return out


@dataclass(frozen=True)
class ArrayPhysicalCeilingRule(PhysicalCeilingRule):
    def flag(self, c: CandidateColumns) -> Mask:
        # energy (in 0.0001 kWh) > limit  ⇔  energy > floor(limit × 10⁴), per distinct interval length
        intervals, which = np.unique(c.interval_s, return_inverse=True)
        above = np.array(
            [
                int((self.limit_kwh(iv) * 10_000).to_integral_value(rounding=ROUND_FLOOR)) if iv > 0 else -1
                for iv in intervals.tolist()
            ],
            dtype=np.int64,
        )[which.reshape(-1)]
        out: Mask = (c.interval_s > 0) & (c.energy > above)
        return out


@dataclass(frozen=True)
class ArrayExportRule(ExportRule):
    def flag(self, c: CandidateColumns) -> Mask:
        out: Mask = c.has_export & (c.interval_s > 0) & (c.export > c.energy)
        return out


def _specs(meters: list[Meter]) -> dict[int, dict[str, Any]]:
    from lowcarbon.pv.models import PVSystem

    systems = {s.id: s for s in PVSystem.objects.filter(id__in={m.subject_id for m in meters})}
    margin = param_value("pv.interval_ceiling_margin")
    out: dict[int, dict[str, Any]] = {}
    for m in meters:
        system = systems.get(m.subject_id)
        if system is None:
            continue
        # in UTC: comparing datetimes of one fixed zone avoids a zone look-up per reading
        connected_at = datetime.combine(system.grid_connection_date, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)
        installed_at = m.installed_at if m.installed_at and m.installed_at > connected_at else None
        out[m.id] = {
            "installed_at": installed_at,
            "supports_export": m.purpose == Meter.Purpose.PV_BIDIRECTIONAL,
            "rules": (
                ArrayGridConnectionRule(connected_at),
                ArrayPhysicalCeilingRule(Decimal(system.capacity_kwp), margin),
                ArrayExportRule(),
            ),
        }
    return out


def _managed(user: Any, meters: list[Meter]) -> set[int]:
    from lowcarbon.pv.access import managed_systems

    ids = set(
        managed_systems(user).filter(id__in={m.subject_id for m in meters}).values_list("id", flat=True)
    )
    return {m.id for m in meters if m.subject_id in ids}


def _after_ingest(touched: dict[int, set[Any]]) -> None:
    """Refresh plausibility flags of the system-months that received readings."""
    from lowcarbon.pv.plausibility import do_check_plausibility

    system_months = system_months_of(touched)
    if system_months:
        do_check_plausibility(
            system_ids=sorted(system_months), months={m for ms in system_months.values() for m in ms}
        )


def system_months_of(touched: dict[int, set[Any]]) -> dict[int, set[Any]]:
    out: dict[int, set[Any]] = {}
    for mid, sid in Meter.objects.filter(id__in=list(touched), subject_kind=SUBJECT_KIND).values_list(
        "id", "subject_id"
    ):
        out.setdefault(sid, set()).update(touched[mid])
    return out


register_subject_provider(SUBJECT_KIND, SubjectProvider(specs=_specs, managed=_managed))
register_ingest_hook(_after_ingest)
