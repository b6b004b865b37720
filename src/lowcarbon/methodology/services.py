"""Quantification of avoided emissions per PV system and month, and the read functions behind the pages, the API
and the `quantify` command (domain.md §2.3–2.5).

Results are immutable rows: a month whose inputs (generation, export, methodology, factor record) are unchanged
keeps its row; different inputs supersede the old row and add a new one; a month that is no longer credited has
its current row superseded. Changing or adding a factor record never touches a stored row by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, QuerySet, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.domain.units import month_start
from lowcarbon.methodology.domain import quantify as dq
from lowcarbon.methodology.domain.quantify import (
    ExcludedMonth,
    FactorUnusable,
    FactorVersion,
    MethodologyVersion,
    MonthPlan,
    QuantifySummary,
)
from lowcarbon.methodology.models import FactorAssignment, GridFactor, Methodology, Quantification
from lowcarbon.pv.models import PlausibilityFlag, PVSystem
from lowcarbon.pv.rollups import monthly_generation

__all__ = [
    "EXCLUSION_MESSAGES",
    "ExcludedMonth",
    "QuantifySummary",
    "SystemTotal",
    "current_quantifications",
    "do_quantify",
    "exclusion_message",
    "factor_ef_cm",
    "methodology_overview",
    "quantifications",
    "resolve_system_codes",
    "summary_data",
    "system_totals",
]

#: translated explanation of each exclusion reason code
EXCLUSION_MESSAGES: dict[str, Promise] = {
    dq.BEFORE_GRID_CONNECTION: _("Month before the system's grid-connection month"),
    dq.BEFORE_METHODOLOGY: _("Month before any methodology came into force"),
    dq.NO_METHODOLOGY: _("No methodology in force in this month"),
    dq.NO_FACTOR: _("The methodology has no grid factor assigned for this month"),
    dq.FACTOR_NOT_CREDITABLE: _("The assigned grid factor is not a combined-margin baseline factor"),
    dq.FACTOR_INVALID: _("The assigned grid factor record is incomplete or invalid"),
    dq.PLAUSIBILITY_FLAG: _("Open reject-level plausibility flag"),
    dq.NEGATIVE_GENERATION: _("Negative generation in the monthly rollup"),
    dq.NO_GENERATION: _("No generation recorded for this month any more"),
}

#: systems handled per batch of reads (generation, flags); each system still gets its own transaction
_CHUNK = 200


def exclusion_message(reason: str) -> str:
    """The translated message of an exclusion reason code."""
    msg = EXCLUSION_MESSAGES.get(reason)
    return str(msg) if msg is not None else reason


def factor_ef_cm(factor: GridFactor) -> Decimal | None:
    """EF_CM (kgCO2/kWh) of a combined-margin factor record, exact, or None for other kinds or incomplete records."""
    if factor.kind != GridFactor.Kind.BASELINE_CM:
        return None
    try:
        value = dq.combined_margin(factor.ef_om, factor.ef_bm, factor.w_om, factor.w_bm)
    except ValueError:
        return None
    stored = value.quantize(Decimal(1).scaleb(-dq.EF_PLACES))
    return stored if stored == value else value  # as a result stores it, when that loses nothing


def _factor_version(assignment: FactorAssignment) -> FactorVersion:
    f = assignment.factor
    try:
        ef = dq.crediting_ef(f.kind == GridFactor.Kind.BASELINE_CM, f.ef_om, f.ef_bm, f.w_om, f.w_bm)
    except FactorUnusable as exc:
        return FactorVersion(f.pk, assignment.valid_from, None, exc.reason)
    return FactorVersion(f.pk, assignment.valid_from, ef)


def _methodology_versions() -> list[MethodologyVersion]:
    """All methodology versions with their factor assignments, as the domain sees them."""
    out = []
    for m in Methodology.objects.prefetch_related("factor_assignments__factor").order_by("effective_from"):
        factors = tuple(_factor_version(a) for a in m.factor_assignments.all())
        out.append(MethodologyVersion(m.pk, m.effective_from, m.effective_to, factors))
    return out


def resolve_system_codes(codes: Iterable[str]) -> list[int]:
    """PV system ids for system codes, in the given order; DomainError `unknown_system` naming every unknown code."""
    wanted = list(dict.fromkeys(c.strip() for c in codes))
    found = dict(PVSystem.objects.filter(code__in=wanted).values_list("code", "id"))
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DomainError(
            "unknown_system",
            _("Unknown PV system: %(codes)s") % {"codes": ", ".join(missing)},
            field="systems",
        )
    return [found[c] for c in wanted]


def _check_range(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    start = month_start(start) if start else None
    end = month_start(end) if end else None
    if start and end and start > end:
        raise DomainError(
            "month_range_reversed", _("The first month is after the last month of the range."), field="from"
        )
    return start, end


def do_quantify(
    system_ids: list[int] | None = None,
    start: date | None = None,
    end: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> QuantifySummary:
    """Quantify avoided emissions of the given systems (all when None) for the months in [start, end] that have
    generation in the rollups. One transaction per system; `progress(1)` is called after each system."""
    start, end = _check_range(start, end)
    systems_qs = PVSystem.objects.order_by("id")
    if system_ids is not None:
        ids = list(dict.fromkeys(system_ids))
        systems_qs = systems_qs.filter(id__in=ids)
    systems = list(systems_qs.values_list("id", "code", "grid_connection_date"))
    if system_ids is not None and len(systems) != len(ids):
        known = {s[0] for s in systems}
        missing = [str(i) for i in ids if i not in known]
        raise DomainError(
            "unknown_system",
            _("Unknown PV system: %(codes)s") % {"codes": ", ".join(missing)},
            field="systems",
        )

    methodologies = _methodology_versions()
    summary = QuantifySummary()
    now = timezone.now()
    for i in range(0, len(systems), _CHUNK):
        chunk = systems[i : i + _CHUNK]
        chunk_ids = [s[0] for s in chunk]
        generation = monthly_generation(chunk_ids, start, end)
        flags = _open_reject_flags(chunk_ids, start, end)
        by_system: dict[int, list[tuple[date, Decimal, Decimal]]] = {}
        for (sid, month), gen in generation.items():
            by_system.setdefault(sid, []).append((month_start(month), gen.energy_kwh, gen.export_kwh))
        for sid, code, connected in chunk:
            _quantify_system(
                sid,
                code,
                connected,
                sorted(by_system.get(sid, [])),
                flags,
                methodologies,
                start,
                end,
                now,
                summary,
            )
            summary.systems += 1
            if progress is not None:
                progress(1)
    return summary


def _open_reject_flags(system_ids: list[int], start: date | None, end: date | None) -> set[tuple[int, date]]:
    qs = PlausibilityFlag.objects.filter(
        system_id__in=system_ids, severity=PlausibilityFlag.Severity.REJECT, cleared_at__isnull=True
    )
    if start is not None:
        qs = qs.filter(month__gte=start)
    if end is not None:
        qs = qs.filter(month__lte=dq.month_end(end))
    return {(sid, month_start(m)) for sid, m in qs.values_list("system_id", "month")}


def _quantify_system(
    system_id: int,
    code: str,
    grid_connection_date: date,
    months: Sequence[tuple[date, Decimal, Decimal]],
    flags: set[tuple[int, date]],
    methodologies: Sequence[MethodologyVersion],
    start: date | None,
    end: date | None,
    now: datetime,
    summary: QuantifySummary,
) -> None:
    """Compare each month's plan with the current row and write the differences, in one transaction."""
    with transaction.atomic():
        # serialise concurrent runs on the same system (row lock on PostgreSQL; SQLite locks the database)
        list(PVSystem.objects.select_for_update().filter(pk=system_id).values_list("pk", flat=True))
        current_qs = Quantification.objects.filter(system_id=system_id, superseded_at__isnull=True)
        if start is not None:
            current_qs = current_qs.filter(month__gte=start)
        if end is not None:
            current_qs = current_qs.filter(month__lte=end)
        current = {q.month: q for q in current_qs}

        to_supersede: list[int] = []
        to_create: list[Quantification] = []
        total = Decimal(0)
        for month, energy, export in months:
            plan = dq.plan_month(
                month,
                energy,
                export,
                grid_connection_date=grid_connection_date,
                methodologies=methodologies,
                flagged=(system_id, month) in flags,
            )
            old = current.pop(month, None)
            if isinstance(plan, dq.Exclusion):
                summary.exclude(code, month, plan.reason)
                if old is not None:
                    to_supersede.append(old.pk)
                continue
            if old is not None and plan.same_inputs(
                old.methodology_id, old.factor_id, old.ef_cm, old.generation_kwh, old.export_kwh
            ):
                summary.months_unchanged += 1
                total += old.er_kg
                continue
            if old is not None:
                to_supersede.append(old.pk)
            to_create.append(_row(system_id, plan))
            total += plan.er_kg
        # results stored for months that no longer have any generation in the rollups no longer count
        for month, old in sorted(current.items()):
            summary.exclude(code, month, dq.NO_GENERATION)
            to_supersede.append(old.pk)

        if to_supersede:
            Quantification.objects.filter(pk__in=to_supersede, superseded_at__isnull=True).update(
                superseded_at=now
            )
        if to_create:
            Quantification.objects.bulk_create(to_create)
    summary.months_superseded += len(to_supersede)
    summary.months_computed += len(to_create)
    summary.total_er_kg += total


