"""Preparation steps run in their own process against a test's scratch database (see conftest.ScratchDB.child):

    python -m tests.reliability.world issuance N     N approved single-system applications, issuer `rel-issuer`
    python -m tests.reliability.world ledger         a small ledger: issuances, transfers, a retirement
    python -m tests.reliability.world meter SERIAL   a household PV system (10 kWp) with a meter of that serial

Each prints one JSON line describing what it made."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from decimal import Decimal
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcarbon.config.settings")
    import django

    django.setup()


def _person(username: str, *roles: str) -> Any:
    from lowcarbon.accounts.models import RoleGrant, User

    user = User.objects.create_user(username, real_name=f"测试 {username}")  # no password: never logs in
    for role in roles:
        RoleGrant.objects.create(user=user, role=role)
    return user


def _system(owner: Any, n: int, capacity: str = "5") -> Any:
    from lowcarbon.pv.models import Community, PVSystem

    return PVSystem.objects.create(
        code=f"PV-R{n:05d}",
        name=f"可靠性光伏{n}",
        owner_type="household",
        owner_user=owner,
        address="小榄镇测试路1号",
        community=Community.objects.order_by("code").first(),
        latitude=Decimal("22.67"),
        longitude=Decimal("113.25"),
        capacity_kwp=Decimal(capacity),
        tilt_deg=Decimal("22"),
        azimuth_deg=Decimal("180"),
        grid_connection_date=date(2024, 1, 1),
        metering="generation_meter",
    )


def _approved(code: str, system: Any, units: int, account: Any, applicant: Any, reviewer: Any) -> Any:
    from lowcarbon.methodology.models import GridFactor, Methodology
    from lowcarbon.registry.models import Application, ApplicationSystem

    app = Application.objects.create(
        code=code,
        kind=Application.Kind.SINGLE,
        state=Application.State.APPROVED,
        applicant=applicant,
        period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 1),
        methodology=Methodology.objects.get(code="GD-PV-2022"),
        factor=GridFactor.objects.get(code="MEE2019-SOUTH-CM"),
        vintage=2025,
        claimed_kg=Decimal(units * 1000),
        units=units,
        reviewer=reviewer,
    )
    ApplicationSystem.objects.create(
        application=app,
        system=system,
        er_kg=Decimal(units * 1000),
        units=units,
        credit_account=account,
    )
    return app


def issuance(n: int) -> dict[str, Any]:
    """n approved applications of 1–9 units, spread over 20 households; a registry administrator `rel-issuer`
    who neither prepared nor reviewed them."""
    from django.db import transaction

    from lowcarbon.registry import ledger

    with transaction.atomic():
        _person("rel-issuer", "registry_admin")
        reviewer = _person("rel-reviewer", "reviewer_city")
        owners = [_person(f"rel-owner-{i}", "owner_household") for i in range(20)]
        accounts = [ledger.account_for_user(o) for o in owners]
        units = {}
        for k in range(n):
            owner, account = owners[k % 20], accounts[k % 20]
            code = f"AP-R{k + 1:05d}"
            units[code] = 1 + (k * 7) % 9
            _approved(code, _system(owner, k + 1), units[code], account, owner, reviewer)
    return {"applications": n, "units": units}


def small_ledger() -> dict[str, Any]:
    """Two households with issued units, transfers both ways and a retirement: a journal of a dozen entries."""
    from django.db import transaction

    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import JournalEntry

    with transaction.atomic():
        admin = _person("rel-issuer", "registry_admin")
        reviewer = _person("rel-reviewer", "reviewer_city")
        owners = [_person(f"rel-owner-{i}", "owner_household") for i in range(2)]
        accounts = [ledger.account_for_user(o) for o in owners]
    for i, (owner, account) in enumerate(zip(owners, accounts, strict=True)):
        app = _approved(f"AP-L{i + 1:05d}", _system(owner, i + 1), 30, account, owner, reviewer)
        ledger.do_issue_units(app, issuer=admin)
    for q, a, b in ((4, 0, 1), (6, 1, 0), (3, 0, 1), (5, 1, 0), (2, 0, 1), (7, 1, 0)):
        ledger.do_transfer(from_account=accounts[a], to_account=accounts[b], quantity=q, actor=owners[a])
    ledger.do_retire(
        account=accounts[0],
        quantity=2,
        beneficiary="小榄镇低碳运动会",
        purpose="voluntary",
        retired_on=date(2026, 1, 1),
        actor=owners[0],
    )
    return {"entries": JournalEntry.objects.count()}


def meter(serial: str) -> dict[str, Any]:
    from lowcarbon.metering.models import Meter

    owner = _person("rel-mqtt-owner", "owner_household")
    system = _system(owner, 1, capacity="10")
    m = Meter.objects.create(
        serial=serial, purpose="pv_generation", subject_kind="pv_system", subject_id=system.pk
    )
    return {"meter": m.pk, "serial": serial}


def main(argv: list[str]) -> None:
    _setup()
    what, *args = argv
    if what == "issuance":
        out = issuance(int(args[0]))
    elif what == "ledger":
        out = small_ledger()
    elif what == "meter":
        out = meter(args[0])
    else:
        raise SystemExit(f"unknown step {what!r}")
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
