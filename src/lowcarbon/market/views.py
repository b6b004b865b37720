"""Market pages: the board (public), placing listings, buy requests, auctions and deals, my market, and the
administrator's surveillance. Thin: forms check shape, market.services decides and changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.market import forms as mf
from lowcarbon.market import services
from lowcarbon.market.models import Alert, Auction, Bid, Deal, OffsetProfile, Order, Trade
from lowcarbon.registry import ledger
from lowcarbon.registry.ledger_views import my_accounts, public_label
from lowcarbon.registry.models import RegistryAccount, SerialBlock


def _accounts(user: Any) -> list[RegistryAccount]:
    return my_accounts(user) if user.is_authenticated else []


def _choices(accounts: list[RegistryAccount]) -> list[tuple[str, str]]:
    return [
        (a.number, f"{a.number} · {a.holder_name} · " + _("%(n)d t available") % {"n": ledger.available(a)})
        for a in accounts
    ]


def _pick(accounts: list[RegistryAccount], number: str) -> RegistryAccount:
    for a in accounts:
        if a.number == number:
            return a
    raise Http404


def _vintages(accounts: list[RegistryAccount]) -> list[int]:
    return sorted(
        set(
            SerialBlock.objects.filter(
                account__in=accounts, state=SerialBlock.State.HELD, locked_by=""
            ).values_list("vintage", flat=True)
        )
    )


def _fail(form: Any, exc: DomainError) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


def _retire_from(form: Any) -> services.RetireRequest | None:
    d = form.cleaned_data
    return services.retire_request(
        bool(d.get("retire_on_purchase")), d.get("beneficiary", ""), d.get("purpose", "")
    )


def _deadline(value: Any) -> Any:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


# --- the board ------------------------------------------------------------------------------------------------------


def board(request: HttpRequest) -> HttpResponse:
    """Public market page: listings and buy requests (depth), open auctions, recent trades, daily close chart."""
    now = timezone.now()
    open_q = Q(state=Order.State.OPEN) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    listings = (
        Order.objects.filter(open_q, side=Order.Side.SELL)
        .select_related("account__owner_org")
        .order_by("price", "pk")
    )
    requests_ = (
        Order.objects.filter(open_q, side=Order.Side.BUY)
        .select_related("account__owner_org")
        .order_by("-price", "pk")
    )
    auctions = Auction.objects.filter(state=Auction.State.OPEN).order_by("closes_at")
    closed_auctions = Auction.objects.filter(state=Auction.State.CLOSED).order_by("-closed_at")[:5]
    trades = Trade.objects.order_by("-executed_at", "-pk")[:20]
    today = timezone.localdate()
    series = services.closes(today)[-90:]
    ref, low, high = services.price_band()
    chart = {
        "days": [r["day"].isoformat() for r in series],
        "close": [float(r["close"]) if r["close"] is not None else None for r in series],
        "volume": [r["volume_t"] for r in series],
    }
    return render(
        request,
        "market/board.html",
        {
            "listings": [(o, public_label(o.account)) for o in listings[:50]],
            "requests": [(o, public_label(o.account)) for o in requests_[:50]],
            "depth": services.depth(),
            "auctions": auctions,
            "closed_auctions": closed_auctions,
            "trades": trades,
            "series": list(reversed(series[-10:])),
            "chart": chart,
            "reference": ref,
            "low": low,
            "high": high,
            "data_time": now,
        },
    )


# --- placing ----------------------------------------------------------------------------------------------------


@login_required
def new_listing(request: HttpRequest) -> HttpResponse:
    accounts = _accounts(request.user)
    form = mf.ListingForm(request.POST or None, accounts=_choices(accounts), vintages=_vintages(accounts))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            order, trades = services.do_place_listing(
                account=_pick(accounts, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                price=d["price"],
                vintage=d["vintage"],
                expires_at=_deadline(d["expires_at"]),
            )
        except DomainError as exc:
            _fail(form, exc)
        else:
            _say_filled(request, order, trades)
            return redirect("market:order", order.number)
    return _form_page(request, form, _("List units for sale (挂牌)"), band=True)


@login_required
def new_buy_request(request: HttpRequest) -> HttpResponse:
    accounts = _accounts(request.user)
    form = mf.BuyRequestForm(request.POST or None, accounts=_choices(accounts))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            order, trades = services.do_place_buy_request(
                account=_pick(accounts, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                price=d["price"],
                vintages=d["vintages"],
                owner_types=d["owner_types"],
                retire=_retire_from(form),
                expires_at=_deadline(d["expires_at"]),
            )
        except DomainError as exc:
            _fail(form, exc)
        else:
            _say_filled(request, order, trades)
            return redirect("market:order", order.number)
    return _form_page(request, form, _("Post a buy request (求购)"), band=True)


def _say_filled(request: HttpRequest, order: Order, trades: list[Trade]) -> None:
    if trades:
        messages.success(
            request,
            _("Order %(number)s placed; %(filled)d t traded at once in %(n)d trade(s), %(left)d t stand.")
            % {
                "number": order.number,
                "filled": sum(t.quantity for t in trades),
                "n": len(trades),
                "left": order.remaining,
            },
        )
    else:
        messages.success(request, _("Order %(number)s placed.") % {"number": order.number})


def _form_page(
    request: HttpRequest, form: Any, title: str, band: bool = False, extra: dict[str, Any] | None = None
) -> HttpResponse:
    context: dict[str, Any] = {"form": form, "title": title, **(extra or {})}
    if band:
        context["reference"], context["low"], context["high"] = services.price_band()
    return render(request, "market/form.html", context)


def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    """A listing or buy request: its terms and fills (public), with the take / accept form for others."""
    order = get_object_or_404(Order.objects.select_related("account__owner_org"), number=number)
    accounts = _accounts(request.user)
    mine = any(a.pk == order.account_id for a in accounts)
    form = None
    if request.user.is_authenticated and not mine and order.state == Order.State.OPEN:
        others = [a for a in accounts if a.pk != order.account_id]
        if order.side == Order.Side.SELL:
            form = mf.TakeForm(
                request.POST or None, accounts=_choices(others), initial={"quantity": order.remaining}
            )
        else:
            form = mf.AcceptForm(
                request.POST or None, accounts=_choices(others), initial={"quantity": order.remaining}
            )
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            try:
                if order.side == Order.Side.SELL:
                    trade = services.do_take_listing(
                        listing=order,
                        account=_pick(others, d["account"]),
                        actor=request.user,
                        quantity=d["quantity"],
                        retire=_retire_from(form),
                    )
                else:
                    trade = services.do_accept_buy_request(
                        order=order,
                        account=_pick(others, d["account"]),
                        actor=request.user,
                        quantity=d["quantity"],
                    )
            except DomainError as exc:
                _fail(form, exc)
            else:
                messages.success(
                    request,
                    _("Trade %(number)s settled: %(quantity)d t at %(price)s CNY/t.")
                    % {"number": trade.number, "quantity": trade.quantity, "price": trade.price},
                )
                return redirect("market:trade", trade.number)
    elif request.method == "POST":
        raise Http404
    fills = Trade.objects.filter(Q(sell_order=order) | Q(buy_order=order)).order_by("executed_at", "pk")
    return render(
        request,
        "market/order.html",
        {
            "order": order,
            "holder": public_label(order.account),
            "mine": mine,
            "form": form,
            "fills": fills,
            "reserved": ledger.reserved(order.number) if order.side == Order.Side.SELL else None,
        },
    )


@login_required
@require_POST
def cancel_order(request: HttpRequest, number: str) -> HttpResponse:
    order = get_object_or_404(Order.objects.select_related("account"), number=number)
    if not (ledger.may_act_for(request.user, order.account) or request.user.is_registry_admin):
        raise Http404
    try:
        services.do_cancel_order(order=order, actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Order %(number)s cancelled.") % {"number": number})
    return redirect("market:order", number)


# --- auctions -----------------------------------------------------------------------------------------------------


@login_required
def new_auction(request: HttpRequest) -> HttpResponse:
    accounts = _accounts(request.user)
    initial = {
        "closes_at": (timezone.localtime() + timedelta(days=2)).replace(second=0, microsecond=0, tzinfo=None)
    }
    form = mf.AuctionForm(
        request.POST or None, accounts=_choices(accounts), vintages=_vintages(accounts), initial=initial
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            auction = services.do_create_auction(
                account=_pick(accounts, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                floor_price=d["floor_price"],
                closes_at=_deadline(d["closes_at"]),
                vintage=d["vintage"],
            )
        except DomainError as exc:
            _fail(form, exc)
        else:
            messages.success(request, _("Auction %(number)s is open for bids.") % {"number": auction.number})
            return redirect("market:auction", auction.number)
    return _form_page(request, form, _("Offer a lot by auction (竞价)"))


def auction_detail(request: HttpRequest, number: str) -> HttpResponse:
    """Terms, the number of sealed bids while open; the published allocation after the close."""
    auction = get_object_or_404(Auction.objects.select_related("account__owner_org"), number=number)
    accounts = _accounts(request.user)
    mine = any(a.pk == auction.account_id for a in accounts)
    now = timezone.now()
    form = None
    if (
        request.user.is_authenticated
        and not mine
        and auction.state == Auction.State.OPEN
        and auction.opens_at <= now < auction.closes_at
    ):
        others = [a for a in accounts if a.pk != auction.account_id]
        form = mf.BidForm(
            request.POST or None, accounts=_choices(others), initial={"price": auction.floor_price}
        )
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            try:
                bid = services.do_place_bid(
                    auction=auction,
                    account=_pick(others, d["account"]),
                    actor=request.user,
                    price=d["price"],
                    quantity=d["quantity"],
                    retire=_retire_from(form),
                )
            except DomainError as exc:
                _fail(form, exc)
            else:
                messages.success(
                    request,
                    _("Your sealed bid of %(quantity)d t at %(price)s CNY/t is in.")
                    % {"quantity": bid.quantity, "price": bid.price},
                )
                return redirect("market:auction", number)
    elif request.method == "POST":
        raise Http404
    my_bids = Bid.objects.filter(auction=auction, account__in=accounts).order_by("pk") if accounts else []
    published = auction.state == Auction.State.CLOSED
    return render(
        request,
        "market/auction.html",
        {
            "auction": auction,
            "holder": public_label(auction.account),
            "mine": mine,
            "form": form,
            "bid_count": auction.bids.exclude(state=Bid.State.WITHDRAWN).count(),
            "my_bids": my_bids,
            "published": published,
            "allocations": (
                [
                    (b, public_label(b.account))
                    for b in auction.bids.filter(allocated__gt=0)
                    .select_related("account__owner_org")
                    .order_by("-price", "pk")
                ]
                if published
                else []
            ),
            "trades": auction.trades.order_by("pk") if published else [],
        },
    )


@login_required
@require_POST
def cancel_auction(request: HttpRequest, number: str) -> HttpResponse:
    auction = get_object_or_404(Auction.objects.select_related("account"), number=number)
    if not (ledger.may_act_for(request.user, auction.account) or request.user.is_registry_admin):
        raise Http404
    try:
        services.do_cancel_auction(auction=auction, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("market:auction", number)


@login_required
@require_POST
def close_auction(request: HttpRequest, number: str) -> HttpResponse:
    """Administrator: run the close of one auction whose window has ended (the scheduled job does it too)."""
    if not request.user.is_registry_admin:
        raise Http404
    auction = get_object_or_404(Auction, number=number)
    try:
        services.do_close_auction(auction, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("market:auction", number)


# --- negotiated deals ---------------------------------------------------------------------------------------------


@login_required
def new_deal(request: HttpRequest) -> HttpResponse:
    accounts = _accounts(request.user)
    form = mf.DealForm(request.POST or None, accounts=_choices(accounts), vintages=_vintages(accounts))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        buyer = RegistryAccount.objects.filter(number=d["buyer"].strip()).first()
        if buyer is None:
            form.add_error("buyer", _("There is no registry account %(number)s.") % {"number": d["buyer"]})
        else:
            try:
                deal = services.do_propose_deal(
                    seller=_pick(accounts, d["account"]),
                    buyer=buyer,
                    actor=request.user,
                    quantity=d["quantity"],
                    price=d["price"],
                    vintage=d["vintage"],
                    note=d["note"],
                )
            except DomainError as exc:
                _fail(form, exc)
            else:
                messages.success(
                    request,
                    _("Deal %(number)s proposed; the buyer is asked to confirm.") % {"number": deal.number},
                )
                return redirect("market:deal", deal.number)
    band = services.price_band("negotiated")
    return _form_page(
        request,
        form,
        _("Record a negotiated deal (协议转让)"),
        extra={"reference": band[0], "low": band[1], "high": band[2]},
    )


@login_required
def deal_detail(request: HttpRequest, number: str) -> HttpResponse:
    deal = get_object_or_404(
        Deal.objects.select_related("seller__owner_org", "buyer__owner_org"), number=number
    )
    accounts = _accounts(request.user)
    is_seller = any(a.pk == deal.seller_id for a in accounts)
    is_buyer = any(a.pk == deal.buyer_id for a in accounts)
    if not (is_seller or is_buyer or request.user.is_registry_admin):
        raise Http404
    form = (
        mf.ConfirmDealForm(request.POST or None) if is_buyer and deal.state == Deal.State.PROPOSED else None
    )
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "confirm" and form is not None and form.is_valid():
                trade = services.do_confirm_deal(deal=deal, actor=request.user, retire=_retire_from(form))
                messages.success(
                    request, _("Deal confirmed: trade %(number)s settled.") % {"number": trade.number}
                )
                return redirect("market:trade", trade.number)
            if action in ("decline", "cancel"):
                services.do_close_deal(deal=deal, actor=request.user, decline=action == "decline")
                messages.success(
                    request, _("Deal %(number)s closed; the units are free again.") % {"number": number}
                )
                return redirect("market:deal", number)
        except DomainError as exc:
            if form is not None:
                _fail(form, exc)
            else:
                messages.error(request, exc.message)
    return render(
        request,
        "market/deal.html",
        {
            "deal": deal,
            "seller": public_label(deal.seller),
            "buyer": public_label(deal.buyer),
            "is_seller": is_seller,
            "is_buyer": is_buyer,
            "form": form,
            "trade": deal.trades.first(),
        },
    )


# --- trades, my market, administration ---------------------------------------------------------------------------


def trade_detail(request: HttpRequest, number: str) -> HttpResponse:
    """A trade's public record (accounts as the public sees them) and, for the seller, the payment reference."""
    trade = get_object_or_404(
        Trade.objects.select_related(
            "seller_account__owner_org", "buyer_account__owner_org", "transfer", "retirement"
        ),
        number=number,
    )
    accounts = _accounts(request.user)
    is_seller = any(a.pk == trade.seller_account_id for a in accounts)
    is_party = (
        is_seller
        or any(a.pk == trade.buyer_account_id for a in accounts)
        or getattr(request.user, "is_registry_admin", False)
    )
    form = (
        mf.PaymentForm(request.POST or None, initial={"payment_reference": trade.payment_reference})
        if is_seller or getattr(request.user, "is_registry_admin", False)
        else None
    )
    if request.method == "POST":
        if form is None:
            raise Http404
        if form.is_valid():
            try:
                services.do_record_payment(
                    trade=trade, actor=request.user, reference=form.cleaned_data["payment_reference"]
                )
            except DomainError as exc:
                _fail(form, exc)
            else:
                messages.success(request, _("Payment reference recorded."))
                return redirect("market:trade", number)
    return render(
        request,
        "market/trade.html",
        {
            "trade": trade,
            "seller": public_label(trade.seller_account),
            "buyer": public_label(trade.buyer_account),
            "serials": sorted(b.serial for b in trade.transfer.blocks.all()),
            "is_party": is_party,
            "form": form,
        },
    )


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    accounts = _accounts(request.user)
    year = timezone.localdate().year
    return render(
        request,
        "market/mine.html",
        {
            "orders": Order.objects.filter(account__in=accounts).order_by("-pk")[:100],
            "auctions": Auction.objects.filter(account__in=accounts).order_by("-pk")[:50],
            "bids": Bid.objects.filter(account__in=accounts).select_related("auction").order_by("-pk")[:50],
            "deals": Deal.objects.filter(Q(seller__in=accounts) | Q(buyer__in=accounts)).order_by("-pk")[:50],
            "trades": Trade.objects.filter(
                Q(seller_account__in=accounts) | Q(buyer_account__in=accounts)
            ).order_by("-executed_at", "-pk")[:100],
            "account_ids": {a.pk for a in accounts},
            "holdings": [
                (
                    a,
                    held := ledger.balance(a),
                    avail := ledger.available(a),
                    held - avail,
                    services.offset_position(a, year),
                )
                for a in accounts
            ],
            "value": services.indicative_value(accounts),
            "year": year,
        },
    )


