"""Small builders for test data (people with roles, organisations, PV systems with their meter)."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from lowcarbon.accounts.models import Membership, Organisation, RoleGrant, User
from lowcarbon.metering.models import Meter
from lowcarbon.pv.models import Community, ManagementConsent, PVSystem

_seq = itertools.count(1)

PASSWORD = "Xl-test-pass-2026"


def make_user(*roles: str, org: Organisation | None = None, username: str | None = None, **extra) -> User:
    n = next(_seq)
    user = User.objects.create_user(
        username=username or f"user{n}",
        password=PASSWORD,
        real_name=extra.pop("real_name", f"测试用户{n}"),
        **extra,
    )
    for role in roles:
        RoleGrant.objects.create(user=user, role=role, organisation=org)
    if org is not None:
        Membership.objects.get_or_create(user=user, organisation=org)
    return user


def make_org(kind: str = "enterprise", name: str | None = None) -> Organisation:
    n = next(_seq)
    return Organisation.objects.create(name=name or f"测试机构{n}", name_en=f"Test org {n}", kind=kind)


def make_system(
    owner: User | None = None,
    org: Organisation | None = None,
    *,
    capacity_kwp: str = "5",
    grid_connection_date: date = date(2024, 1, 1),
    metering: str = "generation_meter",
    serial: str | None = None,
    tilt: str = "22",
    azimuth: str = "180",
) -> PVSystem:
    n = next(_seq)
    community = Community.objects.order_by("code").first()
    system = PVSystem.objects.create(
        code=f"PV-T{n:05d}",
        name=f"测试光伏{n}",
        owner_type="household" if owner and not org else "enterprise",
        owner_user=owner,
        owner_org=org,
        address="小榄镇测试路1号",
        community=community,
        latitude=Decimal("22.67"),
        longitude=Decimal("113.25"),
        capacity_kwp=Decimal(capacity_kwp),
        tilt_deg=Decimal(tilt),
        azimuth_deg=Decimal(azimuth),
        grid_connection_date=grid_connection_date,
        metering=metering,
    )
    Meter.objects.create(
        serial=serial or f"MTR{n:08d}",
        purpose="pv_bidirectional" if metering == "bidirectional" else "pv_generation",
        subject_kind="pv_system",
        subject_id=system.pk,
    )
    return system


def grant_consent(system: PVSystem, aggregator: Organisation, by: User, when=None) -> ManagementConsent:
    from django.utils import timezone

    return ManagementConsent.objects.create(
        system=system, aggregator=aggregator, granted_by=by, granted_at=when or timezone.now()
    )
