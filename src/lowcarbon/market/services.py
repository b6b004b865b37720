"""Trade matching services: each `do_*` function is one transaction. Matching decisions come from the pure
engine (market.domain.matching); units move only through the registry ledger (reserve, settle, release), so every
change of holdings is in the journal. Prices are CNY per tonne with a tick of 0.01; quantities whole tonnes.

Lock order (never inverted): the market book lock (placing standing orders), the order/auction/deal row, then the
ledger's own order (accounts, blocks, journal). A service that settles locks every account involved (its own and
its counterparties') in one `ledger.lock_accounts` call, after working out the fills and before touching blocks."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, NamedTuple
from uuid import uuid4

import psycopg
from django.db import OperationalError, connection, transaction
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.models import Parameter
from lowcarbon.core.params import param_value
from lowcarbon.market.domain import matching as me
from lowcarbon.market.models import Alert, Auction, Bid, Deal, Mode, OffsetProfile, Order, Trade
from lowcarbon.registry import ledger
from lowcarbon.registry.models import Notification, RegistryAccount, Retirement, SerialBlock

MAX_PRICE = Decimal("100000.00")
MAX_QUANTITY = 10_000_000
BOOK_LOCK_KEY = 0x4C43_4D4B  # "LCMK": serialises matching of standing orders on PostgreSQL


# --- small checks -----------------------------------------------------------------------------------------------


def parse_price(value: Any, field: str = "price") -> Decimal:
    """A price in CNY per tonne: positive, at most two decimals (tick 0.01 CNY)."""
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise DomainError("invalid_price", _("The price must be a number in CNY per tonne."), field=field)
    if not price.is_finite() or price <= 0 or price > MAX_PRICE:
        raise DomainError(
            "invalid_price",
            _("The price must be above 0 and at most %(max)s CNY per tonne.") % {"max": MAX_PRICE},
            field=field,
        )
    if price != price.quantize(Decimal("0.01")):
        raise DomainError(
            "invalid_tick",
            _("Prices move in steps of 0.01 CNY; %(price)s is not one.") % {"price": price},
            field=field,
        )
    return price.quantize(Decimal("0.01"))


def parse_quantity(value: Any, field: str = "quantity") -> int:
    try:
        q = int(str(value).strip())
    except (TypeError, ValueError):
        raise DomainError(
            "invalid_quantity", _("The quantity must be a whole number of tonnes."), field=field
        )
    if str(value).strip() != str(q) or q < 1 or q > MAX_QUANTITY:
        raise DomainError(
            "invalid_quantity", _("The quantity must be a whole number of tonnes, at least 1."), field=field
        )
    return q


def _fen(price: Decimal) -> int:
    return int((price * 100).to_integral_value())


def _cny(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class RetireRequest:
    beneficiary: str
    purpose: str
    note: str = ""

    def as_ledger(self) -> dict[str, Any]:
        return {"beneficiary": self.beneficiary, "purpose": self.purpose, "note": self.note}


def retire_request(on: bool, beneficiary: str, purpose: str) -> RetireRequest | None:
    """Validate the buyer's retire-on-purchase choice."""
    if not on:
        return None
    beneficiary = (beneficiary or "").strip()
    if not beneficiary:
        raise DomainError(
            "beneficiary_required", _("Name the beneficiary of the retirement."), field="beneficiary"
        )
    if len(beneficiary) > 200:
        raise DomainError(
            "beneficiary_too_long", _("The beneficiary name is at most 200 characters."), field="beneficiary"
        )
    if purpose not in Retirement.Purpose.values:
        raise DomainError(
            "invalid_purpose",
            _("The purpose must be one of: %(choices)s.") % {"choices": ", ".join(Retirement.Purpose.values)},
            field="purpose",
        )
    return RetireRequest(beneficiary, purpose)


def _require_actor(actor: Any, account: RegistryAccount) -> None:
    if not ledger.may_act_for(actor, account):
        raise DomainError(
            "not_allowed", _("You may not trade for account %(account)s.") % {"account": account.number}
        )


def _number(model: Any, prefix: str, **values: Any) -> Any:
    """Create a row and give it its permanent number PREFIX-YEAR-ID."""
    row = model.objects.create(number="~" + uuid4().hex[:23], **values)
    row.number = f"{prefix}-{timezone.localdate().year}-{row.pk:06d}"
    model.objects.filter(pk=row.pk).update(number=row.number)
    return row


