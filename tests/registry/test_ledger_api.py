"""Registry API: my holdings, transfers and retirements with idempotent client keys (the same key again → the first
result, 200), refusals with reason codes, and the public block search and retirement record (no log-in, no
personal data)."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from lowcarbon.accounts.models import Role
from lowcarbon.registry import ledger
from lowcarbon.registry.models import Retirement, Transfer
from tests.factories import make_user
from tests.registry.cert_helpers import household_with_units

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HOUSEHOLD_NAME = "麦润标"
HOUSEHOLD_PHONE = "13800138000"


def api_client(user) -> Client:
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


@pytest.fixture
def world():
    owner, account, issued = household_with_units(37, real_name=HOUSEHOLD_NAME, phone=HOUSEHOLD_PHONE)
    buyer = make_user(Role.BUYER, real_name="冯俊杰", phone="13800000015")
    return {
        "owner": owner,
        "account": account,
        "issued": issued,
        "series": issued.blocks[0].series,
        "buyer": buyer,
        "buyer_account": ledger.account_for_user(buyer),
    }


def _post(client: Client, url: str, data: dict):
    return client.post(url, data, content_type="application/json")


def test_my_account_shows_holdings_and_blocks(world):
    resp = api_client(world["owner"]).get("/api/v1/registry/accounts/me/")
    assert resp.status_code == 200
    data = resp.json()
    assert data["number"] == world["account"].number and data["kind"] == "person"
    assert data["balance"] == 37 and data["available"] == 37
    assert data["holdings"] == [
        {
            "series": world["series"],
            "vintage": 2025,
            "project_code": world["issued"].blocks[0].project_code,
            "methodology_code": "GD-PV-2022",
            "quantity": 37,
            "locked": 0,
            "blocks": 1,
        }
    ]
    assert [b["serial"] for b in data["blocks"]] == [f"{world['series']}-00000001-00000037"]
    assert Client().get("/api/v1/registry/accounts/me/").status_code in (401, 403)


def test_transfer_with_the_same_client_key_twice_returns_the_first_transfer(world):
    api = api_client(world["owner"])
    body = {"to_account": world["buyer_account"].number, "quantity": 12, "client_key": "order-2025-0001"}
    first = _post(api, "/api/v1/registry/transfers/", body)
    assert first.status_code == 201, first.content
    again = _post(api, "/api/v1/registry/transfers/", body)
    assert again.status_code == 200
    assert again.json()["number"] == first.json()["number"] and again.json()["replayed"] is True
    assert first.json()["blocks"][0]["serial"] == f"{world['series']}-00000001-00000012"
    assert Transfer.objects.count() == 1
    assert ledger.balance(world["buyer_account"]) == 12 and ledger.balance(world["account"]) == 25
    # the same key for a different request is a conflict, and changes nothing
    clash = _post(api, "/api/v1/registry/transfers/", {**body, "quantity": 3})
    assert clash.status_code == 409 and clash.json()["code"] == "idempotency_key_reused"
    assert ledger.balance(world["buyer_account"]) == 12


def test_retire_with_the_same_client_key_twice_returns_the_first_retirement(world):
    ledger.do_transfer(
        from_account=world["account"], to_account=world["buyer_account"], quantity=12, actor=world["owner"]
    )
    api = api_client(world["buyer"])
    body = {
        "quantity": 5,
        "beneficiary": "中山市小榄镇绿能五金有限公司",
        "purpose": "voluntary",
        "retired_on": "2025-06-30",
        "client_key": "e2f1c9c2-5f55-4d1e-9d0c-3b8f2f7f1a10",
    }
    first = _post(api, "/api/v1/registry/retirements/", body)
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["number"].startswith("RT-") and data["quantity"] == 5 and data["replayed"] is False
    assert data["blocks"][0]["serial"] == f"{world['series']}-00000001-00000005"
    assert data["certificate_url"].endswith(f"/registry/certificates/retirement/{data['number']}.pdf")
    again = _post(api, "/api/v1/registry/retirements/", body)
    assert again.status_code == 200 and again.json()["number"] == data["number"]
    assert Retirement.objects.count() == 1 and ledger.balance(world["buyer_account"]) == 7


def test_refusals_carry_reason_codes_and_change_nothing(world):
    owner_api = api_client(world["owner"])
    too_many = _post(
        owner_api,
        "/api/v1/registry/transfers/",
        {"to_account": world["buyer_account"].number, "quantity": 38},
    )
    assert too_many.status_code == 400 and too_many.json()["code"] == "insufficient_units"
    unknown = _post(owner_api, "/api/v1/registry/transfers/", {"to_account": "XL-U999999", "quantity": 1})
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_account"
    invalid = _post(owner_api, "/api/v1/registry/transfers/", {"to_account": "XL-U1", "quantity": 0})
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid"
    # the buyer cannot move or retire the household's units
    buyer_api = api_client(world["buyer"])
    theft = _post(
        buyer_api,
        "/api/v1/registry/transfers/",
        {"from_account": world["account"].number, "to_account": world["buyer_account"].number, "quantity": 1},
    )
    assert theft.status_code == 403
    retire = _post(
        buyer_api,
        "/api/v1/registry/retirements/",
        {"account": world["account"].number, "quantity": 1, "beneficiary": "x", "purpose": "voluntary"},
    )
    assert retire.status_code == 403
    assert ledger.balance(world["account"]) == 37 and Transfer.objects.count() == 0


def test_public_block_search_by_unit_project_and_vintage(world):
    ledger.do_transfer(
        from_account=world["account"], to_account=world["buyer_account"], quantity=12, actor=world["owner"]
    )
    anon = Client()
    series = world["series"]
    resp = anon.get("/api/v1/registry/blocks/", {"serial": f"{series}-00000030"})
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert [r["serial"] for r in results] == [f"{series}-00000013-00000037"]
    assert results[0]["holder_account"] == world["account"].number
    assert results[0]["holder_organisation"] is None and results[0]["state"] == "held"
    assert results[0]["url"].endswith(f"/registry/public/blocks/{results[0]['id']}/")

    project = world["issued"].blocks[0].project_code
    listed = anon.get("/api/v1/registry/blocks/", {"project": project, "vintage": 2025}).json()
    assert listed["count"] == 2
    assert anon.get("/api/v1/registry/blocks/", {"project": project, "vintage": 2024}).json()["count"] == 0
    for text in (resp.content.decode(), str(listed)):
        for private in (HOUSEHOLD_NAME, HOUSEHOLD_PHONE, "冯俊杰"):
            assert private not in text
    bad = anon.get("/api/v1/registry/blocks/", {"serial": "PHCER-nonsense"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_serial"


def test_public_retirement_record(world):
    ledger.do_transfer(
        from_account=world["account"], to_account=world["buyer_account"], quantity=12, actor=world["owner"]
    )
    r = ledger.do_retire(
        account=world["buyer_account"],
        quantity=4,
        beneficiary="小榄镇马拉松组委会",
        purpose="event_neutrality",
        retired_on=date(2025, 3, 1),
        actor=world["buyer"],
    )
    resp = Client().get(f"/api/v1/registry/retirements/{r.number}/")
    assert resp.status_code == 200
    data = resp.json()
    assert data["beneficiary"] == "小榄镇马拉松组委会" and data["purpose"] == "event_neutrality"
    assert data["retired_on"] == "2025-03-01" and data["quantity"] == 4
    assert data["account"] == world["buyer_account"].number and data["organisation"] is None
    assert [b["serial"] for b in data["blocks"]] == [f"{world['series']}-00000001-00000004"]
    assert len(data["journal_hash"]) == 64
    assert data["url"].endswith(f"/registry/public/retirements/{r.number}/")
    for private in (HOUSEHOLD_NAME, HOUSEHOLD_PHONE, "冯俊杰", "13800000015"):
        assert private not in resp.content.decode()
    assert Client().get("/api/v1/registry/retirements/RT-1999-000001/").status_code == 404


def test_schema_documents_the_registry_endpoints(world):
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in (
        "/api/v1/registry/accounts/me/",
        "/api/v1/registry/transfers/",
        "/api/v1/registry/retirements/",
        "/api/v1/registry/retirements/{number}/",
        "/api/v1/registry/blocks/",
    ):
        assert path in schema
    assert "client_key" in schema and "RegistryError" in schema
