"""Plausibility service of PV generation: clear-sky bounds cached in ClearSkyProfile, monthly and annual checks
turned into PlausibilityFlag rows, and reviewer clearing (domain.md §4.2, §4.4, §4.6).

Generation is read only through the monthly rollups (lowcarbon.pv.rollups); every threshold is a versioned
Parameter and the versions used are stored on each flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import get_parameter
from lowcarbon.pv.domain import physics
from lowcarbon.pv.domain.plausibility import (
    Bands,
    Code,
    Finding,
    Severity,
    Threshold,
    affected_months,
    check_system,
)
from lowcarbon.pv.models import ClearSkyProfile, PlausibilityFlag, PVSystem
from lowcarbon.pv.rollups import monthly_generation

PERFORMANCE_RATIO_KEY = "pv.performance_ratio_clear_sky"
#: Key under which a flag records the clear-sky model version it was checked against.
CLEAR_SKY_MODEL_KEY = "clear_sky_model"

_SYSTEM_FIELDS = ("id", "latitude", "longitude", "tilt_deg", "azimuth_deg", "capacity_kwp")


def _threshold(key: str) -> Threshold:
    """The parameter in force today as a domain threshold carrying its version."""
    p = get_parameter(key)
    return Threshold(key=key, value=p.value, version=p.version)


def current_bands() -> Bands:
    """The plausibility bands in force today, read from the versioned parameters (domain.md §4.2, §4.4)."""
    return Bands(
        clear_sky_margin=_threshold("pv.clear_sky_margin"),
        monthly_yield_warn=_threshold("pv.monthly_yield_warn"),
        monthly_yield_reject=_threshold("pv.monthly_yield_reject"),
        annual_yield_warn_low=_threshold("pv.annual_yield_warn_low"),
        annual_yield_warn_high=_threshold("pv.annual_yield_warn_high"),
        annual_yield_reject=_threshold("pv.annual_yield_reject"),
    )


def _key_of(system: PVSystem) -> physics.Orientation:
    """The clear-sky grouping key (rounded location and orientation) of a registered system."""
    return physics.orientation_key(system.latitude, system.longitude, system.tilt_deg, system.azimuth_deg)


def _yields_per_kwp(
    systems: Iterable[PVSystem], years: Iterable[int], efficiency: Decimal
) -> dict[tuple[int, int], tuple[Decimal, ...]]:
    """{(system id, year): 12 clear-sky kWh/kWp}, from the ClearSkyProfile cache, computing and storing what is
    missing (one pvlib pass per location for all its orientations)."""
    keys = {s.pk: _key_of(s) for s in systems}
    version = physics.model_version(efficiency)
    needed = set(keys.values())
    out: dict[tuple[int, int], tuple[Decimal, ...]] = {}
    if not needed:
        return out
    for year in sorted(set(years)):
        cached: dict[physics.Orientation, tuple[Decimal, ...]] = {}
        rows = ClearSkyProfile.objects.filter(
            year=year,
            model_version=version,
            lat__in={k.latitude for k in needed},
            lon__in={k.longitude for k in needed},
        ).values_list("lat", "lon", "tilt", "azimuth", "monthly_kwh_per_kwp")
        for lat, lon, tilt, azimuth, monthly in rows:
            key = physics.Orientation(lat, lon, tilt, azimuth)
            if key in needed:
                cached[key] = tuple(Decimal(str(v)) for v in monthly)
        missing = needed - cached.keys()
        if missing:
            computed = physics.clear_sky_yields(missing, year, efficiency)
            ClearSkyProfile.objects.bulk_create(
                [
                    ClearSkyProfile(
                        lat=k.latitude,
                        lon=k.longitude,
                        tilt=k.tilt,
                        azimuth=k.azimuth,
                        year=year,
                        monthly_kwh_per_kwp=[str(v) for v in y.monthly_kwh_per_kwp],
                        model_version=version,
                    )
                    for k, y in computed.items()
                ],
                ignore_conflicts=True,
            )
            cached.update({k: y.monthly_kwh_per_kwp for k, y in computed.items()})
        for sid, key in keys.items():
            out[(sid, year)] = cached[key]
    return out


def clear_sky_monthly_bounds(systems: Iterable[PVSystem], year: int) -> dict[int, list[Decimal]]:
    """{system id: 12 monthly clear-sky AC generations in kWh} for a calendar year, using the ClearSkyProfile
    cache (domain.md §4.4). The margin of pv.clear_sky_margin is not applied here."""
    systems = list(systems)
    efficiency = _threshold(PERFORMANCE_RATIO_KEY).value
    per_kwp = _yields_per_kwp(systems, [year], efficiency)
    out: dict[int, list[Decimal]] = {}
    for s in systems:
        bound = physics.scale_yield(physics.ClearSkyYield(per_kwp[(s.pk, year)], Decimal(0)), s.capacity_kwp)
        out[s.pk] = list(bound.monthly_kwh)
    return out


def _flag_versions(finding: Finding, efficiency: Threshold, model_version: str) -> dict[str, Any]:
    """Parameter versions stored on a flag; the clear-sky check adds the efficiency and the model version."""
    versions: dict[str, Any] = dict(finding.parameter_versions)
    if finding.code == Code.ABOVE_CLEAR_SKY:
        versions[efficiency.key] = efficiency.version
        versions[CLEAR_SKY_MODEL_KEY] = model_version
    return versions


def do_check_plausibility(
    system_ids: list[int] | None = None, months: set[date] | None = None
) -> dict[str, int]:
    """Run the monthly and annual plausibility checks (domain.md §4.2, §4.4) and bring PlausibilityFlag rows in
    line with the findings.

    With `months`, only flags of the months those changes can affect are written (their calendar years and the
    gaps to the neighbouring data). New findings create open flags; an open flag follows its finding or is deleted
    when the finding disappears; a cleared flag stays cleared unless its value changed, in which case it reopens.
    Returns counts of what was done."""
    systems_qs = PVSystem.objects.only(*_SYSTEM_FIELDS).order_by("pk")
    if system_ids is not None:
        systems_qs = systems_qs.filter(pk__in=list(system_ids))
    systems = list(systems_qs)
    changed = {m.replace(day=1) for m in months} if months is not None else None
    counts = {
        "systems": len(systems),
        "months_checked": 0,
        "findings": 0,
        "created": 0,
        "updated": 0,
        "reopened": 0,
        "unchanged": 0,
        "deleted": 0,
        "open_warn": 0,
        "open_reject": 0,
    }
    if not systems:
        return counts

    bands = current_bands()
    efficiency = _threshold(PERFORMANCE_RATIO_KEY)
    model_version = physics.model_version(efficiency.value)
    generation: dict[int, dict[date, Decimal]] = defaultdict(dict)
    for (sid, month), g in monthly_generation([s.pk for s in systems]).items():
        generation[sid][month] = g.energy_kwh
    years = {m.year for g in generation.values() for m in g}
    per_kwp = _yields_per_kwp(systems, years, efficiency.value)

    findings: dict[tuple[int, date, str], Finding] = {}
    scope: dict[int, set[date] | None] = {}
    for s in systems:
        data = generation.get(s.pk, {})
        clear_sky = {
            date(year, i + 1, 1): v
            for year in {m.year for m in data}
            for i, v in enumerate(per_kwp[(s.pk, year)])
        }
        scope[s.pk] = affected_months(changed, set(data)) if changed is not None else None
        counts["months_checked"] += len(data)
        for f in check_system(data, s.capacity_kwp, clear_sky, bands):
            if _in_scope(scope[s.pk], f.month):
                findings[(s.pk, f.month, f.code.value)] = f
    counts["findings"] = len(findings)

    now = timezone.now()
    with transaction.atomic():
        existing = {
            (f.system_id, f.month, f.code): f
            for f in PlausibilityFlag.objects.select_for_update().filter(
                system_id__in=[s.pk for s in systems]
            )
        }
        to_create: list[PlausibilityFlag] = []
        to_update: list[PlausibilityFlag] = []
        for key, finding in findings.items():
            versions = _flag_versions(finding, efficiency, model_version)
            flag = existing.get(key)
            if flag is None:
                to_create.append(
                    PlausibilityFlag(
                        system_id=key[0],
                        month=finding.month,
                        code=finding.code.value,
                        severity=finding.severity.value,
                        value=finding.value,
                        limit=finding.limit,
                        parameter_versions=versions,
                    )
                )
                continue
            if not flag.is_open:
                if flag.value == finding.value:
                    counts["unchanged"] += 1
                    continue
                flag.cleared_at = None
                flag.cleared_by = None
                counts["reopened"] += 1
            elif (flag.severity, flag.value, flag.limit, flag.parameter_versions) == (
                finding.severity.value,
                finding.value,
                finding.limit,
                versions,
            ):
                counts["unchanged"] += 1
                continue
            else:
                counts["updated"] += 1
            flag.severity = finding.severity.value
            flag.value = finding.value
            flag.limit = finding.limit
            flag.parameter_versions = versions
            flag.detected_at = now
            to_update.append(flag)
        stale = [
            flag.pk
            for key, flag in existing.items()
            if key not in findings and flag.is_open and _in_scope(scope[key[0]], key[1])
        ]
        PlausibilityFlag.objects.bulk_create(to_create, batch_size=500)
        PlausibilityFlag.objects.bulk_update(
            to_update,
            ["severity", "value", "limit", "parameter_versions", "detected_at", "cleared_at", "cleared_by"],
            batch_size=500,
        )
        PlausibilityFlag.objects.filter(pk__in=stale).delete()
        counts["created"] = len(to_create)
        counts["deleted"] = len(stale)
        for severity, n in _open_counts([s.pk for s in systems]):
            counts[f"open_{severity}"] = n
    return counts


def _in_scope(scope: set[date] | None, month: date) -> bool:
    """Whether a month's flags may be written in this run (no scope means every month)."""
    return scope is None or month in scope