def _row(system_id: int, plan: MonthPlan) -> Quantification:
    return Quantification(
        system_id=system_id,
        month=plan.month,
        methodology_id=plan.methodology_id,
        factor_id=plan.factor_id,
        ef_cm=plan.ef_cm,
        generation_kwh=plan.generation_kwh,
        export_kwh=plan.export_kwh,
        er_kg=plan.er_kg,
    )


def summary_data(s: QuantifySummary) -> dict[str, Any]:
    """A run's summary as plain data for JSON (API and `quantify --json`): months as YYYY-MM, amounts as Decimal."""
    return {
        "systems": s.systems,
        "months_computed": s.months_computed,
        "months_unchanged": s.months_unchanged,
        "months_superseded": s.months_superseded,
        "months_excluded": dict(sorted(s.months_excluded.items())),
        "total_er_kg": s.total_er_kg,
        "total_er_t": s.total_er_t,
        "excluded": [
            {
                "system": e.system_code,
                "month": dq.format_month(e.month),
                "reason": e.reason,
                "message": exclusion_message(e.reason),
            }
            for e in s.excluded
        ],
    }


# --- reading ---------------------------------------------------------------------------------------------------


def quantifications(
    system_ids: Iterable[int] | None,
    start: date | None = None,
    end: date | None = None,
    *,
    include_superseded: bool = False,
) -> QuerySet[Quantification]:
    """Quantification rows of the systems (all when None) in [start, end], current ones only unless asked."""
    qs = Quantification.objects.select_related("methodology", "factor").order_by(
        "system_id", "month", "computed_at"
    )
    if system_ids is not None:
        qs = qs.filter(system_id__in=list(system_ids))
    if not include_superseded:
        qs = qs.filter(superseded_at__isnull=True)
    if start is not None:
        qs = qs.filter(month__gte=month_start(start))
    if end is not None:
        qs = qs.filter(month__lte=month_start(end))
    return qs


