"""Pages of investment and financing under /finance/ (namespace `finance`).

Thin: parse, authorise through `lowcarbon.finance.services`, call a service, render. A project a person may not see
answers 404; an action a person may not take answers 403 or a translated message.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.finance import services as svc
from lowcarbon.finance.models import FinancingProject, FinancingType, ProjectKind
from lowcarbon.pv.models import Community

PAGE_SIZE = 30
ROOF_ROWS = 8
PROJECT_FIELDS = (
    "name",
    "community",
    "roof_area_m2",
    "capacity_kwp",
    "amount_cny",
    "financing_type",
    "tilt_deg",
    "azimuth_deg",
    "self_consumption_percent",
    "description",
    "owner_org",
)


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """Render with what the finance navigation needs."""
    context.setdefault("may_publish", svc.may_publish(request.user))
    return render(request, template, context)


def _project(request: HttpRequest, code: str) -> FinancingProject:
    try:
        return svc.get_visible(request.user, code)
    except DomainError:
        raise Http404


def _errors(exc: DomainError) -> dict[str, list[str]]:
    """Problems by field (the key '' holds those without a field)."""
    out: dict[str, list[str]] = {}
    for p in getattr(exc, "problems", None) or [svc.Problem(exc.field or "", exc.message)]:
        out.setdefault(p.field or "", []).append(p.message)
    return out


def _choices() -> dict[str, Any]:
    return {
        "communities": Community.objects.order_by("code"),
        "financing_types": FinancingType.choices,
        "kinds": ProjectKind.choices,
        "states": FinancingProject.State.choices,
    }


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    """Owners: their projects. Financiers: published projects, filtered. Administrators: all projects."""
    user = request.user
    financier = svc.is_financier(user)
    owner = svc.may_publish(user)
    if not (financier or owner or user.is_registry_admin):
        raise PermissionDenied
    qs = svc.visible_projects(user).select_related("community", "owner_org", "owner_user")
    qs = svc.filter_projects(qs, request.GET).order_by("-published_at", "-created_at", "-pk")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    q = request.GET.copy()
    q.pop("page", None)
    return _render(
        request,
        "finance/project_list.html",
        {
            "page": page,
            "params": request.GET,
            "query": q.urlencode(),
            "may_publish": owner,
            "is_financier": financier,
            "is_admin": user.is_registry_admin,
            **_choices(),
        },
    )


def _project_form_context(
    request: HttpRequest, values: dict[str, Any], errors: dict[str, list[str]]
) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "owner_choices": svc.owner_choices(request.user),
        "systems": svc.systems_for_linking(request.user),
        "chosen_systems": set(values.get("systems", [])),
        "defaults": {
            "self_consumption_percent": svc._fmt(svc.get_parameter(svc.SELF_CONSUMPTION_KEY).value * 100),
            "packing": svc._fmt(svc.get_parameter(svc.PACKING_KEY).value),
        },
        **_choices(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    """A new draft financing project."""
    if not svc.may_publish(request.user):
        raise PermissionDenied
    values: dict[str, Any] = {"tilt_deg": "10", "azimuth_deg": "180", "financing_type": "loan"}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in PROJECT_FIELDS}
        values["systems"] = request.POST.getlist("systems")
        try:
            project = svc.do_create_project(request.user, values, values["systems"])
        except DomainError as exc:
            errors = _errors(exc)
        else:
            messages.success(
                request,
                _("Draft %(code)s saved. Check the expected cash flows, then publish it.")
                % {"code": project.code},
            )
            return redirect("finance:project_detail", code=project.code)
    return _render(
        request,
        "finance/project_form.html",
        {"creating": True, **_project_form_context(request, values, errors)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, code: str) -> HttpResponse:
    project = _project(request, code)
    if not svc.is_owner_side(request.user, project):
        raise PermissionDenied
    if project.state == FinancingProject.State.CLOSED:
        messages.error(request, _("The project is closed; it can no longer be changed."))
        return redirect("finance:project_detail", code=project.code)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in PROJECT_FIELDS}
        values["systems"] = request.POST.getlist("systems")
        try:
            svc.do_update_project(request.user, project, values, values["systems"])
        except DomainError as exc:
            errors = _errors(exc)
        else:
            messages.success(request, _("Project %(code)s updated.") % {"code": project.code})
            return redirect("finance:project_detail", code=project.code)
    else:
        values = {
            "name": project.name,
            "community": project.community.code,
            "roof_area_m2": svc._fmt(project.roof_area_m2) if project.roof_area_m2 is not None else "",
            "capacity_kwp": svc._fmt(project.capacity_kwp),
            "amount_cny": svc._fmt(project.amount_cny),
            "financing_type": project.financing_type,
            "tilt_deg": svc._fmt(project.tilt_deg),
            "azimuth_deg": svc._fmt(project.azimuth_deg),
            "self_consumption_percent": svc._fmt(project.self_consumption_share * 100),
            "description": project.description,
            "systems": list(project.systems.values_list("code", flat=True)),
        }
    return _render(
        request,
        "finance/project_form.html",
        {"creating": False, "project": project, **_project_form_context(request, values, errors)},
    )


@login_required
@require_http_methods(["GET"])
def project_detail(request: HttpRequest, code: str) -> HttpResponse:
    """The project, its expected generation and cash flows with every assumption (editable for this calculation
    via the form, saved by the owner), the leads (owner's side, administrators) or the financier's own interest."""
    project = _project(request, code)
    user = request.user
    overrides = {k: request.GET[k] for k in svc.SPECS if request.GET.get(k, "").strip()}
    errors: dict[str, list[str]] = {}
    calc = None
    calc_error = ""
    try:
        calc = svc.calculate(project, overrides)
    except svc.FinanceInvalid as exc:
        errors = _errors(exc)
        overrides = {}
        try:
            calc = svc.calculate(project)
        except DomainError as inner:
            calc_error = inner.message
    except DomainError as exc:
        calc_error = exc.message
    owner_side = svc.is_owner_side(user, project)
    interests = list(svc.visible_interests(user, project))
    financier = svc.is_financier(user)
    own_interest = next((i for i in interests if i.financier_id == user.pk), None) if financier else None
    return _render(
        request,
        "finance/project_detail.html",
        {
            "project": project,
            "calc": calc,
            "calc_error": calc_error,
            "chart": json.dumps(calc.chart()) if calc else "null",
            "overridden": bool(overrides),
            "errors": errors,
            "owner_side": owner_side,
            "editable": owner_side and project.state != FinancingProject.State.CLOSED,
            "may_close": (owner_side or user.is_registry_admin)
            and project.state != FinancingProject.State.CLOSED,
            "interests": interests,
            "is_financier": financier,
            "own_interest": own_interest,
            "may_express": financier
            and own_interest is None
            and project.state == FinancingProject.State.PUBLISHED,
            "systems": list(project.systems.order_by("code")),
            "interest_values": {},
            "interest_errors": {},
        },
    )


@login_required
@require_POST
def project_action(request: HttpRequest, code: str) -> HttpResponse:
    """publish, close, or save the assumptions of the form as the project's own."""
    project = _project(request, code)
    action = request.POST.get("action", "")
    try:
        if action == "publish":
            svc.do_publish(request.user, project)
            messages.success(
                request, _("Project %(code)s published: financiers can now see it.") % {"code": project.code}
            )
        elif action == "close":
            svc.do_close(request.user, project)
            messages.success(request, _("Project %(code)s closed.") % {"code": project.code})
        elif action == "save_assumptions":
            values = {k: request.POST.get(k, "") for k in svc.SPECS}
            svc.do_save_assumptions(request.user, project, values)
            messages.success(request, _("Assumptions saved on project %(code)s.") % {"code": project.code})
        else:
            messages.error(request, _("Unknown action “%(action)s”.") % {"action": action[:40]})
    except DomainError as exc:
        if exc.code == "not_allowed":
            raise PermissionDenied
        messages.error(request, exc.message)
    return redirect("finance:project_detail", code=project.code)


@login_required
@require_POST
def project_interest(request: HttpRequest, code: str) -> HttpResponse:
    """A financier expresses interest (message, amount, terms)."""
    project = _project(request, code)
    if not svc.is_financier(request.user):
        raise PermissionDenied
    data = {k: request.POST.get(k, "") for k in ("message", "amount_cny", "terms")}
    try:
        svc.do_express_interest(request.user, project, data)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Your interest in %(code)s was sent; the project owner has been notified.")
            % {"code": project.code},
        )
    return redirect("finance:project_detail", code=project.code)


