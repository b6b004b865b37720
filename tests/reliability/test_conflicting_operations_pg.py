"""200 conflicting operations at once on PostgreSQL, each thread with its own connection: transfers (some naming
the very blocks others are moving), retirements, listings placed and withdrawn, buyers taking the same listings and
sellers selling into the same buy requests, all on the same few accounts. Afterwards no account is overdrawn and each holds exactly what its own
successful operations left it; supply is conserved (issued = held + retired + cancelled) with no serial number
live twice; every open listing has exactly its remaining units reserved and every listing sold what its trades say;
every buy request bought what its trades say; the journal verifies and records each transfer and retirement once; and every refusal was a clear DomainError with a
known code and a translated message — nothing else went wrong."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.market import services as m
from lowcarbon.market.models import Order, Trade
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.models import JournalEntry, Retirement, Transfer
from tests.factories import make_system, make_user
from tests.market.helpers import check_market_invariants
from tests.registry.helpers import approved_application, make_admin

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 20
OPS_PER_THREAD = 10
PRICE = Decimal("23.88")  # the initial reference price, inside today's band
BID = Decimal("23.00")  # buy requests below the listings' price: they wait for sellers
#: the refusals a user may meet when others got to the same units first
KNOWN_REFUSALS = {
    "insufficient_units",
    "block_unavailable",
    "block_retired",
    "block_locked",
    "order_closed",
    "exceeds_listing",
    "exceeds_request",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_200_conflicting_operations_keep_every_ledger_and_market_invariant():
    assert connection.vendor == "postgresql"
    admin = make_admin()
    holders = [make_user("owner_household") for _ in range(4)]
    buyers = [make_user("buyer") for _ in range(3)]
    people = holders + buyers
    accounts = [ledger.account_for_user(p) for p in people]
    start = [0] * len(people)
    named: dict[int, list[int]] = {}  # the holders' first blocks, which some operations name explicitly
    for i, (owner, account) in enumerate(zip(holders, accounts[: len(holders)], strict=True)):
        for vintage, units in ((2024, 20), (2025, 25)):
            app = approved_application(
                [(make_system(owner), units, account)], applicant=owner, vintage=vintage
            )
            named.setdefault(i, []).extend(b.pk for b in ledger.do_issue_units(app, issuer=admin))
            start[i] += units
    issued = sum(start)
    listings: list[tuple[Order, int]] = []  # (listing, seller index)
    bids: list[tuple[Order, int]] = []  # (buy request, buyer index)
    for i in (0, 1):
        order, _ = m.do_place_listing(account=accounts[i], actor=holders[i], quantity=12, price=PRICE)
        listings.append((order, i))

    done: list[tuple] = []
    refusals: list[DomainError] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def one(rng: random.Random, k: int) -> tuple:
        op = rng.choices(
            ["transfer", "retire", "take", "list", "withdraw", "bid", "sell_into"], [30, 15, 25, 6, 3, 6, 15]
        )[0]
        a = rng.randrange(len(people))
        if op == "transfer":
            b = rng.choice([x for x in range(len(people)) if x != a])
            blocks = [rng.choice(named[a])] if a in named and rng.random() < 0.25 else None
            q = rng.randint(1, 3) if blocks else rng.randint(1, 8)
            ledger.do_transfer(
                from_account=accounts[a],
                to_account=accounts[b],
                quantity=q,
                actor=people[a],
                block_ids=blocks,
            )
            return ("transfer", a, b, q)
        if op == "retire":
            blocks = [rng.choice(named[a])] if a in named and rng.random() < 0.25 else None
            q = rng.randint(1, 3) if blocks else rng.randint(1, 6)
            ledger.do_retire(
                account=accounts[a],
                quantity=q,
                beneficiary=f"线程 {k}",
                purpose="voluntary",
                retired_on=date(2026, 1, 1),
                actor=people[a],
                block_ids=blocks,
            )
            return ("retire", a, q)
        if op == "bid":
            q = rng.randint(3, 8)
            placed, _ = m.do_place_buy_request(account=accounts[a], actor=people[a], quantity=q, price=BID)
            with lock:
                bids.append((placed, a))
            return ("bid", a, placed.number, q)
        if op == "sell_into":
            with lock:
                if not bids:
                    op = "take"  # nobody asked yet: take a listing instead
                else:
                    order, buyer = rng.choice(bids)
            if op == "sell_into":
                a = rng.choice([x for x in range(len(people)) if x != buyer])
                q = rng.randint(1, 4)
                m.do_accept_buy_request(order=order, account=accounts[a], actor=people[a], quantity=q)
                return ("sell_into", order.number, a, buyer, q)
        with lock:
            order, seller = rng.choice(listings)
        if op == "take":
            b = rng.choice([x for x in range(len(people)) if x != seller])
            q = rng.randint(1, 5)
            retire = m.retire_request(True, f"线程 {k}", "voluntary") if rng.random() < 0.25 else None
            m.do_take_listing(listing=order, account=accounts[b], actor=people[b], quantity=q, retire=retire)
            return ("take", order.number, seller, b, q, retire is not None)
        if op == "withdraw":
            m.do_cancel_order(order=order, actor=people[seller])
            return ("withdraw", order.number)
        q = rng.randint(3, 8)
        placed, _ = m.do_place_listing(account=accounts[a], actor=people[a], quantity=q, price=PRICE)
        with lock:
            listings.append((placed, a))
        return ("list", a, placed.number, q)

    def work(k: int) -> None:
        rng = random.Random(k)
        try:
            barrier.wait()
            for _ in range(OPS_PER_THREAD):
                try:
                    outcome = one(rng, k)
                except DomainError as exc:
                    with lock:
                        refusals.append(exc)
                    continue
                with lock:
                    done.append(outcome)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"

    # nothing but clear refusals went wrong
    assert not errors, [repr(e) for e in errors]
    codes = Counter(e.code for e in refusals)
    assert set(codes) <= KNOWN_REFUSALS, codes
    for e in refusals:
        assert CJK.search(e.message) and e.code not in e.message, (e.code, e.message)
    kinds = Counter(d[0] for d in done)
    assert len(done) + len(refusals) == THREADS * OPS_PER_THREAD
    assert kinds["transfer"] and kinds["retire"] and kinds["take"] and kinds["sell_into"] and refusals, (
        kinds,
        codes,
    )

    # every account holds exactly what its own successful operations left it, never less than nothing
    expected = list(start)
    retired = 0
    taken: Counter[str] = Counter()
    for d in done:
        if d[0] == "transfer":
            _, a, b, q = d
            expected[a] -= q
            expected[b] += q
        elif d[0] == "retire":
            _, a, q = d
            expected[a] -= q
            retired += q
        elif d[0] == "take":
            _, number, seller, b, q, retire_now = d
            expected[seller] -= q
            taken[number] += q
            if retire_now:
                retired += q
            else:
                expected[b] += q
        elif d[0] == "sell_into":
            _, number, a, b, q = d
            expected[a] -= q
            expected[b] += q
            taken[number] += q
    assert [ledger.balance(acc) for acc in accounts] == expected
    assert min(expected) >= 0 and all(ledger.available(acc) >= 0 for acc in accounts)
    assert ledger.supply_totals() == {
        "issued": issued,
        "held": sum(expected),
        "retired": retired,
        "cancelled": 0,
    }
    assert (Retirement.objects.aggregate(q=Sum("quantity"))["q"] or 0) == retired

    # each listing sold exactly what its trades say; open ones keep exactly their remainder reserved
    for order in Order.objects.filter(side="sell"):
        sold = Trade.objects.filter(sell_order=order).aggregate(q=Sum("quantity"))["q"] or 0
        assert sold == taken[order.number] and order.remaining == order.quantity - sold, order.number
        if order.state == "open":
            assert ledger.reserved(order.number) == order.remaining > 0
    for order in Order.objects.filter(side="buy"):
        bought = Trade.objects.filter(buy_order=order).aggregate(q=Sum("quantity"))["q"] or 0
        assert bought == taken[order.number] and order.remaining == order.quantity - bought, order.number
        assert order.state == ("filled" if order.remaining == 0 else "open"), order.number
    check_market_invariants()  # no overlapping live serials, conservation, lineage, reservations

    # the journal verifies and records each movement once
    for method in ("sql", "stream"):
        result = journal.verify_journal(method=method)
        assert result.ok, (method, result)
    entries = Counter(JournalEntry.objects.values_list("kind", flat=True))
    assert (
        entries["transfer"]
        == Transfer.objects.count()
        == kinds["transfer"] + kinds["take"] + kinds["sell_into"]
    )
    assert entries["retire"] == Retirement.objects.count()
    assert Order.objects.filter(side="sell").count() == 2 + kinds["list"]
    assert (
        entries["reserve"] == 2 + kinds["list"] + kinds["sell_into"]
    )  # a sale into a request reserves first