def current_quantifications(
    system_ids: Iterable[int] | None, start: date | None = None, end: date | None = None
) -> QuerySet[Quantification]:
    """The results that count now (not superseded) of the systems, by system and month."""
    return quantifications(system_ids, start, end)


@dataclass(frozen=True)
class SystemTotal:
    """Current results of one system summed over its months."""

    system_id: int
    months: int
    generation_kwh: Decimal
    export_kwh: Decimal
    er_kg: Decimal
    first_month: date
    last_month: date

    @property
    def er_t(self) -> Decimal:
        return self.er_kg / 1000


def system_totals(
    system_ids: Iterable[int] | None, start: date | None = None, end: date | None = None
) -> dict[int, SystemTotal]:
    """{system_id: SystemTotal} over the current results; systems without results are absent."""
    rows = (
        current_quantifications(system_ids, start, end)
        .order_by()
        .values("system_id")
        .annotate(
            n=Count("id"),
            gen=Sum("generation_kwh"),
            exp=Sum("export_kwh"),
            er=Sum("er_kg"),
            first=Min("month"),
            last=Max("month"),
        )
    )
    return {
        r["system_id"]: SystemTotal(
            r["system_id"], r["n"], r["gen"], r["exp"], r["er"], r["first"], r["last"]
        )
        for r in rows
    }


@dataclass(frozen=True)
class FactorRow:
    """A grid-factor record for display, with its computed EF_CM (None when not a combined margin)."""

    factor: GridFactor
    ef_cm: Decimal | None
    used: bool


@dataclass(frozen=True)
class MethodologyRow:
    """A methodology version for display, with its factor assignments (oldest first)."""

    methodology: Methodology
    assignments: list[FactorAssignment]


def methodology_overview() -> tuple[list[MethodologyRow], list[FactorRow]]:
    """Methodologies with the factor each uses from when, and every grid-factor record, for the public page."""
    methodologies = [
        MethodologyRow(m, sorted(m.factor_assignments.all(), key=lambda a: a.valid_from))
        for m in Methodology.objects.prefetch_related("factor_assignments__factor").order_by("effective_from")
    ]
    used = set(Quantification.objects.values_list("factor_id", flat=True).distinct())
    factors = [FactorRow(f, factor_ef_cm(f), f.pk in used) for f in GridFactor.objects.all()]
    return methodologies, factors
