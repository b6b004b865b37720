"""Quantification against the database: seeded factor records, immutable rows, exclusions, the CLI and the API."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.contrib.admin.sites import site as admin_site
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from lowcarbon.accounts.models import Role
from lowcarbon.metering.models import Meter, MonthlyRollup
from lowcarbon.methodology.models import FactorAssignment, GridFactor, Methodology, Quantification
from lowcarbon.methodology.services import current_quantifications, do_quantify, system_totals
from lowcarbon.pv.models import PlausibilityFlag
from tests.factories import make_org, make_system, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

D = Decimal


def south_cm() -> Decimal:
    f = GridFactor.objects.get(code="MEE2019-SOUTH-CM")
    return f.w_om * f.ef_om + f.w_bm * f.ef_bm


def rollup(system, month: date, energy: str, export: str = "0") -> MonthlyRollup:
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=system.id)
    obj, _ = MonthlyRollup.objects.update_or_create(
        meter_id=meter.id,
        month=month,
        defaults={"energy": D(energy), "export": D(export), "n_readings": 1, "covered_s": 86400},
    )
    return obj


def reject_flag(system, month: date, severity: str = "reject") -> PlausibilityFlag:
    return PlausibilityFlag.objects.create(
        system=system,
        month=month,
        code="clear_sky_ceiling",
        severity=severity,
        value=D("999"),
        limit=D("500"),
    )


def current(system, month: date) -> Quantification:
    return Quantification.objects.get(system_id=system.id, month=month, superseded_at__isnull=True)


@pytest.fixture
def owner():
    return make_user(Role.OWNER_HOUSEHOLD)


@pytest.fixture
def system(owner):
    return make_system(owner, grid_connection_date=date(2024, 1, 15))


# --- arithmetic and records used -------------------------------------------------------------------------------


def test_result_is_generation_times_the_seeded_combined_margin_to_the_gram(system):
    rollup(system, date(2024, 3, 1), "1234.5678", export="1000.0001")
    summary = do_quantify([system.id])

    expected = (D("1234.5678") * (D("0.75") * D("0.8042") + D("0.25") * D("0.2135"))).quantize(
        D("0.001"), rounding=ROUND_HALF_UP
    )
    assert expected == D("810.525")
    row = current(system, date(2024, 3, 1))
    assert row.er_kg == expected
    assert row.ef_cm == south_cm() == D("0.656525")
    assert row.generation_kwh == D("1234.5678") and row.export_kwh == D("1000.0001")
    assert row.factor.code == "MEE2019-SOUTH-CM"
    assert row.methodology.code == "GD-PV-2022"
    assert summary.months_computed == 1 and summary.total_er_kg == expected


def test_methodology_follows_the_month_and_the_grid_connection_month_counts(owner):
    old = make_system(owner, grid_connection_date=date(2022, 6, 20))
    rollup(old, date(2022, 5, 1), "50")  # before grid connection
    rollup(old, date(2022, 6, 1), "100")
    rollup(old, date(2022, 8, 1), "200")
    summary = do_quantify([old.id])

    assert current(old, date(2022, 6, 1)).methodology.code == "GD-PV-2017-V01"
    assert current(old, date(2022, 8, 1)).methodology.code == "GD-PV-2022"
    assert summary.months_excluded == {"before_grid_connection": 1}
    assert not Quantification.objects.filter(system_id=old.id, month=date(2022, 5, 1)).exists()


def test_month_before_any_methodology_is_excluded(owner):
    early = make_system(owner, grid_connection_date=date(2016, 3, 1))
    rollup(early, date(2017, 5, 1), "80")
    rollup(early, date(2017, 7, 1), "90")
    summary = do_quantify([early.id])
    assert summary.months_excluded == {"before_methodology": 1}
    assert summary.months_computed == 1


# --- immutability -----------------------------------------------------------------------------------------------


def new_factor(code: str = "TEST2024-SOUTH-CM", om: str = "0.9000", bm: str = "0.3000") -> GridFactor:
    return GridFactor.objects.create(
        code=code,
        kind=GridFactor.Kind.BASELINE_CM,
        scope="regional:南方",
        edition_year=2024,
        ef_om=D(om),
        ef_bm=D(bm),
        w_om=D("0.75"),
        w_bm=D("0.25"),
        source="test edition",
        confidence="A",
    )


def test_a_later_factor_assignment_does_not_change_stored_results(system):
    rollup(system, date(2024, 3, 1), "500")
    do_quantify([system.id])
    first = current(system, date(2024, 3, 1))

    factor = new_factor()
    FactorAssignment.objects.create(
        methodology=Methodology.objects.get(code="GD-PV-2022"), factor=factor, valid_from=date(2025, 1, 1)
    )
    rollup(system, date(2025, 2, 1), "500")
    summary = do_quantify([system.id])

    assert summary.months_unchanged == 1 and summary.months_computed == 1 and summary.months_superseded == 0
    assert current(system, date(2024, 3, 1)).pk == first.pk
    assert current(system, date(2024, 3, 1)).er_kg == D("328.263")  # 500 × 0.656525
    newer = current(system, date(2025, 2, 1))
    assert newer.factor == factor and newer.ef_cm == D("0.75") * D("0.9") + D("0.25") * D("0.3")
    assert newer.er_kg == D("375.000")


def test_recomputation_with_different_inputs_supersedes_and_keeps_the_old_row(system):
    rollup(system, date(2024, 3, 1), "500")
    do_quantify([system.id])
    first = current(system, date(2024, 3, 1))

    # a retroactive assignment: the month's inputs change, so a new row replaces the old one
    factor = new_factor()
    FactorAssignment.objects.create(
        methodology=Methodology.objects.get(code="GD-PV-2022"), factor=factor, valid_from=date(2024, 1, 1)
    )
    summary = do_quantify([system.id])

    assert summary.months_computed == 1 and summary.months_superseded == 1
    first.refresh_from_db()
    assert first.superseded_at is not None
    assert first.er_kg == D("328.263") and first.factor.code == "MEE2019-SOUTH-CM"
    replacement = current(system, date(2024, 3, 1))
    assert replacement.pk != first.pk and replacement.factor == factor and replacement.er_kg == D("375.000")


def test_changed_generation_creates_a_new_row(system):
    rollup(system, date(2024, 3, 1), "500")
    do_quantify([system.id])
    rollup(system, date(2024, 3, 1), "600")
    summary = do_quantify([system.id])
    assert summary.months_superseded == 1 and summary.months_computed == 1
    assert current(system, date(2024, 3, 1)).generation_kwh == D("600")
    assert Quantification.objects.filter(system_id=system.id).count() == 2


def test_running_twice_changes_nothing(system, owner):
    other = make_system(owner, grid_connection_date=date(2023, 1, 1))
    for m in (1, 2, 3):
        rollup(system, date(2024, m, 1), f"{m}00.1234")
        rollup(other, date(2024, m, 1), "321")
    first = do_quantify([system.id, other.id])
    rows = list(Quantification.objects.order_by("pk").values())

    second = do_quantify([system.id, other.id])
    assert list(Quantification.objects.order_by("pk").values()) == rows
    assert first.months_computed == 6
    assert (second.months_computed, second.months_unchanged, second.months_superseded) == (0, 6, 0)
    assert second.total_er_kg == first.total_er_kg


# --- exclusions ------------------------------------------------------------------------------------------------


def test_open_reject_flag_excludes_the_month_and_withdraws_its_result(system):
    rollup(system, date(2024, 3, 1), "500")
    rollup(system, date(2024, 4, 1), "700")
    do_quantify([system.id])
    counted = current(system, date(2024, 4, 1))

    flag = reject_flag(system, date(2024, 4, 1))
    reject_flag(system, date(2024, 3, 1), severity="warn")  # warnings do not exclude
    summary = do_quantify([system.id])

    assert summary.months_excluded == {"plausibility_flag": 1}
    assert [(e.system_code, e.month) for e in summary.excluded] == [(system.code, date(2024, 4, 1))]
    assert summary.months_superseded == 1 and summary.months_unchanged == 1
    assert summary.total_er_kg == D("328.263")
    counted.refresh_from_db()
    assert counted.superseded_at is not None
    assert not Quantification.objects.filter(
        system_id=system.id, month=date(2024, 4, 1), superseded_at__isnull=True
    )
    assert system_totals([system.id])[system.id].er_kg == D("328.263")

    flag.cleared_at = timezone.now()
    flag.save()
    summary = do_quantify([system.id])
    assert summary.months_computed == 1 and summary.months_excluded == {}
    assert current(system, date(2024, 4, 1)).er_kg == D("459.568")  # 700 × 0.656525 = 459.5675


def test_result_of_a_month_whose_generation_disappeared_no_longer_counts(system):
    r = rollup(system, date(2024, 3, 1), "500")
    do_quantify([system.id])
    MonthlyRollup.objects.filter(meter_id=r.meter_id, month=r.month).delete()
    summary = do_quantify([system.id])
    assert summary.months_excluded == {"no_generation": 1} and summary.months_superseded == 1
    assert not current_quantifications([system.id]).exists()


def test_month_range_limits_the_run(system):
    for m in (2, 3, 4):
        rollup(system, date(2024, m, 1), "100")
    summary = do_quantify([system.id], date(2024, 3, 1), date(2024, 3, 1))
    assert summary.months_computed == 1
    assert list(current_quantifications([system.id]).values_list("month", flat=True)) == [date(2024, 3, 1)]


def test_progress_is_reported_per_system(system, owner):
    other = make_system(owner)
    ticks: list[int] = []
    summary = do_quantify([system.id, other.id], progress=ticks.append)
    assert ticks == [1, 1] and summary.systems == 2


def test_system_totals_sum_current_results(system):
    rollup(system, date(2024, 2, 1), "100")
    rollup(system, date(2024, 3, 1), "200", export="50")
    do_quantify([system.id])
    total = system_totals([system.id])[system.id]
    assert (total.months, total.generation_kwh, total.export_kwh) == (2, D("300"), D("50"))
    assert total.er_kg == D("65.653") + D("131.305")
    assert (total.first_month, total.last_month) == (date(2024, 2, 1), date(2024, 3, 1))


# --- CLI ---------------------------------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with translation.override("en"):
        call_command("quantify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_prints_a_summary(system):
    rollup(system, date(2024, 3, 1), "1234.5678")
    rollup(system, date(2024, 4, 1), "100")
    reject_flag(system, date(2024, 4, 1))
    out, err = run_cli("--system", system.code, "--from", "2024-01", "--to", "2024-12")
    assert "Systems: 1" in out
    assert "Months computed: 1" in out
    assert "Months excluded: 1" in out
    assert "plausibility_flag: 1" in out
    assert "810.525 kg CO2e (0.810525 t CO2e)" in out
    assert "/1 [" in err  # the progress bar goes to stderr

    out, _ = run_cli("--system", system.code)
    assert "Months computed: 0" in out and "Months unchanged: 1" in out


def test_cli_json(system):
    rollup(system, date(2024, 3, 1), "1234.5678")
    out, err = run_cli("--system", system.code, "--json")
    data = json.loads(out)
    assert data["systems"] == 1 and data["months_computed"] == 1
    assert data["total_er_kg"] == "810.525" and data["total_er_t"] == "0.810525"
    assert data["months_excluded"] == {} and data["excluded"] == []
    assert err == ""


def test_cli_refuses_unknown_system_and_bad_month(system):
    with pytest.raises(CommandError, match="PV-NOPE"):
        run_cli("--system", system.code, "PV-NOPE")
    with pytest.raises(CommandError, match="--from"):
        run_cli("--from", "2024-13")
    with pytest.raises(CommandError, match="--to"):
        run_cli("--to", "March")
    assert not Quantification.objects.exists()


# --- API --------------------------------------------------------------------------------------------------------


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_owner_quantifies_own_system_through_the_api(owner, system):
    rollup(system, date(2024, 3, 1), "1234.5678")
    resp = api(owner).post("/api/v1/quantify/", {"systems": [system.code], "from": "2024-01"}, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["months_computed"] == 1
    assert resp.json()["total_er_kg"] == "810.525"

    resp = api(owner).get("/api/v1/quantifications/", {"system": system.code})
    assert resp.status_code == 200
    (row,) = resp.json()["results"]
    assert row["system"] == system.code and row["month"] == "2024-03"
    assert row["er_kg"] == "810.525" and row["ef_cm"] == "0.656525" and row["factor"] == "MEE2019-SOUTH-CM"


def test_owner_cannot_quantify_or_list_another_owners_system(owner, system):
    stranger = make_user(Role.OWNER_HOUSEHOLD)
    theirs = make_system(stranger)
    rollup(theirs, date(2024, 3, 1), "100")
    do_quantify([theirs.id])

    resp = api(owner).post("/api/v1/quantify/", {"systems": [system.code, theirs.code]}, format="json")
    assert resp.status_code == 403
    assert theirs.code in resp.json()["detail"] and system.code not in resp.json()["detail"]

    resp = api(owner).get("/api/v1/quantifications/", {"system": theirs.code})
    assert resp.status_code == 404
    resp = api(owner).get("/api/v1/quantifications/")
    assert resp.status_code == 200 and resp.json()["results"] == []

    resp = api().get("/api/v1/quantifications/")
    assert resp.status_code in (401, 403)


def test_owner_without_systems_quantifies_only_own(owner, system):
    stranger = make_user(Role.OWNER_HOUSEHOLD)
    theirs = make_system(stranger)
    rollup(system, date(2024, 3, 1), "100")
    rollup(theirs, date(2024, 3, 1), "100")
    resp = api(owner).post("/api/v1/quantify/", {}, format="json")
    assert resp.status_code == 200 and resp.json()["systems"] == 1
    assert not Quantification.objects.filter(system_id=theirs.id).exists()

    buyer = make_user(Role.BUYER)
    assert api(buyer).post("/api/v1/quantify/", {}, format="json").status_code == 403


def test_aggregator_quantifies_consented_systems(owner, system):
    from tests.factories import grant_consent

    agg_org = make_org("aggregator")
    agg = make_user(Role.AGGREGATOR, org=agg_org)
    rollup(system, date(2024, 3, 1), "100")
    assert api(agg).post("/api/v1/quantify/", {"systems": [system.code]}, format="json").status_code == 403
    grant_consent(system, agg_org, owner)
    assert api(agg).post("/api/v1/quantify/", {"systems": [system.code]}, format="json").status_code == 200


def test_reviewer_quantifies_all_systems(system):
    stranger = make_user(Role.OWNER_HOUSEHOLD)
    theirs = make_system(stranger)
    rollup(system, date(2024, 3, 1), "100")
    rollup(theirs, date(2024, 3, 1), "200")
    reviewer = make_user(Role.REVIEWER_CITY)
    resp = api(reviewer).post("/api/v1/quantify/", {"from": "2024-03", "to": "2024-03"}, format="json")
    assert resp.status_code == 200
    assert resp.json()["months_computed"] == 2
    assert resp.json()["total_er_kg"] == "196.958"  # 300 kWh × 0.656525 = 196.9575
    rows = api(reviewer).get("/api/v1/quantifications/", {"from": "2024-03"}).json()["results"]
    assert sorted(r["system"] for r in rows) == sorted([system.code, theirs.code])

    resp = api(reviewer).post("/api/v1/quantify/", {"systems": ["PV-NOPE"]}, format="json")
    assert resp.status_code == 400 and "PV-NOPE" in json.dumps(resp.json())


def test_quantify_api_validates_months(owner, system):
    resp = api(owner).post("/api/v1/quantify/", {"from": "2024-3"}, format="json")
    assert resp.status_code == 400 and "from" in resp.json()
    resp = api(owner).post("/api/v1/quantify/", {"from": "2024-05", "to": "2024-03"}, format="json")
    assert resp.status_code == 400 and "from" in resp.json()
    resp = api(owner).get("/api/v1/quantifications/", {"to": "never"})
    assert resp.status_code == 400 and "to" in resp.json()


def test_superseded_rows_listed_only_on_request(owner, system):
    rollup(system, date(2024, 3, 1), "100")
    do_quantify([system.id])
    rollup(system, date(2024, 3, 1), "150")
    do_quantify([system.id])
    assert len(api(owner).get("/api/v1/quantifications/").json()["results"]) == 1
    rows = api(owner).get("/api/v1/quantifications/", {"include_superseded": "1"}).json()["results"]
    assert len(rows) == 2 and sum(1 for r in rows if r["superseded_at"] is None) == 1


def test_public_factor_and_methodology_endpoints():
    factors = {f["code"]: f for f in api().get("/api/v1/grid-factors/").json()["results"]}
    assert factors["MEE2019-SOUTH-CM"]["ef_cm"] == "0.656525"
    assert factors["MEE2019-SOUTH-CM"]["ef_om"] == "0.8042"
    assert factors["MEE2022-SOUTH-AVG"]["ef_cm"] is None
    methodologies = {m["code"]: m for m in api().get("/api/v1/methodologies/").json()["results"]}
    assert methodologies["GD-PV-2022"]["factor_assignments"][0]["factor"] == "MEE2019-SOUTH-CM"
    assert methodologies["GD-PV-2017-V01"]["effective_to"] == "2022-07-31"


def test_openapi_schema_documents_the_endpoints():
    schema = api().get("/api/v1/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for p in (
        "/api/v1/methodologies/",
        "/api/v1/grid-factors/",
        "/api/v1/quantifications/",
        "/api/v1/quantify/",
    ):
        assert p in paths
    assert "requestBody" in paths["/api/v1/quantify/"]["post"]


# --- page and admin -----------------------------------------------------------------------------------------------


def test_public_factors_page(client):
    with translation.override("en"):
        resp = client.get(reverse("methodology:factors"), HTTP_ACCEPT_LANGUAGE="en")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "GD-PV-2017-V01" in html and "GD-PV-2022" in html and "MEE2019-SOUTH-CM" in html
    assert "0.6565" in html and "0.656525" not in html
    assert "2017-06-23" in html


def test_factor_used_by_a_result_is_read_only_in_the_admin(system):
    factor = GridFactor.objects.get(code="MEE2019-SOUTH-CM")
    unused = new_factor()
    model_admin = admin_site._registry[GridFactor]
    request = RequestFactory().get("/")
    request.user = make_user(is_superuser=True, is_staff=True)
    assert "ef_om" not in model_admin.get_readonly_fields(request, factor)

    rollup(system, date(2024, 3, 1), "100")
    do_quantify([system.id])
    assert {"ef_om", "ef_bm", "w_om", "w_bm", "code"} <= set(model_admin.get_readonly_fields(request, factor))
    assert not model_admin.has_delete_permission(request, factor)
    assert "ef_om" not in model_admin.get_readonly_fields(request, unused)

    q_admin = admin_site._registry[Quantification]
    assert not q_admin.has_change_permission(request, Quantification.objects.first())
    assert not q_admin.has_add_permission(request)


def test_admin_pages_render(system, client):
    rollup(system, date(2024, 3, 1), "100")
    do_quantify([system.id])
    admin_user = make_user(is_superuser=True, is_staff=True)
    client.force_login(admin_user)
    factor = GridFactor.objects.get(code="MEE2019-SOUTH-CM")
    for url in (
        reverse("admin:methodology_quantification_changelist") + f"?q={system.code}",
        reverse("admin:methodology_gridfactor_change", args=[factor.pk]),
        reverse("admin:methodology_methodology_change", args=[Methodology.objects.first().pk]),
        reverse("admin:methodology_factorassignment_changelist"),
    ):
        assert client.get(url).status_code == 200, url
    client.post(
        reverse("admin:methodology_gridfactor_change", args=[factor.pk]),
        {"code": factor.code, "kind": factor.kind, "scope": "x", "edition_year": 2019, "ef_om": "0.1000"},
    )
    factor.refresh_from_db()
    assert factor.ef_om == D("0.8042")
