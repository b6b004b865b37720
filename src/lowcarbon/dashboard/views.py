"""Pages of the dashboards: the public transparency dashboard (no log-in), the role dashboard at /my/, Excel exports
and the monthly town report. Thin: authorise, call a service, render."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from lowcarbon.dashboard import exports, report, services
from lowcarbon.dashboard.domain import metrics
from lowcarbon.pv.models import Community, OwnerType
from lowcarbon.registry.applications import is_verifier


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _when(text: str | None) -> Any:
    if not text:
        return None
    parsed = parse_datetime(text)
    return timezone.localtime(parsed) if parsed is not None else None


def _public_context(fig: dict[str, Any]) -> dict[str, Any]:
    en = _english()
    owner_labels = dict(OwnerType.choices)
    areas = [
        {
            "name": (" · " if en else "、").join(a["names_en"] if en else a["names_zh"]),
            "systems": a["systems"],
            "capacity_kwp": a["capacity_kwp"],
            "lat": a["lat"],
            "lon": a["lon"],
            "merged": len(a["keys"]) > 1,
        }
        for a in fig["areas"]
    ]
    communities = [
        {"name": c.name_en if en else c.name_zh, "lat": float(c.latitude), "lon": float(c.longitude)}
        for c in Community.objects.all()
    ]
    series = fig["series"]
    er_total = sum(v for v in series.get("er_kg", []) if v is not None)
    gen_total = sum(v for v in series.get("generation_kwh", []) if v is not None)
    chart = {
        "series": series,
        "areas": areas,
        "communities": communities,
        "market": fig["market"],
        "labels": {
            "generation": _("Generation (kWh)"),
            "er": _("Avoided emissions (kg CO2e)"),
            "capacity": _("Installed capacity (kWp)"),
            "systems": _("Systems"),
            "issued": _("Units issued (t)"),
            "retired": _("Units retired (t)"),
            "transferred": _("Units transferred (t)"),
            "volume": _("Volume traded (t)"),
            "close": _("Month's last close (CNY/t)"),
            "avg_price": _("Average price (CNY/t)"),
            "area": _("Area"),
            "community": _("Community centre"),
            "capacity_short": _("kWp"),
            "systems_short": _("systems"),
            "longitude": _("Longitude (°E)"),
            "latitude": _("Latitude (°N)"),
            "suppressed": _("not published: fewer than %(k)d systems") % {"k": fig["k"]},
        },
    }
    return {
        "fig": fig,
        "chart": chart,
        "areas": areas,
        "by_type": [{"label": owner_labels.get(c["key"], c["key"]), **c} for c in fig["by_owner_type"]],
        "er_total_t": er_total / 1000,
        "gen_total_kwh": gen_total,
        "computed_at": _when(fig["computed_at"]),
        "readings_day": date.fromisoformat(fig["data_through"]["readings_day"])
        if fig["data_through"]["readings_day"]
        else None,
        "quantified_at": _when(fig["data_through"]["quantified_at"]),
        "registry_at": _when(fig["data_through"]["registry_at"]),
        "first_month": series["months"][0] if series.get("months") else None,
        "last_month": series["months"][-1] if series.get("months") else None,
        "cache_seconds": services.PUBLIC_CACHE_SECONDS,
    }


@require_GET
def public_dashboard(request: HttpRequest) -> HttpResponse:
    """The public transparency dashboard: no log-in, aggregated figures only. Its content is rendered at most once
    per language and computation of the figures (template fragment cache)."""
    return render(request, "dashboard/public.html", _public_context(services.public_figures()))


@require_GET
def public_data(request: HttpRequest) -> JsonResponse:
    """The public dashboard's figures as JSON (the same aggregates as the page)."""
    resp = JsonResponse(services.public_figures())
    resp["Cache-Control"] = f"public, max-age={services.PUBLIC_CACHE_SECONDS}"
    return resp


def _requested_month(request: HttpRequest) -> date | None:
    text = request.GET.get("month", "")
    if not text:
        return None
    try:
        return metrics.parse_month(text)
    except ValueError:
        return None


@login_required
@require_GET
def my_dashboard(request: HttpRequest) -> HttpResponse:
    """One page, the panels of each of the person's roles."""
    user = request.user
    month = _requested_month(request)
    ctx: dict[str, Any] = {"panels": []}
    if user.is_owner or services.owned_systems(user).exists():
        ctx["owner"] = services.cached_panel("owner", user, month, services.owner_panel)
        ctx["panels"].append("owner")
    if user.is_aggregator:
        ctx["aggregator"] = services.cached_panel("aggregator", user, month, services.aggregator_panel)
        ctx["panels"].append("aggregator")
    if user.is_reviewer or is_verifier(user):
        ctx["reviewer"] = services.cached_panel(
            "reviewer", user, None, lambda u, _m: services.reviewer_panel(u)
        )
        ctx["panels"].append("reviewer")
    if user.is_registry_admin:
        ctx["admin"] = services.cached_panel("admin", user, None, lambda u, _m: services.admin_panel(u))
        ctx["panels"].append("admin")
    ctx["tables"] = exports.available_tables(user)
    ctx["officials"] = exports.is_official(user)
    ctx["lag_days"] = services.LAG_DAYS
    ctx["bad_month"] = bool(request.GET.get("month")) and month is None
    return render(request, "dashboard/my.html", ctx)


@login_required
@require_GET
def export_list(request: HttpRequest) -> HttpResponse:
    """The tables this person may download as Excel."""
    return render(
        request,
        "dashboard/exports.html",
        {"tables": exports.available_tables(request.user), "officials": exports.is_official(request.user)},
    )


@login_required
@require_GET
def export_table(request: HttpRequest, table: str) -> HttpResponse:
    """One table as an Excel workbook, with only the rows the person may see."""
    if table not in exports.BUILDERS:
        raise Http404
    try:
        name, data = exports.export_workbook(request.user, table)
    except exports.NotAllowed:
        raise PermissionDenied(_("You may not export this table."))
    resp = HttpResponse(
        data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    resp["Content-Disposition"] = f'attachment; filename="{name}"'
    resp["Cache-Control"] = "no-store"
    return resp


def _require_official(request: HttpRequest) -> None:
    if not exports.is_official(request.user):
        raise PermissionDenied(_("Town reports are for reviewers and registry administrators."))


@login_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    """Monthly town reports to download (officials)."""
    _require_official(request)
    return render(request, "dashboard/reports.html", {"months": report.report_months()})


@login_required
@require_GET
def town_report(request: HttpRequest, year: int, month: int) -> HttpResponse:
    """The town report of one month as PDF (officials)."""
    _require_official(request)
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise Http404
    first = date(year, month, 1)
    if first > metrics.month_start(timezone.localdate()):
        raise Http404
    resp = HttpResponse(report.report_pdf(first), content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="xiaolan-town-report-{year:04d}-{month:02d}.pdf"'
    return resp
