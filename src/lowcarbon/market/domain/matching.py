"""Matching core of the carbon-unit market: a continuous limit-order book for listings (挂牌点选), the one-way
floor-price auction (竞价), the Guangzhou daily closing-price rule and price limits, and pure surveillance checks
(domain.md §3.4–3.5).

Units: prices are integers in fen (0.01 CNY, the tick), quantities integers in tonnes (1 unit = 1 tCO2e).
Nothing here touches a database: the market service loads resting orders with `Book.from_orders`, calls
`Book.add` / `Book.cancel`, and settles the returned fills. Refusals raise `MatchingError` with a stable code;
the service translates the code for people.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from lowcarbon.core.domain.errors import DomainError

Side = Literal["buy", "sell"]
SIDES: tuple[Side, Side] = ("buy", "sell")

__all__ = [
    "SIDES",
    "Alert",
    "Allocation",
    "AuctionResult",
    "Bid",
    "Book",
    "Fill",
    "Filters",
    "Lot",
    "MatchingError",
    "Order",
    "Side",
    "TradeRecord",
    "allocate_auction",
    "daily_close",
    "price_deviation_alerts",
    "price_limits",
    "vwap",
    "wash_trade_alerts",
    "within_limits",
]


class MatchingError(DomainError):
    """A refused market input. `code` is stable snake_case (invalid_side, invalid_price, invalid_quantity,
    invalid_order, duplicate_order, duplicate_bid, invalid_limit, invalid_trade); the message is English for logs."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message, field=field)


def _positive_int(value: object) -> bool:
    return type(value) is int and value > 0


# ---------------------------------------------------------------------------------------------------------------
# orders


@dataclass(slots=True)
class Lot:
    """What a sell order offers: the units' vintage, methodology code and the kind of owner that generated them."""

    vintage: int
    methodology: str
    owner_type: str  # household / enterprise / institution


@dataclass(frozen=True, slots=True)
class Filters:
    """A buyer's restriction on the lots it accepts; None in a field means any value is acceptable."""

    vintages: frozenset[int] | None = None
    methodologies: frozenset[str] | None = None
    owner_types: frozenset[str] | None = None

    @property
    def is_any(self) -> bool:
        """True when the filters restrict nothing."""
        return self.vintages is None and self.methodologies is None and self.owner_types is None

    def accepts(self, lot: Lot | None) -> bool:
        """Whether a sell order carrying `lot` may fill this buyer; a sell without a lot passes only open filters."""
        if lot is None:
            return self.is_any
        return (
            (self.vintages is None or lot.vintage in self.vintages)
            and (self.methodologies is None or lot.methodology in self.methodologies)
            and (self.owner_types is None or lot.owner_type in self.owner_types)
        )


@dataclass(slots=True)
class Order:
    """A limit order. `quantity` is what remains: the book decrements it in place as the order fills, so the
    caller must not change an order while it rests. `seq` gives time priority (lower = earlier)."""

    id: int
    side: Side
    price: int
    quantity: int
    account: int
    seq: int
    lot: Lot | None = None  # sell orders
    filters: Filters | None = None  # buy orders


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade between a buy and a sell order, at the resting order's price."""

    buy_id: int
    sell_id: int
    price: int
    quantity: int
    buyer_account: int
    seller_account: int
    aggressor: Side


def _validate_order(order: Order) -> None:
    if order.side != "buy" and order.side != "sell":
        raise MatchingError("invalid_side", f"order {order.id}: side must be 'buy' or 'sell'", field="side")
    if not _positive_int(order.price):
        raise MatchingError(
            "invalid_price", f"order {order.id}: price must be a positive integer of fen", field="price"
        )
    if not _positive_int(order.quantity):
        raise MatchingError(
            "invalid_quantity",
            f"order {order.id}: quantity must be a positive integer of tonnes",
            field="quantity",
        )
    if type(order.id) is not int or type(order.account) is not int or type(order.seq) is not int:
        raise MatchingError("invalid_order", "order id, account and seq must be integers")
    if order.side == "buy" and order.lot is not None:
        raise MatchingError(
            "invalid_order", f"order {order.id}: a buy order carries filters, not a lot", field="lot"
        )
    if order.side == "sell" and order.filters is not None:
        raise MatchingError(
            "invalid_order", f"order {order.id}: a sell order carries a lot, not filters", field="filters"
        )


# A price level is a dict id -> order in time priority (insertion order, kept sorted by seq): O(1) cancel,
# C-speed iteration when matching.
_Level = dict[int, Order]


