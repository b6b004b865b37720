"""A market operation that PostgreSQL aborted to break a deadlock is run again, once, with nothing left behind by
the aborted attempt; any other database error is not retried."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from lowcarbon.market import services as m
from lowcarbon.market.models import Trade
from lowcarbon.registry import ledger
from tests.market.helpers import World, check_market_invariants, listing

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_deadlock_victim_is_retried_and_settles_once(monkeypatch):
    w = World()
    order = listing(w, quantity=10, price=Decimal("24.00"))
    real = ledger.settle_reserved_many
    calls = []

    def deadlocked_once(items, *, actor):
        calls.append(len(items))
        result = real(
            items, actor=actor
        )  # the work is done, then the server picks this transaction as victim
        if len(calls) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return result

    monkeypatch.setattr(ledger, "settle_reserved_many", deadlocked_once)
    _order, trades = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=4, price=Decimal("24")
    )
    assert len(calls) == 2 and len(trades) == 1
    assert Trade.objects.count() == 1 and ledger.balance(w.buyer_account) == 4
    order.refresh_from_db()
    assert order.remaining == 6
    check_market_invariants()


def test_other_database_errors_are_not_retried(monkeypatch):
    w = World()
    order = listing(w, quantity=10, price=Decimal("24.00"))
    calls = []

    def broken(items, *, actor):
        calls.append(1)
        raise psycopg.errors.DiskFull("no space left on device")

    monkeypatch.setattr(ledger, "settle_reserved_many", broken)
    with pytest.raises(psycopg.errors.DiskFull):
        m.do_take_listing(listing=order, account=w.buyer_account, actor=w.buyer, quantity=1)
    assert calls == [1] and Trade.objects.count() == 0
