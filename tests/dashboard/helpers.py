"""Test data for the dashboards: systems in named communities with monthly rollups and quantifications."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lowcarbon.accounts.models import User
from lowcarbon.pv.models import Community, PVSystem
from tests.factories import make_system
from tests.registry.app_helpers import add_generation


def system_in(
    community: str,
    owner: User | None = None,
    org=None,  # type: ignore[no-untyped-def]
    *,
    capacity_kwp: str = "5",
    kwh: str | None = None,
    months: list[int] | range = range(1, 13),
    grid_connection_date: date = date(2024, 1, 1),
) -> PVSystem:
    """A system in the given community (at a point near its centre), optionally with a year of 2025 rollups of
    `kwh` per month, quantified."""
    system = make_system(owner, org, capacity_kwp=capacity_kwp, grid_connection_date=grid_connection_date)
    c = Community.objects.get(code=community)
    PVSystem.objects.filter(pk=system.pk).update(
        community=c, latitude=c.latitude + Decimal("0.00123"), longitude=c.longitude - Decimal("0.00077")
    )
    system.refresh_from_db()
    if kwh is not None:
        add_generation(system, months, kwh)
    return system
