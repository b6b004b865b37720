"""Pages of the PV systems: list, detail with the monthly chart, registration (one and in bulk), meter replacement,
evidence, other-programme claims, consents and the plausibility review queue.

Thin: parse, authorise with `lowcarbon.pv.access`, call a service, render. Systems a person may not see answer 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.metering.models import Meter, MeterReplacement
from lowcarbon.metering.replacement import do_record_replacement
from lowcarbon.pv import access, bulk, services
from lowcarbon.pv.forms import (
    BulkUploadForm,
    ClearFlagForm,
    ConsentForm,
    EvidenceForm,
    ProgrammeClaimForm,
    RegistrationForm,
    ReplacementForm,
    SystemFilterForm,
)
from lowcarbon.pv.models import Community, ManagementConsent, PlausibilityFlag, PVSystem

PAGE_SIZE = 50


def _may_register(user: Any) -> bool:
    return bool(user.is_owner or user.is_aggregator or user.is_registry_admin)


def _may_bulk_register(user: Any) -> bool:
    return bool(user.is_aggregator or user.is_registry_admin)


def _may_review(user: Any) -> bool:
    return bool(user.is_reviewer or user.is_registry_admin)


def _visible_system(request: HttpRequest, code: str) -> PVSystem:
    """The system with this code if the person may see it; 404 otherwise (its existence is not revealed)."""
    qs = access.visible_systems(request.user).select_related("community", "owner_user", "owner_org")
    return get_object_or_404(qs, code=code)


def _managed_system(request: HttpRequest, code: str) -> PVSystem:
    system = _visible_system(request, code)
    if not access.can_manage_system(request.user, system):
        raise PermissionDenied
    return system


def _plain(value: Decimal) -> str:
    """A decimal without trailing zeros: 6.500 → 6.5, 6000.000000 → 6000."""
    return format(value.normalize(), "f")


def _page_query(request: HttpRequest) -> str:
    q = request.GET.copy()
    q.pop("page", None)
    return q.urlencode()


@login_required
@require_GET
def system_list(request: HttpRequest) -> HttpResponse:
    """The systems the person may see, filtered by community and owner type, with this year's totals."""
    form = SystemFilterForm(request.GET or None)
    qs = (
        access.visible_systems(request.user)
        .select_related("community", "owner_user", "owner_org")
        .order_by("code")
    )
    if form.is_valid():
        if form.cleaned_data.get("community"):
            qs = qs.filter(community__code=form.cleaned_data["community"])
        if form.cleaned_data.get("owner_type"):
            qs = qs.filter(owner_type=form.cleaned_data["owner_type"])
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    year = timezone.localdate().year
    systems = list(page.object_list)
    totals = services.year_totals([s.pk for s in systems], year)
    rows = [
        {
            "system": s,
            "owner": services.owner_label(s),
            "generation_kwh": totals[s.pk][0],
            "er_kg": totals[s.pk][1],
        }
        for s in systems
    ]
    return render(
        request,
        "pv/system_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "year": year,
            "query": _page_query(request),
            "may_register": _may_register(request.user),
            "may_bulk": _may_bulk_register(request.user),
        },
    )


def _chart_data(rows: list[services.MonthRow], year: int) -> dict[str, Any]:
    def f(v: Decimal | None, places: int = 1) -> float | None:
        return None if v is None else float(round(v, places))

    return {
        "year": year,
        "months": [f"{r.month.month}" for r in rows],
        "generation": [f(r.generation_kwh) for r in rows],
        "bound": [f(r.bound_kwh) for r in rows],
        "er": [f(r.er_kg) for r in rows],
        "labels": {
            "generation": _("Metered generation (kWh)"),
            "bound": _("Clear-sky bound (kWh)"),
            "er": _("Avoided emissions (kg CO2e)"),
            "energy_axis": _("kWh"),
            "er_axis": _("kg CO2e"),
            "month": _("Month"),
        },
    }


