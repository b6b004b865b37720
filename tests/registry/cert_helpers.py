"""Issued units for the registry-account, certificate and public-registry tests: an approved application written
directly (the application workflow is tested on its own) and issued through the ledger."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lowcarbon.accounts.models import Role, User
from lowcarbon.methodology.models import GridFactor, Methodology
from lowcarbon.pv.models import PVSystem
from lowcarbon.registry import ledger
from lowcarbon.registry.models import Application, ApplicationSystem, RegistryAccount, SerialBlock
from tests.factories import make_system, make_user

_codes = itertools.count(1)


@dataclass
class Issued:
    application: Application
    blocks: list[SerialBlock]
    issuer: User


def issue(
    members: Sequence[tuple[PVSystem, int, RegistryAccount]],
    *,
    applicant: User,
    applicant_org=None,  # type: ignore[no-untyped-def]
    vintage: int = 2025,
    issuer: User | None = None,
) -> Issued:
    """Create an approved application with these (system, units, credit account) members and issue it."""
    reviewer = make_user(Role.REVIEWER_CITY)
    issuer = issuer or make_user(Role.REGISTRY_ADMIN)
    total = sum(units for _, units, _ in members)
    app = Application.objects.create(
        code=f"AP-C{next(_codes):06d}",
        kind=Application.Kind.SINGLE if len(members) == 1 else Application.Kind.BUNDLE,
        state=Application.State.APPROVED,
        applicant=applicant,
        applicant_org=applicant_org,
        period_start=date(vintage, 1, 1),
        period_end=date(vintage, 12, 1),
        methodology=Methodology.objects.get(code="GD-PV-2022"),
        factor=GridFactor.objects.get(code="MEE2019-SOUTH-CM"),
        vintage=vintage,
        claimed_kg=Decimal(total * 1000),
        units=total,
        reviewer=reviewer,
    )
    for system, units, account in members:
        ApplicationSystem.objects.create(
            application=app, system=system, er_kg=Decimal(units * 1000), units=units, credit_account=account
        )
    blocks = ledger.do_issue_units(app, issuer=issuer)
    app.refresh_from_db()
    return Issued(app, blocks, issuer)


def household_with_units(
    units: int = 37, *, real_name: str = "麦润标", phone: str = "13800138000", vintage: int = 2025
) -> tuple[User, RegistryAccount, Issued]:
    """A household PV owner with one system and `units` issued into their own registry account."""
    owner = make_user(Role.OWNER_HOUSEHOLD, real_name=real_name, phone=phone)
    account = ledger.account_for_user(owner)
    issued = issue([(make_system(owner), units, account)], applicant=owner, vintage=vintage)
    return owner, account, issued
