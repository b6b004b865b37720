"""Who may see and act on which PV systems; checked on the server by every page, endpoint and command.

- an owner sees systems they own and systems owned by an organisation they belong to;
- an aggregator sees systems whose owner recorded (and has not revoked) consent to its organisation;
- reviewers and registry administrators see all systems; everyone else sees none.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from lowcarbon.accounts.models import Role
from lowcarbon.pv.models import PVSystem


def managed_systems(user) -> QuerySet[PVSystem]:  # type: ignore[no-untyped-def]
    """Systems the user owns, owns through an organisation, or manages as a consented aggregator."""
    if user is None or not user.is_authenticated:
        return PVSystem.objects.none()
    cond = Q(owner_user=user) | Q(owner_org__memberships__user=user)
    agg_orgs = aggregator_orgs(user)
    if agg_orgs:
        cond |= Q(consents__aggregator_id__in=agg_orgs, consents__revoked_at__isnull=True)
    return PVSystem.objects.filter(cond).distinct()


def visible_systems(user) -> QuerySet[PVSystem]:  # type: ignore[no-untyped-def]
    """Read access: managed systems, or every system for reviewers and registry administrators."""
    if user is None or not user.is_authenticated:
        return PVSystem.objects.none()
    if user.is_registry_admin or user.is_reviewer:
        return PVSystem.objects.all()
    return managed_systems(user)


def can_view_system(user, system: PVSystem) -> bool:  # type: ignore[no-untyped-def]
    return visible_systems(user).filter(pk=system.pk).exists()


def can_manage_system(user, system: PVSystem) -> bool:  # type: ignore[no-untyped-def]
    """Write access (readings, replacements, evidence): owner, organisation member, consented aggregator, admin."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_registry_admin or managed_systems(user).filter(pk=system.pk).exists()


def aggregator_orgs(user) -> list[int]:  # type: ignore[no-untyped-def]
    if user is None or not user.is_authenticated:
        return []
    return list(
        user.role_grants.filter(role=Role.AGGREGATOR, organisation__isnull=False).values_list(
            "organisation_id", flat=True
        )
    )
