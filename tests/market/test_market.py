"""The market's four modes settled on the registry: what sellers and buyers see in their holdings, reservations
and the journal after each step; locks, settlement atomicity, the offset limit, self-trades, price limits, the
daily close, expiry and surveillance alerts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import set_parameter
from lowcarbon.market import services as m
from lowcarbon.market.models import Alert, Auction, Bid, Deal, Order, Trade
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.models import JournalEntry, Retirement, SerialBlock
from tests.market.helpers import REF, World, check_market_invariants, give_units, listing

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def w():
    return World()


def kinds_since(seq: int) -> list[str]:
    return list(JournalEntry.objects.filter(seq__gt=seq).order_by("seq").values_list("kind", flat=True))


def head() -> int:
    return JournalEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- 挂牌点选 listing select ----------------------------------------------------------------------------------------


def test_listing_reserves_units_and_a_buyer_takes_part(w):
    start = head()
    order = listing(w, quantity=30, price=Decimal("24.00"))
    assert ledger.balance(w.seller_account) == 100
    assert ledger.available(w.seller_account) == 70
    assert ledger.reserved(order.number) == 30
    assert kinds_since(start) == ["reserve"]
    with pytest.raises(DomainError) as e:  # reserved units cannot leave by the registry's own doors
        ledger.do_transfer(
            from_account=w.seller_account, to_account=w.buyer_account, quantity=71, actor=w.seller
        )
    assert e.value.code == "insufficient_units"

    start = head()
    trade = m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=12)
    order.refresh_from_db()
    assert (trade.quantity, trade.price, trade.mode) == (12, Decimal("24.00"), "listing")
    assert order.remaining == 18 and order.state == "open"
    assert ledger.balance(w.buyer_account) == 12
    assert ledger.balance(w.seller_account) == 88 and ledger.available(w.seller_account) == 70
    assert ledger.reserved(order.number) == 18
    entry = JournalEntry.objects.get(seq=head())
    assert kinds_since(start) == ["transfer"]
    assert entry.payload["trade"] == {"mode": "listing", "price": "24.00", "sell_order": order.number}
    assert sorted(b.serial for b in trade.transfer.blocks.all())  # the serials that moved are recorded
    check_market_invariants()

    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=18)
    order.refresh_from_db()
    assert order.state == "filled" and ledger.reserved(order.number) == 0
    with pytest.raises(DomainError) as e:
        m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=1)
    assert e.value.code == "order_closed"
    check_market_invariants()


def test_taking_more_than_listed_is_refused_naming_the_figures(w):
    order = listing(w, quantity=5)
    with pytest.raises(DomainError) as e:
        m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=6)
    assert e.value.code == "exceeds_listing" and "5" in e.value.message and "6" in e.value.message
    assert Trade.objects.count() == 0


def test_retire_on_purchase_retires_the_bought_units_for_the_beneficiary(w):
    order = listing(w, quantity=10)
    retire = m.retire_request(True, "小榄镇马拉松 2026", "event_neutrality")
    trade = m.do_take_listing(
        listing=order, account=w.buyer_account, actor=w.buyer, quantity=4, retire=retire
    )
    assert trade.retirement is not None
    r = trade.retirement
    assert (r.quantity, r.beneficiary, r.purpose) == (4, "小榄镇马拉松 2026", "event_neutrality")
    assert ledger.balance(w.buyer_account) == 0
    assert set(r.blocks.values_list("state", flat=True)) == {"retired"}
    with pytest.raises(DomainError) as e:
        m.retire_request(True, "", "voluntary")
    assert e.value.field == "beneficiary"
    check_market_invariants()


# --- 求购 buy requests and continuous matching -------------------------------------------------------------------


def test_buy_request_matches_listings_by_price_then_time_and_the_rest_stands(w):
    a = listing(w, quantity=10, price=Decimal("24.50"), who=0)
    b = listing(w, quantity=10, price=Decimal("24.00"), who=1)
    c = listing(w, quantity=10, price=Decimal("24.00"), who=0)  # same price as b, later
    order, trades = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=25, price=Decimal("24.50")
    )
    assert [(t.sell_order.number, t.quantity, t.price) for t in trades] == [
        (b.number, 10, Decimal("24.00")),
        (c.number, 10, Decimal("24.00")),
        (a.number, 5, Decimal("24.50")),
    ]
    order.refresh_from_db()
    assert order.state == "filled" and ledger.balance(w.buyer_account) == 25
    a.refresh_from_db()
    assert a.remaining == 5
    order2, trades2 = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=10, price=Decimal("23.00")
    )
    assert trades2 == [] and order2.state == "open" and order2.remaining == 10
    # a new listing at or below the standing bid trades at the bid's (resting) price
    d, fills = m.do_place_listing(
        account=w.seller_accounts[1], actor=w.sellers[1], quantity=4, price=Decimal("22.50")
    )
    assert [(t.buy_order_id, t.quantity, t.price) for t in fills] == [(order2.pk, 4, Decimal("23.00"))]
    d.refresh_from_db()
    assert d.state == "filled" and ledger.reserved(d.number) == 0
    check_market_invariants()


def test_buy_request_filters_on_vintage(w):
    old_owner = w.sellers[1]
    acct24 = give_units(w, old_owner, 20, vintage=2024)
    # seller 1 now holds 2025 (100) and 2024 (20); list the 2024 units explicitly
    l24, _ = m.do_place_listing(
        account=acct24, actor=old_owner, quantity=20, price=Decimal("23.00"), vintage=2024
    )
    assert l24.vintage == 2024
    l25 = listing(w, quantity=10, price=Decimal("24.00"))
    order, trades = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=5, price=Decimal("24.00"), vintages=[2025]
    )
    assert [t.sell_order_id for t in trades] == [l25.pk]
    assert set(
        SerialBlock.objects.filter(account=w.buyer_account, state="held").values_list("vintage", flat=True)
    ) == {2025}


def test_seller_accepts_a_buy_request_directly(w):
    order, _ = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=8, price=Decimal("23.50")
    )
    trade = m.do_accept_buy_request(order=order, account=w.seller_account, actor=w.seller, quantity=8)
    assert (trade.price, trade.quantity, trade.buy_order_id) == (Decimal("23.50"), 8, order.pk)
    order.refresh_from_db()
    assert order.state == "filled"
    assert ledger.balance(w.buyer_account) == 8 and ledger.balance(w.seller_account) == 92
    check_market_invariants()


def test_accepting_with_units_the_request_does_not_accept_changes_nothing(w):
    order, _ = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=5, price=Decimal("23.50"), vintages=[2024]
    )
    start = head()
    with pytest.raises(DomainError) as e:
        m.do_accept_buy_request(order=order, account=w.seller_account, actor=w.seller, quantity=5)
    assert e.value.code in ("filters_not_met", "insufficient_units")
    assert head() == start and ledger.available(w.seller_account) == 100 and Trade.objects.count() == 0


# --- 竞价 auctions -----------------------------------------------------------------------------------------------


def test_auction_allocates_by_price_then_time_with_a_partial_marginal_bid(w):
    closes = timezone.now() + timedelta(hours=1)
    auction = m.do_create_auction(
        account=w.seller_account, actor=w.seller, quantity=30, floor_price=Decimal("20.00"), closes_at=closes
    )
    assert ledger.reserved(auction.number) == 30 and ledger.available(w.seller_account) == 70
    b2 = w.sellers[1]
    acct2 = w.seller_accounts[1]
    with pytest.raises(DomainError) as e:
        m.do_place_bid(
            auction=auction, account=w.buyer_account, actor=w.buyer, price=Decimal("19.99"), quantity=5
        )
    assert e.value.code == "below_floor"
    with pytest.raises(DomainError) as e:
        m.do_place_bid(
            auction=auction, account=w.seller_account, actor=w.seller, price=Decimal("25"), quantity=5
        )
    assert e.value.code == "self_trade"
    m.do_place_bid(
        auction=auction, account=w.buyer_account, actor=w.buyer, price=Decimal("22.00"), quantity=20
    )
    m.do_place_bid(auction=auction, account=acct2, actor=b2, price=Decimal("23.00"), quantity=15)
    m.do_place_bid(
        auction=auction, account=w.buyer_account, actor=w.buyer, price=Decimal("22.00"), quantity=10
    )
    with pytest.raises(DomainError) as e:
        m.do_close_auction(auction, actor=w.admin)
    assert e.value.code == "auction_still_open"
    auction = m.do_close_auction(auction, actor=w.admin, now=closes + timedelta(seconds=1))
    assert auction.state == "closed" and auction.sold == 30 and auction.clearing_price == Decimal("22.00")
    got = list(Bid.objects.filter(auction=auction).order_by("pk").values_list("price", "allocated", "state"))
    assert got == [
        (Decimal("22.00"), 15, "partly"),
        (Decimal("23.00"), 15, "won"),
        (Decimal("22.00"), 0, "lost"),
    ]
    assert sorted(auction.trades.values_list("price", "quantity")) == [
        (Decimal("22.00"), 15),
        (Decimal("23.00"), 15),
    ]
    assert ledger.reserved(auction.number) == 0
    assert ledger.balance(w.buyer_account) == 15 and ledger.balance(acct2) == 115
    check_market_invariants()


def test_unsold_part_of_an_auction_returns_to_the_seller(w):
    closes = timezone.now() + timedelta(minutes=5)
    auction = m.do_create_auction(
        account=w.seller_account, actor=w.seller, quantity=40, floor_price=Decimal("20.00"), closes_at=closes
    )
    m.do_place_bid(
        auction=auction, account=w.buyer_account, actor=w.buyer, price=Decimal("21.00"), quantity=10
    )
    done = m.do_close_auctions(now=closes + timedelta(minutes=1))
    assert [a.number for a in done] == [auction.number]
    assert ledger.available(w.seller_account) == 90 and ledger.balance(w.buyer_account) == 10
    check_market_invariants()


# --- 协议转让 negotiated deals -------------------------------------------------------------------------------------


def test_negotiated_deal_is_a_trade_only_when_both_confirm(w):
    deal = m.do_propose_deal(
        seller=w.seller_account, buyer=w.buyer_account, actor=w.seller, quantity=25, price=Decimal("22.00")
    )
    assert deal.state == "proposed" and ledger.reserved(deal.number) == 25 and Trade.objects.count() == 0
    with pytest.raises(DomainError) as e:  # the seller cannot confirm for the buyer
        m.do_confirm_deal(deal=deal, actor=w.seller)
    assert e.value.code == "not_allowed"
    trade = m.do_confirm_deal(deal=deal, actor=w.buyer)
    assert (trade.mode, trade.quantity, trade.price) == ("negotiated", 25, Decimal("22.00"))
    assert Deal.objects.get(pk=deal.pk).state == "confirmed" and ledger.balance(w.buyer_account) == 25
    d2 = m.do_propose_deal(
        seller=w.seller_account, buyer=w.buyer_account, actor=w.seller, quantity=5, price=REF
    )
    m.do_close_deal(deal=d2, actor=w.buyer, decline=True)
    assert ledger.reserved(d2.number) == 0 and ledger.available(w.seller_account) == 75
    check_market_invariants()


# --- rules -----------------------------------------------------------------------------------------------------


def test_self_trades_are_refused_in_every_mode(w):
    order = listing(w, quantity=10, price=Decimal("24.00"))
    with pytest.raises(DomainError) as e:
        m.do_take_listing(listing=order, account=w.seller_account, actor=w.seller, quantity=1)
    assert e.value.code == "self_trade"
    with pytest.raises(DomainError) as e:  # a buy request that would cross the own listing
        m.do_place_buy_request(account=w.seller_account, actor=w.seller, quantity=5, price=Decimal("24.00"))
    assert e.value.code == "self_trade"
    with pytest.raises(DomainError) as e:
        m.do_propose_deal(
            seller=w.seller_account, buyer=w.seller_account, actor=w.seller, quantity=1, price=REF
        )
    assert e.value.code == "self_trade"
    assert Trade.objects.count() == 0 and Order.objects.filter(side="buy").count() == 0


def test_price_limit_and_tick(w):
    ref, low, high = m.price_band()
    assert ref == REF and (low, high) == (Decimal("21.50"), Decimal("26.26"))
    with pytest.raises(DomainError) as e:
        listing(w, quantity=1, price=Decimal("26.27"))
    assert e.value.code == "price_limit" and "21.50" in e.value.message and "26.26" in e.value.message
    with pytest.raises(DomainError) as e:
        listing(w, quantity=1, price=Decimal("24.005"))
    assert e.value.code == "invalid_tick" and e.value.field == "price"
    assert ledger.available(w.seller_account) == 100 and Order.objects.count() == 0
    set_parameter("market.daily_price_limit", Decimal("0.20"), date(2020, 1, 1), "test: wider band")
    assert listing(w, quantity=1, price=Decimal("28.00")).price == Decimal("28.00")


def test_daily_close_is_the_vwap_above_100_t_otherwise_the_open(w):
    big = World(seller_units=300, sellers=1)
    order = listing(big, quantity=200, price=Decimal("24.00"))
    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=100)
    today = timezone.localdate()
    row = m.closes(today)[-1]
    assert row["listing_volume_t"] == 100 and row["close"] == REF  # exactly 100 t: the open stands
    order2 = listing(big, quantity=50, price=Decimal("25.00"))
    m.do_take_listing(listing=order2, account=w.buyer_account, actor=w.buyer, quantity=1)
    # 101 t: VWAP (100×24.00 + 1×25.00) / 101 = 24.0099 → 24.01
    assert m.closes(today)[-1]["close"] == Decimal("24.01")
    # negotiated trades do not count for the close
    d = m.do_propose_deal(
        seller=big.seller_account,
        buyer=w.buyer_account,
        actor=big.seller,
        quantity=40,
        price=Decimal("30.00"),
    )
    m.do_confirm_deal(deal=d, actor=w.buyer)
    assert m.closes(today)[-1]["close"] == Decimal("24.01") and m.closes(today)[-1]["volume_t"] == 141
    assert m.reference_price(today + timedelta(days=1)) == Decimal("24.01")


def test_expired_orders_free_their_units(w):
    order, _ = m.do_place_listing(
        account=w.seller_account,
        actor=w.seller,
        quantity=10,
        price=REF,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    assert m.do_expire_orders(now=timezone.now()) == []
    done = m.do_expire_orders(now=timezone.now() + timedelta(hours=2))
    assert [o.number for o in done] == [order.number]
    assert Order.objects.get(pk=order.pk).state == "expired" and ledger.available(w.seller_account) == 100
    check_market_invariants()


def test_cancelling_a_listing_releases_its_units_and_is_journalled(w):
    order = listing(w, quantity=10)
    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=3)
    start = head()
    with pytest.raises(DomainError):
        m.do_cancel_order(order=order, actor=w.buyer)
    m.do_cancel_order(order=order, actor=w.seller, reason="价格调整")
    assert kinds_since(start) == ["release"]
    assert JournalEntry.objects.get(seq=head()).payload["quantity"] == 7
    assert ledger.available(w.seller_account) == 97
    check_market_invariants()


# --- atomicity ---------------------------------------------------------------------------------------------------


def test_a_failure_mid_settlement_leaves_nothing_half_done(w, monkeypatch):
    order = listing(w, quantity=10)
    before = (
        head(),
        ledger.balance(w.seller_account),
        ledger.reserved(order.number),
        list(SerialBlock.objects.order_by("pk").values_list("pk", "state", "account_id", "locked_by")),
    )
    real_append_many = journal.append_many

    def failing_append_many(entries):
        real_append_many(entries)  # the transfer entry is written, then the process "dies"
        raise RuntimeError("power cut during settlement")

    monkeypatch.setattr(journal, "append_many", failing_append_many)
    with pytest.raises(RuntimeError):
        m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=4)
    monkeypatch.undo()
    order.refresh_from_db()
    after = (
        head(),
        ledger.balance(w.seller_account),
        ledger.reserved(order.number),
        list(SerialBlock.objects.order_by("pk").values_list("pk", "state", "account_id", "locked_by")),
    )
    assert after == before and order.remaining == 10 and Trade.objects.count() == 0
    assert ledger.balance(w.buyer_account) == 0
    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=4)  # and it works after
    check_market_invariants()


# --- offset limit of covered enterprises ---------------------------------------------------------------------------


def test_offset_use_of_a_covered_enterprise_is_limited_with_the_figures(w):
    year = timezone.localdate().year
    order = listing(w, quantity=50)
    ets = m.retire_request(True, "买方 履约", "ets_offset")
    with pytest.raises(DomainError) as e:  # no verified emissions recorded
        m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=1, retire=ets)
    assert e.value.code == "offset_no_profile"
    m.do_set_offset_profile(
        account=w.buyer_account,
        year=year,
        verified_emissions_t=150,
        annual_cap_t="",
        note="核查报告",
        actor=w.admin,
    )
    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=10, retire=ets)
    with pytest.raises(DomainError) as e:  # 10% of 150 = 15; 10 used, 6 more asked
        m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=6, retire=ets)
    assert e.value.code == "offset_limit"
    for figure in ("15", "150", "10", "6", "5"):
        assert figure in e.value.message
    # the same limit holds at the registry's own retirement door
    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=10)
    with pytest.raises(DomainError) as e:
        ledger.do_retire(
            account=w.buyer_account,
            quantity=6,
            beneficiary="x",
            purpose="ets_offset",
            retired_on=timezone.localdate(),
            actor=w.buyer,
        )
    assert e.value.code == "offset_limit"
    ledger.do_retire(
        account=w.buyer_account,
        quantity=5,
        beneficiary="x",
        purpose="ets_offset",
        retired_on=timezone.localdate(),
        actor=w.buyer,
    )
    # voluntary retirements are not limited
    ledger.do_retire(
        account=w.buyer_account,
        quantity=5,
        beneficiary="x",
        purpose="voluntary",
        retired_on=timezone.localdate(),
        actor=w.buyer,
    )
    # an annual cap below the share applies
    m.do_set_offset_profile(
        account=w.buyer_account, year=year, verified_emissions_t=1000, annual_cap_t=18, note="", actor=w.admin
    )
    pos = m.offset_position(w.buyer_account, year)
    assert (pos["by_share"], pos["limit"], pos["used"], pos["left"]) == (100, 18, 15, 3)
    assert Retirement.objects.filter(purpose="ets_offset").count() == 2


def test_open_ets_buy_requests_count_against_the_limit(w):
    year = timezone.localdate().year
    m.do_set_offset_profile(
        account=w.buyer_account,
        year=year,
        verified_emissions_t=100,
        annual_cap_t=None,
        note="",
        actor=w.admin,
    )
    ets = m.retire_request(True, "买方", "ets_offset")
    m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=8, price=Decimal("22.00"), retire=ets
    )
    with pytest.raises(DomainError) as e:
        m.do_place_buy_request(
            account=w.buyer_account, actor=w.buyer, quantity=3, price=Decimal("22.00"), retire=ets
        )
    assert e.value.code == "offset_limit" and "8" in e.value.message


# --- surveillance ------------------------------------------------------------------------------------------------


def test_round_trip_between_two_accounts_raises_a_wash_trade_alert(w):
    order = listing(w, quantity=10)
    m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=10)
    assert not Alert.objects.filter(kind="wash_trade").exists()
    back, _ = m.do_place_listing(account=w.buyer_account, actor=w.buyer, quantity=10, price=REF)
    t2 = m.do_take_listing(listing=back, account=w.seller_account, actor=w.seller, quantity=10)
    alert = Alert.objects.get(kind="wash_trade")
    assert t2 in alert.trades.all() and alert.trades.count() == 2


def test_auction_price_far_from_the_close_raises_a_price_alert(w):
    closes = timezone.now() + timedelta(minutes=1)
    a = m.do_create_auction(
        account=w.seller_account, actor=w.seller, quantity=5, floor_price=Decimal("40.00"), closes_at=closes
    )
    m.do_place_bid(auction=a, account=w.buyer_account, actor=w.buyer, price=Decimal("40.00"), quantity=5)
    m.do_close_auction(a, actor=w.admin, now=closes + timedelta(seconds=1))
    alert = Alert.objects.get(kind="price_deviation")
    assert alert.details["reference"] == "23.88" and alert.details["price"] == "40.00"
    assert Auction.objects.get(pk=a.pk).sold == 5


def test_one_listing_filling_several_buy_requests_splits_its_blocks_in_turn(w):
    r1, _ = m.do_place_buy_request(account=w.buyer_account, actor=w.buyer, quantity=4, price=Decimal("24.00"))
    r2, _ = m.do_place_buy_request(
        account=w.seller_accounts[1], actor=w.sellers[1], quantity=3, price=Decimal("23.90")
    )
    start = head()
    order, trades = m.do_place_listing(
        account=w.seller_account, actor=w.seller, quantity=10, price=Decimal("23.50")
    )
    assert [(t.buy_order_id, t.quantity, t.price) for t in trades] == [
        (r1.pk, 4, Decimal("24.00")),
        (r2.pk, 3, Decimal("23.90")),
    ]
    assert kinds_since(start) == ["reserve", "transfer", "transfer"]
    order.refresh_from_db()
    assert order.remaining == 3 and ledger.reserved(order.number) == 3
    bought = sorted(
        SerialBlock.objects.filter(account=w.buyer_account, state="held").values_list("start", "end")
    )
    sold_on = sorted(
        SerialBlock.objects.filter(
            account=w.seller_accounts[1], state="held", application__applicant=w.seller
        ).values_list("start", "end")
    )
    assert sum(e - s + 1 for s, e in bought) == 4 and sum(e - s + 1 for s, e in sold_on) == 3
    check_market_invariants()


def test_a_failure_in_the_middle_of_a_sweep_leaves_nothing_half_done(w, monkeypatch):
    listings = [listing(w, quantity=2, price=Decimal("24.00"), who=i % 2) for i in range(4)]
    before = list(SerialBlock.objects.order_by("pk").values_list("pk", "state", "account_id", "locked_by"))
    start = head()
    real = ledger._insert_transfers

    def failing(rows, at, **kw):
        real(rows, at, **kw)
        raise RuntimeError("connection lost after the transfers were written")

    monkeypatch.setattr(ledger, "_insert_transfers", failing)
    with pytest.raises(RuntimeError):
        m.do_place_buy_request(account=w.buyer_account, actor=w.buyer, quantity=8, price=Decimal("24.00"))
    monkeypatch.undo()
    assert head() == start and Trade.objects.count() == 0 and not Order.objects.filter(side="buy").exists()
    assert (
        list(SerialBlock.objects.order_by("pk").values_list("pk", "state", "account_id", "locked_by"))
        == before
    )
    assert all(Order.objects.get(pk=o.pk).remaining == 2 for o in listings)
    check_market_invariants()