def _book_lock() -> None:
    """Serialise matching of standing orders (SQLite: the IMMEDIATE transaction already holds the write lock)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [BOOK_LOCK_KEY])


# --- prices: reference, limits, daily close ---------------------------------------------------------------------


def closes(until: date | None = None) -> list[dict[str, Any]]:
    """Day by day from the first trade to `until` (inclusive): open, close, listing volume, all volume, value and
    trade count. Close follows the Guangzhou rule (domain.md §3.4): VWAP of the day's listing trades when more than
    the threshold traded, otherwise the open (the previous close)."""
    until = until or timezone.localdate()
    rows: dict[date, dict[str, Any]] = {}
    trades = Trade.objects.filter(executed_at__date__lte=until).values_list(
        "executed_at", "mode", "price", "quantity"
    )
    for at, mode, price, qty in trades.order_by("executed_at", "id").iterator():
        day = timezone.localtime(at).date()
        r = rows.setdefault(day, {"listing": [], "volume_t": 0, "value": Decimal(0), "trades": 0})
        r["volume_t"] += qty
        r["value"] += price * qty
        r["trades"] += 1
        if mode in (Mode.LISTING, Mode.CONTINUOUS):
            r["listing"].append((_fen(price), qty))
    if not rows:
        return []
    threshold = int(param_value("market.close_threshold_t"))
    start = min(rows)
    out: list[dict[str, Any]] = []
    previous: int | None = _fen(param_value("market.reference_price", start))
    day = start
    while day <= until:
        r = rows.get(day, {"listing": [], "volume_t": 0, "value": Decimal(0), "trades": 0})
        close = me.daily_close(previous, r["listing"], threshold)
        out.append(
            {
                "day": day,
                "open": _cny(previous) if previous is not None else None,
                "close": _cny(close) if close is not None else None,
                "listing_volume_t": sum(q for _p, q in r["listing"]),
                "volume_t": r["volume_t"],
                "value_cny": r["value"].quantize(Decimal("0.01")),
                "trades": r["trades"],
            }
        )
        previous = close
        day += timedelta(days=1)
    return out


_PAST_REFERENCES: dict[tuple[date, tuple[int, ...]], Decimal] = {}


def reference_price(on: date | None = None) -> Decimal:
    """Today's opening price: the previous day's close, or the initial reference before any trade. Closed days
    never change (trades are stamped with the time they settle), so a reference computed from them is kept for
    the process, keyed by the parameter versions it used."""
    on = on or timezone.localdate()
    key: tuple[date, tuple[int, ...]] | None = None
    if on <= timezone.localdate():
        versions = tuple(
            Parameter.objects.filter(key__in=("market.close_threshold_t", "market.reference_price"))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        key = (on, versions)
        if key in _PAST_REFERENCES:
            return _PAST_REFERENCES[key]
    price = param_value("market.reference_price", on).quantize(Decimal("0.01"))
    for row in reversed(closes(on - timedelta(days=1))):
        if row["close"] is not None:
            price = row["close"]
            break
    if key is not None:
        _PAST_REFERENCES[key] = price
    return price


def price_band(kind: str = "listing", on: date | None = None) -> tuple[Decimal, Decimal, Decimal]:
    """(reference, lowest, highest) allowed price today for listing-type orders or negotiated deals."""
    ref = reference_price(on)
    key = "market.negotiated_price_limit" if kind == "negotiated" else "market.daily_price_limit"
    low, high = me.price_limits(_fen(ref), Decimal(param_value(key, on)))
    return ref, _cny(low), _cny(high)


def _check_band(price: Decimal, kind: str = "listing") -> None:
    ref, low, high = price_band(kind)
    if not (low <= price <= high):
        raise DomainError(
            "price_limit",
            _(
                "%(price)s CNY/t is outside today's price limit %(low)s–%(high)s CNY/t (reference price "
                "%(ref)s)."
            )
            % {"price": price, "low": low, "high": high, "ref": ref},
            field="price",
        )


# --- offset limit of covered enterprises ------------------------------------------------------------------------


def offset_position(
    account: RegistryAccount, year: int, *, excluding: Order | None = None
) -> dict[str, Any] | None:
    """A covered enterprise's offset room for a compliance year: limit (share of verified emissions, capped),
    used (units retired for ETS offsetting that year), pending (open buy requests, bids and deals marked for
    ETS offsetting; not counting the order `excluding`, the one being checked) and what is left. None when the
    account has no offset profile for the year."""
    profile = OffsetProfile.objects.filter(account=account, year=year).first()
    if profile is None:
        return None
    share = Decimal(param_value("market.offset_share", date(year, 1, 1)))
    by_share = int((share * profile.verified_emissions_t).to_integral_value(rounding=ROUND_FLOOR))
    limit = min(by_share, profile.annual_cap_t) if profile.annual_cap_t is not None else by_share
    used = (
        Retirement.objects.filter(
            account=account, purpose=Retirement.Purpose.ETS_OFFSET, retired_on__year=year
        ).aggregate(q=Sum("quantity"))["q"]
        or 0
    )
    ets = Retirement.Purpose.ETS_OFFSET
    requests = Order.objects.filter(account=account, side=Order.Side.BUY, state=Order.State.OPEN, purpose=ets)
    if excluding is not None:
        requests = requests.exclude(pk=excluding.pk)
    pending = (
        (requests.aggregate(q=Sum("remaining"))["q"] or 0)
        + (
            Bid.objects.filter(account=account, state=Bid.State.OPEN, purpose=ets).aggregate(
                q=Sum("quantity")
            )["q"]
            or 0
        )
        + (
            Deal.objects.filter(buyer=account, state=Deal.State.PROPOSED, purpose=ets).aggregate(
                q=Sum("quantity")
            )["q"]
            or 0
        )
    )
    return {
        "profile": profile,
        "share": share,
        "by_share": by_share,
        "cap": profile.annual_cap_t,
        "limit": limit,
        "used": int(used),
        "pending": int(pending),
        "left": limit - int(used) - int(pending),
    }


def _offset_refusal(account: RegistryAccount, year: int, quantity: int, pos: dict[str, Any] | None) -> None:
    if pos is None:
        raise DomainError(
            "offset_no_profile",
            _(
                "Account %(account)s has no verified emissions recorded for %(year)d: only covered enterprises "
                "with a recorded offset profile may use units for ETS offsetting."
            )
            % {"account": account.number, "year": year},
            field="purpose",
        )
    raise DomainError(
        "offset_limit",
        _(
            "ETS offsetting of %(quantity)d t refused: the limit for %(year)d is %(limit)d t (%(share)s%% of "
            "verified emissions %(emissions)d t%(cap)s); already used %(used)d t, pending %(pending)d t, left "
            "%(left)d t."
        )
        % {
            "quantity": quantity,
            "year": year,
            "limit": pos["limit"],
            "share": (pos["share"] * 100).normalize(),
            "emissions": pos["profile"].verified_emissions_t,
            "cap": (_(", annual cap %(cap)d t") % {"cap": pos["cap"]}) if pos["cap"] is not None else "",
            "used": pos["used"],
            "pending": pos["pending"],
            "left": max(pos["left"], 0),
        },
        field="quantity",
    )


def check_offset_demand(
    account: RegistryAccount, quantity: int, retire: RetireRequest | None, *, placed: Order | None = None
) -> None:
    """Before a buy request, bid or deal marked for ETS offsetting: used + pending + this ≤ limit (`placed`: the
    buy request being placed, already written, is this demand, not pending)."""
    if retire is None or retire.purpose != Retirement.Purpose.ETS_OFFSET:
        return
    year = timezone.localdate().year
    pos = offset_position(account, year, excluding=placed)
    if pos is None or quantity > pos["left"]:
        _offset_refusal(account, year, quantity, pos)


def check_offset_retirement(account: RegistryAccount, quantity: int, purpose: str, retired_on: date) -> None:
    """Registry hook on every retirement: a retirement for ETS offsetting stays within the limit (used + this);
    demand already counted as pending is the same units arriving, so pending is not added here."""
    if purpose != Retirement.Purpose.ETS_OFFSET:
        return
    pos = offset_position(account, retired_on.year)
    if pos is None or pos["used"] + quantity > pos["limit"]:
        _offset_refusal(account, retired_on.year, quantity, pos)


# --- settlement -------------------------------------------------------------------------------------------------


@dataclass
class _Fill:
    mode: str
    lock: str
    seller: RegistryAccount
    buyer: RegistryAccount
    quantity: int
    price: Decimal
    retire: RetireRequest | None
    refs: dict[str, Any]

    def terms(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "price": f"{self.price:.2f}",
            **{k: getattr(v, "number", v.pk) for k, v in self.refs.items() if v is not None},
        }


def _settle(
    *,
    mode: str,
    lock: str,
    seller: RegistryAccount,
    buyer: RegistryAccount,
    quantity: int,
    price: Decimal,
    actor: Any,
    retire: RetireRequest | None,
    refs: dict[str, Any],
    ctx: _Context | None = None,
) -> Trade:
    """Move the units and write the trade, inside the caller's transaction: all of it happens or none."""
    return _settle_many([_Fill(mode, lock, seller, buyer, quantity, price, retire, refs)], actor, ctx)[0]


