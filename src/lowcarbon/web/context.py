"""Navigation by role: each entry is shown only to the roles that may use the page (the page checks again)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _


def navigation(request):  # type: ignore[no-untyped-def]
    user = getattr(request, "user", None)
    items: list[tuple[str, str]] = [(str(_("Home")), reverse("home"))]
    if user is not None and user.is_authenticated:
        if user.is_owner or user.is_aggregator or user.is_reviewer or user.is_registry_admin:
            items.append((str(_("PV systems")), reverse("pv:system_list")))
        if user.is_aggregator or user.is_registry_admin:
            items.append((str(_("Bulk registration")), reverse("pv:bulk_register")))
        if user.is_owner or user.is_aggregator or user.is_registry_admin:
            items.append((str(_("Readings upload")), reverse("metering:upload")))
            items.append((str(_("Ingest batches")), reverse("metering:batch_list")))
        if user.is_reviewer or user.is_registry_admin:
            items.append((str(_("Plausibility review")), reverse("pv:flag_queue")))
        items.append((str(_("Methodologies and factors")), reverse("methodology:factors")))
        if user.is_staff:
            items.append((str(_("Back office")), reverse("admin:index")))
    else:
        items.append((str(_("Methodologies and factors")), reverse("methodology:factors")))
    return {"nav_items": items}
