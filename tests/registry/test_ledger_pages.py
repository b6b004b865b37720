"""Registry pages: a household transfers part of a block to a buyer, the buyer retires it and downloads the
certificate; the public registry finds blocks by any unit number and shows their lifecycle without personal data;
nobody else gets someone's certificate; administrators cancel with a reason; pages in English on request."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from django.urls import reverse

from lowcarbon.accounts.models import Role
from lowcarbon.registry import ledger
from lowcarbon.registry.models import Cancellation, Retirement, SerialBlock, Transfer
from tests.factories import make_user
from tests.registry.cert_helpers import household_with_units

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HOUSEHOLD_NAME = "麦润标"
HOUSEHOLD_PHONE = "13800138000"


@pytest.fixture
def market():
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


def _transfer(client, m, quantity=12, key=None):
    return client.post(
        reverse("registry:transfer"),
        {
            "account": m["account"].number,
            "to_account": m["buyer_account"].number.lower(),
            "quantity": quantity,
            "client_key": key or str(uuid.uuid4()),
        },
    )


def _retire(client, m, quantity=5, key=None, **extra):
    data = {
        "account": m["buyer_account"].number,
        "quantity": quantity,
        "beneficiary": "中山市小榄镇绿能五金有限公司",
        "purpose": "event_neutrality",
        "retired_on": "2025-06-30",
        "note": "春季展会碳中和",
        "client_key": key or str(uuid.uuid4()),
        **extra,
    }
    return client.post(reverse("registry:retire"), data)


def test_transfer_then_retire_through_the_pages(client, market):
    m = market
    series = m["series"]
    client.force_login(m["owner"])
    page = client.get(reverse("registry:transfer"))
    assert page.status_code == 200 and 'name="client_key"' in page.content.decode()

    resp = _transfer(client, m)
    assert resp.status_code == 302 and resp.url.startswith(reverse("registry:account"))
    mine = client.get(resp.url).content.decode()
    assert f"{series}-00000013-00000037" in mine  # the part kept
    assert f"{series}-00000001-00000012" in mine  # listed under transfers out
    assert ledger.balance(m["account"]) == 25

    client.force_login(m["buyer"])
    theirs = client.get(reverse("registry:account")).content.decode()
    assert f"{series}-00000001-00000012" in theirs
    assert ledger.balance(m["buyer_account"]) == 12
    assert HOUSEHOLD_NAME not in theirs and HOUSEHOLD_PHONE not in theirs

    resp = _retire(client, m)
    r = Retirement.objects.get()
    assert resp.status_code == 302 and resp.url == reverse("registry:public_retirement", args=[r.number])
    record = client.get(resp.url).content.decode()
    assert reverse("registry:retirement_certificate", args=[r.number]) in record  # the holder may download
    pdf = client.get(reverse("registry:retirement_certificate", args=[r.number]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert ledger.balance(m["buyer_account"]) == 7
    assert r.quantity == 5 and {b.serial for b in r.blocks.all()} == {f"{series}-00000001-00000005"}


def test_a_repeated_submission_moves_units_once(client, market):
    client.force_login(market["owner"])
    key = str(uuid.uuid4())
    assert _transfer(client, market, key=key).status_code == 302
    again = _transfer(client, market, key=key)
    assert again.status_code == 302
    assert Transfer.objects.count() == 1
    assert ledger.balance(market["buyer_account"]) == 12
    shown = client.get(again.url).content.decode()
    assert Transfer.objects.get().number in shown


def test_refusals_are_shown_on_the_form_and_change_nothing(client, market):
    client.force_login(market["owner"])
    too_many = _transfer(client, market, quantity=38)
    assert too_many.status_code == 200
    assert "37" in too_many.content.decode() and "errorlist" in too_many.content.decode()
    unknown = client.post(
        reverse("registry:transfer"),
        {"account": market["account"].number, "to_account": "XL-U999999", "quantity": 1},
    )
    assert unknown.status_code == 200 and "XL-U999999" in unknown.content.decode()
    bad_block = client.post(
        reverse("registry:transfer"),
        {
            "account": market["account"].number,
            "to_account": market["buyer_account"].number,
            "quantity": 1,
            "block": "PHCER-XX-1",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "PHCER-XX-1 is not a serial number" in bad_block.content.decode()
    # someone else's account cannot be chosen as the source
    client.force_login(market["buyer"])
    theft = _transfer(client, market)
    assert theft.status_code == 200
    assert Transfer.objects.count() == 0 and ledger.balance(market["account"]) == 37


def test_retire_from_a_named_block_by_any_unit_in_it(client, market):
    client.force_login(market["owner"])
    _transfer(client, market)
    client.force_login(market["buyer"])
    unit = f"{market['series']}-00000010"
    resp = _retire(client, market, quantity=2, block=unit)
    assert resp.status_code == 302
    r = Retirement.objects.get()
    assert [b.serial for b in r.blocks.all()] == [f"{market['series']}-00000001-00000002"]


def test_public_retirement_record_shows_the_facts_and_no_household_data(client, market):
    client.force_login(market["owner"])
    _transfer(client, market)
    client.force_login(market["buyer"])
    _retire(client, market)
    r = Retirement.objects.get()
    client.logout()
    page = client.get(reverse("registry:public_retirement", args=[r.number]))
    assert page.status_code == 200
    body = page.content.decode()
    assert f"{market['series']}-00000001-00000005" in body
    assert "中山市小榄镇绿能五金有限公司" in body
    assert r.get_purpose_display() in body
    assert "2025-06-30" in body
    assert market["buyer_account"].number in body
    for private in (HOUSEHOLD_NAME, HOUSEHOLD_PHONE, "冯俊杰", "13800000015"):
        assert private not in body
    # the anonymous reader gets no download button
    assert reverse("registry:retirement_certificate", args=[r.number]) not in body


def test_nobody_else_gets_the_retirement_certificate(client, market):
    client.force_login(market["owner"])
    _transfer(client, market)
    client.force_login(market["buyer"])
    _retire(client, market)
    url = reverse("registry:retirement_certificate", args=[Retirement.objects.get().number])
    client.force_login(market["owner"])  # the household that sold the units
    assert client.get(url).status_code == 404
    client.force_login(make_user(Role.BUYER))
    assert client.get(url).status_code == 404
    client.logout()
    resp = client.get(url)
    assert resp.status_code == 302 and "login" in resp.url


def test_issuance_certificate_for_the_household_and_not_for_the_buyer(client, market):
    url = reverse("registry:issuance_certificate", args=[market["issued"].application.code])
    client.force_login(market["owner"])
    resp = client.get(url)
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")
    client.force_login(market["buyer"])
    assert client.get(url).status_code == 404
    client.force_login(market["issued"].issuer)  # registry administrator
    assert client.get(url).status_code == 200


def test_public_search_finds_a_block_by_a_single_unit_number(client, market):
    client.force_login(market["owner"])
    _transfer(client, market)
    client.logout()
    series = market["series"]
    resp = client.get(reverse("registry:public_search"), {"serial": f"{series}-00000020"})
    assert resp.status_code == 200
    body = resp.content.decode()
    assert f"{series}-00000013-00000037" in body  # the block holding unit 20
    assert market["account"].number in body  # holder shown by account number
    assert Transfer.objects.get().number in body  # lifecycle: the split when 1–12 moved
    assert market["issued"].application.code in body
    for private in (HOUSEHOLD_NAME, HOUSEHOLD_PHONE):
        assert private not in body

    listed = client.get(
        reverse("registry:public_search"),
        {"project": market["issued"].blocks[0].project_code, "vintage": 2025},
    ).content.decode()
    assert f"{series}-00000001-00000012" in listed and f"{series}-00000013-00000037" in listed
    assert f"{series}-00000001-00000037" not in listed  # the split parent is history, not a live block

    en = {"HTTP_ACCEPT_LANGUAGE": "en"}
    bad = client.get(reverse("registry:public_search"), {"serial": "not-a-serial"}, **en)
    assert bad.status_code == 200 and "not-a-serial is not a serial number" in bad.content.decode()
    none = client.get(reverse("registry:public_search"), {"serial": f"{series}-00000099"}, **en)
    assert "No block contains this serial number." in none.content.decode()


def test_public_block_page_shows_lineage_and_events(client, market):
    client.force_login(market["owner"])
    _transfer(client, market)
    client.force_login(market["buyer"])
    _retire(client, market)
    client.logout()
    retired = SerialBlock.objects.get(state="retired")
    body = client.get(reverse("registry:public_block", args=[retired.pk])).content.decode()
    series = market["series"]
    assert f"{series}-00000001-00000037" in body  # issued root
    assert f"{series}-00000001-00000012" in body  # moved to the buyer
    assert retired.serial in body
    assert Transfer.objects.get().number in body and Retirement.objects.get().number in body
    assert market["issued"].application.code in body
    for private in (HOUSEHOLD_NAME, HOUSEHOLD_PHONE, "冯俊杰"):
        assert private not in body


def test_registry_administrator_cancels_with_a_reason(client, market):
    app = market["issued"].application
    client.force_login(market["owner"])
    assert client.get(reverse("registry:admin_cancel")).status_code == 403
    admin = market["issued"].issuer
    client.force_login(admin)
    shown = client.get(reverse("registry:admin_cancel"), {"application": app.code})
    assert shown.status_code == 200 and market["issued"].blocks[0].serial in shown.content.decode()
    empty = client.post(reverse("registry:admin_cancel"), {"application": app.code, "reason": " "})
    assert empty.status_code == 200
    assert SerialBlock.objects.filter(state="cancelled").count() == 0
    resp = client.post(
        reverse("registry:admin_cancel"), {"application": app.code, "reason": "电表倍率录入错误"}
    )
    assert resp.status_code == 302
    assert SerialBlock.objects.get(application=app).state == "cancelled"
    public = client.get(resp.url).content.decode()
    assert Cancellation.objects.get().number in public
    block = SerialBlock.objects.get(application=app)
    history = client.get(reverse("registry:public_block", args=[block.pk])).content.decode()
    assert "电表倍率录入错误" in history


def test_pages_in_english_on_request(client, market):
    client.force_login(market["owner"])
    page = client.get(reverse("registry:account"), HTTP_ACCEPT_LANGUAGE="en")
    body = page.content.decode()
    assert '<html lang="en">' in body
    assert "My registry account" in body and "Holdings by series and vintage" in body
    public = client.get(reverse("registry:public_search"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in public and "Public registry" in public
    zh = client.get(reverse("registry:public_search")).content.decode()
    assert '<html lang="zh-hans">' in zh


def test_navigation_links(client, market):
    anon = client.get(reverse("home")).content.decode()
    assert reverse("registry:public_search") in anon and reverse("registry:account") not in anon
    client.force_login(market["buyer"])
    body = client.get(reverse("home")).content.decode()
    assert reverse("registry:account") in body and reverse("registry:public_search") in body


def test_retired_on_in_the_future_is_refused(client, market):
    client.force_login(market["owner"])
    _transfer(client, market)
    client.force_login(market["buyer"])
    resp = _retire(client, market, retired_on=date(2999, 1, 1).isoformat())
    assert resp.status_code == 200 and Retirement.objects.count() == 0