def _settle_many(fills: Sequence[_Fill], actor: Any, ctx: _Context | None = None) -> list[Trade]:
    """Settle the fills of one service call together (a sweep of the book, an auction's allocation): the registry
    moves the units (ledger.settle_reserved_many), then the trades, alerts and notifications are written in bulk.
    Inside the caller's transaction: all of it happens or none."""
    if not fills:
        return []
    for f in fills:
        if f.seller.pk == f.buyer.pk:
            raise DomainError(
                "self_trade", _("A trade needs two different accounts: self-trades are refused.")
            )
    ctx = ctx or _Context()
    settled = ledger.settle_reserved_many(
        [
            ledger.Settlement(
                f.lock, f.seller, f.buyer, f.quantity, f.terms(), f.retire.as_ledger() if f.retire else None
            )
            for f in fills
        ],
        actor=actor,
    )
    trades = Trade.objects.bulk_create(
        [
            Trade(
                number=transfer.number.replace("TR-", "TD-", 1),
                mode=f.mode,
                executed_at=transfer.created_at,
                seller_account=f.seller,
                buyer_account=f.buyer,
                quantity=f.quantity,
                price=f.price,
                transfer=transfer,
                retirement=retirement,
                actor=actor,
                **{k: v for k, v in f.refs.items() if v is not None},
            )
            for f, (transfer, retirement) in zip(fills, settled, strict=True)
        ]
    )
    notes: list[Notification] = []
    for t, f in zip(trades, fills, strict=True):
        _surveil(t, ctx)
        args = {"number": t.number, "quantity": f.quantity, "price": f"{f.price:.2f}"}
        notes += ctx.notifications(f.seller, "sold", args) + ctx.notifications(f.buyer, "bought", args)
    Notification.objects.bulk_create(notes)
    return trades


class _Context:
    """What every fill of one service call shares: today's reference price and surveillance thresholds, the link
    of notifications, and who holds each account — looked up once, not once per fill."""

    def __init__(self) -> None:
        self.ref = reference_price()
        self.max_dev = Decimal(param_value("market.alert_price_deviation"))
        self.window = int(param_value("market.wash_window_hours")) * 3600
        self.link = reverse("market:mine")
        self._holders: dict[int, list[Any]] = {}
        self._texts: dict[tuple[str, str], str] = {}
        # (seller, buyer) pairs with no trade the other way in the window, checked once per call: one call's fills
        # all go the same way between two accounts (one incoming order, one auction's seller)
        self.one_way: set[tuple[int, int]] = set()

    def holders(self, account: RegistryAccount) -> list[Any]:
        if account.pk not in self._holders:
            self._holders[account.pk] = _holders(account)
        return self._holders[account.pk]

    def notifications(self, account: RegistryAccount, key: str, args: dict[str, Any]) -> list[Notification]:
        out = []
        for u in self.holders(account):
            lang = getattr(u, "preferred_language", "") or "zh-hans"
            if (lang, key) not in self._texts:
                with translation.override(lang):
                    self._texts[(lang, key)] = _(MESSAGES[key])
            out.append(Notification(user=u, message=(self._texts[(lang, key)] % args)[:300], link=self.link))
        return out


def _surveil(trade: Trade, ctx: _Context) -> None:
    """Raise alerts for the administrator: a price far from the reference, or units going back to the seller."""
    ref, max_dev, window = ctx.ref, ctx.max_dev, ctx.window
    record = me.TradeRecord(
        id=trade.pk,
        at=trade.executed_at,
        buyer_account=trade.buyer_account_id,
        seller_account=trade.seller_account_id,
        price=_fen(trade.price),
        quantity=trade.quantity,
    )
    for alert in me.price_deviation_alerts([record], _fen(ref), max_dev):
        a = Alert.objects.create(
            kind=Alert.Kind.PRICE,
            details={"price": f"{trade.price:.2f}", "reference": f"{ref:.2f}", "max_deviation": str(max_dev)},
        )
        a.trades.add(trade)
        del alert
    since = trade.executed_at - timedelta(seconds=window)
    pair = (trade.seller_account_id, trade.buyer_account_id)
    if pair in ctx.one_way:
        return
    if not Trade.objects.filter(
        seller_account=trade.buyer_account_id, buyer_account=trade.seller_account_id, executed_at__gte=since
    ).exists():
        ctx.one_way.add(pair)
        return  # no units went the other way between these two accounts within the window
    both_ways = Q(seller_account=trade.buyer_account_id, buyer_account=trade.seller_account_id) | Q(
        seller_account=trade.seller_account_id, buyer_account=trade.buyer_account_id
    )
    recent = [
        me.TradeRecord(
            id=t.pk,
            at=t.executed_at,
            buyer_account=t.buyer_account_id,
            seller_account=t.seller_account_id,
            price=_fen(t.price),
            quantity=t.quantity,
        )
        for t in Trade.objects.filter(both_ways, executed_at__gte=since).order_by("executed_at", "id")
    ]
    for alert in me.wash_trade_alerts(recent, window):
        ids = sorted(alert.trade_ids)
        if trade.pk not in ids:
            continue
        a = Alert.objects.create(kind=Alert.Kind.WASH, details=dict(alert.message_params))
        a.trades.add(*ids)


MESSAGES = {
    "sold": gettext_noop("Trade %(number)s: you sold %(quantity)d t at %(price)s CNY/t."),
    "bought": gettext_noop("Trade %(number)s: you bought %(quantity)d t at %(price)s CNY/t."),
    "deal_proposed": gettext_noop(
        "Negotiated deal %(number)s proposed to you: %(quantity)d t at %(price)s CNY/t. Confirm or decline it."
    ),
    "deal_declined": gettext_noop("Negotiated deal %(number)s was declined; your units are free again."),
    "auction_won": gettext_noop("Auction %(number)s closed: you were allocated %(quantity)d t."),
    "auction_lost": gettext_noop("Auction %(number)s closed: your bid was not allocated."),
    "auction_closed": gettext_noop(
        "Your auction %(number)s closed: %(sold)d t sold, %(unsold)d t returned to you."
    ),
    "order_expired": gettext_noop("Your order %(number)s expired; %(quantity)d t were not traded."),
}


def _holders(account: RegistryAccount) -> list[Any]:
    """The person who holds the account, or the administrators of the organisation that does."""
    from lowcarbon.accounts.models import Membership, User

    if account.owner_user_id:
        return list(User.objects.filter(pk=account.owner_user_id))
    return [
        m.user
        for m in Membership.objects.filter(
            organisation_id=account.owner_org_id, level=Membership.Level.ADMIN
        ).select_related("user")
    ]


