"""Many buyers at once on PostgreSQL, each thread with its own connection: taking the same listing never sells
more than listed; crossing buy requests placed at once never fill one listing twice; refusals are clear."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.market import services as m
from lowcarbon.market.models import Order, Trade
from lowcarbon.registry import ledger
from tests.factories import make_user
from tests.market.helpers import World, check_market_invariants

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

BUYERS = 16


def _run(workers):
    errors: list[BaseException] = []
    refusals: Counter[str] = Counter()
    barrier = threading.Barrier(len(workers))

    def wrap(fn):
        def go():
            try:
                barrier.wait()
                fn()
            except DomainError as exc:
                refusals[exc.code] += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()

        return go

    threads = [threading.Thread(target=wrap(fn)) for fn in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return refusals


def test_many_buyers_taking_the_same_listing_never_buy_more_than_listed():
    w = World(seller_units=100, sellers=1)
    order, _ = m.do_place_listing(
        account=w.seller_account, actor=w.seller, quantity=50, price=Decimal("24.00")
    )
    buyers = [make_user("buyer") for _ in range(BUYERS)]
    accounts = [ledger.account_for_user(b) for b in buyers]

    def take(i):
        def go():
            for _ in range(3):
                m.do_take_listing(listing=order, account=accounts[i], actor=buyers[i], quantity=2)

        return go

    refusals = _run([take(i) for i in range(BUYERS)])
    sold = Trade.objects.filter(sell_order=order).aggregate(q=Sum("quantity"))["q"]
    order.refresh_from_db()
    assert sold == 50 and order.remaining == 0 and order.state == "filled"
    assert sum(ledger.balance(a) for a in accounts) == 50
    assert ledger.balance(w.seller_account) == 50
    assert Trade.objects.filter(sell_order=order).count() == 25  # 2 t each
    assert set(refusals) <= {"order_closed", "exceeds_listing"} and sum(refusals.values()) >= 1
    check_market_invariants()


def test_crossing_buy_requests_placed_at_once_fill_each_listing_once():
    w = World(seller_units=60, sellers=2)
    for acct, owner in zip(w.seller_accounts, w.sellers, strict=True):
        m.do_place_listing(account=acct, actor=owner, quantity=20, price=Decimal("24.00"))
    buyers = [make_user("buyer") for _ in range(8)]
    accounts = [ledger.account_for_user(b) for b in buyers]

    def buy(i):
        def go():
            m.do_place_buy_request(account=accounts[i], actor=buyers[i], quantity=7, price=Decimal("24.50"))

        return go

    _run([buy(i) for i in range(8)])
    assert Trade.objects.aggregate(q=Sum("quantity"))["q"] == 40  # 56 wanted, 40 listed
    assert sum(ledger.balance(a) for a in accounts) == 40
    assert Order.objects.filter(side="buy", state="open").aggregate(q=Sum("remaining"))["q"] == 16
    assert not Order.objects.filter(side="sell", state="open").exists()
    check_market_invariants()
