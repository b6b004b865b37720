"""Navigation by role: each entry is shown only to the roles that may use the page (the page checks again)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _


def navigation(request):  # type: ignore[no-untyped-def]
    user = getattr(request, "user", None)
    items: list[tuple[str, str]] = [(str(_("Home")), reverse("home"))]
    unread = 0
    if user is not None and user.is_authenticated:
        items.append((str(_("My dashboard")), reverse("dashboard:my")))
        from lowcarbon.registry.applications import unread_count

        if user.is_owner or user.is_aggregator or user.is_reviewer or user.is_registry_admin:
            items.append((str(_("PV systems")), reverse("pv:system_list")))
        if user.is_aggregator or user.is_registry_admin:
            items.append((str(_("Bulk registration")), reverse("pv:bulk_register")))
        if user.is_owner or user.is_aggregator or user.is_registry_admin:
            items.append((str(_("Readings upload")), reverse("metering:upload")))
        if (
            user.is_owner
            or user.is_aggregator
            or user.is_reviewer
            or user.has_role("verifier")
            or user.is_registry_admin
        ):
            items.append((str(_("Applications")), reverse("registry:application_list")))
        if user.is_reviewer or user.has_role("verifier"):
            items.append((str(_("Review queue")), reverse("registry:review_queue")))
        if user.is_reviewer or user.is_registry_admin:
            items.append((str(_("Plausibility review")), reverse("pv:flag_queue")))
        if user.is_registry_admin:
            items.append((str(_("Issuance queue")), reverse("registry:issue_queue")))
        items.append((str(_("My registry account")), reverse("registry:account")))
        items.append((str(_("Market")), reverse("market:board")))
        if user.is_registry_admin:
            items.append((str(_("Market surveillance")), reverse("market:admin")))
        items.append((str(_("Public registry")), reverse("registry:public_search")))
        if user.is_registry_admin:
            items.append((str(_("Audit log")), reverse("audit_log")))
        if user.is_staff:
            items.append((str(_("Back office")), reverse("admin:index")))
        items.append((str(_("Public dashboard")), reverse("dashboard:public")))
        unread = unread_count(user)
    else:
        items.append((str(_("Public registry")), reverse("registry:public_search")))
        items.append((str(_("Public dashboard")), reverse("dashboard:public")))
        items.append((str(_("Market")), reverse("market:board")))
        items.append((str(_("Application guidance")), reverse("registry:guidance")))
    from lowcarbon.finance.navigation import finance_items

    items += finance_items(user)
    from lowcarbon.info.navigation import info_items

    items += info_items(user)
    main, groups = group_navigation(items)
    return {"nav_items": main, "nav_groups": groups, "unread_notifications": unread}


def group_navigation(
    items: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, list[tuple[str, str]]]]]:
    """Everyday pages stay in the bar; administrators' tools and the public information pages go into two menus,
    so that a role with many pages still gets one line. An empty menu is left out."""
    admin_urls = {
        reverse(name)
        for name in (
            "pv:bulk_register",
            "pv:flag_queue",
            "registry:issue_queue",
            "market:admin",
            "finance:pipeline",
            "info:manage",
            "audit_log",
            "admin:index",
        )
        if _reversible(name)
    }
    public_urls = {
        reverse(name)
        for name in (
            "registry:public_search",
            "dashboard:public",
            "info:article_list",
            "info:project_list",
            "registry:guidance",
            "finance:estimator",
        )
    }
    main = [i for i in items if i[1] not in admin_urls and i[1] not in public_urls]
    if len(items) <= 9:  # few pages: no menus needed
        return items, []
    groups = [
        (str(_("Administration")), [i for i in items if i[1] in admin_urls]),
        (str(_("Public information")), [i for i in items if i[1] in public_urls]),
    ]
    return main, [(label, links) for label, links in groups if links]


def _reversible(name: str) -> bool:
    from django.urls import NoReverseMatch

    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True
