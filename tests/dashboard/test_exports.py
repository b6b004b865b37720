"""Excel exports: only what the requesting role may see, ID-card and phone numbers masked, refused tables 403."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.test import Client
from openpyxl import load_workbook

from lowcarbon.accounts.models import Role
from lowcarbon.registry import ledger
from tests.dashboard.helpers import system_in
from tests.factories import PASSWORD, make_org, make_user
from tests.registry.app_helpers import consent
from tests.registry.cert_helpers import issue

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

ALICE_ID = "44200019800101123X"
ALICE_PHONE = "13912345678"


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def sheet(resp) -> list[list]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.status_code
    assert resp["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    wb = load_workbook(io.BytesIO(resp.content))
    ws = wb.worksheets[0]
    return [list(row) for row in ws.iter_rows(values_only=True)]


def all_text(resp) -> str:  # type: ignore[no-untyped-def]
    wb = load_workbook(io.BytesIO(resp.content))
    return "\n".join(
        str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v
    )


@pytest.fixture
def world(media_root):
    alice = make_user(Role.OWNER_HOUSEHOLD, username="alice", phone=ALICE_PHONE)
    alice.set_id_number(ALICE_ID)
    alice.save()
    bob = make_user(Role.OWNER_HOUSEHOLD, username="bob", phone="13700000000")
    a_sys = system_in("dongqu", alice, kwh="600", months=[5, 6])
    b_sys = system_in("xiqu", bob, kwh="700", months=[5, 6])
    org = make_org("aggregator")
    agg = make_user(Role.AGGREGATOR, org=org, username="agg")
    consent(a_sys, org)
    a_acc = ledger.account_for_user(alice)
    b_acc = ledger.account_for_user(bob)
    issue([(a_sys, 5, a_acc)], applicant=alice)
    issue([(b_sys, 4, b_acc)], applicant=bob)
    ledger.do_transfer(from_account=b_acc, to_account=a_acc, quantity=1, actor=bob)
    ledger.do_retire(
        account=b_acc,
        quantity=2,
        beneficiary="鲍勃公司",
        purpose="voluntary",
        retired_on=date(2025, 12, 1),
        actor=bob,
    )
    return {
        "alice": alice,
        "bob": bob,
        "agg": agg,
        "a_sys": a_sys,
        "b_sys": b_sys,
        "reviewer": make_user(Role.REVIEWER_CITY),
        "admin": make_user(Role.REGISTRY_ADMIN),
    }


def test_owner_exports_only_own_rows(world):
    c = client_for(world["alice"])
    rows = sheet(c.get("/my/exports/systems.xlsx"))
    assert [r[0] for r in rows[1:]] == [world["a_sys"].code]
    monthly = sheet(c.get("/my/exports/monthly.xlsx"))
    assert {r[0] for r in monthly[1:]} == {world["a_sys"].code}
    assert [(r[1], float(r[2])) for r in monthly[1:]] == [("2025-05", 600.0), ("2025-06", 600.0)]
    for table in ("retirements", "applications"):
        text = all_text(c.get(f"/my/exports/{table}.xlsx"))
        assert world["b_sys"].code not in text, table
    blocks = sheet(c.get("/my/exports/blocks.xlsx"))
    # 5 issued to her and the 1 unit Bob transferred to her (it keeps its origin, Bob's system)
    assert sum(r[4] for r in blocks[1:]) == 6
    assert {r[6] for r in blocks[1:]} == {ledger.account_for_user(world["alice"]).number}
    transfers = sheet(c.get("/my/exports/transfers.xlsx"))
    assert len(transfers) == 2  # the one transfer she received
    assert "鲍勃公司" not in all_text(c.get("/my/exports/retirements.xlsx"))


def test_aggregator_sees_consented_systems_only(world):
    rows = sheet(client_for(world["agg"]).get("/my/exports/systems.xlsx"))
    assert [r[0] for r in rows[1:]] == [world["a_sys"].code]


def test_official_sees_every_row_with_masked_personal_data(world):
    for who in ("reviewer", "admin"):
        c = client_for(world[who])
        rows = sheet(c.get("/my/exports/systems.xlsx"))
        codes = [r[0] for r in rows[1:]]
        assert codes == sorted([world["a_sys"].code, world["b_sys"].code])
        text = all_text(c.get("/my/exports/systems.xlsx")) + all_text(c.get("/my/exports/applications.xlsx"))
        assert ALICE_PHONE not in text and ALICE_ID not in text
        assert "139****5678" in text
        assert "442***********123X" in text
        assert "13700000000" not in text
        retirements = sheet(c.get("/my/exports/retirements.xlsx"))
        assert [r[3] for r in retirements[1:]] == ["鲍勃公司"]
        transfers = sheet(c.get("/my/exports/transfers.xlsx"))
        assert [r[3] for r in transfers[1:]] == [1]


def test_refused_and_unknown_tables(world):
    buyer = make_user(Role.BUYER)
    c = client_for(buyer)
    assert c.get("/my/exports/systems.xlsx").status_code == 403
    assert c.get("/my/exports/applications.xlsx").status_code == 403
    assert c.get("/my/exports/nonsense.xlsx").status_code == 404
    page = c.get("/my/exports/").content.decode()
    assert "/my/exports/systems.xlsx" not in page


def test_every_export_opens_for_an_official(world):
    c = client_for(world["admin"])
    page = c.get("/my/exports/").content.decode()
    from lowcarbon.dashboard.exports import available_tables

    for t in available_tables(world["admin"]):
        assert f"/my/exports/{t.key}.xlsx" in page
        rows = sheet(c.get(f"/my/exports/{t.key}.xlsx"))
        assert rows[0] and all(h for h in rows[0])


def test_trades_export_when_the_market_exists(world):
    from lowcarbon.dashboard.services import trade_model

    model = trade_model()
    c = client_for(world["admin"])
    if model is None:
        assert c.get("/my/exports/trades.xlsx").status_code == 403
        return
    rows = sheet(c.get("/my/exports/trades.xlsx"))
    assert len(rows) - 1 == model.objects.count()
