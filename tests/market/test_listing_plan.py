"""A listing plans its fills from the units it is about to reserve before it locks the accounts involved; when the
seller's units change in between, the reservation under the lock decides, and the fills follow the units actually
reserved: the book is never left crossed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.market import services as m
from lowcarbon.market.models import Order
from lowcarbon.registry import ledger
from tests.factories import make_user
from tests.market.helpers import World, check_market_invariants, give_units

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_a_listing_whose_units_change_before_its_lock_trades_the_units_it_reserved(monkeypatch):
    w = World(seller_units=10, sellers=1, vintage=2024)
    give_units(w, w.seller, 20, vintage=2025)
    request, _ = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=5, price=Decimal("24.00"), vintages=[2025]
    )
    real = ledger.preview_reservation
    elsewhere = ledger.account_for_user(make_user("buyer"))

    def units_leave_meanwhile(**kwargs):
        planned = real(**kwargs)  # oldest first: the 2024 units, which the 2025-only request does not take
        ledger.do_transfer(from_account=w.seller_account, to_account=elsewhere, quantity=10, actor=w.seller)
        return planned

    monkeypatch.setattr(ledger, "preview_reservation", units_leave_meanwhile)
    order, trades = m.do_place_listing(
        account=w.seller_account, actor=w.seller, quantity=8, price=Decimal("24.00")
    )
    assert order.vintage == 2025 and [t.quantity for t in trades] == [5]
    request.refresh_from_db()
    order.refresh_from_db()
    assert request.state == "filled" and order.remaining == 3 and order.vintage == 2025
    assert ledger.balance(w.buyer_account) == 5 and ledger.balance(elsewhere) == 10
    check_market_invariants()


def test_a_listing_without_enough_free_units_is_refused_and_leaves_no_order():
    w = World(seller_units=10, sellers=1)
    with pytest.raises(DomainError) as e:
        m.do_place_listing(account=w.seller_account, actor=w.seller, quantity=11, price=Decimal("24.00"))
    assert e.value.code == "insufficient_units" and "10" in e.value.message
    assert not Order.objects.exists() and ledger.available(w.seller_account) == 10
