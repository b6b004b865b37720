"""Generation of PV systems read from the monthly and daily rollups of their meters (never from raw readings)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lowcarbon.metering.models import DailyRollup, Meter, MonthlyRollup

SUBJECT_KIND = "pv_system"


@dataclass
class MonthGeneration:
    """Generation and export of one system over one month, summed over all its meters (old and new)."""

    energy_kwh: Decimal
    export_kwh: Decimal
    n_readings: int
    covered_s: int


def meters_by_system(system_ids: Iterable[int] | None = None) -> dict[int, list[int]]:
    """Meter ids of each PV system (including replaced meters)."""
    qs = Meter.objects.filter(subject_kind=SUBJECT_KIND)
    if system_ids is not None:
        qs = qs.filter(subject_id__in=list(system_ids))
    out: dict[int, list[int]] = defaultdict(list)
    for mid, sid in qs.values_list("id", "subject_id"):
        out[sid].append(mid)
    return dict(out)


def monthly_generation(
    system_ids: Iterable[int] | None = None, start: date | None = None, end: date | None = None
) -> dict[tuple[int, date], MonthGeneration]:
    """{(system_id, first day of month): MonthGeneration} for months in [start, end] (first days of months)."""
    by_system = meters_by_system(system_ids)
    system_of = {m: s for s, ms in by_system.items() for m in ms}
    qs = MonthlyRollup.objects.filter(meter_id__in=list(system_of))
    if start is not None:
        qs = qs.filter(month__gte=start)
    if end is not None:
        qs = qs.filter(month__lte=end)
    out: dict[tuple[int, date], MonthGeneration] = {}
    for mid, month, energy, export, n, covered in qs.values_list(
        "meter_id", "month", "energy", "export", "n_readings", "covered_s"
    ):
        key = (system_of[mid], month)
        cur = out.get(key)
        if cur is None:
            out[key] = MonthGeneration(energy, export, n, covered)
        else:
            cur.energy_kwh += energy
            cur.export_kwh += export
            cur.n_readings += n
            cur.covered_s += covered
    return out


def daily_generation(system_id: int, start: date, end: date) -> dict[date, Decimal]:
    """{day: kWh} of one system between start and end inclusive."""
    meter_ids = meters_by_system([system_id]).get(system_id, [])
    out: dict[date, Decimal] = defaultdict(Decimal)
    for day, energy in DailyRollup.objects.filter(
        meter_id__in=meter_ids, day__gte=start, day__lte=end
    ).values_list("day", "energy"):
        out[day] += energy
    return dict(out)