@login_required
def admin(request: HttpRequest) -> HttpResponse:
    """Registry administrator: surveillance alerts, covered enterprises' offset profiles, open orders."""
    if not request.user.is_registry_admin:
        raise Http404
    profile_form = mf.OffsetProfileForm(request.POST if request.POST.get("form") == "profile" else None)
    if request.method == "POST" and request.POST.get("form") == "profile" and profile_form.is_valid():
        d = profile_form.cleaned_data
        account = RegistryAccount.objects.filter(number=d["account_number"].strip()).first()
        if account is None:
            profile_form.add_error(
                "account_number",
                _("There is no registry account %(number)s.") % {"number": d["account_number"]},
            )
        else:
            try:
                services.do_set_offset_profile(
                    account=account,
                    year=d["year"],
                    verified_emissions_t=d["verified_emissions_t"],
                    annual_cap_t=d["annual_cap_t"],
                    note=d["note"],
                    actor=request.user,
                )
            except DomainError as exc:
                _fail(profile_form, exc)
            else:
                messages.success(request, _("Offset profile recorded."))
                return redirect("market:admin")
    if request.method == "POST" and request.POST.get("form") == "alert":
        alert = get_object_or_404(Alert, pk=request.POST.get("alert"))
        try:
            services.do_review_alert(alert=alert, actor=request.user, note=request.POST.get("note", ""))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Alert reviewed."))
        return redirect("market:admin")
    year = timezone.localdate().year
    profiles = OffsetProfile.objects.select_related("account__owner_org").order_by("-year", "account__number")
    return render(
        request,
        "market/admin.html",
        {
            "alerts": Alert.objects.prefetch_related("trades").order_by("reviewed_at", "-pk")[:100],
            "profiles": [
                (p, services.offset_position(p.account, p.year) if p.year == year else None) for p in profiles
            ],
            "profile_form": profile_form,
            "due_auctions": Auction.objects.filter(state=Auction.State.OPEN, closes_at__lte=timezone.now()),
            "open_orders": Order.objects.filter(state=Order.State.OPEN)
            .select_related("account")
            .order_by("-pk")[:100],
        },
    )
