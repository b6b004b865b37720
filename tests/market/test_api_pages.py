"""The market's API and pages: placing and taking through the API with clear refusals, the public book and
prices without log-in, the board and forms in Chinese, the scheduled-jobs CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from lowcarbon.market import services as m
from lowcarbon.market.models import Order, Trade
from lowcarbon.registry import ledger
from tests.factories import PASSWORD
from tests.market.helpers import World, listing

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def api(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def test_api_place_take_and_refusals():
    w = World()
    seller, buyer = api(w.seller), api(w.buyer)
    r = seller.post(
        "/api/v1/market/listings/",
        {"account": w.seller_account.number, "quantity": 20, "price": "24.00"},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    number = r.json()["order"]["number"]
    assert r.json()["order"]["remaining"] == 20 and r.json()["trades"] == []
    r = buyer.post(
        f"/api/v1/market/orders/{number}/take/",
        {"account": w.buyer_account.number, "quantity": 25},
        content_type="application/json",
    )
    assert r.status_code == 400 and r.json()["code"] == "exceeds_listing"
    assert r.json()["errors"][0]["field"] == "quantity"
    r = buyer.post(
        f"/api/v1/market/orders/{number}/take/",
        {"account": w.seller_account.number, "quantity": 1},  # not the buyer's account
        content_type="application/json",
    )
    assert r.status_code == 403 and Trade.objects.count() == 0
    r = buyer.post(
        f"/api/v1/market/orders/{number}/take/",
        {"account": w.buyer_account.number, "quantity": 5},
        content_type="application/json",
    )
    assert r.status_code == 201 and r.json()["quantity"] == 5 and r.json()["transfer"].startswith("TR-")
    r = seller.post(
        "/api/v1/market/listings/",
        {"account": w.seller_account.number, "quantity": 1, "price": "99.00"},
        content_type="application/json",
    )
    assert r.status_code == 400 and r.json()["code"] == "price_limit"
    # the public book and prices need no log-in and show no person's name
    anon = Client()
    book = anon.get("/api/v1/market/book/").json()
    assert [o["remaining"] for o in book["listings"]] == [15]
    assert w.seller.real_name not in json.dumps(book, ensure_ascii=False)
    prices = anon.get("/api/v1/market/prices/").json()
    assert prices[-1]["volume_t"] == 5 and prices[-1]["close"] == "23.88"
    assert anon.get("/api/v1/market/trades/").json()[0]["quantity"] == 5
    # the seller cancels through the API; another user cannot
    assert buyer.post(f"/api/v1/market/orders/{number}/cancel/").status_code == 404
    assert seller.post(f"/api/v1/market/orders/{number}/cancel/").json()["state"] == "cancelled"
    assert ledger.available(w.seller_account) == 95


def test_api_buy_request_with_retirement_needs_a_beneficiary():
    w = World()
    r = api(w.buyer).post(
        "/api/v1/market/buy-requests/",
        {
            "account": w.buyer_account.number,
            "quantity": 2,
            "price": "23.00",
            "retire_on_purchase": True,
            "purpose": "voluntary",
        },
        content_type="application/json",
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "beneficiary"
    assert not Order.objects.exists()


def test_board_and_forms_in_chinese_with_field_errors():
    w = World()
    order = listing(w, quantity=10, price=Decimal("24.00"))
    anon = Client()
    body = anon.get("/market/").content.decode()
    assert "碳普惠减排量交易撮合" in body and order.number in body and "24.00" in body
    assert w.seller.real_name not in body
    c = Client()
    assert c.login(username=w.buyer.username, password=PASSWORD)
    r = c.post(f"/market/orders/{order.number}/", {"account": w.buyer_account.number, "quantity": "11"})
    assert r.status_code == 200
    assert f"挂牌 {order.number} 剩余 10 吨，您要求 11 吨。" in r.content.decode()
    r = c.post(f"/market/orders/{order.number}/", {"account": w.buyer_account.number, "quantity": "4"})
    trade = Trade.objects.get()
    assert r.status_code == 302 and r["Location"].endswith(f"/market/trades/{trade.number}/")
    page = c.get(f"/market/trades/{trade.number}/").content.decode()
    assert "登记簿划转" in page and trade.transfer.number in page
    mine = c.get("/market/mine/").content.decode()
    assert trade.number in mine and "仅供参考" in mine
    # the listing form refuses a price off the tick, naming the field
    s = Client()
    assert s.login(username=w.seller.username, password=PASSWORD)
    r = s.post(
        "/market/listings/new/", {"account": w.seller_account.number, "quantity": "1", "price": "24.005"}
    )
    assert r.status_code == 200 and Order.objects.count() == 1
    # only administrators see surveillance
    assert c.get("/market/admin/").status_code == 404


def test_cli_closes_auctions_and_prints_prices():
    w = World()
    a = m.do_create_auction(
        account=w.seller_account,
        actor=w.seller,
        quantity=5,
        floor_price=Decimal("22.00"),
        closes_at=timezone.now() + timedelta(seconds=1),
    )
    m.do_place_bid(auction=a, account=w.buyer_account, actor=w.buyer, price=Decimal("22.10"), quantity=5)
    import time

    time.sleep(1.2)
    out = StringIO()
    call_command("market", "close-auctions", stdout=out)
    assert f"{a.number}: sold 5 of 5 t" in out.getvalue()
    out = StringIO()
    call_command("market", "prices", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert rows[-1]["volume_t"] == 5 and rows[-1]["close"] == "23.88"