def _notification(user: Any, key: str, args: dict[str, Any], link: str) -> Notification:
    """A notification in the person's preferred language."""
    with translation.override(getattr(user, "preferred_language", "") or "zh-hans"):
        message = _(MESSAGES[key]) % args
    return Notification(user=user, message=message[:300], link=link)


def _notify_holders(account: RegistryAccount, key: str, args: dict[str, Any], link: str = "") -> None:
    Notification.objects.bulk_create(
        [_notification(u, key, args, link or reverse("market:mine")) for u in _holders(account)]
    )


# --- the engine's view of the book ------------------------------------------------------------------------------


def _engine_order(o: Order) -> me.Order:
    if o.side == Order.Side.SELL:
        return me.Order(
            id=o.pk,
            side="sell",
            price=_fen(o.price),
            quantity=o.remaining,
            account=o.account_id,
            seq=o.pk,
            lot=me.Lot(vintage=o.vintage or 0, methodology=o.methodology_code, owner_type=o.owner_type),
        )
    return me.Order(
        id=o.pk,
        side="buy",
        price=_fen(o.price),
        quantity=o.remaining,
        account=o.account_id,
        seq=o.pk,
        filters=me.Filters(
            vintages=frozenset(int(v) for v in o.want_vintages) or None,
            methodologies=frozenset(o.want_methodologies) or None,
            owner_types=frozenset(o.want_owner_types) or None,
        ),
    )


def _open_orders(side: str) -> Any:
    now = timezone.now()
    return Order.objects.filter(side=side, state=Order.State.OPEN).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


@dataclass
class _MatchPlan:
    """The fills an incoming standing order gets against the resting orders of the other side (their rows locked,
    the accounts not yet): computed first, so that every account involved can then be locked in one call."""

    incoming: Order
    rows: dict[int, Order]
    fills: list[me.Fill]

    def _order(self, pk: int) -> Order:
        return self.incoming if pk == self.incoming.pk else self.rows[pk]

    @property
    def accounts(self) -> set[int]:
        """The incoming order's account and those of every counterparty."""
        return {self.incoming.account_id} | {
            self._order(pk).account_id for f in self.fills for pk in (f.sell_id, f.buy_id)
        }


def _plan_match(incoming: Order) -> _MatchPlan:
    """Run the incoming standing order against the other side of the book (price, then time), under the book
    lock and with the crossing resting orders' rows locked, without settling anything."""
    other = Order.Side.BUY if incoming.side == Order.Side.SELL else Order.Side.SELL
    resting_rows = _open_orders(other).exclude(pk=incoming.pk)
    if incoming.side == Order.Side.BUY:
        resting_rows = resting_rows.filter(price__lte=incoming.price)
    else:
        resting_rows = resting_rows.filter(price__gte=incoming.price)
    rows = {
        o.pk: o for o in resting_rows.select_for_update(of=("self",)).select_related("account").order_by("pk")
    }
    book = me.Book.from_orders(_engine_order(o) for o in rows.values())
    return _MatchPlan(incoming, rows, book.add(_engine_order(incoming)))


def _execute_match(plan: _MatchPlan, actor: Any) -> list[Trade]:
    """Settle the planned fills (the caller holds the locks of every account in `plan.accounts`) and record
    what each order has left."""
    batch = []
    touched: dict[int, Order] = {}
    for f in plan.fills:
        sell, buy = plan._order(f.sell_id), plan._order(f.buy_id)
        batch.append(
            _Fill(
                Mode.CONTINUOUS,
                sell.number,
                sell.account,
                buy.account,
                f.quantity,
                _cny(f.price),
                _order_retire(buy),
                {"sell_order": sell, "buy_order": buy},
            )
        )
        for o in (sell, buy):
            o.remaining -= f.quantity
            touched[o.pk] = o
    trades = _settle_many(batch, actor)
    filled = [o for o in touched.values() if o.remaining == 0]
    if filled:  # one statement for all orders the sweep used up
        now = timezone.now()
        Order.objects.filter(pk__in=[o.pk for o in filled]).update(
            remaining=0, state=Order.State.FILLED, closed_at=now
        )
        for o in filled:
            o.state, o.closed_at = Order.State.FILLED, now
    for o in touched.values():  # at most the incoming order and the last resting one are partly filled
        if o.remaining:
            _save_fill(o)
    return trades


def _order_retire(o: Order) -> RetireRequest | None:
    if not o.retire_on_purchase:
        return None
    return RetireRequest(o.beneficiary, o.purpose)


def _save_fill(o: Order) -> None:
    if o.remaining == 0:
        o.state = Order.State.FILLED
        o.closed_at = timezone.now()
    o.save(update_fields=["remaining", "state", "closed_at"])


def _expiry(expires_at: datetime | None) -> datetime:
    now = timezone.now()
    if expires_at is None:
        return now + timedelta(days=int(param_value("market.order_days")))
    if expires_at <= now:
        raise DomainError("invalid_expiry", _("The expiry must be in the future."), field="expires_at")
    return expires_at


def _lot(blocks: Any) -> tuple[int | None, str, str]:
    """What a set of blocks offers as one lot: (vintage, methodology, owner type); the vintage and methodology
    when all share one (else None / ""), the owner type of their systems (a bundle's units are households'),
    "mixed" when they differ."""
    vintages: set[int] = set()
    methods: set[str] = set()
    kinds: set[str] = set()
    for vintage, method, app_kind, owner_type in blocks.values_list(
        "vintage", "methodology_code", "application__kind", "system__owner_type"
    ):
        vintages.add(vintage)
        methods.add(method)
        kinds.add(owner_type or ("household" if app_kind == "bundle" else ""))
    kinds.discard("")
    return (
        vintages.pop() if len(vintages) == 1 else None,
        methods.pop() if len(methods) == 1 else "",
        kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else ""),
    )


def _reserved_lot(lock: str) -> tuple[int | None, str, str]:
    return _lot(SerialBlock.objects.filter(locked_by=lock, state=SerialBlock.State.HELD))


def _reserve(
    account: RegistryAccount, quantity: int, lock: str, actor: Any, vintage: int | None, methodology: str
) -> str:
    """Reserve the units under `lock`; returns their owner type."""
    ledger.reserve_units(
        account=account,
        quantity=quantity,
        lock=lock,
        actor=actor,
        vintage=vintage,
        methodology=methodology or None,
    )
    return _reserved_lot(lock)[2]


def _describe_lot(row: Any, lot: tuple[int | None, str, str] | None = None) -> None:
    """A listing's vintage and methodology are those of its reserved units (or of `lot`) when they share one;
    its owner type that of their systems."""
    row.vintage, row.methodology_code, row.owner_type = lot or _reserved_lot(row.number)


