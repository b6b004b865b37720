"""Log-in pages and "my account"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from lowcarbon.accounts import audit
from lowcarbon.accounts.forms import LoginForm
from lowcarbon.accounts.models import AuditEvent


class LoginView(auth_views.LoginView):
    """Log-in page; refuses for a while after repeated failures (accounts.throttle)."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's own password (the password validators of the settings apply)."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("account")

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        response = super().form_valid(form)
        audit.event(audit.Kind.PASSWORD_CHANGED, target=self.request.user.get_username())
        messages.success(self.request, _("Your password has been changed."))
        return response


@login_required
def account(request):  # type: ignore[no-untyped-def]
    user = request.user
    grants = user.role_grants.select_related("organisation")
    memberships = user.memberships.select_related("organisation")
    token = Token.objects.filter(user=user).first()
    return render(
        request,
        "accounts/account.html",
        {"grants": grants, "memberships": memberships, "has_token": token is not None},
    )


@login_required
@require_POST
def api_token(request):  # type: ignore[no-untyped-def]
    """Create (or replace) the person's API token; shown once."""
    Token.objects.filter(user=request.user).delete()
    token = Token.objects.create(user=request.user)
    audit.event(audit.Kind.TOKEN_CREATED, target=request.user.get_username())
    messages.success(request, _("Your new API token (shown once): %(key)s") % {"key": token.key})
    return redirect("account")


@login_required
@require_GET
def audit_log(request):  # type: ignore[no-untyped-def]
    """The audit log, for registry administrators: log-ins and administrative acts, newest first."""
    if not request.user.is_registry_admin:
        raise PermissionDenied
    qs = AuditEvent.objects.select_related("actor")
    kind = request.GET.get("kind") or ""
    if kind in AuditEvent.Kind.values:
        qs = qs.filter(kind=kind)
    q = (request.GET.get("q") or "").strip()[:100]
    if q:
        qs = qs.filter(Q(username__icontains=q) | Q(target__icontains=q) | Q(ip__startswith=q))
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in (("kind", kind), ("q", q)) if v)
    return render(
        request,
        "accounts/audit.html",
        {"page": page, "kind": kind, "q": q, "kinds": AuditEvent.Kind.choices, "query": query},
    )
