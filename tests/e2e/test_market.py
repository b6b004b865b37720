"""The market in headless Chromium, as new users would try it: two sellers and one buyer trade through each of the
four modes — listing select, a buy request a seller accepts (and one that matches a listing at once), an auction
closed by the scheduled job, a negotiated deal the buyer confirms with retirement — and after every step the
holdings, the reservations and the journal are what the step promised; the daily close follows the rule.
Screenshots are saved under test-artifacts/."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.e2e.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _journal_kinds_since(seq: int) -> list[str]:
    from lowcarbon.registry.models import JournalEntry

    return list(JournalEntry.objects.filter(seq__gt=seq).order_by("seq").values_list("kind", flat=True))


def _head() -> int:
    from lowcarbon.registry.models import JournalEntry

    return JournalEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _submit(page) -> None:
    page.click("form.mk-form button[type=submit] >> nth=0")
    page.wait_for_load_state("networkidle")


def test_two_sellers_and_a_buyer_trade_in_all_four_modes(live_server, browser):
    from django.utils import timezone

    from lowcarbon.market import services as m
    from lowcarbon.market.models import Auction, Deal, Order, Trade
    from lowcarbon.registry import ledger
    from tests.factories import PASSWORD, make_system, make_user
    from tests.market.helpers import check_market_invariants
    from tests.registry.helpers import approved_application, make_admin

    admin = make_admin()
    sellers, accounts = [], []
    for name in ("seller1", "seller2"):
        u = make_user("owner_household", username=name)
        acct = ledger.account_for_user(u)
        ledger.do_issue_units(approved_application([(make_system(u), 100, acct)], applicant=u), issuer=admin)
        sellers.append(u)
        accounts.append(acct)
    buyer = make_user("buyer", username="buyer")
    buyer_acct = ledger.account_for_user(buyer)
    base = live_server.url

    def as_user(username):
        ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        login(page, base, username, PASSWORD)
        return ctx, page

    # 1. 挂牌: seller1 lists 30 t at 24.00 ---------------------------------------------------------------------
    s1, p1 = as_user("seller1")
    start = _head()
    p1.goto(f"{base}/market/listings/new/")
    p1.fill("#id_quantity", "30")
    p1.fill("#id_price", "24.00")
    _submit(p1)
    listing = Order.objects.get(side="sell", account=accounts[0])
    assert listing.number in p1.content()
    assert ledger.reserved(listing.number) == 30 and ledger.available(accounts[0]) == 70
    assert _journal_kinds_since(start) == ["reserve"]
    shot(p1, "market-listing-placed-zh")

    # 2. 挂牌点选: the buyer picks the listing on the board and takes 10 t ----------------------------------------
    b, pb = as_user("buyer")
    pb.goto(f"{base}/market/")
    shot(pb, "market-board-zh")
    pb.click(f"text={listing.number}")
    pb.wait_for_load_state("networkidle")
    start = _head()
    pb.fill("#id_quantity", "10")
    _submit(pb)
    trade1 = Trade.objects.get(sell_order=listing)
    assert trade1.number in pb.content() and (trade1.quantity, trade1.price) == (10, Decimal("24.00"))
    assert ledger.balance(buyer_acct) == 10 and ledger.reserved(listing.number) == 20
    assert ledger.balance(accounts[0]) == 90
    assert _journal_kinds_since(start) == ["transfer"]
    shot(pb, "market-trade-listing-zh")

    # 3. 求购: the buyer posts 15 t at most 23.50 (below the listing: it stands); seller2 sells into it ------------
    pb.goto(f"{base}/market/requests/new/")
    pb.fill("#id_quantity", "15")
    pb.fill("#id_price", "23.50")
    pb.fill("#id_vintages", "2025")
    _submit(pb)
    request_ = Order.objects.get(side="buy", account=buyer_acct)
    assert request_.state == "open" and request_.remaining == 15
    s2, p2 = as_user("seller2")
    p2.goto(f"{base}/market/orders/{request_.number}/")
    start = _head()
    p2.fill("#id_quantity", "15")
    _submit(p2)
    request_.refresh_from_db()
    assert (
        request_.state == "filled" and ledger.balance(buyer_acct) == 25 and ledger.balance(accounts[1]) == 85
    )
    assert _journal_kinds_since(start) == ["reserve", "transfer"]
    shot(p2, "market-trade-buy-request-zh")
    # a buy request at the listing's price matches it at once (price, then time)
    pb.goto(f"{base}/market/requests/new/")
    pb.fill("#id_quantity", "5")
    pb.fill("#id_price", "24.00")
    _submit(pb)
    listing.refresh_from_db()
    assert listing.remaining == 15 and ledger.balance(buyer_acct) == 30

    # 4. 竞价: seller2 offers 20 t from 22.00; the buyer bids; the scheduled job closes the window ------------------
    p2.goto(f"{base}/market/auctions/new/")
    p2.fill("#id_quantity", "20")
    p2.fill("#id_floor_price", "22.00")
    _submit(p2)
    auction = Auction.objects.get(account=accounts[1])
    assert ledger.reserved(auction.number) == 20
    pb.goto(f"{base}/market/auctions/{auction.number}/")
    pb.fill("#id_price", "22.50")
    pb.fill("#id_quantity", "12")
    _submit(pb)
    assert "22.50" not in p2.goto(f"{base}/market/auctions/{auction.number}/").text()  # sealed for the seller
    m.do_close_auctions(now=auction.closes_at + timedelta(seconds=1))
    pb.goto(f"{base}/market/auctions/{auction.number}/")
    assert "22.50" in pb.content()
    shot(pb, "market-auction-result-zh")
    assert ledger.balance(buyer_acct) == 42 and ledger.reserved(auction.number) == 0
    assert ledger.available(accounts[1]) == 73  # 100 − 15 − 12: the unsold 8 t came back

    # 5. 协议转让: seller1 records a deal for the buyer's account; the buyer confirms and retires on purchase -----
    p1.goto(f"{base}/market/deals/new/")
    p1.fill("#id_buyer", buyer_acct.number)
    p1.fill("#id_quantity", "5")
    p1.fill("#id_price", "23.00")
    _submit(p1)
    deal = Deal.objects.get(seller=accounts[0])
    assert deal.state == "proposed" and ledger.reserved(deal.number) == 5
    pb.goto(f"{base}/market/deals/{deal.number}/")
    pb.check("#id_retire_on_purchase")
    pb.fill("#id_beneficiary", "小榄镇 2026 低碳运动会")
    pb.select_option("#id_purpose", "event_neutrality")
    start = _head()
    pb.click("button[value=confirm]")
    pb.wait_for_load_state("networkidle")
    deal.refresh_from_db()
    assert deal.state == "confirmed"
    assert _journal_kinds_since(start) == ["transfer", "retire"]
    assert ledger.balance(buyer_acct) == 42  # the five bought were retired at once
    shot(pb, "market-trade-negotiated-zh")

    # the daily close: 10 + 15 + 5 = 30 t of listing trades today (≤ 100 t) → the close is the open --------------
    today = timezone.localdate()
    row = m.closes(today)[-1]
    assert row["listing_volume_t"] == 30 and row["close"] == row["open"] == Decimal("23.88")
    assert row["volume_t"] == 30 + 12 + 5
    pb.goto(f"{base}/market/mine/")
    assert "23.88" in pb.content()
    shot(pb, "market-mine-zh")
    pb.goto(f"{base}/market/")
    pb.wait_for_function("document.querySelectorAll('canvas').length >= 2")
    shot(pb, "market-board-after-zh")
    check_market_invariants()
    for ctx in (s1, b, s2):
        ctx.close()