class Book:
    """Continuous limit-order book with price-then-time priority, resting-price execution, partial fills,
    self-trade prevention by skipping (a resting order of the incoming order's own account is passed over, never
    matched or cancelled) and buyer filters (a buy only fills from sells whose lot its filters accept).

    Bid and ask prices are kept in ascending lists (bisect) with one level dict per price; the book is never left
    crossed between a compatible pair of different accounts.
    """

    __slots__ = ("_ask_levels", "_ask_prices", "_bid_levels", "_bid_prices", "_live")

    def __init__(self) -> None:
        self._live: dict[int, Order] = {}
        self._bid_levels: dict[int, _Level] = {}
        self._ask_levels: dict[int, _Level] = {}
        self._bid_prices: list[int] = []  # ascending; best bid last
        self._ask_prices: list[int] = []  # ascending; best ask first

    # -- construction ------------------------------------------------------------------------------------------

    @classmethod
    def from_orders(cls, orders: Iterable[Order]) -> Book:
        """Rebuild a book from resting orders without matching them (reloading open orders). Orders are placed by
        seq (ties keep the iterable's order). Inputs are validated like `add`; they are not checked for crossing."""
        book = cls()
        for order in sorted(orders, key=lambda o: o.seq):
            _validate_order(order)
            if order.id in book._live:
                raise MatchingError("duplicate_order", f"order {order.id} is already in the book", field="id")
            book._rest(order)
        return book

    # -- queries -----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._live

    def get(self, order_id: int) -> Order | None:
        """The resting order with this id, or None."""
        return self._live.get(order_id)

    def best_bid(self) -> int | None:
        """Highest resting buy price, or None."""
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> int | None:
        """Lowest resting sell price, or None."""
        return self._ask_prices[0] if self._ask_prices else None

    def depth(self, side: Side, levels: int = 10) -> list[tuple[int, int, int]]:
        """(price, total quantity, order count) for the best `levels` price levels of one side, best first."""
        if side == "buy":
            prices: Iterable[int] = reversed(self._bid_prices)
            book = self._bid_levels
        elif side == "sell":
            prices = self._ask_prices
            book = self._ask_levels
        else:
            raise MatchingError("invalid_side", "side must be 'buy' or 'sell'", field="side")
        out: list[tuple[int, int, int]] = []
        for price in prices:
            if len(out) >= levels:
                break
            lvl = book[price]
            out.append((price, sum(o.quantity for o in lvl.values()), len(lvl)))
        return out

    def orders(self) -> list[Order]:
        """Every resting order: bids best price first, then asks best price first; time priority within a price."""
        out: list[Order] = []
        for price in reversed(self._bid_prices):
            out.extend(self._bid_levels[price].values())
        for price in self._ask_prices:
            out.extend(self._ask_levels[price].values())
        return out

    def would_cross_own(self, order: Order) -> bool:
        """True when `order`, if added, would be marketable against a resting order of its own account (price
        crosses and the lot/filters are compatible), whether or not other orders would fill it first."""
        account = order.account
        if order.side == "buy":
            flt = order.filters
            if flt is not None and flt.is_any:
                flt = None
            for price in self._ask_prices:
                if price > order.price:
                    break
                for o in self._ask_levels[price].values():
                    if o.account == account and (flt is None or flt.accepts(o.lot)):
                        return True
        elif order.side == "sell":
            lot = order.lot
            prices = self._bid_prices
            for i in range(len(prices) - 1, -1, -1):
                price = prices[i]
                if price < order.price:
                    break
                for o in self._bid_levels[price].values():
                    if o.account == account and (o.filters is None or o.filters.accepts(lot)):
                        return True
        else:
            raise MatchingError("invalid_side", "side must be 'buy' or 'sell'", field="side")
        return False

    # -- changes -----------------------------------------------------------------------------------------------

    def add(self, order: Order) -> list[Fill]:
        """Match `order` against the other side (best price first, then earliest seq; each fill at the resting
        order's price; same-account and filter-incompatible resting orders are skipped) and rest any remainder.
        The book keeps `order` and decrements `quantity` of it and of the resting orders it fills."""
        _validate_order(order)
        if order.id in self._live:
            raise MatchingError("duplicate_order", f"order {order.id} is already in the book", field="id")
        fills = self._match_buy(order) if order.side == "buy" else self._match_sell(order)
        if order.quantity > 0:
            self._rest(order)
        return fills

    def cancel(self, order_id: int) -> Order | None:
        """Remove a resting order; returns it (with its unfilled quantity) or None when it is not resting."""
        order = self._live.pop(order_id, None)
        if order is None:
            return None
        if order.side == "buy":
            levels, prices = self._bid_levels, self._bid_prices
        else:
            levels, prices = self._ask_levels, self._ask_prices
        lvl = levels[order.price]
        del lvl[order_id]
        if not lvl:
            del levels[order.price]
            del prices[bisect_left(prices, order.price)]
        return order

    # -- internals ---------------------------------------------------------------------------------------------

    def _rest(self, order: Order) -> None:
        if order.side == "buy":
            levels, prices = self._bid_levels, self._bid_prices
        else:
            levels, prices = self._ask_levels, self._ask_prices
        price = order.price
        lvl = levels.get(price)
        if lvl is None:
            levels[price] = {order.id: order}
            insort(prices, price)
        elif next(reversed(lvl.values())).seq <= order.seq:
            lvl[order.id] = order
        else:  # an earlier seq arriving late: keep the level in seq order (stable for equal seqs)
            queue = list(lvl.values())
            queue.insert(bisect_right([o.seq for o in queue], order.seq), order)
            levels[price] = {o.id: o for o in queue}
        self._live[order.id] = order

    def _match_buy(self, order: Order) -> list[Fill]:
        fills: list[Fill] = []
        prices = self._ask_prices
        limit = order.price
        if not prices or prices[0] > limit:
            return fills
        levels = self._ask_levels
        live = self._live
        account = order.account
        flt = order.filters
        if flt is not None and flt.is_any:
            flt = None
        remaining = order.quantity
        buy_id = order.id
        emptied: list[int] = []
        for price in prices:
            if price > limit:
                break
            lvl = levels[price]
            done: list[int] = []
            for o in lvl.values():
                if o.account == account or (flt is not None and not flt.accepts(o.lot)):
                    continue
                q = o.quantity
                if q > remaining:
                    q = remaining
                fills.append(Fill(buy_id, o.id, price, q, account, o.account, "buy"))
                o.quantity -= q
                remaining -= q
                if o.quantity == 0:
                    done.append(o.id)
                if remaining == 0:
                    break
            for oid in done:
                del lvl[oid]
                del live[oid]
            if not lvl:
                emptied.append(price)
            if remaining == 0:
                break
        order.quantity = remaining
        self._drop_levels(levels, prices, emptied)
        return fills

    def _match_sell(self, order: Order) -> list[Fill]:
        fills: list[Fill] = []
        prices = self._bid_prices
        limit = order.price
        if not prices or prices[-1] < limit:
            return fills
        levels = self._bid_levels
        live = self._live
        account = order.account
        lot = order.lot
        remaining = order.quantity
        sell_id = order.id
        emptied: list[int] = []
        for i in range(len(prices) - 1, -1, -1):
            price = prices[i]
            if price < limit:
                break
            lvl = levels[price]
            done: list[int] = []
            for o in lvl.values():
                if o.account == account:
                    continue
                flt = o.filters
                if flt is not None and not flt.accepts(lot):
                    continue
                q = o.quantity
                if q > remaining:
                    q = remaining
                fills.append(Fill(o.id, sell_id, price, q, o.account, account, "sell"))
                o.quantity -= q
                remaining -= q
                if o.quantity == 0:
                    done.append(o.id)
                if remaining == 0:
                    break
            for oid in done:
                del lvl[oid]
                del live[oid]
            if not lvl:
                emptied.append(price)
            if remaining == 0:
                break
        order.quantity = remaining
        self._drop_levels(levels, prices, emptied)
        return fills

    @staticmethod
    def _drop_levels(levels: dict[int, _Level], prices: list[int], emptied: list[int]) -> None:
        if not emptied:
            return
        for price in emptied:
            del levels[price]
        if len(emptied) == 1:
            del prices[bisect_left(prices, emptied[0])]
        else:
            gone = set(emptied)
            prices[:] = [p for p in prices if p not in gone]


