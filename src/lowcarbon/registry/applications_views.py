"""Pages of the guidance, the applications, their review and issuance, and the notifications under /registry/.

Thin: parse, authorise through `lowcarbon.registry.applications`, call a service, render. An application a person
may not see answers 404.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lowcarbon.accounts.models import Organisation
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.methodology.domain.quantify import parse_month
from lowcarbon.pv import access
from lowcarbon.registry import applications as svc
from lowcarbon.registry.domain import workflow as wf
from lowcarbon.registry.models import Application

PAGE_SIZE = 50
#: systems shown in the guidance overview (the checklist of one system is always available)
OVERVIEW_MAX = 60


def _application(request: HttpRequest, code: str) -> Application:
    try:
        return svc.get_visible(request.user, code)
    except DomainError:
        raise Http404


def _month_param(request: HttpRequest, name: str, default: date) -> date:
    value = request.GET.get(name) or ""
    try:
        return parse_month(value) if value else default
    except ValueError:
        messages.error(request, _("“%(value)s” is not a month; write it as YYYY-MM.") % {"value": value})
        return default


def _period(request: HttpRequest) -> tuple[date, date]:
    d_first, d_last = svc.default_period()
    first = _month_param(request, "first", d_first)
    last = _month_param(request, "last", d_last)
    if first > last:
        messages.error(request, _("The first month is after the last month."))
        return d_first, d_last
    return first, last


def _nav(request: HttpRequest) -> dict[str, Any]:
    """What the registry pages' own navigation needs."""
    return {"unread": svc.unread_count(request.user), "is_verifier": svc.is_verifier(request.user)}


def _page_query(request: HttpRequest) -> str:
    q = request.GET.copy()
    q.pop("page", None)
    return q.urlencode()


@require_GET
def guidance(request: HttpRequest) -> HttpResponse:
    """Who may apply and on what conditions; for a logged-in person, the checklist of their systems from their own
    data: an overview of every system they may claim and the full checklist of one."""
    context: dict[str, Any] = svc.guidance_context()
    first, last = _period(request)
    context.update({"first": first, "last": last, "overview": [], "selected": None, "systems": []})
    user = request.user
    if user.is_authenticated:
        managed = list(
            access.managed_systems(user).select_related("owner_user", "owner_org").order_by("code")
        )
        context["systems"] = managed
        context["overview"] = svc.checklists(user, managed[:OVERVIEW_MAX], first, last)
        context["overview_truncated"] = len(managed) > OVERVIEW_MAX
        code = request.GET.get("system")
        if code:
            system = access.visible_systems(user).filter(code=code).first()
            if system is None:
                raise Http404
            try:
                context["selected"] = svc.checklist(user, system, first, last)
            except DomainError as exc:
                messages.error(request, exc.message)
    return render(request, "registry/app_guidance.html", context)


