"""Main-menu entries of the information service: notices and demonstration projects for everyone, the
cooperation inbox for project owners, the editor pages for content editors (each page checks again)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _


def info_items(user: Any) -> list[tuple[str, str]]:
    from lowcarbon.info import services as svc

    items = [
        (_("Information"), reverse("info:article_list")),
        (_("Demonstration projects"), reverse("info:project_list")),
    ]
    if user is not None and user.is_authenticated:
        if svc.is_editor(user):  # editors reach the inbox from the editing pages
            items.append((_("Content editing"), reverse("info:manage")))
        elif svc.owned_projects(user).exists():
            items.append((_("Cooperation inbox"), reverse("info:inbox")))
    return items
