"""The market matching core without a database: order book, auction, closing price, price limits, surveillance;
and a hypothesis state machine that checks every add and cancel against a brute-force reference matcher."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.market.domain.matching import (
    Bid,
    Book,
    Fill,
    Filters,
    Lot,
    MatchingError,
    Order,
    Side,
    TradeRecord,
    allocate_auction,
    daily_close,
    price_deviation_alerts,
    price_limits,
    vwap,
    wash_trade_alerts,
    within_limits,
)

pytestmark = pytest.mark.unit

PV22 = Lot(2024, "GD-PV-2022", "household")
PV17 = Lot(2021, "GD-PV-2017", "enterprise")


def buy(
    id: int, price: int, qty: int, account: int, seq: int | None = None, filters: Filters | None = None
) -> Order:
    return Order(id, "buy", price, qty, account, id if seq is None else seq, filters=filters)


def sell(
    id: int, price: int, qty: int, account: int, seq: int | None = None, lot: Lot | None = PV22
) -> Order:
    return Order(id, "sell", price, qty, account, id if seq is None else seq, lot=lot)


def resting_qty(b: Book, order_id: int) -> int | None:
    o = b.get(order_id)
    return None if o is None else o.quantity


def book_of(*orders: Order) -> Book:
    b = Book()
    for o in orders:
        assert b.add(o) == []
    return b


# ---------------------------------------------------------------------------------------------------------------
# order book: hand-worked examples


def test_price_then_time_priority_and_resting_price() -> None:
    # asks: 2410 (id 1, 5 t, earlier), 2400 (id 2, 3 t), 2410 (id 3, 4 t, later)
    b = book_of(sell(1, 2410, 5, 11), sell(2, 2400, 3, 12), sell(3, 2410, 4, 13))
    fills = b.add(buy(4, 2500, 10, 20))
    # best price first (2400), then the earlier of the two at 2410; every fill at the resting price, never 2500
    assert fills == [
        Fill(4, 2, 2400, 3, 20, 12, "buy"),
        Fill(4, 1, 2410, 5, 20, 11, "buy"),
        Fill(4, 3, 2410, 2, 20, 13, "buy"),
    ]
    assert resting_qty(b, 3) == 2
    assert b.get(4) is None  # fully filled, does not rest
    assert b.best_ask() == 2410 and b.best_bid() is None


def test_sell_aggressor_trades_at_bid_price_and_remainder_rests() -> None:
    b = book_of(buy(1, 2300, 4, 11), buy(2, 2350, 2, 12))
    fills = b.add(sell(3, 2300, 10, 13))
    assert fills == [Fill(2, 3, 2350, 2, 12, 13, "sell"), Fill(1, 3, 2300, 4, 11, 13, "sell")]
    rest = b.get(3)
    assert rest is not None and rest.quantity == 4
    assert b.best_ask() == 2300 and b.best_bid() is None


def test_partial_fill_of_resting_order_keeps_its_time_priority() -> None:
    b = book_of(sell(1, 2400, 10, 11), sell(2, 2400, 10, 12))
    assert b.add(buy(3, 2400, 4, 20)) == [Fill(3, 1, 2400, 4, 20, 11, "buy")]
    assert b.add(buy(4, 2400, 7, 21)) == [
        Fill(4, 1, 2400, 6, 21, 11, "buy"),
        Fill(4, 2, 2400, 1, 21, 12, "buy"),
    ]
    assert [(o.id, o.quantity) for o in b.orders()] == [(2, 9)]


def test_non_crossing_order_rests_without_fills() -> None:
    b = book_of(sell(1, 2400, 5, 11))
    assert b.add(buy(2, 2399, 5, 12)) == []
    assert (b.best_bid(), b.best_ask()) == (2399, 2400)


def test_self_trade_is_skipped_not_matched_and_not_cancelled() -> None:
    # account 11 owns the best ask; its own buy passes over it to the next seller
    b = book_of(sell(1, 2400, 5, 11), sell(2, 2410, 5, 12))
    fills = b.add(buy(3, 2410, 3, 11))
    assert fills == [Fill(3, 2, 2410, 3, 11, 12, "buy")]
    assert resting_qty(b, 1) == 5
    # a buy that meets only its own ask rests; the book is then crossed, but only within one account
    b2 = book_of(sell(1, 2400, 5, 11))
    assert b2.add(buy(2, 2450, 5, 11)) == []
    assert (b2.best_bid(), b2.best_ask()) == (2450, 2400)
    # another account's sell then fills against the resting bid
    assert b2.add(sell(3, 2450, 2, 30)) == [Fill(2, 3, 2450, 2, 11, 30, "sell")]


def test_would_cross_own() -> None:
    b = book_of(sell(1, 2400, 5, 11), sell(2, 2390, 5, 12), buy(3, 2300, 5, 13))
    assert b.would_cross_own(buy(9, 2400, 1, 11))  # marketable against its own ask, even behind 2390
    assert not b.would_cross_own(buy(9, 2399, 1, 11))  # does not reach it
    assert not b.would_cross_own(buy(9, 2400, 1, 14))
    assert not b.would_cross_own(
        buy(9, 2400, 1, 11, filters=Filters(vintages=frozenset({2020})))
    )  # incompatible
    assert b.would_cross_own(sell(9, 2300, 1, 13))
    assert not b.would_cross_own(sell(9, 2301, 1, 13))


def test_filters_restrict_which_lots_fill_a_buyer() -> None:
    only_pv17 = Filters(methodologies=frozenset({"GD-PV-2017"}))
    b = book_of(sell(1, 2400, 5, 11, lot=PV22), sell(2, 2420, 5, 12, lot=PV17))
    # the cheaper lot is not acceptable: the buyer fills from the dearer compatible one
    assert b.add(buy(3, 2450, 3, 20, filters=only_pv17)) == [Fill(3, 2, 2420, 3, 20, 12, "buy")]
    # a filtered bid resting above an incompatible ask is not a cross; a compatible seller does fill it
    recent = Filters(vintages=frozenset({2025}))
    assert b.add(buy(4, 2450, 3, 21, filters=recent)) == []
    assert b.best_bid() == 2450 and b.best_ask() == 2400
    assert b.add(sell(5, 2400, 2, 13, lot=Lot(2025, "GD-PV-2022", "institution"))) == [
        Fill(4, 5, 2450, 2, 21, 13, "sell")
    ]
    # the incompatible sell aggressor passes over the filtered bid to a plain one (of account 11, which rests
    # above its own ask)
    assert b.add(buy(6, 2410, 1, 11)) == []
    assert b.add(sell(7, 2400, 1, 14, lot=PV22)) == [Fill(6, 7, 2410, 1, 11, 14, "sell")]


def test_filters_accepts() -> None:
    assert Filters().accepts(PV22) and Filters().accepts(None)
    f = Filters(vintages=frozenset({2024}), owner_types=frozenset({"household", "institution"}))
    assert f.accepts(PV22)
    assert not f.accepts(PV17)
    assert not f.accepts(None)  # a sell without a lot cannot satisfy a restriction


def test_cancel() -> None:
    b = book_of(sell(1, 2400, 5, 11), sell(2, 2400, 3, 12))
    got = b.cancel(1)
    assert got is not None and (got.id, got.quantity) == (1, 5)
    assert b.cancel(1) is None and b.cancel(999) is None
    assert b.add(buy(3, 2400, 5, 20)) == [Fill(3, 2, 2400, 3, 20, 12, "buy")]
    assert b.cancel(2) is None  # filled orders are gone
    assert b.cancel(3) is not None  # the remaining 2 t of the buy rested
    assert len(b) == 0 and b.best_bid() is None and b.best_ask() is None


def test_depth_and_orders() -> None:
    b = book_of(
        buy(1, 2300, 5, 11),
        buy(2, 2350, 2, 12),
        buy(3, 2300, 1, 13),
        sell(4, 2400, 7, 14),
        sell(5, 2500, 1, 15),
    )
    assert b.depth("buy") == [(2350, 2, 1), (2300, 6, 2)]
    assert b.depth("sell") == [(2400, 7, 1), (2500, 1, 1)]
    assert b.depth("sell", levels=1) == [(2400, 7, 1)]
    assert [o.id for o in b.orders()] == [2, 1, 3, 4, 5]


def test_earlier_seq_arriving_late_keeps_time_priority() -> None:
    b = book_of(sell(1, 2400, 1, 11, seq=10), sell(2, 2400, 1, 12, seq=5))
    assert [o.id for o in b.orders()] == [2, 1]
    assert b.add(buy(3, 2400, 1, 20, seq=11))[0].sell_id == 2


def test_from_orders_rebuilds_without_matching() -> None:
    crossed_own = [
        sell(1, 2400, 5, 11),
        buy(2, 2450, 5, 11),
        sell(3, 2400, 2, 12, seq=0),
        buy(4, 2300, 1, 13),
    ]
    b = Book.from_orders(crossed_own)
    assert len(b) == 4  # nothing matched on load
    assert [o.id for o in b.orders()] == [2, 4, 3, 1]  # seq 0 before seq 1 at 2400
    assert b.add(buy(5, 2400, 3, 20)) == [
        Fill(5, 3, 2400, 2, 20, 12, "buy"),
        Fill(5, 1, 2400, 1, 20, 11, "buy"),
    ]
    with pytest.raises(MatchingError) as e:
        Book.from_orders([sell(1, 2400, 5, 11), sell(1, 2400, 5, 11)])
    assert e.value.code == "duplicate_order"


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (Order(1, "hold", 2400, 1, 11, 1), "invalid_side"),  # type: ignore[arg-type]
        (buy(1, 0, 1, 11), "invalid_price"),
        (buy(1, -5, 1, 11), "invalid_price"),
        (Order(1, "buy", Decimal("24.00"), 1, 11, 1), "invalid_price"),  # type: ignore[arg-type]
        (buy(1, 2400, 0, 11), "invalid_quantity"),
        (Order(1, "buy", 2400, True, 11, 1), "invalid_quantity"),
        (Order(1, "buy", 2400, 1, 11, 1, lot=PV22), "invalid_order"),
        (Order(1, "sell", 2400, 1, 11, 1, filters=Filters()), "invalid_order"),
    ],
)
def test_invalid_orders_are_refused_and_change_nothing(order: Order, code: str) -> None:
    b = book_of(sell(7, 2400, 5, 12), buy(8, 2300, 5, 13))
    before = [(o.id, o.quantity) for o in b.orders()]
    with pytest.raises(MatchingError) as e:
        b.add(order)
    assert e.value.code == code
    assert isinstance(e.value, DomainError)
    assert [(o.id, o.quantity) for o in b.orders()] == before


def test_duplicate_resting_id_is_refused() -> None:
    b = book_of(sell(7, 2400, 5, 12))
    with pytest.raises(MatchingError) as e:
        b.add(buy(7, 2500, 1, 13))
    assert e.value.code == "duplicate_order"
    assert resting_qty(b, 7) == 5


# ---------------------------------------------------------------------------------------------------------------
# auction (竞价)


def test_auction_floor_price_priority_ties_by_time_and_partial_marginal() -> None:
    bids = [
        Bid(1, 101, 2300, 400, seq=3),
        Bid(2, 102, 2388, 300, seq=5),
        Bid(3, 103, 2300, 400, seq=1),  # same price as bid 1, earlier
        Bid(4, 104, 1600, 900, seq=2),  # below the floor of 16.99
        Bid(5, 105, 1699, 100, seq=4),  # exactly the floor: eligible
    ]
    r = allocate_auction(1000, 1699, bids)
    assert [(a.bid_id, a.price, a.quantity) for a in r.allocations] == [
        (2, 2388, 300),
        (3, 2300, 400),
        (1, 2300, 300),
    ]
    assert (r.sold, r.unsold, r.clearing_price) == (1000, 0, 2300)
    assert r.below_floor == [4] and r.outbid == [5] and r.self_bids == []
    assert r.proceeds == 2388 * 300 + 2300 * 700  # pay-as-bid


def test_auction_unsold_remainder_and_self_bids() -> None:
    bids = [Bid(1, 101, 2000, 30, 1), Bid(2, 900, 5000, 100, 2), Bid(3, 102, 1800, 20, 3)]
    r = allocate_auction(100, 1500, bids, seller_account=900)
    assert r.self_bids == [2]  # the seller cannot buy its own lot, however high it bids
    assert [(a.bid_id, a.account, a.quantity) for a in r.allocations] == [(1, 101, 30), (3, 102, 20)]
    assert (r.sold, r.unsold, r.clearing_price) == (50, 50, 1800)


def test_auction_with_no_eligible_bid() -> None:
    r = allocate_auction(100, 1500, [Bid(1, 101, 1400, 30, 1)])
    assert (r.allocations, r.sold, r.unsold, r.clearing_price, r.below_floor) == ([], 0, 100, None, [1])


def test_auction_refuses_bad_input() -> None:
    with pytest.raises(MatchingError, match="twice"):
        allocate_auction(10, 100, [Bid(1, 1, 200, 1, 1), Bid(1, 2, 200, 1, 2)])
    for quantity, floor, code in [(0, 100, "invalid_quantity"), (10, 0, "invalid_price")]:
        with pytest.raises(MatchingError) as e:
            allocate_auction(quantity, floor, [])
        assert e.value.code == code


@given(
    quantity=st.integers(1, 500),
    floor=st.integers(1, 50),
    raw=st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 80), st.integers(1, 200), st.integers(0, 9)), max_size=12
    ),
)
def test_auction_properties(quantity: int, floor: int, raw: list[tuple[int, int, int, int]]) -> None:
    bids = [Bid(i, account, price, qty, seq) for i, (account, price, qty, seq) in enumerate(raw)]
    r = allocate_auction(quantity, floor, bids, seller_account=4)
    by_id = {b.id: b for b in bids}
    assert r.sold + r.unsold == quantity and r.sold == sum(a.quantity for a in r.allocations)
    placed = [a.bid_id for a in r.allocations] + r.outbid + r.below_floor + r.self_bids
    assert sorted(placed) == sorted(by_id)  # every bid accounted for exactly once
    assert all(by_id[i].account == 4 for i in r.self_bids)
    assert all(by_id[i].price < floor and by_id[i].account != 4 for i in r.below_floor)
    for a in r.allocations:
        b = by_id[a.bid_id]
        assert (a.account, a.price) == (b.account, b.price) and 0 < a.quantity <= b.quantity
    # only the last (marginal) allocation may be partial, and nothing is left over while a bid went unserved
    assert all(a.quantity == by_id[a.bid_id].quantity for a in r.allocations[:-1])
    assert r.unsold == 0 or not r.outbid
    keys = [(-by_id[i].price, by_id[i].seq, i) for i in [a.bid_id for a in r.allocations] + r.outbid]
    assert keys == sorted(keys)  # price first, then time
    assert r.clearing_price == (min(a.price for a in r.allocations) if r.allocations else None)


# ---------------------------------------------------------------------------------------------------------------
# closing price and limits


def test_daily_close_volume_boundary() -> None:
    # exactly 100 t does not move the close (the rule needs more than 100 t)
    assert daily_close(2400, [(2500, 60), (2600, 40)]) == 2400
    # 101 t: VWAP = (2500·60 + 2600·41) / 101 = 256,600 / 101 = 2540.594… → 2541
    assert daily_close(2400, [(2500, 60), (2600, 41)]) == 2541
    assert daily_close(2400, []) == 2400
    assert daily_close(2400, [(2500, 200)], threshold=500) == 2400


def test_daily_close_rounds_half_up_to_the_fen() -> None:
    # (2401·101 + 2402·101) / 202 = 2401.5 → 2402 (half up, not to even)
    assert daily_close(2000, [(2401, 101), (2402, 101)]) == 2402
    # (2400·150 + 2401·50) / 200 = 2400.25 → 2400
    assert daily_close(2000, [(2400, 150), (2401, 50)]) == 2400
    assert vwap([(2403, 101), (2402, 101)]) == 2403  # 2402.5 → 2403


@given(st.lists(st.tuples(st.integers(1, 10_000), st.integers(1, 300)), min_size=1, max_size=20))
def test_vwap_is_the_nearest_fen_within_the_day_range(trades: list[tuple[int, int]]) -> None:
    v = vwap(trades)
    assert v is not None
    exact = Fraction(sum(p * q for p, q in trades), sum(q for _, q in trades))
    assert min(p for p, _ in trades) <= v <= max(p for p, _ in trades)
    assert -Fraction(1, 2) < v - exact <= Fraction(1, 2)  # half up: the tie goes to the higher fen


def test_daily_close_first_day() -> None:
    assert (
        daily_close(None, [(2500, 3), (2600, 1)]) == 2525
    )  # VWAP even below 100 t: the market needs a first close
    assert daily_close(None, []) is None


def test_daily_close_refuses_bad_trades() -> None:
    with pytest.raises(MatchingError) as e:
        daily_close(2400, [(2500, 0)])
    assert e.value.code == "invalid_trade"


def test_price_limits_round_inward() -> None:
    assert price_limits(2388, Fraction(1, 10)) == (2150, 2626)  # 2149.2 → 2150, 2626.8 → 2626
    assert price_limits(2400, Decimal("0.10")) == (2160, 2640)  # exact band edges are allowed
    assert price_limits(10, Decimal("0.99")) == (1, 19)
    assert price_limits(10, 2) == (1, 30)  # never below one fen
    assert within_limits(2640, 2400, Decimal("0.1")) and not within_limits(2641, 2400, Decimal("0.1"))
    assert within_limits(2160, 2400, Decimal("0.1")) and not within_limits(2159, 2400, Decimal("0.1"))
    with pytest.raises(MatchingError) as e:
        price_limits(2400, Decimal("-0.1"))
    assert e.value.code == "invalid_limit"


# ---------------------------------------------------------------------------------------------------------------
# surveillance

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def tr(id: int, minutes: float, buyer: int, seller: int, qty: int, price: int = 2400) -> TradeRecord:
    return TradeRecord(id, T0 + timedelta(minutes=minutes), buyer, seller, price, qty)


def test_wash_round_trip_within_window() -> None:
    trades = [
        tr(1, 0, buyer=2, seller=1, qty=100),  # A=1 sells to B=2
        tr(2, 5, buyer=3, seller=4, qty=100),  # unrelated
        tr(3, 10, buyer=1, seller=2, qty=95),  # B sells back to A, 5 % less: similar
        tr(4, 20, buyer=2, seller=1, qty=50),
        tr(5, 200, buyer=1, seller=2, qty=50),  # back, but outside a one-hour window
        tr(6, 210, buyer=2, seller=1, qty=10),
        tr(7, 215, buyer=1, seller=2, qty=30),  # back within the window, but quantities differ too much
    ]
    alerts = wash_trade_alerts(list(reversed(trades)), window_seconds=3600)
    assert [(a.kind, a.trade_ids) for a in alerts] == [("wash_round_trip", (1, 3))]
    assert alerts[0].message_params == {
        "account_a": 1,
        "account_b": 2,
        "quantity_out": 100,
        "quantity_back": 95,
        "price_out": 2400,
        "price_back": 2400,
        "seconds": 600,
    }
    assert [a.trade_ids for a in wash_trade_alerts(trades, window_seconds=4 * 3600)] == [(1, 3), (4, 5)]


def test_self_trade_record_is_flagged() -> None:
    assert [a.kind for a in wash_trade_alerts([tr(1, 0, 5, 5, 10)], 60)] == ["self_trade"]


def test_price_deviation_alerts() -> None:
    trades = [tr(1, 0, 1, 2, 10, price=2640), tr(2, 1, 1, 2, 10, price=2641), tr(3, 2, 1, 2, 10, price=2100)]
    alerts = price_deviation_alerts(trades, 2400, Decimal("0.10"))
    assert [a.trade_ids for a in alerts] == [(2,), (3,)]
    assert alerts[0].message_params == {
        "price": 2641,
        "reference_price": 2400,
        "deviation_bp": 1004,
        "max_bp": 1000,
    }
    assert alerts[1].message_params["deviation_bp"] == -1250


# ---------------------------------------------------------------------------------------------------------------
# state machine against a brute-force reference


def compatible(b: Order, s: Order) -> bool:
    return b.filters is None or b.filters.accepts(s.lot)


class ReferenceBook:
    """Obviously-correct matcher: scan every resting order, sort the candidates, fill in turn."""

    def __init__(self) -> None:
        self.resting: list[Order] = []  # arrival order

    def add(self, o: Order) -> list[Fill]:
        if o.side == "buy":
            cands = [
                r
                for r in self.resting
                if r.side == "sell" and r.price <= o.price and r.account != o.account and compatible(o, r)
            ]
            cands.sort(key=lambda r: (r.price, r.seq))
        else:
            cands = [
                r
                for r in self.resting
                if r.side == "buy" and r.price >= o.price and r.account != o.account and compatible(r, o)
            ]
            cands.sort(key=lambda r: (-r.price, r.seq))
        fills = []
        for r in cands:
            if o.quantity == 0:
                break
            q = min(o.quantity, r.quantity)
            o.quantity -= q
            r.quantity -= q
            if o.side == "buy":
                fills.append(Fill(o.id, r.id, r.price, q, o.account, r.account, "buy"))
            else:
                fills.append(Fill(r.id, o.id, r.price, q, r.account, o.account, "sell"))
        self.resting = [r for r in self.resting if r.quantity > 0]
        if o.quantity > 0:
            self.resting.append(o)
        return fills

    def cancel(self, order_id: int) -> Order | None:
        for i, r in enumerate(self.resting):
            if r.id == order_id:
                return self.resting.pop(i)
        return None

    def ordered(self) -> list[Order]:
        return sorted(
            self.resting, key=lambda r: (0, -r.price, r.seq) if r.side == "buy" else (1, r.price, r.seq)
        )

    def would_cross_own(self, o: Order) -> bool:
        for r in self.resting:
            if r.account != o.account or r.side == o.side:
                continue
            b, s = (o, r) if o.side == "buy" else (r, o)
            if b.price >= s.price and compatible(b, s):
                return True
        return False


LOTS = [Lot(v, m, t) for v in (2023, 2024) for m in ("PV22", "FOR") for t in ("household", "enterprise")]
FILTERS = st.one_of(
    st.none(),
    st.none(),
    st.builds(
        Filters,
        vintages=st.one_of(st.none(), st.frozensets(st.sampled_from([2023, 2024]), min_size=1)),
        methodologies=st.one_of(st.none(), st.frozensets(st.sampled_from(["PV22", "FOR"]), min_size=1)),
        owner_types=st.one_of(st.none(), st.just(frozenset({"household"}))),
    ),
)


class BookMachine(RuleBasedStateMachine):
    """Random adds (few accounts and prices, so self-trade skips, ties and filters are frequent) and cancels; every
    result is compared with the reference, and the whole run is replayed at the end for determinism."""

    def __init__(self) -> None:
        super().__init__()
        self.book = Book()
        self.ref = ReferenceBook()
        self.log: list[Order | int | None] = []  # add, cancel by id, reload
        self.all_fills: list[Fill] = []
        self.next_id = 1
        self.clock = 0
        self.submitted: dict[int, int] = {}
        self.filled: dict[int, int] = {}
        self.cancelled: dict[int, int] = {}

    @initialize()
    def start(self) -> None:
        pass

    @rule(
        side=st.sampled_from(["buy", "sell"]),
        price=st.integers(95, 105),
        qty=st.integers(1, 12),
        account=st.integers(1, 4),
        late=st.integers(-3, 0),
        lot=st.sampled_from(LOTS + [None]),
        filters=FILTERS,
    )
    def add(
        self, side: str, price: int, qty: int, account: int, late: int, lot: Lot | None, filters: Filters
    ) -> None:
        self.clock += 1
        oid = self.next_id
        self.next_id += 1
        if side == "buy":
            order = Order(oid, "buy", price, qty, account, self.clock + late, filters=filters)
        else:
            order = Order(oid, "sell", price, qty, account, self.clock + late, lot=lot)
        self.log.append(replace(order))
        expect_own = self.ref.would_cross_own(order)
        assert self.book.would_cross_own(order) == expect_own
        mine = replace(order)
        got = self.book.add(mine)
        want = self.ref.add(order)
        assert got == want
        assert mine.quantity == order.quantity
        self.submitted[oid] = qty
        for f in got:
            assert f.buyer_account != f.seller_account
            assert f.quantity > 0
            self.filled[f.buy_id] = self.filled.get(f.buy_id, 0) + f.quantity
            self.filled[f.sell_id] = self.filled.get(f.sell_id, 0) + f.quantity
        self.all_fills += got

    @precondition(lambda self: self.next_id > 1)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        oid = data.draw(st.integers(1, self.next_id))  # resting, filled, cancelled or never seen
        self.log.append(oid)
        got = self.book.cancel(oid)
        want = self.ref.cancel(oid)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert (got.id, got.quantity) == (want.id, want.quantity)
            self.cancelled[oid] = got.quantity

    @rule()
    def reload(self) -> None:
        """The service rebuilds the book from its stored open orders: behaviour must not change."""
        self.log.append(None)
        self.book = Book.from_orders([replace(o) for o in self.book.orders()])

    @rule(data=st.data())
    def duplicate_is_refused(self, data: st.DataObject) -> None:
        resting = self.book.orders()
        if not resting:
            return
        victim = data.draw(st.sampled_from(resting))
        with pytest.raises(MatchingError):
            self.book.add(Order(victim.id, "buy", 100, 1, 99, self.clock))

    @invariant()
    def same_resting_orders_as_reference(self) -> None:
        assert [(o.id, o.quantity) for o in self.book.orders()] == [
            (o.id, o.quantity) for o in self.ref.ordered()
        ]
        bids = [o.price for o in self.ref.resting if o.side == "buy"]
        asks = [o.price for o in self.ref.resting if o.side == "sell"]
        assert self.book.best_bid() == (max(bids) if bids else None)
        assert self.book.best_ask() == (min(asks) if asks else None)
        assert len(self.book) == len(self.ref.resting)
        sides: tuple[tuple[Side, int], ...] = (("buy", -1), ("sell", 1))
        for side, sign in sides:
            levels: dict[int, list[int]] = {}
            for o in self.ref.resting:
                if o.side == side:
                    levels.setdefault(o.price, []).append(o.quantity)
            want = sorted(((p, sum(q), len(q)) for p, q in levels.items()), key=lambda x: sign * x[0])
            assert self.book.depth(side, levels=3) == want[:3]

    @invariant()
    def never_crossed_between_compatible_accounts(self) -> None:
        resting = self.book.orders()
        for b in resting:
            if b.side != "buy":
                continue
            for s in resting:
                if s.side == "sell" and b.price >= s.price and b.account != s.account:
                    assert not compatible(b, s), f"bid {b} crosses ask {s}"

    @invariant()
    def quantity_conserved_per_order(self) -> None:
        resting = {o.id: o.quantity for o in self.book.orders()}
        for oid, qty in self.submitted.items():
            assert self.filled.get(oid, 0) + resting.get(oid, 0) + self.cancelled.get(oid, 0) == qty

    def teardown(self) -> None:
        book = Book()
        fills: list[Fill] = []
        for op in self.log:
            if isinstance(op, Order):
                fills += book.add(replace(op))
            elif op is not None:
                book.cancel(op)
            else:
                book = Book.from_orders([replace(o) for o in book.orders()])
        assert fills == self.all_fills


BookMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestBookMachine = BookMachine.TestCase
