"""Pages of the information service and demonstration projects under /info/ (thin: parse, authorise through
`lowcarbon.info.services`, call a service, render). Drafts and unpublished projects answer 404 to the public; editor
pages answer 403 to people who are not content editors or registry administrators."""

from __future__ import annotations

import mimetypes
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lowcarbon.accounts.models import Organisation
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.info import services as svc
from lowcarbon.info.models import (
    Article,
    Attachment,
    CooperationRequest,
    DemoProject,
    Outcome,
    Photo,
)
from lowcarbon.pv.models import Community

PAGE_SIZE = 20


def _query(request: HttpRequest) -> str:
    q = request.GET.copy()
    q.pop("page", None)
    return q.urlencode()


def _require_editor(request: HttpRequest) -> None:
    if not svc.is_editor(request.user):
        raise PermissionDenied


def _sub_nav(request: HttpRequest) -> dict[str, Any]:
    return {
        "is_editor": svc.is_editor(request.user),
        "may_see_inbox": svc.may_see_inbox(request.user),
    }


def _file(
    handle_field: Any, filename: str, *, attachment: bool, content_type: str | None = None
) -> FileResponse:
    try:
        handle = handle_field.open("rb")
    except FileNotFoundError:
        raise Http404
    response = FileResponse(handle, filename=filename, as_attachment=attachment, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- public: notices -----------------------------------------------------------------------------------------------


@require_GET
def article_list(request: HttpRequest) -> HttpResponse:
    """Published notices, newest first, with a category filter and a search over both languages."""
    q = (request.GET.get("q") or "").strip()[:100]
    category = request.GET.get("category") or ""
    qs = svc.search_articles(svc.public_articles(), q, category).prefetch_related("attachments")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "info/article_list.html",
        {
            "page": page,
            "q": q,
            "category": category if category in Article.Category.values else "",
            "categories": Article.Category.choices,
            "query": _query(request),
            **_sub_nav(request),
        },
    )


@require_GET
def article_detail(request: HttpRequest, pk: int) -> HttpResponse:
    article = get_object_or_404(svc.visible_articles(request.user), pk=pk)
    return render(
        request,
        "info/article_detail.html",
        {"article": article, "attachments": article.attachments.all(), **_sub_nav(request)},
    )


@require_GET
def attachment_file(request: HttpRequest, pk: int) -> FileResponse:
    """A notice's attachment: public only while the notice is public; editors always."""
    att = get_object_or_404(Attachment.objects.select_related("article"), pk=pk)
    if not svc.attachment_visible(request.user, att):
        raise Http404
    content_type = mimetypes.guess_type(att.original_name)[0] or "application/octet-stream"
    return _file(att.file, att.original_name, attachment=True, content_type=content_type)


# --- public: demonstration projects --------------------------------------------------------------------------------


@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind") or ""
    qs = svc.public_projects().select_related("community", "owner_org").prefetch_related("photos")
    if kind in DemoProject.Kind.values:
        qs = qs.filter(kind=kind)
    return render(
        request,
        "info/project_list.html",
        {
            "projects": list(qs),
            "kind": kind if kind in DemoProject.Kind.values else "",
            "kinds": DemoProject.Kind.choices,
            **_sub_nav(request),
        },
    )


@require_http_methods(["GET", "POST"])
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A project with its outcomes (computed from platform data for linked PV systems), photos and contact; POST
    sends a cooperation request (no log-in needed)."""
    project = get_object_or_404(
        svc.visible_projects(request.user).select_related("community", "owner_org", "owner_user"), pk=pk
    )
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in ("name", "organisation", "contact", "message")}
        try:
            svc.do_send_request(
                project,
                request.POST,
                sender_ip=request.META.get("REMOTE_ADDR"),
                language=get_language() or "",
            )
        except svc.InfoRefused as exc:
            errors = exc.by_field()
            status = 429 if exc.code == "rate_limit" else 400
        else:
            messages.success(
                request,
                _("Thank you: your request was sent to %(org)s. They will contact you.")
                % {"org": project.owner_org.display_name},
            )
            return redirect("info:project_detail", pk=project.pk)
    return render(
        request,
        "info/project_detail.html",
        {
            "project": project,
            "computed": svc.computed_outcomes(project),
            "outcomes": project.outcomes.all(),
            "photos": project.photos.all(),
            "errors": errors,
            "values": values,
            "labels": {
                k: svc.label_of(k)
                for k in ("name", "organisation", "contact", "message", "website", "__all__")
            },
            "is_owner": svc.owns_project(request.user, project),
            **_sub_nav(request),
        },
        status=status,
    )


@require_GET
def photo_file(request: HttpRequest, pk: int) -> FileResponse:
    photo = get_object_or_404(Photo.objects.select_related("project"), pk=pk)
    if not svc.photo_visible(request.user, photo):
        raise Http404
    return _file(
        photo.image, photo.image.name.rsplit("/", 1)[-1], attachment=False, content_type=photo.content_type
    )


@require_GET
def photo_thumb(request: HttpRequest, pk: int) -> FileResponse:
    photo = get_object_or_404(Photo.objects.select_related("project"), pk=pk)
    if not svc.photo_visible(request.user, photo):
        raise Http404
    return _file(
        photo.thumbnail, photo.thumbnail.name.rsplit("/", 1)[-1], attachment=False, content_type="image/jpeg"
    )


# --- inbox of cooperation requests ---------------------------------------------------------------------------------


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Requests to the person's projects (all of them for administrators), new ones first."""
    if not svc.may_see_inbox(request.user):
        raise PermissionDenied
    state = request.GET.get("state") or ""
    qs = svc.inbox_requests(request.user).order_by("state", "-created_at", "-pk")
    if state in CooperationRequest.State.values:
        qs = qs.filter(state=state)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "info/inbox.html",
        {
            "page": page,
            "state": state,
            "states": CooperationRequest.State.choices,
            "query": _query(request),
            **_sub_nav(request),
        },
    )


