"""REST API of PV systems and communities: scoping, masking of personal data, registration, monthly data, bulk
upload and the OpenAPI schema."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from lowcarbon.accounts.models import Role
from lowcarbon.metering.models import Meter, MonthlyRollup
from lowcarbon.methodology.models import GridFactor, Methodology, Quantification
from lowcarbon.pv import bulk
from lowcarbon.pv.models import PlausibilityFlag, PVSystem
from lowcarbon.pv.services import do_revoke_consent
from tests.factories import grant_consent, make_org, make_system, make_user

BASE = "/api/v1/pv-systems/"


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    api.force_authenticate(user)
    return api


@pytest.fixture
def owners(db):
    a = make_user(Role.OWNER_HOUSEHOLD, real_name="麦润标", phone="13800138000")
    b = make_user(Role.OWNER_HOUSEHOLD, real_name="李四", phone="13900139000")
    return a, make_system(a), b, make_system(b)


def payload(**over):
    data = {
        "name": "API 屋顶",
        "address": "小榄镇升平路3号",
        "community": "chengzhong",
        "latitude": 22.6721,
        "longitude": "113.2481",
        "capacity_kwp": 9.9,
        "tilt_deg": 18,
        "azimuth_deg": 200,
        "grid_connection_date": "2023-11-20",
        "metering": "bidirectional",
        "meter_serial": "API-MTR-0001",
        "programme_claims": [{"programme": "ccer", "period_start": "2023-11-20", "period_end": "2024-11-19"}],
    }
    data.update(over)
    return data


@pytest.mark.django_db
def test_list_and_retrieve_are_scoped(api, owners):
    a, sys_a, _b, sys_b = owners
    as_user(api, a)
    listing = api.get(BASE).json()
    assert [s["code"] for s in listing["results"]] == [sys_a.code]
    assert api.get(f"{BASE}{sys_b.code}/").status_code == 404
    assert api.get(f"{BASE}{sys_b.code}/monthly/").status_code == 404
    assert api.get(f"{BASE}{sys_a.code}/").status_code == 200


@pytest.mark.django_db
def test_personal_data_never_unmasked(api, owners):
    a, sys_a, _b, _sys_b = owners
    reviewer = make_user(Role.REVIEWER_CITY)
    for user in (a, reviewer):
        as_user(api, user)
        body = api.get(f"{BASE}{sys_a.code}/").content.decode()
        listing = api.get(BASE).content.decode()
        for text in (body, listing):
            assert "麦润标" not in text and "13800138000" not in text and "小榄镇测试路1号" not in text
        detail = api.get(f"{BASE}{sys_a.code}/").json()
        assert detail["owner"] == "麦**"
        assert detail["owner_phone"] == "138****8000"
        assert detail["address"] == "小榄镇测试路***"
        assert detail["latitude"] == "22.67" and detail["longitude"] == "113.25"
        assert detail["meters"][0]["purpose"] == "pv_generation"


@pytest.mark.django_db
def test_aggregator_scope_follows_consent(api, owners):
    _a, sys_a, b, sys_b = owners
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    consent = grant_consent(sys_b, org, b)
    as_user(api, agent)
    assert [s["code"] for s in api.get(BASE).json()["results"]] == [sys_b.code]
    assert api.get(f"{BASE}{sys_a.code}/").status_code == 404
    do_revoke_consent(consent, actor=b)
    assert api.get(BASE).json()["results"] == []
    assert api.get(f"{BASE}{sys_b.code}/").status_code == 404


@pytest.mark.django_db
def test_reviewer_lists_all_with_filters(api, owners):
    _a, sys_a, _b, sys_b = owners
    as_user(api, make_user(Role.REVIEWER_TOWN))
    assert {s["code"] for s in api.get(BASE).json()["results"]} == {sys_a.code, sys_b.code}
    assert api.get(BASE, {"owner_type": "enterprise"}).json()["results"] == []
    assert api.get(BASE, {"community": "nowhere"}).json()["results"] == []


@pytest.mark.django_db
def test_anonymous_refused_but_communities_public(api, owners):
    assert api.get(BASE).status_code in (401, 403)
    resp = api.get("/api/v1/communities/")
    assert resp.status_code == 200
    codes = {c["code"] for c in resp.json()}
    assert {"chengzhong", "xiaoqu"} & codes == {"chengzhong"}
    assert api.get("/api/v1/communities/dongqu/").json()["name_zh"] == "东区社区"


@pytest.mark.django_db
def test_owner_registers_through_the_api(api):
    owner = make_user(Role.OWNER_HOUSEHOLD)
    as_user(api, owner)
    resp = api.post(BASE, payload(), format="json")
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["code"].startswith("PV-") and body["metering"] == "bidirectional"
    assert body["programme_claims"][0]["programme"] == "ccer"
    system = PVSystem.objects.get(code=body["code"])
    assert system.owner_user == owner and system.capacity_kwp == Decimal("9.9")
    assert Meter.objects.get(subject_id=system.pk, subject_kind="pv_system").purpose == "pv_bidirectional"


@pytest.mark.django_db
def test_api_registration_errors_name_fields(api, owners):
    owner = make_user(Role.OWNER_HOUSEHOLD)
    as_user(api, owner)
    resp = api.post(
        BASE,
        payload(
            capacity_kwp="7000",
            longitude="120.5",
            meter_serial=Meter.objects.first().serial,
            programme_claims=[{"programme": "gec", "period_start": "2024-02-01", "period_end": "2024-01-01"}],
        ),
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert resp.status_code == 400
    errors = {(e["field"], e["code"]) for e in resp.json()["errors"]}
    assert errors == {
        ("capacity_kwp", "capacity_above_limit"),
        ("longitude", "outside_area"),
        ("meter_serial", "serial_in_use"),
        ("programme_claims.0.period_end", "period_order"),
    }
    resp = api.post(BASE, payload(metering="solar", grid_connection_date="soon"), format="json")
    assert resp.status_code == 400
    assert {e["field"] for e in resp.json()["errors"]} == {"metering", "grid_connection_date"}
    assert not PVSystem.objects.filter(name="API 屋顶").exists()


@pytest.mark.django_db
def test_api_registration_roles(api):
    as_user(api, make_user(Role.REVIEWER_CITY))
    assert api.post(BASE, payload(), format="json").status_code == 403
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    as_user(api, agent)
    resp = api.post(
        BASE,
        payload(
            owner_kind="household",
            owner_real_name="周小明",
            owner_phone="13599998888",
            consent_document="API-C-1",
        ),
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["owner"] == "周**"
    assert resp.json()["consents"][0]["document"] == "API-C-1"


@pytest.mark.django_db
def test_monthly_endpoint(api, owners):
    a, sys_a, _b, _sys_b = owners
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=sys_a.pk)
    MonthlyRollup.objects.create(meter_id=meter.pk, month=date(2025, 8, 1), energy=Decimal("702.25"))
    Quantification.objects.create(
        system_id=sys_a.pk,
        month=date(2025, 8, 1),
        methodology=Methodology.objects.order_by("-effective_from").first(),
        factor=GridFactor.objects.get(code="MEE2019-SOUTH-CM"),
        ef_cm=Decimal("0.6565"),
        generation_kwh=Decimal("702.25"),
        export_kwh=Decimal(0),
        er_kg=Decimal("461.027"),
    )
    PlausibilityFlag.objects.create(
        system=sys_a,
        month=date(2025, 8, 1),
        code="monthly_yield_high",
        severity="warn",
        value=Decimal("140.45"),
        limit=Decimal(160),
    )
    as_user(api, a)
    body = api.get(f"{BASE}{sys_a.code}/monthly/", {"year": 2025}, HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["year"] == 2025 and len(body["months"]) == 12
    aug = body["months"][7]
    assert aug["month"] == "2025-08-01"
    assert Decimal(aug["generation_kwh"]) == Decimal("702.25")
    assert Decimal(aug["specific_yield"]) == Decimal("140.45")
    assert Decimal(aug["er_kg"]) == Decimal("461.027") and aug["factor_code"] == "MEE2019-SOUTH-CM"
    assert aug["flags"][0]["code"] == "monthly_yield_high" and "unusually high" in aug["flags"][0]["reason"]
    assert all(Decimal(m["bound_kwh"]) > 0 for m in body["months"])
    assert body["months"][0]["generation_kwh"] is None
    assert api.get(f"{BASE}{sys_a.code}/monthly/", {"year": 1900}).status_code == 400


def _csv(rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.header for c in bulk.COLUMNS])
    base = {
        "owner_real_name": "户主",
        "address": "小榄镇某路",
        "community": "jixi",
        "latitude": "22.66",
        "longitude": "113.23",
        "capacity_kwp": "4.5",
        "tilt_deg": "10",
        "azimuth_deg": "180",
        "grid_connection_date": "2024-02-02",
        "metering": "generation_meter",
        "consent_document": "D-1",
    }
    for r in rows:
        values = {**base, **r}
        w.writerow([values.get(c.key, "") for c in bulk.COLUMNS])
    return buf.getvalue().encode("utf-8")


@pytest.mark.django_db
def test_bulk_endpoint(api):
    org = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=org)
    as_user(api, agent)
    bad = _csv(
        [
            {"name": "甲", "owner_phone": "13700000001", "meter_serial": "API-B-1"},
            {"name": "乙", "owner_phone": "13700000002", "meter_serial": "API-B-1", "azimuth_deg": "400"},
        ]
    )
    resp = api.post(
        f"{BASE}bulk/",
        {"file": SimpleUploadedFile("b.csv", bad)},
        format="multipart",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert resp.status_code == 400
    errors = resp.json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {(3, "azimuth_deg"), (3, "meter_serial")}
    assert {e["column"] for e in errors} == {"Azimuth (°)", "Meter serial"}
    assert not PVSystem.objects.exists()

    good = _csv(
        [
            {"name": "甲", "owner_phone": "13700000001", "meter_serial": "API-B-1"},
            {"name": "乙", "owner_phone": "13700000002", "meter_serial": "API-B-2"},
        ]
    )
    resp = api.post(f"{BASE}bulk/", {"file": SimpleUploadedFile("b.csv", good)}, format="multipart")
    assert resp.status_code == 201, resp.json()
    assert resp.json()["rows_read"] == 2
    assert set(resp.json()["created"]) == set(PVSystem.objects.values_list("code", flat=True))

    as_user(api, make_user(Role.OWNER_HOUSEHOLD))
    assert (
        api.post(f"{BASE}bulk/", {"file": SimpleUploadedFile("b.csv", good)}, format="multipart").status_code
        == 403
    )


@pytest.mark.django_db
def test_schema_documents_the_pv_endpoints(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for p in (
        "/api/v1/pv-systems/",
        "/api/v1/pv-systems/{code}/",
        "/api/v1/pv-systems/{code}/monthly/",
        "/api/v1/pv-systems/bulk/",
        "/api/v1/communities/",
    ):
        assert p in paths, p
    assert "requestBody" in paths["/api/v1/pv-systems/"]["post"]
    assert "multipart/form-data" in paths["/api/v1/pv-systems/bulk/"]["post"]["requestBody"]["content"]
    assert "Monthly" in schema["components"]["schemas"]