def _refuse_own_cross(order: Order) -> None:
    if me.Book.from_orders(
        _engine_order(o)
        for o in _open_orders(Order.Side.BUY if order.side == Order.Side.SELL else Order.Side.SELL).filter(
            account=order.account
        )
    ).would_cross_own(_engine_order(order)):
        raise DomainError(
            "self_trade",
            _("This order would trade with your own open order on the other side: self-trades are refused."),
            field="price",
        )


# --- deadlocks ----------------------------------------------------------------------------------------------------

_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _retried(fn: Any) -> Any:
    """Run a market service again (up to three times) when PostgreSQL aborted its transaction to break a deadlock
    or a serialization failure. The services take every account they touch in one call, in id order, so this is a
    safety net (a listing whose units changed between its plan and its lock locks a new counterparty late). The
    aborted attempt left nothing behind (one transaction), so repeating it is safe. Inside a caller's transaction
    the caller decides."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            if connection.in_atomic_block or attempt == 2:
                return fn(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            except (OperationalError, psycopg.errors.OperationalError) as exc:
                state = getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "sqlstate", None)
                if state not in _RETRY_SQLSTATES:
                    raise
                time.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")

    return run


# --- listings and buy requests (挂牌点选, 求购) -----------------------------------------------------------------


class _Terms(NamedTuple):
    quantity: int
    price: Decimal
    expires_at: datetime


def _order_terms(
    account: RegistryAccount, actor: Any, quantity: Any, price: Any, expires_at: datetime | None
) -> _Terms:
    """The checks every standing order passes before anything is written: whole tonnes, a price on the tick and
    within today's limit, an actor who may trade for the account, an expiry in the future (default
    `market.order_days`)."""
    quantity = parse_quantity(quantity)
    price = parse_price(price)
    _require_actor(actor, account)
    _check_band(price)
    return _Terms(quantity, price, _expiry(expires_at))


def _new_order(
    side: str,
    account: RegistryAccount,
    actor: Any,
    terms: _Terms,
    **details: Any,
) -> Order:
    """A standing order (listing or buy request) with its number, all of its quantity still to trade."""
    return _number(
        Order,
        "MO",
        side=side,
        account=account,
        placed_by=actor,
        price=terms.price,
        quantity=terms.quantity,
        remaining=terms.quantity,
        expires_at=terms.expires_at,
        **details,
    )


@_retried
def do_place_listing(
    *,
    account: RegistryAccount,
    actor: Any,
    quantity: Any,
    price: Any,
    vintage: int | None = None,
    methodology_code: str = "",
    expires_at: datetime | None = None,
) -> tuple[Order, list[Trade]]:
    """A seller lists units at a price: they are reserved at once, then matched against standing buy requests
    (price, then time); any remainder waits for buyers.

    Locks: the fills are planned from the units the reservation will take (read without locks: their vintage,
    methodology and owner type decide which buy requests' filters they meet), then the seller's and every buyer's
    account are locked in one call, in id order, and the reservation re-selects the units under the lock. Should
    they differ from the plan (the account changed in between), the fills are planned again."""
    terms = _order_terms(account, actor, quantity, price, expires_at)
    with transaction.atomic():
        _book_lock()
        order = _new_order(
            Order.Side.SELL, account, actor, terms, vintage=vintage, methodology_code=methodology_code or ""
        )
        planned = _lot(
            SerialBlock.objects.filter(
                pk__in=ledger.preview_reservation(
                    account=account,
                    quantity=terms.quantity,
                    vintage=vintage,
                    methodology=methodology_code or None,
                )
            )
        )
        _describe_lot(order, planned)
        _refuse_own_cross(order)
        plan = _plan_match(order)
        ledger.lock_accounts(plan.accounts)
        _reserve(account, terms.quantity, order.number, actor, vintage, methodology_code)
        _describe_lot(order)
        if (order.vintage, order.methodology_code, order.owner_type) != planned:
            _refuse_own_cross(order)
            plan = _plan_match(order)
            # a rare race: only accounts not yet held are locked here (a deadlock victim is run again)
            ledger.lock_accounts(plan.accounts)
        order.save(update_fields=["owner_type", "vintage", "methodology_code"])
        trades = _execute_match(plan, actor)
        _release_if_done(order, actor)
    return order, trades


@_retried
def do_place_buy_request(
    *,
    account: RegistryAccount,
    actor: Any,
    quantity: Any,
    price: Any,
    vintages: Iterable[int] = (),
    methodologies: Iterable[str] = (),
    owner_types: Iterable[str] = (),
    retire: RetireRequest | None = None,
    expires_at: datetime | None = None,
) -> tuple[Order, list[Trade]]:
    """A buyer posts a quantity, a maximum price and filters: matched at once against listings (lowest price,
    then earliest), the remainder stands as a buy request sellers can accept.

    Locks: the fills are planned first, then the buyer's and every seller's account are locked in one call, in
    id order; the offset limit is checked under that lock (concurrent bids and deals of the account queue on it)."""
    terms = _order_terms(account, actor, quantity, price, expires_at)
    with transaction.atomic():
        _book_lock()
        order = _new_order(
            Order.Side.BUY,
            account,
            actor,
            terms,
            want_vintages=sorted({int(v) for v in vintages}),
            want_methodologies=sorted(set(methodologies)),
            want_owner_types=sorted(set(owner_types)),
            retire_on_purchase=retire is not None,
            beneficiary=retire.beneficiary if retire else "",
            purpose=retire.purpose if retire else "",
        )
        _refuse_own_cross(order)
        plan = _plan_match(order)
        ledger.lock_accounts(plan.accounts)
        check_offset_demand(account, terms.quantity, retire, placed=order)
        trades = _execute_match(plan, actor)
    return order, trades


@_retried
def do_take_listing(
    *,
    listing: Order,
    account: RegistryAccount,
    actor: Any,
    quantity: Any,
    retire: RetireRequest | None = None,
) -> Trade:
    """挂牌点选: a buyer takes all or part of a chosen listing at its price."""
    quantity = parse_quantity(quantity)
    _require_actor(actor, account)
    with transaction.atomic():
        # the listing row only: its seller's account is locked with the buyer's below, in the ledger's order
        listing = Order.objects.select_for_update(of=("self",)).select_related("account").get(pk=listing.pk)
        _check_open(listing, Order.Side.SELL)
        if listing.account_id == account.pk:
            raise DomainError("self_trade", _("You cannot buy your own listing: self-trades are refused."))
        if quantity > listing.remaining:
            raise DomainError(
                "exceeds_listing",
                _("Listing %(number)s has %(remaining)d t left; %(asked)d t asked.")
                % {"number": listing.number, "remaining": listing.remaining, "asked": quantity},
                field="quantity",
            )
        ledger.lock_accounts([account.pk, listing.account_id])  # both at once, in id order: no deadlock
        check_offset_demand(account, quantity, retire)
        trade = _settle(
            mode=Mode.LISTING,
            lock=listing.number,
            seller=listing.account,
            buyer=account,
            quantity=quantity,
            price=listing.price,
            actor=actor,
            retire=retire,
            refs={"sell_order": listing},
        )
        listing.remaining -= quantity
        _save_fill(listing)
    return trade


@_retried
def do_accept_buy_request(
    *,
    order: Order,
    account: RegistryAccount,
    actor: Any,
    quantity: Any,
    vintage: int | None = None,
    methodology_code: str = "",
) -> Trade:
    """A seller sells directly into a standing buy request at its price, with units that meet its filters."""
    quantity = parse_quantity(quantity)
    _require_actor(actor, account)
    with transaction.atomic():
        # the buy request's row only: its buyer's account is locked with the seller's below, in the ledger's order
        order = Order.objects.select_for_update(of=("self",)).select_related("account").get(pk=order.pk)
        _check_open(order, Order.Side.BUY)
        if order.account_id == account.pk:
            raise DomainError(
                "self_trade", _("You cannot sell into your own buy request: self-trades are refused.")
            )
        if quantity > order.remaining:
            raise DomainError(
                "exceeds_request",
                _("Buy request %(number)s wants %(remaining)d t more; %(asked)d t offered.")
                % {"number": order.number, "remaining": order.remaining, "asked": quantity},
                field="quantity",
            )
        if order.want_vintages and vintage is None and len(order.want_vintages) == 1:
            vintage = int(order.want_vintages[0])
        if order.want_methodologies and not methodology_code and len(order.want_methodologies) == 1:
            methodology_code = order.want_methodologies[0]
        ledger.lock_accounts([account.pk, order.account_id])  # both at once, in id order: no deadlock
        lock = f"{order.number}/{uuid4().hex[:8]}"
        owner_type = _reserve(account, quantity, lock, actor, vintage, methodology_code)
        lots = set(
            SerialBlock.objects.filter(locked_by=lock, state=SerialBlock.State.HELD).values_list(
                "vintage", "methodology_code"
            )
        )
        filters = _engine_order(order).filters
        assert filters is not None
        for v, m in lots:
            if not filters.accepts(me.Lot(vintage=v, methodology=m, owner_type=owner_type)):
                raise DomainError(
                    "filters_not_met",
                    _(
                        "Buy request %(number)s does not accept your units of vintage %(vintage)s, "
                        "methodology %(methodology)s, owner type %(owner)s."
                    )
                    % {"number": order.number, "vintage": v, "methodology": m, "owner": owner_type},
                    field="vintage",
                )
        trade = _settle(
            mode=Mode.CONTINUOUS,
            lock=lock,
            seller=account,
            buyer=order.account,
            quantity=quantity,
            price=order.price,
            actor=actor,
            retire=_order_retire(order),
            refs={"buy_order": order},
        )
        order.remaining -= quantity
        _save_fill(order)
    return trade


def _check_open(order: Order, side: str) -> None:
    if order.side != side:
        raise DomainError("wrong_side", _("Order %(number)s is not of that kind.") % {"number": order.number})
    if order.state != Order.State.OPEN or (order.expires_at and order.expires_at <= timezone.now()):
        raise DomainError(
            "order_closed",
            _("Order %(number)s is no longer open (%(state)s).")
            % {"number": order.number, "state": order.get_state_display()},
        )


def _release_if_done(order: Order, actor: Any, reason: str = "filled") -> int:
    if order.side == Order.Side.SELL and order.state != Order.State.OPEN:
        return ledger.release_units(account=order.account, lock=order.number, actor=actor, reason=reason)
    return 0


@_retried
def do_cancel_order(*, order: Order, actor: Any, reason: str = "") -> Order:
    """The owner (or an administrator) withdraws an open order; a listing's remaining units are freed."""
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("account").get(pk=order.pk)
        if not (ledger.may_act_for(actor, order.account) or getattr(actor, "is_registry_admin", False)):
            raise DomainError(
                "not_allowed", _("You may not cancel order %(number)s.") % {"number": order.number}
            )
        if order.state != Order.State.OPEN:
            raise DomainError(
                "order_closed",
                _("Order %(number)s is no longer open (%(state)s).")
                % {"number": order.number, "state": order.get_state_display()},
            )
        order.state = Order.State.CANCELLED
        order.closed_at = timezone.now()
        order.close_reason = (reason or "").strip()[:200]
        order.save(update_fields=["state", "closed_at", "close_reason"])
        if order.side == Order.Side.SELL:
            ledger.release_units(account=order.account, lock=order.number, actor=actor, reason="cancelled")
    return order


def do_expire_orders(*, actor: Any = None, now: datetime | None = None) -> list[Order]:
    """Close orders past their expiry and free their units (scheduled: `lowcarbon market expire-orders`)."""
    now = now or timezone.now()
    done = []
    for pk in Order.objects.filter(state=Order.State.OPEN, expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            order = Order.objects.select_for_update().select_related("account").get(pk=pk)
            if order.state != Order.State.OPEN:
                continue
            order.state = Order.State.EXPIRED
            order.closed_at = now
            order.save(update_fields=["state", "closed_at"])
            if order.side == Order.Side.SELL:
                ledger.release_units(account=order.account, lock=order.number, actor=actor, reason="expired")
            _notify_holders(
                order.account, "order_expired", {"number": order.number, "quantity": order.remaining}
            )
            done.append(order)
    return done


# --- auctions (竞价) ---------------------------------------------------------------------------------------------


@_retried
def do_create_auction(
    *,
    account: RegistryAccount,
    actor: Any,
    quantity: Any,
    floor_price: Any,
    closes_at: datetime,
    opens_at: datetime | None = None,
    vintage: int | None = None,
    methodology_code: str = "",
) -> Auction:
    quantity = parse_quantity(quantity)
    floor = parse_price(floor_price, "floor_price")
    _require_actor(actor, account)
    now = timezone.now()
    opens_at = opens_at or now
    if closes_at <= max(opens_at, now):
        raise DomainError(
            "invalid_window",
            _("The bidding window must close after it opens and in the future."),
            field="closes_at",
        )
    with transaction.atomic():
        auction = _number(
            Auction,
            "AU",
            account=account,
            placed_by=actor,
            quantity=quantity,
            floor_price=floor,
            opens_at=opens_at,
            closes_at=closes_at,
            vintage=vintage,
            methodology_code=methodology_code or "",
        )
        _reserve(account, quantity, auction.number, actor, vintage, methodology_code)
        _describe_lot(auction)
        auction.save(update_fields=["owner_type", "vintage", "methodology_code"])
    return auction


@_retried
def do_place_bid(
    *,
    auction: Auction,
    account: RegistryAccount,
    actor: Any,
    price: Any,
    quantity: Any,
    retire: RetireRequest | None = None,
) -> Bid:
    quantity = parse_quantity(quantity)
    price = parse_price(price)
    _require_actor(actor, account)
    with transaction.atomic():
        auction = Auction.objects.select_for_update().get(pk=auction.pk)
        now = timezone.now()
        if auction.state != Auction.State.OPEN or not (auction.opens_at <= now < auction.closes_at):
            raise DomainError(
                "auction_not_open",
                _("Auction %(number)s is not open for bids now.") % {"number": auction.number},
            )
        if auction.account_id == account.pk:
            raise DomainError("self_trade", _("You cannot bid in your own auction: self-trades are refused."))
        if price < auction.floor_price:
            raise DomainError(
                "below_floor",
                _("The bid %(price)s CNY/t is below the floor price %(floor)s CNY/t.")
                % {"price": price, "floor": auction.floor_price},
                field="price",
            )
        if quantity > auction.quantity:
            raise DomainError(
                "exceeds_lot",
                _("The lot is %(lot)d t; %(asked)d t asked.") % {"lot": auction.quantity, "asked": quantity},
                field="quantity",
            )
        ledger.lock_accounts([account.pk])
        check_offset_demand(account, quantity, retire)
        return Bid.objects.create(
            auction=auction,
            account=account,
            placed_by=actor,
            price=price,
            quantity=quantity,
            retire_on_purchase=retire is not None,
            beneficiary=retire.beneficiary if retire else "",
            purpose=retire.purpose if retire else "",
        )


@_retried
def do_close_auction(auction: Auction, *, actor: Any, now: datetime | None = None) -> Auction:
    """Allocate the lot when the window has closed: highest bids first, ties by time, the marginal bid partly;
    settle each winner at its bid, free the unsold units, publish the result."""
    now = now or timezone.now()
    with transaction.atomic():
        # the auction's row only: the seller's and the winners' accounts are locked together when settling
        auction = Auction.objects.select_for_update(of=("self",)).select_related("account").get(pk=auction.pk)
        if auction.state != Auction.State.OPEN:
            return auction
        if auction.closes_at > now:
            raise DomainError(
                "auction_still_open",
                _("Auction %(number)s closes at %(at)s.")
                % {"number": auction.number, "at": auction.closes_at},
            )
        bids = list(auction.bids.filter(state=Bid.State.OPEN).select_related("account").order_by("pk"))
        result = me.allocate_auction(
            auction.quantity,
            _fen(auction.floor_price),
            [
                me.Bid(id=b.pk, account=b.account_id, price=_fen(b.price), quantity=b.quantity, seq=b.pk)
                for b in bids
            ],
            seller_account=auction.account_id,
        )
        got = {a.bid_id: a.quantity for a in result.allocations}
        by_id = {b.pk: b for b in bids}
        _settle_many(
            [
                _Fill(
                    Mode.AUCTION,
                    auction.number,
                    auction.account,
                    by_id[a.bid_id].account,
                    a.quantity,
                    _cny(a.price),
                    RetireRequest(by_id[a.bid_id].beneficiary, by_id[a.bid_id].purpose)
                    if by_id[a.bid_id].retire_on_purchase
                    else None,
                    {"auction": auction, "bid": by_id[a.bid_id]},
                )
                for a in result.allocations
            ],
            actor or auction.placed_by,  # the scheduled run settles on the seller's standing instruction
        )
        below = set(result.below_floor)
        for b in bids:
            b.allocated = got.get(b.pk, 0)
            if b.pk in below:
                b.state = Bid.State.BELOW_FLOOR
            elif b.allocated == b.quantity:
                b.state = Bid.State.WON
            elif b.allocated:
                b.state = Bid.State.PARTLY
            else:
                b.state = Bid.State.LOST
            b.save(update_fields=["allocated", "state"])
            _notify_holders(
                b.account,
                "auction_won" if b.allocated else "auction_lost",
                {"number": auction.number, "quantity": b.allocated},
                reverse("market:auction", args=[auction.number]),
            )
        ledger.release_units(
            account=auction.account, lock=auction.number, actor=actor, reason="auction closed"
        )
        auction.state = Auction.State.CLOSED
        auction.sold = result.sold
        auction.clearing_price = _cny(result.clearing_price) if result.clearing_price is not None else None
        auction.closed_at = now
        auction.save(update_fields=["state", "sold", "clearing_price", "closed_at"])
        _notify_holders(
            auction.account,
            "auction_closed",
            {"number": auction.number, "sold": result.sold, "unsold": result.unsold},
            reverse("market:auction", args=[auction.number]),
        )
    return auction


def do_close_auctions(*, actor: Any = None, now: datetime | None = None) -> list[Auction]:
    """Scheduled run (`lowcarbon market close-auctions`): close every auction whose window has ended."""
    now = now or timezone.now()
    due = Auction.objects.filter(state=Auction.State.OPEN, closes_at__lte=now).order_by("closes_at", "pk")
    return [do_close_auction(a, actor=actor, now=now) for a in due]


@_retried
def do_cancel_auction(*, auction: Auction, actor: Any) -> Auction:
    with transaction.atomic():
        auction = Auction.objects.select_for_update().select_related("account").get(pk=auction.pk)
        if not (ledger.may_act_for(actor, auction.account) or getattr(actor, "is_registry_admin", False)):
            raise DomainError(
                "not_allowed", _("You may not cancel auction %(number)s.") % {"number": auction.number}
            )
        if auction.state != Auction.State.OPEN:
            raise DomainError(
                "auction_closed", _("Auction %(number)s is closed.") % {"number": auction.number}
            )
        if auction.bids.filter(state=Bid.State.OPEN).exists():
            raise DomainError(
                "auction_has_bids",
                _("Auction %(number)s already has bids; it closes at the end of its window.")
                % {"number": auction.number},
            )
        auction.state = Auction.State.CANCELLED
        auction.closed_at = timezone.now()
        auction.save(update_fields=["state", "closed_at"])
        ledger.release_units(account=auction.account, lock=auction.number, actor=actor, reason="cancelled")
    return auction


# --- negotiated deals (协议转让) ---------------------------------------------------------------------------------


@_retried
def do_propose_deal(
    *,
    seller: RegistryAccount,
    buyer: RegistryAccount,
    actor: Any,
    quantity: Any,
    price: Any,
    vintage: int | None = None,
    methodology_code: str = "",
    note: str = "",
) -> Deal:
    """The seller records the agreed terms and reserves the units; the deal is a trade once the buyer confirms."""
    quantity = parse_quantity(quantity)
    price = parse_price(price)
    _require_actor(actor, seller)
    if seller.pk == buyer.pk:
        raise DomainError(
            "self_trade", _("A deal needs two different accounts: self-trades are refused."), field="buyer"
        )
    _check_band(price, "negotiated")
    with transaction.atomic():
        deal = _number(
            Deal,
            "ND",
            seller=seller,
            buyer=buyer,
            proposed_by=actor,
            quantity=quantity,
            price=price,
            vintage=vintage,
            methodology_code=methodology_code or "",
            note=(note or "").strip(),
        )
        _reserve(seller, quantity, deal.number, actor, vintage, methodology_code)
        _notify_holders(
            buyer,
            "deal_proposed",
            {"number": deal.number, "quantity": quantity, "price": f"{price:.2f}"},
            reverse("market:deal", args=[deal.number]),
        )
    return deal


@_retried
def do_confirm_deal(*, deal: Deal, actor: Any, retire: RetireRequest | None = None) -> Trade:
    with transaction.atomic():
        # the deal's row only (locking the joined accounts here would take them in join order, not id order)
        deal = Deal.objects.select_for_update(of=("self",)).select_related("seller", "buyer").get(pk=deal.pk)
        _require_actor(actor, deal.buyer)
        if deal.state != Deal.State.PROPOSED:
            raise DomainError(
                "deal_closed",
                _("Deal %(number)s is %(state)s.")
                % {"number": deal.number, "state": deal.get_state_display()},
            )
        # both accounts the settlement touches, in one call (id order): the buyer's alone first could deadlock
        ledger.lock_accounts([deal.seller_id, deal.buyer_id])
        check_offset_demand(deal.buyer, deal.quantity, retire)
        trade = _settle(
            mode=Mode.NEGOTIATED,
            lock=deal.number,
            seller=deal.seller,
            buyer=deal.buyer,
            quantity=deal.quantity,
            price=deal.price,
            actor=actor,
            retire=retire,
            refs={"deal": deal},
        )
        deal.state = Deal.State.CONFIRMED
        deal.confirmed_by = actor
        deal.closed_at = timezone.now()
        if retire is not None:
            deal.retire_on_purchase, deal.beneficiary, deal.purpose = True, retire.beneficiary, retire.purpose
        deal.save()
    return trade


@_retried
def do_close_deal(*, deal: Deal, actor: Any, decline: bool) -> Deal:
    """The buyer declines, or the seller cancels, a proposed deal: the units are freed."""
    with transaction.atomic():
        # the deal's row only (locking the joined accounts here would take them in join order, not id order)
        deal = Deal.objects.select_for_update(of=("self",)).select_related("seller", "buyer").get(pk=deal.pk)
        side = deal.buyer if decline else deal.seller
        _require_actor(actor, side)
        if deal.state != Deal.State.PROPOSED:
            raise DomainError(
                "deal_closed",
                _("Deal %(number)s is %(state)s.")
                % {"number": deal.number, "state": deal.get_state_display()},
            )
        deal.state = Deal.State.DECLINED if decline else Deal.State.CANCELLED
        deal.closed_at = timezone.now()
        deal.save(update_fields=["state", "closed_at"])
        ledger.release_units(account=deal.seller, lock=deal.number, actor=actor, reason=deal.state)
        if decline:
            _notify_holders(
                deal.seller,
                "deal_declined",
                {"number": deal.number},
                reverse("market:deal", args=[deal.number]),
            )
    return deal


# --- after the trade ---------------------------------------------------------------------------------------------


def do_record_payment(*, trade: Trade, actor: Any, reference: str) -> Trade:
    """Money moves outside the platform; the seller (or an administrator) records its reference."""
    reference = (reference or "").strip()
    if not reference or len(reference) > 100:
        raise DomainError(
            "invalid_payment_reference",
            _("Give the payment reference (at most 100 characters)."),
            field="payment_reference",
        )
    with transaction.atomic():
        trade = Trade.objects.select_for_update().select_related("seller_account").get(pk=trade.pk)
        if not (
            ledger.may_act_for(actor, trade.seller_account) or getattr(actor, "is_registry_admin", False)
        ):
            raise DomainError("not_allowed", _("Only the seller may record the payment."))
        trade.payment_reference = reference
        trade.payment_recorded_at = timezone.now()
        trade.save(update_fields=["payment_reference", "payment_recorded_at"])
    return trade


def do_set_offset_profile(
    *,
    account: RegistryAccount,
    year: Any,
    verified_emissions_t: Any,
    annual_cap_t: Any,
    note: str,
    actor: Any,
) -> OffsetProfile:
    if not getattr(actor, "is_registry_admin", False):
        raise DomainError("not_allowed", _("Only a registry administrator records verified emissions."))
    try:
        year = int(year)
        emissions = int(verified_emissions_t)
        cap = int(annual_cap_t) if str(annual_cap_t or "").strip() else None
    except (TypeError, ValueError):
        raise DomainError(
            "invalid_number",
            _("Year, emissions and cap must be whole numbers."),
            field="verified_emissions_t",
        )
    if not 2013 <= year <= 2100:
        raise DomainError(
            "invalid_year", _("The compliance year must be between 2013 and 2100."), field="year"
        )
    if emissions < 1 or (cap is not None and cap < 0):
        raise DomainError(
            "invalid_number",
            _("Emissions must be positive and the cap not negative."),
            field="verified_emissions_t",
        )
    with transaction.atomic():
        profile, _created = OffsetProfile.objects.update_or_create(
            account=account,
            year=year,
            defaults={
                "verified_emissions_t": emissions,
                "annual_cap_t": cap,
                "note": (note or "").strip()[:200],
                "recorded_by": actor,
            },
        )
    return profile


def do_review_alert(*, alert: Alert, actor: Any, note: str) -> Alert:
    if not getattr(actor, "is_registry_admin", False):
        raise DomainError("not_allowed", _("Only a registry administrator reviews market alerts."))
    note = (note or "").strip()
    if not note:
        raise DomainError("note_required", _("Say what the review found."), field="note")
    alert.reviewed_by = actor
    alert.reviewed_at = timezone.now()
    alert.review_note = note
    alert.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    return alert


def depth(levels: int = 10) -> dict[str, list[tuple[Decimal, int, int]]]:
    """Aggregated order book: price levels with total quantity and number of orders, best first."""
    now = timezone.now()
    rows = Order.objects.filter(state=Order.State.OPEN).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    book = me.Book.from_orders(_engine_order(o) for o in rows)
    return {
        side: [(_cny(p), q, n) for p, q, n in book.depth(side, levels)]  # type: ignore[arg-type]
        for side in ("buy", "sell")
    }


def indicative_value(accounts: Sequence[RegistryAccount]) -> dict[str, Any]:
    """Held units × the latest close: indicative, not a quote."""
    price = reference_price(timezone.localdate() + timedelta(days=1))
    units = sum(ledger.balance(a) for a in accounts)
    return {"units": units, "price": price, "value": (price * units).quantize(Decimal("0.01"))}