@login_required
@require_POST
def request_answer(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(svc.inbox_requests(request.user), pk=pk)
    try:
        svc.do_mark_answered(request.user, req, request.POST.get("answer_note", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Request from %(org)s marked as answered.") % {"org": req.organisation})
    return redirect("info:inbox")


# --- editors: notices ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def manage(request: HttpRequest) -> HttpResponse:
    """Every notice (drafts, scheduled, published) and every project, for content editors."""
    _require_editor(request)
    q = (request.GET.get("q") or "").strip()[:100]
    articles = svc.search_articles(svc.visible_articles(request.user), q, request.GET.get("category") or "")
    return render(
        request,
        "info/manage.html",
        {
            "articles": articles.select_related("updated_by"),
            "projects": DemoProject.objects.select_related("owner_org").order_by("kind", "pk"),
            "q": q,
            "now": timezone.now(),
            **_sub_nav(request),
        },
    )


def _article_form(
    request: HttpRequest,
    article: Article | None,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "info/article_form.html",
        {
            "article": article,
            "values": values,
            "errors": errors,
            "categories": Article.Category.choices,
            "labels": {
                k: svc.label_of(k) for k in ("category", *svc.ARTICLE_TEXT_FIELDS, "publish_at", "file")
            },
            "attachments": article.attachments.all() if article else [],
            "revisions": article.revisions.select_related("edited_by")[:30] if article else [],
            "revision_actions": {k: str(v) for k, v in svc.REVISION_ACTIONS.items()},
            "attachment_types": ", ".join(svc.ATTACHMENT_EXTENSIONS),
            "attachment_max_mb": svc.ATTACHMENT_MAX_BYTES // (1024 * 1024),
            **_sub_nav(request),
        },
        status=status,
    )


def _article_values(article: Article | None) -> dict[str, str]:
    if article is None:
        return {"category": "news"}
    return {f: getattr(article, f) for f in ("category", *svc.ARTICLE_TEXT_FIELDS)}


@login_required
@require_http_methods(["GET", "POST"])
def article_new(request: HttpRequest) -> HttpResponse:
    _require_editor(request)
    if request.method == "GET":
        return _article_form(request, None, _article_values(None), {})
    try:
        article = svc.do_save_article(request.user, request.POST)
    except svc.InfoRefused as exc:
        return _article_form(request, None, request.POST.dict(), exc.by_field(), status=400)
    messages.success(request, _("Draft saved. Add attachments if any, then publish it."))
    return redirect("info:article_edit", pk=article.pk)


@login_required
@require_http_methods(["GET", "POST"])
def article_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    article = get_object_or_404(Article, pk=pk)
    if request.method == "GET":
        return _article_form(request, article, _article_values(article), {})
    try:
        article = svc.do_save_article(request.user, request.POST, article)
    except svc.InfoRefused as exc:
        return _article_form(request, article, request.POST.dict(), exc.by_field(), status=400)
    messages.success(request, _("Changes saved."))
    return redirect("info:article_edit", pk=article.pk)


@login_required
@require_POST
def article_publish(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    article = get_object_or_404(Article, pk=pk)
    try:
        when = svc.parse_datetime_local(request.POST.get("publish_at", ""))
        article = svc.do_publish_article(request.user, article, when)
    except svc.InfoRefused as exc:
        return _article_form(request, article, _article_values(article), exc.by_field(), status=400)
    if article.is_scheduled:
        local = timezone.localtime(article.publish_at)
        messages.success(
            request,
            _("Scheduled: the notice becomes public on %(when)s.")
            % {"when": local.strftime("%Y-%m-%d %H:%M")},
        )
    else:
        messages.success(request, _("Published: the notice is public now."))
    return redirect("info:article_edit", pk=article.pk)


@login_required
@require_POST
def article_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    article = svc.do_unpublish_article(request.user, get_object_or_404(Article, pk=pk))
    messages.success(request, _("Withdrawn: the notice and its attachments are no longer public."))
    return redirect("info:article_edit", pk=article.pk)


@login_required
@require_POST
def attachment_add(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    article = get_object_or_404(Article, pk=pk)
    try:
        att = svc.do_add_attachment(request.user, article, request.FILES.get("file"))
    except svc.InfoRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Attached: %(name)s.") % {"name": att.original_name})
    return redirect("info:article_edit", pk=article.pk)


@login_required
@require_POST
def attachment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    att = get_object_or_404(Attachment, pk=pk)
    article_pk = att.article_id
    svc.do_delete_attachment(request.user, att)
    messages.success(request, _("Attachment removed."))
    return redirect("info:article_edit", pk=article_pk)


# --- editors: projects ---------------------------------------------------------------------------------------------

PROJECT_FIELDS = (
    "kind",
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "community",
    "location",
    "owner_org",
    "owner_user",
    "contact_name",
    "contact_phone",
    "contact_email",
    "started_on",
    "pv_systems",
)


def _project_values(project: DemoProject | None) -> dict[str, str]:
    if project is None:
        return {"kind": "pv_showcase"}
    values = {f: str(getattr(project, f) or "") for f in svc.PROJECT_TEXT_FIELDS}
    values.update(
        {
            "kind": project.kind,
            "community": project.community.code if project.community else "",
            "owner_org": str(project.owner_org_id or ""),
            "owner_user": project.owner_user.username if project.owner_user else "",
            "started_on": project.started_on.isoformat() if project.started_on else "",
            "pv_systems": " ".join(project.pv_systems.order_by("code").values_list("code", flat=True)),
        }
    )
    return values


def _project_form(
    request: HttpRequest,
    project: DemoProject | None,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "info/project_form.html",
        {
            "project": project,
            "values": values,
            "errors": errors,
            "kinds": DemoProject.Kind.choices,
            "communities": Community.objects.order_by("code"),
            "orgs": Organisation.objects.order_by("name"),
            "labels": {
                k: svc.label_of(k)
                for k in (
                    *PROJECT_FIELDS,
                    "indicator_zh",
                    "indicator_en",
                    "value",
                    "unit",
                    "period",
                    "source",
                    "caption_zh",
                    "caption_en",
                    "file",
                )
            },
            "outcomes": project.outcomes.all() if project else [],
            "photos": project.photos.all() if project else [],
            "computed": svc.computed_outcomes(project) if project else None,
            "photo_types": ", ".join(svc.PHOTO_EXTENSIONS),
            "photo_max_mb": svc.PHOTO_MAX_BYTES // (1024 * 1024),
            **_sub_nav(request),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    _require_editor(request)
    if request.method == "GET":
        return _project_form(request, None, _project_values(None), {})
    try:
        project = svc.do_save_project(request.user, _project_post(request))
    except svc.InfoRefused as exc:
        return _project_form(request, None, request.POST.dict(), exc.by_field(), status=400)
    messages.success(request, _("Project saved (not published yet)."))
    return redirect("info:project_edit", pk=project.pk)


def _project_post(request: HttpRequest) -> dict[str, Any]:
    return {f: request.POST.get(f, "") for f in PROJECT_FIELDS}


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    project = get_object_or_404(DemoProject, pk=pk)
    if request.method == "GET":
        return _project_form(request, project, _project_values(project), {})
    try:
        project = svc.do_save_project(request.user, _project_post(request), project)
    except svc.InfoRefused as exc:
        return _project_form(request, project, request.POST.dict(), exc.by_field(), status=400)
    messages.success(request, _("Changes saved."))
    return redirect("info:project_edit", pk=project.pk)


@login_required
@require_POST
def project_publish(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    project = get_object_or_404(DemoProject, pk=pk)
    publish = request.POST.get("published") == "1"
    try:
        svc.do_set_project_published(request.user, project, publish)
    except svc.InfoRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("The project is public now.") if publish else _("The project is no longer public.")
        )
    return redirect("info:project_edit", pk=project.pk)


@login_required
@require_POST
def outcome_add(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    project = get_object_or_404(DemoProject, pk=pk)
    try:
        svc.do_add_outcome(request.user, project, request.POST)
    except svc.InfoRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Outcome added."))
    return redirect("info:project_edit", pk=project.pk)


@login_required
@require_POST
def outcome_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    outcome = get_object_or_404(Outcome, pk=pk)
    project_pk = outcome.project_id
    svc.do_delete_outcome(request.user, outcome)
    messages.success(request, _("Outcome removed."))
    return redirect("info:project_edit", pk=project_pk)


@login_required
@require_POST
def photo_add(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    project = get_object_or_404(DemoProject, pk=pk)
    try:
        svc.do_add_photo(request.user, project, request.FILES.get("file"), request.POST)
    except svc.InfoRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Photo added."))
    return redirect("info:project_edit", pk=project.pk)


@login_required
@require_POST
def photo_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_editor(request)
    photo = get_object_or_404(Photo, pk=pk)
    project_pk = photo.project_id
    svc.do_delete_photo(request.user, photo)
    messages.success(request, _("Photo removed."))
    return redirect("info:project_edit", pk=project_pk)
