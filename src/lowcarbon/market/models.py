"""Trade matching (交易撮合): orders of the four modes, auction bids, negotiated deals, trades, offset profiles of
covered enterprises and surveillance alerts. Units stay in the registry: an open sell order reserves its serial
blocks (SerialBlock.locked_by = the order's number) and settlement moves them (registry.ledger.settle_reserved)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from lowcarbon.pv.models import OwnerType
from lowcarbon.registry.models import RegistryAccount, Retirement, Transfer


def owner_type_label(code: str) -> str:
    if code == "mixed":
        return str(_("mixed owner types"))
    return str(OwnerType(code).label) if code in OwnerType.values else "—"


class Mode(models.TextChoices):
    LISTING = "listing", _("Listing select (挂牌点选)")
    CONTINUOUS = "continuous", _("Standing orders matched (挂牌点选, buy request)")
    AUCTION = "auction", _("One-way auction (竞价)")
    NEGOTIATED = "negotiated", _("Negotiated deal (协议转让)")


class Order(models.Model):
    """A standing order: a seller's listing (挂牌, sell) or a buyer's buy request (求购, buy)."""

    class Side(models.TextChoices):
        SELL = "sell", _("Sell (listing)")
        BUY = "buy", _("Buy request")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        FILLED = "filled", _("Filled")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    number = models.CharField(_("order number"), max_length=24, unique=True)
    side = models.CharField(_("side"), max_length=4, choices=Side.choices)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    account = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="market_orders")
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    price = models.DecimalField(_("price (CNY/t)"), max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField(_("quantity (t)"))
    remaining = models.PositiveIntegerField(_("remaining (t)"))
    # what a sell order offers (its reserved units)
    vintage = models.PositiveIntegerField(_("vintage"), null=True, blank=True)
    methodology_code = models.CharField(_("methodology"), max_length=40, blank=True)
    owner_type = models.CharField(_("owner type"), max_length=20, blank=True)
    # what a buy request accepts (empty = any)
    want_vintages = models.JSONField(_("vintages accepted"), default=list, blank=True)
    want_methodologies = models.JSONField(_("methodologies accepted"), default=list, blank=True)
    want_owner_types = models.JSONField(_("owner types accepted"), default=list, blank=True)
    retire_on_purchase = models.BooleanField(_("retire on purchase"), default=False)
    beneficiary = models.CharField(_("beneficiary"), max_length=200, blank=True)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Retirement.Purpose.choices, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("placed at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("market order")
        verbose_name_plural = _("market orders")
        ordering = ["-id"]
        indexes = [models.Index(fields=["side", "state", "price"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining__lte=models.F("quantity")), name="order_remaining_le_qty"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="order_price_positive"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def filled(self) -> int:
        return self.quantity - self.remaining

    @property
    def owner_type_label(self) -> str:
        return owner_type_label(self.owner_type)

    @property
    def wanted_owner_types_label(self) -> str:
        return ", ".join(owner_type_label(c) for c in self.want_owner_types)


class Auction(models.Model):
    """A one-way auction (竞价): a seller's lot with a floor price and a bidding window. Bids are sealed until the
    window closes; allocation by price, then time, with partial fills; each winner pays its bid."""

    class State(models.TextChoices):
        OPEN = "open", _("Open for bids")
        CLOSED = "closed", _("Closed, result published")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(_("auction number"), max_length=24, unique=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    account = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="market_auctions")
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("lot (t)"))
    floor_price = models.DecimalField(_("floor price (CNY/t)"), max_digits=12, decimal_places=2)
    vintage = models.PositiveIntegerField(_("vintage"), null=True, blank=True)
    methodology_code = models.CharField(_("methodology"), max_length=40, blank=True)
    owner_type = models.CharField(_("owner type"), max_length=20, blank=True)
    opens_at = models.DateTimeField(_("bidding opens"))
    closes_at = models.DateTimeField(_("bidding closes"))
    sold = models.PositiveIntegerField(_("sold (t)"), default=0)
    clearing_price = models.DecimalField(
        _("lowest accepted price"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("auction")
        verbose_name_plural = _("auctions")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.number


class Bid(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Sealed")
        WON = "won", _("Won")
        PARTLY = "partly", _("Partly won")
        LOST = "lost", _("Not allocated")
        BELOW_FLOOR = "below_floor", _("Below the floor")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    auction = models.ForeignKey(Auction, on_delete=models.CASCADE, related_name="bids")
    account = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="market_bids")
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    price = models.DecimalField(_("bid price (CNY/t)"), max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField(_("quantity (t)"))
    allocated = models.PositiveIntegerField(_("allocated (t)"), default=0)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.OPEN)
    retire_on_purchase = models.BooleanField(_("retire on purchase"), default=False)
    beneficiary = models.CharField(_("beneficiary"), max_length=200, blank=True)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Retirement.Purpose.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bid")
        verbose_name_plural = _("bids")
        ordering = ["id"]


class Deal(models.Model):
    """A negotiated transfer (协议转让): proposed by the seller with the units reserved, recorded as a trade when
    the buyer confirms too."""

    class State(models.TextChoices):
        PROPOSED = "proposed", _("Waiting for the buyer")
        CONFIRMED = "confirmed", _("Confirmed by both, settled")
        DECLINED = "declined", _("Declined")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(_("deal number"), max_length=24, unique=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PROPOSED)
    seller = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="deals_sold")
    buyer = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="deals_bought")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    quantity = models.PositiveIntegerField(_("quantity (t)"))
    price = models.DecimalField(_("price (CNY/t)"), max_digits=12, decimal_places=2)
    vintage = models.PositiveIntegerField(_("vintage"), null=True, blank=True)
    methodology_code = models.CharField(_("methodology"), max_length=40, blank=True)
    note = models.TextField(_("terms"), blank=True)
    retire_on_purchase = models.BooleanField(_("retire on purchase"), default=False)
    beneficiary = models.CharField(_("beneficiary"), max_length=200, blank=True)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Retirement.Purpose.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("negotiated deal")
        verbose_name_plural = _("negotiated deals")
        ordering = ["-id"]


class Trade(models.Model):
    """One settled fill: who sold what to whom at which price; the registry transfer that moved the units."""

    number = models.CharField(_("trade number"), max_length=24, unique=True)
    mode = models.CharField(_("mode"), max_length=12, choices=Mode.choices)
    executed_at = models.DateTimeField(_("executed at"), db_index=True)
    seller_account = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="trades_sold")
    buyer_account = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="trades_bought")
    quantity = models.PositiveIntegerField(_("quantity (t)"))
    price = models.DecimalField(_("price (CNY/t)"), max_digits=12, decimal_places=2)
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    auction = models.ForeignKey(
        Auction, on_delete=models.PROTECT, null=True, blank=True, related_name="trades"
    )
    bid = models.ForeignKey(Bid, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, null=True, blank=True, related_name="trades")
    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, related_name="trade")
    retirement = models.ForeignKey(
        Retirement, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    payment_reference = models.CharField(_("payment reference"), max_length=100, blank=True)
    payment_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("trade")
        verbose_name_plural = _("trades")
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(seller_account=models.F("buyer_account")), name="trade_not_self"
            )
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def value(self) -> Decimal:
        return self.price * self.quantity


class OffsetProfile(models.Model):
    """A covered enterprise (控排企业) of the Guangdong ETS and its verified emissions for a compliance year: its
    use of these units for offsetting is limited to a share of them (domain.md §3.6) and an annual cap."""

    account = models.ForeignKey(RegistryAccount, on_delete=models.PROTECT, related_name="offset_profiles")
    year = models.PositiveIntegerField(_("compliance year"))
    verified_emissions_t = models.PositiveBigIntegerField(_("verified annual emissions (tCO2e)"))
    annual_cap_t = models.PositiveBigIntegerField(
        _("annual cap on offsets (t)"), null=True, blank=True, help_text=_("Empty: only the share applies.")
    )
    note = models.CharField(_("source"), max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("covered enterprise offset profile")
        verbose_name_plural = _("covered enterprise offset profiles")
        constraints = [models.UniqueConstraint(fields=["account", "year"], name="offset_profile_once")]


class Alert(models.Model):
    """A surveillance alert for the administrator: wash-trade pattern or a price far from the recent close."""

    class Kind(models.TextChoices):
        WASH = "wash_trade", _("Possible wash trade (round trip)")
        PRICE = "price_deviation", _("Price far from the recent close")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    trades = models.ManyToManyField(Trade, related_name="alerts")
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("market alert")
        verbose_name_plural = _("market alerts")
        ordering = ["-id"]
