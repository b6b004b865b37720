"""Log-in form: Django's, refusing with a clear message while the user name and address are locked out."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts import throttle
from lowcarbon.accounts.audit import client_ip

THROTTLED = _("Too many failed log-in attempts for this user name. Try again in 15 minutes.")


class LoginForm(AuthenticationForm):
    throttled = False

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        if throttle.is_locked(username, client_ip(self.request)):
            self.throttled = True
            from lowcarbon.accounts import audit

            audit.event(audit.Kind.LOGIN_THROTTLED, username=username, request=self.request)
            raise ValidationError(THROTTLED, code="throttled")
        return super().clean()
