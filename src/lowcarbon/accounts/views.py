"""Log-in pages and "my account"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token


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
    messages.success(request, _("Your new API token (shown once): %(key)s") % {"key": token.key})
    return redirect("account")
