"""Builders for registry tests: approved applications written directly (the application workflow is tested on its
own), registry administrators, and whole-ledger invariant checks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from lowcarbon.accounts.models import Membership, Organisation, User
from lowcarbon.methodology.models import GridFactor, Methodology
from lowcarbon.pv.models import PVSystem
from lowcarbon.registry import ledger
from lowcarbon.registry.domain.serials import overlapping
from lowcarbon.registry.models import Application, ApplicationSystem, RegistryAccount, SerialBlock
from tests.factories import make_org, make_system, make_user

_codes = itertools.count(1)


def make_admin(**extra) -> User:
    return make_user("registry_admin", **extra)


def approved_application(
    members: Sequence[tuple[PVSystem, int, RegistryAccount]],
    *,
    applicant: User | None = None,
    reviewer: User | None = None,
    vintage: int = 2025,
    carry_in_kg: str = "0",
    carry_out_kg: str = "0",
    code: str | None = None,
) -> Application:
    """An approved application with the given (system, units, credit account) members, written directly."""
    applicant = applicant or make_user("owner_household")
    reviewer = reviewer or make_user("reviewer_city")
    total = sum(units for _, units, _ in members)
    app = Application.objects.create(
        code=code or f"AP-T{next(_codes):06d}",
        kind=Application.Kind.SINGLE if len(members) == 1 else Application.Kind.BUNDLE,
        state=Application.State.APPROVED,
        applicant=applicant,
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
            application=app,
            system=system,
            er_kg=Decimal(units * 1000),
            units=units,
            carry_in_kg=Decimal(carry_in_kg),
            carry_out_kg=Decimal(carry_out_kg),
            credit_account=account,
        )
    return app


def household_with_units(
    units: int, *, issuer: User, vintage: int = 2025
) -> tuple[User, RegistryAccount, list]:
    """A household owner with one system and `units` issued into their account."""
    owner = make_user("owner_household")
    account = ledger.account_for_user(owner)
    system = make_system(owner)
    app = approved_application([(system, units, account)], applicant=owner, vintage=vintage)
    blocks = ledger.do_issue_units(app, issuer=issuer)
    return owner, account, blocks


def org_with_admin(kind: str = "enterprise") -> tuple[Organisation, User]:
    org = make_org(kind)
    admin = make_user("buyer", org=org)
    Membership.objects.filter(user=admin, organisation=org).update(level=Membership.Level.ADMIN)
    return org, admin


def assert_ledger_invariants() -> None:
    """No two live blocks of a series overlap, supply is conserved, no account is negative, splits lose nothing."""
    live = list(SerialBlock.objects.exclude(state="split").values_list("series", "start", "end"))
    assert overlapping(live) == [], overlapping(live)
    totals = ledger.supply_totals()
    assert totals["issued"] == totals["held"] + totals["retired"] + totals["cancelled"], totals
    for parent in SerialBlock.objects.filter(state="split"):
        children = [(c.start, c.end) for c in parent.children.all()]
        assert sorted(children)[0][0] == parent.start and sorted(children)[-1][1] == parent.end
        assert sum(e - s + 1 for s, e in children) == parent.quantity
    for account in RegistryAccount.objects.all():
        assert ledger.balance(account) >= 0
