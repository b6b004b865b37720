"""Inputs that schemathesis found to cause server errors, each now a clear 4xx answer."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from lowcarbon.accounts.models import Role
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _api(*roles: str) -> Client:
    token = Token.objects.create(user=make_user(*roles))
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def test_huge_page_limit_and_offset_are_bounded():
    """limit=3303280654858179917643776 overflowed the database integer: now at most 1000 rows a page."""
    api = _api(Role.OWNER_HOUSEHOLD)
    resp = api.get("/api/v1/grid-factors/?limit=3303280654858179917643776&offset=-2334889")
    assert resp.status_code == 200
    assert api.get("/api/v1/grid-factors/?limit=5&offset=99999999999999999999999").status_code == 200
    assert api.get("/api/v1/methodologies/?limit=100000").status_code == 200


def test_a_json_list_as_a_notice_is_a_400():
    """POST [null, null] to the notices API failed with AttributeError ('list' has no .get)."""
    api = _api(Role.CONTENT_EDITOR)
    resp = api.post("/api/v1/info/articles/", "[null, null]", content_type="application/json")
    assert resp.status_code == 400
    resp = api.post("/api/v1/info/projects/1/requests/", "[1]", content_type="application/json")
    assert resp.status_code in (400, 404)


@pytest.mark.parametrize("url", ["/api/v1/registry/retirements/", "/api/v1/registry/transfers/"])
def test_huge_quantities_and_block_ids_are_a_400(url):
    """quantity=1288284716414481315607884070912 (and such block ids) overflowed the database integer."""
    api = _api(Role.OWNER_HOUSEHOLD)
    data = {
        "quantity": 1288284716414481315607884070912,
        "beneficiary": "x",
        "purpose": "voluntary",
        "to_account": "XL-O000001",
        "block_ids": [8979637692740968988926803968],
    }
    resp = api.post(url, data, content_type="application/json")
    assert resp.status_code == 400
    assert {"quantity", "block_ids"} <= {e["field"] for e in resp.json()["errors"]}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/pv-systems/?owner_type=VERSION&community=%00%F3%8A%B3%AA",
        "/api/v1/finance/projects/?q=a%00b",
        "/registry/public/?q=%00",
    ],
)
def test_a_nul_character_in_the_query_is_a_400(url):
    """community=<text with NUL> failed on PostgreSQL ("A string literal cannot contain NUL characters")."""
    assert _api(Role.REGISTRY_ADMIN).get(url).status_code == 400


def test_readings_with_nul_and_lone_surrogates_are_quarantined_not_a_server_error():
    """A readings batch whose rows carried a NUL character and a lone surrogate in their strings failed on
    PostgreSQL (it cannot store NUL): the rows are now quarantined, their text kept with visible escapes."""
    from lowcarbon.metering.models import IngestBatch

    api = _api(Role.OWNER_HOUSEHOLD)
    body = (
        '{"readings": [{"meter_serial": "M\\u0000X", "timestamp": "2024-06-01T10:00\\u0000", "unit": "kWh"},'
        ' {"meter_serial": "\\ud800", "timestamp": "x", "energy": 1, "unit": "kWh"}]}'
    )
    resp = api.post("/api/v1/readings/batch/", body, content_type="application/json")
    assert resp.status_code in (200, 201), resp.content
    batch = IngestBatch.objects.get()
    assert (batch.rows_total, batch.rows_rejected) == (2, 2)
    serials = sorted(batch.quarantine.values_list("meter_serial", flat=True))
    assert serials == ["M\\x00X", "\\ud800"]
    assert all("\x00" not in raw for raw in batch.quarantine.values_list("raw", flat=True))
