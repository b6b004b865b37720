"""Test data for applications: quantified PV systems, a Xiaolan-like bundle of ten households with an aggregator,
reviewers, a verifier and registry administrators, and a shortcut through the workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from lowcarbon.accounts.models import Organisation, Role, User
from lowcarbon.metering.models import Meter, MonthlyRollup
from lowcarbon.methodology.services import do_quantify
from lowcarbon.pv.models import ManagementConsent, PVSystem
from lowcarbon.registry import applications as svc
from lowcarbon.registry.models import Application
from tests.factories import make_org, make_system, make_user

YEAR = 2025
#: EF_CM of the seeded 2019 southern-grid combined margin: 0.75 × 0.8042 + 0.25 × 0.2135
EF_CM = Decimal("0.656525")

#: monthly generation (kWh) of the ten households: 51 t together over 2025, like the 2018 Xiaolan bundle
HOUSEHOLD_KWH = ["650", "633", "763", "508", "705", "548", "972", "298", "690", "721"]

#: the smallest valid PDF, for attaching a report
TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def add_generation(system: PVSystem, months: range | list[int], kwh: str, year: int = YEAR) -> None:
    """Monthly rollups of `kwh` for the months of `year`, then quantify them (the real path)."""
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)
    for m in months:
        MonthlyRollup.objects.update_or_create(
            meter_id=meter.pk,
            month=date(year, m, 1),
            defaults={
                "energy": Decimal(kwh),
                "export": Decimal(0),
                "n_readings": 720,
                "covered_s": 86400 * 28,
            },
        )
    do_quantify([system.pk])


def quantified_system(
    owner: User | None = None,
    org: Organisation | None = None,
    *,
    kwh: str = "600",
    months: range | list[int] = range(1, 13),
    year: int = YEAR,
    grid_connection_date: date = date(2024, 1, 1),
    capacity_kwp: str = "6",
) -> PVSystem:
    system = make_system(owner, org, grid_connection_date=grid_connection_date, capacity_kwp=capacity_kwp)
    add_generation(system, months, kwh, year)
    return system


def consent(
    system: PVSystem, aggregator: Organisation, *, credit_to_aggregator: bool = False
) -> ManagementConsent:
    from django.utils import timezone

    return ManagementConsent.objects.create(
        system=system,
        aggregator=aggregator,
        granted_by=system.owner_user,
        granted_at=timezone.now(),
        document=f"授权书 {system.code}",
        credit_to_aggregator=credit_to_aggregator,
    )


@dataclass
class World:
    """People and systems of a bundle test."""

    agg_org: Organisation
    aggregator: User
    reviewer: User
    reviewer_town: User
    verifier: User
    admin: User
    admin2: User
    households: list[User] = field(default_factory=list)
    systems: list[PVSystem] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [s.code for s in self.systems]


def bundle_world(n: int = 10, *, credit_to_aggregator_for: tuple[int, ...] = ()) -> World:
    """An aggregator with `n` consenting households, each with a quantified 2025; reviewers, a verifier and two
    registry administrators."""
    agg_org = make_org("aggregator", name="中山市小榄低碳发展促进中心")
    w = World(
        agg_org=agg_org,
        aggregator=make_user(Role.AGGREGATOR, org=agg_org, username="agg"),
        reviewer=make_user(Role.REVIEWER_CITY, username="rev_city"),
        reviewer_town=make_user(Role.REVIEWER_TOWN, username="rev_town"),
        verifier=make_user(Role.VERIFIER, username="verif"),
        admin=make_user(Role.REGISTRY_ADMIN, username="regadmin"),
        admin2=make_user(Role.REGISTRY_ADMIN, username="regadmin2"),
    )
    for i in range(n):
        h = make_user(Role.OWNER_HOUSEHOLD, username=f"hh{i + 1:02d}", real_name=f"住户{i + 1:02d}")
        s = make_system(h, grid_connection_date=date(2023, 6, 1))
        consent(s, agg_org, credit_to_aggregator=i in credit_to_aggregator_for)
        w.households.append(h)
        w.systems.append(s)
    meter_ids = {s.pk: Meter.objects.get(subject_kind="pv_system", subject_id=s.pk).pk for s in w.systems}
    rows = []
    for i, s in enumerate(w.systems):
        kwh = Decimal(HOUSEHOLD_KWH[i % len(HOUSEHOLD_KWH)])
        for m in range(1, 13):
            rows.append(
                MonthlyRollup(
                    meter_id=meter_ids[s.pk],
                    month=date(YEAR, m, 1),
                    energy=kwh,
                    export=Decimal(0),
                    n_readings=720,
                    covered_s=86400 * 28,
                )
            )
    MonthlyRollup.objects.bulk_create(rows)
    do_quantify([s.pk for s in w.systems])
    return w


def ready_application(actor: User, codes: list[str], kind: str = "bundle", **kw: Any) -> Application:
    """A created application with its report attached and the commitment signed, ready to submit."""
    app = svc.do_create_application(
        actor,
        system_codes=codes,
        first_month=kw.pop("first_month", f"{YEAR}-01"),
        last_month=kw.pop("last_month", f"{YEAR}-12"),
        kind=kind,
        **kw,
    )
    svc.do_attach_report(
        app, actor, SimpleUploadedFile("report.pdf", TINY_PDF, content_type="application/pdf")
    )
    svc.do_sign_commitment(app, actor)
    app.refresh_from_db()
    return app


def approve(app: Application, applicant: User, reviewer: User) -> Application:
    """submit → start_review → approve."""
    svc.do_transition(app, "submit", applicant)
    svc.do_transition(app, "start_review", reviewer)
    svc.do_transition(app, "approve", reviewer, "数据核对无误")
    app.refresh_from_db()
    return app


def pdf_font_families(data: bytes) -> set[str]:
    """Font families embedded in a PDF written by WeasyPrint (its object streams are deflated)."""
    import re
    import zlib

    found: set[str] = set()
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            text = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        found.update(f.decode("latin-1") for f in re.findall(rb"/FontFamily \(([^)]*)\)", text))
    return found


def isolation_application(owner: User, system: PVSystem) -> Application:
    """A draft application of `owner` for January to May (tests/test_isolation.py's world)."""
    add_generation(system, range(1, 6), "600")
    return svc.do_create_application(
        owner, system_codes=[system.code], first_month=f"{YEAR}-01", last_month=f"{YEAR}-05", kind="single"
    )