@login_required
@require_GET
def system_detail(request: HttpRequest, code: str) -> HttpResponse:
    """Registration data, meters, evidence, claims, consents, and the months of a selectable year."""
    system = _visible_system(request, code)
    today = timezone.localdate()
    first_year = min(system.grid_connection_date.year, today.year)
    years = list(range(today.year, first_year - 1, -1))
    try:
        year = int(request.GET.get("year", today.year))
    except ValueError:
        year = today.year
    if year not in years:
        year = years[0]
    rows = services.monthly_overview(system, year)
    meters = list(
        Meter.objects.filter(subject_kind="pv_system", subject_id=system.pk).order_by("installed_at", "pk")
    )
    replacements = list(
        MeterReplacement.objects.filter(old_meter__in=meters)
        .select_related("old_meter", "new_meter")
        .order_by("replaced_at")
    )
    open_flags = [
        (f, services.flag_reason(f))
        for f in system.flags.filter(cleared_at__isnull=True).order_by("month", "code")
    ]
    may_manage = access.can_manage_system(request.user, system)
    may_consent = services.is_system_owner(request.user, system) or request.user.is_registry_admin
    totals = {
        "generation_kwh": sum((r.generation_kwh for r in rows if r.generation_kwh is not None), Decimal(0)),
        "bound_kwh": sum((r.bound_kwh for r in rows if r.bound_kwh is not None), Decimal(0)),
        "er_kg": sum((r.er_kg for r in rows if r.er_kg is not None), Decimal(0)),
    }
    return render(
        request,
        "pv/system_detail.html",
        {
            "system": system,
            "owner": services.owner_label(system),
            "owner_phone": services.owner_phone_masked(system),
            "address": services.address_for(system, request.user),
            "capacity": _plain(system.capacity_kwp),
            "tilt": _plain(system.tilt_deg),
            "azimuth": _plain(system.azimuth_deg),
            "year": year,
            "years": years,
            "rows": rows,
            "totals": totals,
            "chart": _chart_data(rows, year),
            "meters": meters,
            "replacements": replacements,
            "evidence": system.evidence.order_by("-uploaded_at"),
            "claims": system.programme_claims.order_by("period_start"),
            "consents": system.consents.select_related("aggregator").order_by("-granted_at"),
            "open_flags": open_flags,
            "may_manage": may_manage,
            "may_consent": may_consent,
            "evidence_form": EvidenceForm() if may_manage else None,
            "claim_form": ProgrammeClaimForm() if may_manage else None,
            "consent_form": ConsentForm() if may_consent else None,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """Register one system: owners their own, aggregators a household's (with its consent), admins anyone's."""
    if not _may_register(request.user):
        raise PermissionDenied
    form = RegistrationForm(request.POST or None, request.FILES or None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            system = services.do_register_system(
                form.service_data(), actor=request.user, evidence=form.evidence()
            )
        except services.RegistrationInvalid as exc:
            form.add_problems(exc.problems)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("PV system %(code)s registered.") % {"code": system.code})
            return redirect("pv:system_detail", code=system.code)
    return render(request, "pv/register.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def bulk_register(request: HttpRequest) -> HttpResponse:
    """Download the template, upload a filled-in file: every row is checked and nothing is saved on any error."""
    if not _may_bulk_register(request.user):
        raise PermissionDenied
    form = BulkUploadForm(request.POST or None, request.FILES or None, actor=request.user)
    result = None
    file_error = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = services.do_bulk_register(
                bulk.parse_upload(upload), actor=request.user, aggregator_org=form.aggregator()
            )
        except DomainError as exc:
            file_error = exc.message
        else:
            if result.ok:
                messages.success(request, _("%(n)s PV systems registered.") % {"n": len(result.created)})
    problems = []
    if result is not None:
        problems = [
            {"row": p.row, "column": bulk.column_label(p.field), "message": p.message, "code": p.code}
            for p in result.problems
        ]
    return render(
        request,
        "pv/bulk_register.html",
        {
            "form": form,
            "result": result,
            "problems": problems,
            "file_error": file_error,
            "columns": bulk.COLUMNS,
            "limit": _plain(services.capacity_limit_kwp()),
        },
    )


@login_required
@require_GET
def bulk_template(request: HttpRequest) -> HttpResponse:
    """The bulk registration template as Excel (default) or CSV."""
    if not _may_bulk_register(request.user):
        raise PermissionDenied
    fmt = request.GET.get("format", "xlsx")
    if fmt == "csv":
        response = HttpResponse(bulk.template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="pv-bulk-template.csv"'
        return response
    if fmt != "xlsx":
        raise Http404
    content = bulk.template_xlsx(Community.objects.order_by("code"), _plain(services.capacity_limit_kwp()))
    response = HttpResponse(
        content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = 'attachment; filename="pv-bulk-template.xlsx"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def replace_meter(request: HttpRequest, code: str) -> HttpResponse:
    """Record a meter exchange on a system the person manages."""
    system = _managed_system(request, code)
    form = ReplacementForm(request.POST or None, system=system)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            do_record_replacement(
                form.selected_meter(),
                new_serial=d["new_serial"],
                replaced_at=d["replaced_at"],
                old_final_reading=d["old_final_reading"],
                new_initial_reading=d["new_initial_reading"],
                work_order=d["work_order"],
                actor=request.user,
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                _("Meter replaced: %(old)s → %(new)s.")
                % {"old": form.selected_meter().serial, "new": d["new_serial"]},
            )
            return redirect("pv:system_detail", code=system.code)
    return render(request, "pv/replace_meter.html", {"system": system, "form": form})


@login_required
@require_POST
def add_evidence(request: HttpRequest, code: str) -> HttpResponse:
    system = _managed_system(request, code)
    form = EvidenceForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.do_add_evidence(
                system, form.cleaned_data["kind"], form.cleaned_data["file"], request.user
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Evidence file added."))
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("pv:system_detail", code=system.code)


@login_required
@require_GET
def evidence_file(request: HttpRequest, code: str, pk: int) -> FileResponse:
    """An evidence file, only for people who may see the system."""
    system = _visible_system(request, code)
    ev = get_object_or_404(system.evidence, pk=pk)
    try:
        handle = ev.file.open("rb")
    except FileNotFoundError:
        raise Http404
    return FileResponse(handle, filename=ev.original_name, as_attachment=True)


@login_required
@require_POST
def add_claim(request: HttpRequest, code: str) -> HttpResponse:
    system = _managed_system(request, code)
    form = ProgrammeClaimForm(request.POST)
    if form.is_valid():
        try:
            services.do_add_programme_claim(system, actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Other-programme claim recorded."))
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("pv:system_detail", code=system.code)


@login_required
@require_POST
def grant_consent(request: HttpRequest, code: str) -> HttpResponse:
    system = _visible_system(request, code)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            services.do_grant_consent(
                system,
                aggregator=form.cleaned_data["aggregator"],
                document=form.cleaned_data["document"],
                credit_to_aggregator=form.cleaned_data["credit_to_aggregator"],
                actor=request.user,
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Consent recorded."))
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("pv:system_detail", code=system.code)


@login_required
@require_POST
def revoke_consent(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    system = _visible_system(request, code)
    consent = get_object_or_404(ManagementConsent, pk=pk, system=system)
    try:
        services.do_revoke_consent(consent, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Consent revoked."))
    if access.can_view_system(request.user, system):
        return redirect("pv:system_detail", code=system.code)
    return redirect("pv:system_list")


@login_required
@require_GET
def flag_queue(request: HttpRequest) -> HttpResponse:
    """Open plausibility flags across all systems, oldest first, for reviewers and registry administrators."""
    if not _may_review(request.user):
        raise PermissionDenied
    qs = (
        PlausibilityFlag.objects.filter(
            cleared_at__isnull=True, system__in=access.visible_systems(request.user)
        )
        .select_related("system", "system__community")
        .order_by("detected_at", "pk")
    )
    severity = request.GET.get("severity", "")
    if severity in PlausibilityFlag.Severity.values:
        qs = qs.filter(severity=severity)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "flag": f,
            "reason": services.flag_reason(f),
            "days": (now - f.detected_at).days,
            "form": ClearFlagForm(),
        }
        for f in page.object_list
    ]
    return render(
        request,
        "pv/flag_queue.html",
        {
            "page": page,
            "rows": rows,
            "severity": severity,
            "severities": PlausibilityFlag.Severity.choices,
            "query": _page_query(request),
        },
    )


@login_required
@require_POST
def clear_flag(request: HttpRequest, flag_id: int) -> HttpResponse:
    """Clear one flag with a note, through `lowcarbon.pv.plausibility.do_clear_flag`."""
    from lowcarbon.pv.plausibility import do_clear_flag

    if not _may_review(request.user):
        raise PermissionDenied
    form = ClearFlagForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        flag = do_clear_flag(flag_id, request.user, note)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Flag cleared for %(code)s, %(month)s.")
            % {"code": flag.system.code, "month": flag.month.strftime("%Y-%m")},
        )
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("pv:flag_queue")
