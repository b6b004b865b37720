"""Entries of the main navigation for investment and financing, by role (each page checks again)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _


def finance_items(user: Any) -> list[tuple[str, str]]:
    if user is None or not user.is_authenticated:
        return [(_("Rooftop potential"), reverse("finance:estimator"))]
    from lowcarbon.finance.services import is_financier, may_publish

    items: list[tuple[str, str]] = []
    if user.is_registry_admin:
        items.append((_("Financing pipeline"), reverse("finance:pipeline")))
    elif is_financier(user):
        items.append((_("Projects seeking finance"), reverse("finance:project_list")))
    elif may_publish(user):
        items.append((_("Financing"), reverse("finance:project_list")))
    else:
        items.append((_("Rooftop potential"), reverse("finance:estimator")))
    return items
