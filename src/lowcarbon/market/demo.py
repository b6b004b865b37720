"""Demo part of the market: the buyer is a covered enterprise with verified emissions; the two enterprises and a
household list units, the buyer takes part of a listing, posts a buy request, bids in an auction and confirms a
negotiated deal for ETS offsetting — all through market.services, so holdings, reservations and the journal are
what they would be after the same clicks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

DEMO_ORDER = 60


def load_demo_part(stdout: Any = None) -> None:
    from django.utils import timezone

    from lowcarbon.accounts.models import User
    from lowcarbon.market import services as m
    from lowcarbon.market.models import Order
    from lowcarbon.registry import ledger

    if Order.objects.exists():
        return
    users = {
        u.username: u
        for u in User.objects.filter(
            username__in=["admin", "buyer", "enterprise1", "enterprise2", "household01"]
        )
    }

    def org_account(username: str) -> Any:
        org = users[username].memberships.select_related("organisation").first().organisation
        return ledger.account_for_org(org)

    ent1, ent2, buyer = org_account("enterprise1"), org_account("enterprise2"), org_account("buyer")
    household = ledger.account_for_user(users["household01"])
    if min(ledger.available(ent1), ledger.available(ent2)) < 60:
        return  # no issued units to trade (an application was refused in the registry demo)
    year = timezone.localdate().year
    m.do_set_offset_profile(
        account=buyer,
        year=year,
        verified_emissions_t=12000,
        annual_cap_t=None,
        note="广东省碳排放配额核查报告（示例）/ verified emissions report (demo)",
        actor=users["admin"],
    )
    ref = m.reference_price()
    listing, _t = m.do_place_listing(account=ent2, actor=users["enterprise2"], quantity=30, price=ref + 1)
    m.do_place_listing(account=ent1, actor=users["enterprise1"], quantity=10, price=ref + 2)
    if ledger.available(household) >= 1:
        m.do_place_listing(account=household, actor=users["household01"], quantity=1, price=ref + 1)
    m.do_take_listing(listing=listing, account=buyer, actor=users["buyer"], quantity=5)
    m.do_place_buy_request(
        account=buyer, actor=users["buyer"], quantity=20, price=ref, vintages=[listing.vintage or 2025]
    )
    auction = m.do_create_auction(
        account=ent1,
        actor=users["enterprise1"],
        quantity=20,
        floor_price=ref - 2,
        closes_at=timezone.now() + timedelta(days=3),
    )
    m.do_place_bid(auction=auction, account=buyer, actor=users["buyer"], price=ref - 1, quantity=10)
    deal = m.do_propose_deal(
        seller=ent2,
        buyer=buyer,
        actor=users["enterprise2"],
        quantity=15,
        price=ref - 1,
        note="年度框架协议第一批 / first lot of the annual framework agreement",
    )
    m.do_confirm_deal(
        deal=deal,
        actor=users["buyer"],
        retire=m.RetireRequest(
            "中山市绿源食品饮料有限公司 2025 年度履约 / Lvyuan Food and Beverage, 2025 compliance",
            "ets_offset",
        ),
    )
    if stdout is not None:
        stdout.write("  market: listings, a buy request, an auction with a sealed bid, a negotiated deal")