# ---------------------------------------------------------------------------------------------------------------
# one-way auction (竞价)


@dataclass(frozen=True, slots=True)
class Bid:
    """A sealed bid in a one-way auction: up to `quantity` tonnes at `price` fen each; `seq` breaks price ties."""

    id: int
    account: int
    price: int
    quantity: int
    seq: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """Units awarded to one bid, paid at that bid's own price."""

    bid_id: int
    account: int
    price: int
    quantity: int


@dataclass(frozen=True, slots=True)
class AuctionResult:
    """Outcome of an auction. `clearing_price` is the lowest accepted bid price (None when nothing sold);
    `outbid` lists eligible bids that received nothing."""

    allocations: list[Allocation]
    sold: int
    unsold: int
    below_floor: list[int]
    self_bids: list[int]
    outbid: list[int] = field(default_factory=list)
    clearing_price: int | None = None

    @property
    def proceeds(self) -> int:
        """Total paid to the seller, in fen."""
        return sum(a.price * a.quantity for a in self.allocations)


def allocate_auction(
    quantity: int, floor: int, bids: Sequence[Bid], seller_account: int | None = None
) -> AuctionResult:
    """Allocate a lot of `quantity` t offered with a floor price (竞价, domain.md §3.4: highest bids fill, ties by
    time). Bids from `seller_account` are excluded (`self_bids`), bids below the floor are excluded
    (`below_floor`); the rest are served by price (highest first), then seq, then id, the marginal bid partially.

    Pricing is pay-as-bid (discriminatory): each winner pays the price it bid. The sources give no rule (the
    reported PHCER auctions, domain.md §3.5, had a single winning buyer, where both rules agree); pay-as-bid is
    what each bidder committed to, needs no second price, and keeps the proceeds from collapsing to one low
    marginal bid. `clearing_price` (the lowest accepted price) is what a uniform-price rule would charge.
    """
    if not _positive_int(quantity):
        raise MatchingError(
            "invalid_quantity", "auction quantity must be a positive integer of tonnes", field="quantity"
        )
    if not _positive_int(floor):
        raise MatchingError("invalid_price", "floor price must be a positive integer of fen", field="floor")
    seen: set[int] = set()
    eligible: list[Bid] = []
    below_floor: list[int] = []
    self_bids: list[int] = []
    for bid in bids:
        if bid.id in seen:
            raise MatchingError("duplicate_bid", f"bid {bid.id} appears twice", field="id")
        seen.add(bid.id)
        if not _positive_int(bid.price):
            raise MatchingError(
                "invalid_price", f"bid {bid.id}: price must be a positive integer of fen", field="price"
            )
        if not _positive_int(bid.quantity):
            raise MatchingError(
                "invalid_quantity",
                f"bid {bid.id}: quantity must be a positive integer of tonnes",
                field="quantity",
            )
        if seller_account is not None and bid.account == seller_account:
            self_bids.append(bid.id)
        elif bid.price < floor:
            below_floor.append(bid.id)
        else:
            eligible.append(bid)
    eligible.sort(key=lambda b: (-b.price, b.seq, b.id))
    left = quantity
    allocations: list[Allocation] = []
    outbid: list[int] = []
    for bid in eligible:
        if left == 0:
            outbid.append(bid.id)
            continue
        q = min(left, bid.quantity)
        allocations.append(Allocation(bid.id, bid.account, bid.price, q))
        left -= q
    return AuctionResult(
        allocations=allocations,
        sold=quantity - left,
        unsold=left,
        below_floor=below_floor,
        self_bids=self_bids,
        outbid=outbid,
        clearing_price=allocations[-1].price if allocations else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# closing price and price limits


def _check_trades(trades: Sequence[tuple[int, int]]) -> None:
    for price, qty in trades:
        if not _positive_int(price) or not _positive_int(qty):
            raise MatchingError("invalid_trade", "trade prices and quantities must be positive integers")


def vwap(trades: Sequence[tuple[int, int]]) -> int | None:
    """Volume-weighted average of (price fen, quantity t) trades, rounded half up to the fen; None if no trades."""
    _check_trades(trades)
    volume = sum(q for _, q in trades)
    if volume == 0:
        return None
    value = sum(p * q for p, q in trades)
    return (2 * value + volume) // (2 * volume)


def daily_close(
    open_price: int | None, trades: Sequence[tuple[int, int]], threshold: int = 100
) -> int | None:
    """Closing price under the Guangzhou exchange rule of 2018-07-31 (domain.md §3.4): the VWAP of the day's
    listing trades, rounded half up to the fen, when their total quantity exceeds `threshold` t (100 t); otherwise
    the opening price, i.e. the previous close. With no opening price (the first trading day) the VWAP is used
    whatever the volume, so the market gets a first close; with neither, None."""
    _check_trades(trades)
    volume = sum(q for _, q in trades)
    if volume > threshold or (open_price is None and volume > 0):
        return vwap(trades)
    return open_price


def price_limits(reference: int, limit_fraction: Fraction | Decimal | int) -> tuple[int, int]:
    """(lowest, highest) allowed price for a ±`limit_fraction` band around `reference`, rounded inward to the fen
    (the lowest up, the highest down) so no allowed price lies outside the band; never below 1 fen."""
    if not _positive_int(reference):
        raise MatchingError(
            "invalid_price", "reference price must be a positive integer of fen", field="reference"
        )
    f = Fraction(limit_fraction)
    if f < 0:
        raise MatchingError(
            "invalid_limit", "the limit fraction must not be negative", field="limit_fraction"
        )
    low = max(1, math.ceil(reference * (1 - f)))
    high = math.floor(reference * (1 + f))
    return low, high


def within_limits(price: int, reference: int, limit_fraction: Fraction | Decimal | int) -> bool:
    """Whether `price` lies inside the price band of `price_limits`."""
    low, high = price_limits(reference, limit_fraction)
    return low <= price <= high


# ---------------------------------------------------------------------------------------------------------------
# surveillance


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """A done trade as surveillance sees it (listing, auction or negotiated)."""

    id: int
    at: datetime
    buyer_account: int
    seller_account: int
    price: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Alert:
    """A surveillance finding: `kind` is a stable code (wash_round_trip, self_trade, price_deviation), the params
    fill the translated message."""

    kind: str
    trade_ids: tuple[int, ...]
    message_params: dict[str, Any]


def _bp(x: Fraction) -> int:
    """A fraction in basis points, rounded half away from zero."""
    v = abs(x) * 10000
    r = math.floor(v + Fraction(1, 2))
    return r if x >= 0 else -r


def wash_trade_alerts(
    trades: Sequence[TradeRecord],
    window_seconds: int,
    quantity_tolerance: Fraction | Decimal = Fraction(1, 10),
) -> list[Alert]:
    """Round trips: A sells to B and B sells back to A within `window_seconds`, the two quantities differing by at
    most `quantity_tolerance` of the larger one. Each earlier leg is paired at most once (with the first later
    leg that qualifies); a trade with the same buyer and seller is reported as `self_trade`. Trades are examined
    in (time, id) order, so the result does not depend on the input order."""
    if type(window_seconds) is not int or window_seconds < 0:
        raise MatchingError(
            "invalid_limit", "the window must be a non-negative number of seconds", field="window"
        )
    tol = Fraction(quantity_tolerance)
    window = timedelta(seconds=window_seconds)
    alerts: list[Alert] = []
    open_legs: dict[
        tuple[int, int], deque[TradeRecord]
    ] = {}  # (seller, buyer) -> unpaired legs, oldest first
    for t in sorted(trades, key=lambda r: (r.at, r.id)):
        if t.buyer_account == t.seller_account:
            alerts.append(Alert("self_trade", (t.id,), {"account": t.buyer_account, "quantity": t.quantity}))
            continue
        back = open_legs.get((t.buyer_account, t.seller_account))  # earlier legs in the opposite direction
        if back:
            while back and t.at - back[0].at > window:
                back.popleft()
            for i, first in enumerate(back):
                bigger = max(first.quantity, t.quantity)
                if abs(first.quantity - t.quantity) <= tol * bigger:
                    del back[i]
                    alerts.append(
                        Alert(
                            "wash_round_trip",
                            (first.id, t.id),
                            {
                                "account_a": first.seller_account,
                                "account_b": first.buyer_account,
                                "quantity_out": first.quantity,
                                "quantity_back": t.quantity,
                                "price_out": first.price,
                                "price_back": t.price,
                                "seconds": int((t.at - first.at).total_seconds()),
                            },
                        )
                    )
                    break
        open_legs.setdefault((t.seller_account, t.buyer_account), deque()).append(t)
    return alerts


def price_deviation_alerts(
    trades: Sequence[TradeRecord], reference_price: int, max_fraction: Fraction | Decimal | int
) -> list[Alert]:
    """Trades whose price departs from `reference_price` (e.g. the previous close) by more than `max_fraction`
    either way; params carry the signed deviation and the limit in basis points."""
    if not _positive_int(reference_price):
        raise MatchingError(
            "invalid_price", "reference price must be a positive integer of fen", field="reference"
        )
    limit = Fraction(max_fraction)
    if limit < 0:
        raise MatchingError("invalid_limit", "the limit fraction must not be negative", field="max_fraction")
    alerts: list[Alert] = []
    for t in trades:
        dev = Fraction(t.price - reference_price, reference_price)
        if abs(dev) > limit:
            alerts.append(
                Alert(
                    "price_deviation",
                    (t.id,),
                    {
                        "price": t.price,
                        "reference_price": reference_price,
                        "deviation_bp": _bp(dev),
                        "max_bp": _bp(limit),
                    },
                )
            )
    return alerts