@login_required
@require_http_methods(["GET", "POST"])
def pipeline(request: HttpRequest) -> HttpResponse:
    """Administrators: projects by stage, leads and amounts; financier sign-ups waiting for approval."""
    user = request.user
    if not user.is_registry_admin:
        raise PermissionDenied
    if request.method == "POST":
        raw = request.POST.get("user_id", "")
        try:
            approved = svc.do_approve_financier(user, int(raw) if raw.isdigit() else 0)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Financier %(user)s approved.") % {"user": approved.username})
        return redirect("finance:pipeline")
    return _render(request, "finance/pipeline.html", svc.pipeline(user))


@require_http_methods(["GET", "POST"])
def financier_signup(request: HttpRequest) -> HttpResponse:
    """Sign-up of a financial institution and its first user; an administrator approves before the first log-in."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    done = False
    if request.method == "POST":
        values = {
            k: request.POST.get(k, "") for k in ("org_name", "credit_code", "username", "real_name", "phone")
        }
        try:
            svc.do_register_financier({**values, "password": request.POST.get("password", "")})
        except DomainError as exc:
            errors = _errors(exc)
        else:
            done = True
    return _render(
        request, "finance/financier_signup.html", {"values": values, "errors": errors, "done": done}
    )


@require_http_methods(["GET", "POST"])
def estimator(request: HttpRequest) -> HttpResponse:
    """Public rooftop potential estimator (no log-in). Saves nothing unless a logged-in owner turns the estimate
    into a draft financing project (`op=draft`)."""
    source = request.POST if request.method == "POST" else request.GET
    defaults = svc.estimator_defaults()
    params = {
        k: source.get(k, "") or defaults.get(k, "")
        for k in ("packing_m2_per_kwp", "capex_cny_per_kwp", "performance_ratio")
    }
    params["community"] = source.get("community", "")
    rows = []
    n = max(ROOF_ROWS, len(source.getlist("area_m2")))
    names, areas = source.getlist("name"), source.getlist("area_m2")
    tilts, azimuths = source.getlist("tilt_deg"), source.getlist("azimuth_deg")
    for i in range(n):
        rows.append(
            {
                "name": names[i] if i < len(names) else "",
                "area_m2": areas[i] if i < len(areas) else "",
                "tilt_deg": tilts[i] if i < len(tilts) else "",
                "azimuth_deg": azimuths[i] if i < len(azimuths) else "",
            }
        )
    errors: dict[str, list[str]] = {}
    result = None
    submitted = bool(areas)
    if submitted:
        try:
            result = svc.estimate(svc.parse_estimate(rows, params))
        except DomainError as exc:
            errors = _errors(exc)
    user = request.user
    may_draft = user.is_authenticated and svc.may_publish(user)
    draft = {k: source.get(k, "") for k in ("project_name", "financing_type", "owner_org", "amount_cny")}
    if request.method == "POST" and source.get("op") == "draft":
        if not user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        if not may_draft:
            raise PermissionDenied
        if result is not None:
            try:
                project = svc.do_project_from_estimate(
                    user,
                    result,
                    {
                        "name": draft["project_name"],
                        "financing_type": draft["financing_type"],
                        "owner_org": draft["owner_org"],
                        "amount_cny": draft["amount_cny"],
                        "community": params["community"],
                    },
                )
            except DomainError as exc:
                errors = _errors(exc)
            else:
                messages.success(
                    request,
                    _("Draft financing project %(code)s created from the estimate.") % {"code": project.code},
                )
                return redirect("finance:project_detail", code=project.code)
    return _render(
        request,
        "finance/estimator.html",
        {
            "rows": rows,
            "params": params,
            "defaults": defaults,
            "errors": errors,
            "result": result,
            "may_draft": may_draft,
            "draft": draft,
            "owner_choices": svc.owner_choices(user) if may_draft else [],
            "sources": svc.parameter_sources(),
            "packing_key": svc.PACKING_KEY,
            "zero": Decimal(0),
            **_choices(),
        },
    )
