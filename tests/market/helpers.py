"""Builders for market tests: sellers with issued units (through the registry), buyers, and ledger checks."""

from __future__ import annotations

from decimal import Decimal

from lowcarbon.market import services as m
from lowcarbon.market.models import Order
from lowcarbon.registry import ledger
from lowcarbon.registry.models import SerialBlock
from tests.factories import make_system, make_user
from tests.registry.helpers import approved_application, assert_ledger_invariants, make_admin

REF = Decimal("23.88")  # the initial reference price (market.reference_price) before any trade


class World:
    def __init__(self, *, seller_units: int = 100, sellers: int = 2, vintage: int = 2025) -> None:
        self.admin = make_admin()
        self.sellers = []
        self.seller_accounts = []
        for _ in range(sellers):
            owner = make_user("owner_household")
            acct = ledger.account_for_user(owner)
            app = approved_application(
                [(make_system(owner), seller_units, acct)], applicant=owner, vintage=vintage
            )
            ledger.do_issue_units(app, issuer=self.admin)
            self.sellers.append(owner)
            self.seller_accounts.append(acct)
        self.buyer = make_user("buyer")
        self.buyer_account = ledger.account_for_user(self.buyer)

    @property
    def seller(self):
        return self.sellers[0]

    @property
    def seller_account(self):
        return self.seller_accounts[0]


def give_units(world: World, owner, units: int, vintage: int = 2025):
    acct = ledger.account_for_user(owner)
    app = approved_application([(make_system(owner), units, acct)], applicant=owner, vintage=vintage)
    ledger.do_issue_units(app, issuer=world.admin)
    return acct


def reserved_by(number: str) -> int:
    return ledger.reserved(number)


def check_market_invariants() -> None:
    """Registry invariants, and every open listing has exactly its remaining quantity reserved."""
    assert_ledger_invariants()
    for o in Order.objects.filter(side="sell"):
        expected = o.remaining if o.state == "open" else 0
        assert ledger.reserved(o.number) == expected, (
            o.number,
            o.state,
            o.remaining,
            ledger.reserved(o.number),
        )
    stray = SerialBlock.objects.filter(state="held").exclude(locked_by="").values_list("locked_by", flat=True)
    for lock in set(stray):
        assert lock.startswith(("MO-", "AU-", "ND-")), lock


def listing(world: World, quantity: int = 10, price: Decimal = REF, who: int = 0) -> Order:
    order, trades = m.do_place_listing(
        account=world.seller_accounts[who], actor=world.sellers[who], quantity=quantity, price=price
    )
    assert trades == []
    return order


def market_objects(owner, account) -> dict:
    """An owner's listing, auction and a deal proposed to a third person (tests/test_isolation.py's world)."""
    from datetime import timedelta

    from django.utils import timezone

    carol = make_user("buyer", username="carol")
    order = m.do_place_listing(account=account, actor=owner, quantity=1, price=REF)[0]
    auction = m.do_create_auction(
        account=account,
        actor=owner,
        quantity=1,
        floor_price=REF,
        closes_at=timezone.now() + timedelta(days=1),
    )
    deal = m.do_propose_deal(
        seller=account, buyer=ledger.account_for_user(carol), actor=owner, quantity=1, price=REF
    )
    return {"listing": order, "auction": auction, "deal": deal}