@require_GET
def guidance_pdf(request: HttpRequest) -> HttpResponse:
    """The guidance document as PDF, in the page's language."""
    response = HttpResponse(svc.guidance_pdf(), content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="phcer-application-guidance.pdf"'
    return response


@login_required
@require_GET
def application_list(request: HttpRequest) -> HttpResponse:
    """The applications the person may see, newest first, filtered by state."""
    qs = (
        svc.visible_applications(request.user)
        .select_related("applicant", "applicant_org")
        .order_by("-created_at")
    )
    state = request.GET.get("state") or ""
    if state in Application.State.values:
        qs = qs.filter(state=state)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    user = request.user
    return render(
        request,
        "registry/app_list.html",
        {
            "page": page,
            "state": state,
            "states": Application.State.choices,
            "query": _page_query(request),
            "may_apply": bool(user.is_owner or user.is_aggregator),
            "may_review": bool(user.is_reviewer or svc.is_verifier(user)),
            "may_issue": bool(user.is_registry_admin),
            **_nav(request),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def application_new(request: HttpRequest) -> HttpResponse:
    """Choose the kind, the period and the systems; each system shows its checklist for the period and the kilograms
    it would bring. Creating runs every check again and names each refusal."""
    user = request.user
    if not (user.is_owner or user.is_aggregator):
        raise PermissionDenied
    source = request.POST if request.method == "POST" else request.GET
    kinds = []
    if user.is_owner:
        kinds.append(Application.Kind.SINGLE)
    if user.is_aggregator:
        kinds.append(Application.Kind.BUNDLE)
    kind = source.get("kind") or kinds[-1]
    if kind not in kinds:
        kind = kinds[-1]
    d_first, d_last = svc.default_period()
    first, last = d_first, d_last
    try:
        first = parse_month(source.get("first") or svc.fmt_month(d_first))
        last = parse_month(source.get("last") or svc.fmt_month(d_last))
    except ValueError:
        messages.error(request, _("Write the months as YYYY-MM."))
    orgs = list(Organisation.objects.filter(pk__in=access.aggregator_orgs(user)).order_by("name"))
    org_id = source.get("aggregator_org") or ""
    refusals: list[svc.Refusal] = []
    error = ""
    chosen = source.getlist("systems")
    if request.method == "POST" and source.get("op") != "recalc":
        try:
            app = svc.do_create_application(
                user,
                system_codes=chosen,
                first_month=first,
                last_month=last,
                kind=kind,
                aggregator_org=int(org_id) if org_id.isdigit() else None,
            )
        except svc.ApplicationRefused as exc:
            refusals = exc.refusals
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(
                request,
                _(
                    "Application %(code)s created: %(units)s tCO2e. Add the report and sign the commitment, then submit."
                )
                % {"code": app.code, "units": app.units},
            )
            return redirect("registry:application_detail", code=app.code)
    candidates = svc.claimable_systems(user, kind)
    rows = svc.preview_rows(user, candidates, first, last) if first <= last else []
    if request.method == "GET":
        chosen = [r.system.code for r in rows if r.ready]
    estimate = svc.estimate(rows, chosen)
    return render(
        request,
        "registry/app_new.html",
        {
            "kind": kind,
            "kinds": [(k, Application.Kind(k).label) for k in kinds],
            "first": first,
            "last": last,
            "rows": rows,
            "chosen": set(chosen),
            "orgs": orgs,
            "org_id": org_id,
            "refusals": refusals,
            "error": error,
            "estimate": estimate,
            **_nav(request),
        },
    )


@login_required
@require_GET
def application_detail(request: HttpRequest, code: str) -> HttpResponse:
    """The application: claim and its arithmetic, each member's share, the report and commitment, the actions the
    person may take, and the timeline."""
    app = _application(request, code)
    user = request.user
    editable = svc.is_applicant_side(user, app) and app.state in wf.EDITABLE_STATES
    actions = svc.available_actions(app, user)
    members = svc.member_rows(app, user)
    linkable = set(
        access.visible_systems(user)
        .filter(pk__in=[r["system"].pk for r in members])
        .values_list("code", flat=True)
    )
    return render(
        request,
        "registry/app_detail.html",
        {
            "app": app,
            "members": members,
            "linkable": linkable,
            "blocks": svc.issued_blocks(app),
            "generation_total": sum((r["member"].generation_kwh for r in members), Decimal(0)),
            "timeline": svc.timeline(app),
            "actions": [(a, svc.action_label(a), wf.STEPS[a].comment_required) for a in actions],
            "editable": editable,
            "commitment_preview": svc.commitment_text(app, user) if editable else "",
            "superseded": svc.superseded_months(app),
            "period": svc.fmt_period(app.period_start, app.period_end),
            "is_applicant": svc.is_applicant_side(user, app),
            "may_issue": app.state == Application.State.APPROVED and user.is_registry_admin,
            **_nav(request),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def application_report(request: HttpRequest, code: str) -> HttpResponse:
    """GET: the verification report (PDF). POST: attach a PDF (`report` file) or let the platform draft one
    (`generate`)."""
    app = _application(request, code)
    if request.method == "GET":
        if not app.report:
            raise Http404
        try:
            handle = app.report.open("rb")
        except FileNotFoundError:
            raise Http404
        return FileResponse(handle, filename=f"{app.code}-report.pdf", as_attachment=False)
    try:
        if "report" in request.FILES:
            svc.do_attach_report(app, request.user, request.FILES["report"])
            messages.success(request, _("Verification report attached."))
        elif request.POST.get("generate"):
            svc.do_generate_report(app, request.user)
            messages.success(request, _("Draft verification report generated from the data."))
        else:
            messages.error(request, _("Choose a PDF file to attach, or generate the draft report."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("registry:application_detail", code=app.code)


@login_required
@require_POST
def application_action(request: HttpRequest, code: str) -> HttpResponse:
    """Sign the commitment, or take a workflow step with a comment."""
    app = _application(request, code)
    action = request.POST.get("action", "")
    try:
        if action == "sign_commitment":
            svc.do_sign_commitment(app, request.user)
            messages.success(request, _("No-double-claim commitment signed."))
        else:
            app = svc.do_transition(app, action, request.user, request.POST.get("comment", ""))
            messages.success(
                request,
                _("%(action)s: the application is now “%(state)s”.")
                % {"action": svc.action_label(action), "state": app.get_state_display()},
            )
    except DomainError as exc:
        messages.error(request, exc.message)
    nxt = request.POST.get("next", "")
    if nxt == "queue":
        return redirect("registry:review_queue")
    return redirect("registry:application_detail", code=app.code)


@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    """Applications waiting for the reviewer (or verifier), oldest first, with the days each has waited."""
    user = request.user
    if not (user.is_reviewer or svc.is_verifier(user)):
        raise PermissionDenied
    items = svc.reviewer_queue(user)
    return render(
        request,
        "registry/app_queue.html",
        {"items": [(i, [(a, svc.action_label(a)) for a in i.actions]) for i in items], **_nav(request)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def issue_queue(request: HttpRequest) -> HttpResponse:
    """Approved applications for registry administrators; the Issue button issues the units through the ledger
    with the logged-in administrator as issuer."""
    user = request.user
    if not user.is_registry_admin:
        raise PermissionDenied
    if request.method == "POST":
        code = request.POST.get("code", "")
        app = Application.objects.filter(code=code).first()
        if app is None:
            raise Http404
        try:
            blocks = svc.do_issue(app, user, client_key=request.POST.get("client_key", "")[:100])
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("Application %(code)s issued: %(units)s tCO2e in %(blocks)s serial blocks.")
                % {"code": app.code, "units": app.units, "blocks": len(blocks)},
            )
        return redirect("registry:issue_queue")
    return render(
        request,
        "registry/app_issue_queue.html",
        {"items": svc.issue_queue(user), "client_key": uuid.uuid4().hex, **_nav(request)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The person's notifications, newest first; POST marks them all read."""
    if request.method == "POST":
        n = svc.do_mark_notifications_read(request.user)
        messages.success(request, _("%(n)s notifications marked as read.") % {"n": n})
        return redirect("registry:notifications")
    page = Paginator(svc.notifications_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "registry/app_notifications.html",
        {"page": page, "query": "", **_nav(request)},
    )