def _open_counts(system_ids: list[int]) -> list[tuple[str, int]]:
    """(severity, number of open flags) over the given systems."""
    return list(
        PlausibilityFlag.objects.filter(system_id__in=system_ids, cleared_at__isnull=True)
        .values("severity")
        .annotate(n=Count("pk"))
        .values_list("severity", "n")
        .order_by("severity")
    )


def excluded_months(system_ids: Iterable[int]) -> set[tuple[int, date]]:
    """(system id, month) pairs with an open reject flag: excluded from quantification until cleared (§4.6)."""
    return set(
        PlausibilityFlag.objects.filter(
            system_id__in=list(system_ids), severity=Severity.REJECT.value, cleared_at__isnull=True
        ).values_list("system_id", "month")
    )


#: called with (system_id, month) after a flag is cleared; the methodology app re-quantifies that month
_CLEARED_HOOKS: list[Any] = []


def register_flag_cleared_hook(hook: Any) -> None:
    if hook not in _CLEARED_HOOKS:
        _CLEARED_HOOKS.append(hook)


def do_clear_flag(flag_id: int, user: Any, note: str) -> PlausibilityFlag:
    """Clear a plausibility flag with a reviewer note (domain.md §4.6: warnings need a reviewer note, rejects
    block until cleared). Only reviewers and registry administrators may clear; nothing changes on refusal."""
    if (
        user is None
        or not getattr(user, "is_authenticated", False)
        or not (user.is_reviewer or user.is_registry_admin)
    ):
        raise DomainError(
            "not_reviewer",
            gettext("Only a reviewer or a registry administrator may clear a plausibility flag."),
        )
    note = (note or "").strip()
    if not note:
        raise DomainError(
            "note_required", gettext("Explain in a note why this flag can be cleared."), field="note"
        )
    with transaction.atomic():
        flag = PlausibilityFlag.objects.select_for_update().filter(pk=flag_id).first()
        if flag is None:
            raise DomainError(
                "flag_not_found", gettext("This plausibility flag does not exist."), field="flag_id"
            )
        if not flag.is_open:
            raise DomainError(
                "flag_already_cleared", gettext("This plausibility flag has already been cleared.")
            )
        flag.cleared_at = timezone.now()
        flag.cleared_by = user
        flag.clear_note = note
        flag.save(update_fields=["cleared_at", "cleared_by", "clear_note"])
    for hook in _CLEARED_HOOKS:
        hook(flag.system_id, flag.month)
    return flag
