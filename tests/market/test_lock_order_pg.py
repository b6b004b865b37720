"""On PostgreSQL an order that settles at once locks every account it touches in one go, in id order, like every
registry service. Had it locked its own account first and its counterparty's later, a transfer between the same two
accounts arriving in between (which locks both in id order) would deadlock with it, and the server would abort the
transfer: the person sending units would see a database error. Each test stops the market service at the point where
the old code held only its own account, starts such a transfer, and checks that both go through."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections

from lowcarbon.market import services as m
from lowcarbon.market.models import Trade
from lowcarbon.registry import ledger
from tests.factories import make_user
from tests.market.helpers import World, check_market_invariants, give_units, listing

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _lock_waiters() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cur.fetchone()[0])


def _race(monkeypatch, owner, name: str, service, transfer) -> list[int]:
    """Run `service` until it reaches `owner.name` (paused there, inside its transaction), run `transfer` in a
    second connection until it waits for a lock, let the service go on. Returns how often the service reached
    the pause point (more than once: it was aborted and run again)."""
    real = getattr(owner, name)
    reached: list[int] = []
    paused, resume = threading.Event(), threading.Event()

    def pausing(*args, **kwargs):
        out = real(*args, **kwargs)
        reached.append(1)
        if len(reached) == 1:
            paused.set()
            resume.wait(30)
        return out

    monkeypatch.setattr(owner, name, pausing)
    errors: list[BaseException] = []

    def run(fn):
        def go():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connections.close_all()

        return threading.Thread(target=go)

    first = run(service)
    first.start()
    assert paused.wait(30), "the service never reached its pause point"
    second = run(transfer)
    second.start()
    deadline = time.monotonic() + 10
    while _lock_waiters() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = _lock_waiters() > 0
    resume.set()
    first.join(60)
    second.join(60)
    assert not errors, errors
    assert waited, "the transfer never had to wait: the race was not set up"
    return reached


def test_a_buy_request_that_matches_and_a_transfer_between_the_same_accounts_both_go_through(monkeypatch):
    w = World(seller_units=100, sellers=1)
    order = listing(w, quantity=10, price=Decimal("24.00"))
    assert w.seller_account.pk < w.buyer_account.pk  # the buyer's own account comes second in id order

    reached = _race(
        monkeypatch,
        m,
        "check_offset_demand",
        lambda: m.do_place_buy_request(
            account=w.buyer_account, actor=w.buyer, quantity=4, price=Decimal("24.00")
        ),
        lambda: ledger.do_transfer(
            from_account=w.seller_account, to_account=w.buyer_account, quantity=5, actor=w.seller
        ),
    )
    assert reached == [1]
    order.refresh_from_db()
    assert Trade.objects.get().quantity == 4 and order.remaining == 6
    assert ledger.balance(w.buyer_account) == 9 and ledger.balance(w.seller_account) == 91
    check_market_invariants()


def test_a_listing_that_matches_and_a_transfer_between_the_same_accounts_both_go_through(monkeypatch):
    w = World(seller_units=10, sellers=1)
    request, _ = m.do_place_buy_request(
        account=w.buyer_account, actor=w.buyer, quantity=6, price=Decimal("24.00")
    )
    late = make_user("owner_household")
    seller = give_units(w, late, 50)
    assert w.buyer_account.pk < seller.pk  # the seller's own account comes second in id order

    reached = _race(
        monkeypatch,
        ledger,
        "reserve_units",
        lambda: m.do_place_listing(account=seller, actor=late, quantity=10, price=Decimal("24.00")),
        lambda: ledger.do_transfer(from_account=seller, to_account=w.buyer_account, quantity=5, actor=late),
    )
    assert reached == [1]
    request.refresh_from_db()
    assert Trade.objects.get().quantity == 6 and request.remaining == 0
    assert ledger.balance(w.buyer_account) == 11 and ledger.balance(seller) == 39
    check_market_invariants()


def test_confirming_a_deal_and_a_transfer_between_the_same_accounts_both_go_through(monkeypatch):
    w = World(seller_units=100, sellers=1)
    deal = m.do_propose_deal(
        seller=w.seller_account, buyer=w.buyer_account, actor=w.seller, quantity=7, price=Decimal("24.00")
    )
    assert w.seller_account.pk < w.buyer_account.pk

    reached = _race(
        monkeypatch,
        m,
        "check_offset_demand",
        lambda: m.do_confirm_deal(deal=deal, actor=w.buyer),
        lambda: ledger.do_transfer(
            from_account=w.seller_account, to_account=w.buyer_account, quantity=5, actor=w.seller
        ),
    )
    assert reached == [1]
    assert Trade.objects.get().quantity == 7
    assert ledger.balance(w.buyer_account) == 12 and ledger.balance(w.seller_account) == 88
    check_market_invariants()
