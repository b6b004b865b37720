"""REST API of the market under /api/v1/market/: the public book, trades and daily prices; placing listings and
buy requests, taking and accepting, auctions and bids, negotiated deals. Thin: parse, authorise, call
market.services, serialise. Refusals carry a stable code, the field and a translated message."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.market import services
from lowcarbon.market.models import Auction, Deal, Order, Trade
from lowcarbon.registry.ledger_api import RegistryErrorSerializer, _error
from lowcarbon.registry.ledger_views import my_accounts, public_label
from lowcarbon.registry.models import RegistryAccount, Retirement

# --- serializers ---------------------------------------------------------------------------------------------------


class OrderSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    account = serializers.CharField(source="account.number", read_only=True)
    holder = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "number",
            "side",
            "state",
            "account",
            "holder",
            "price",
            "quantity",
            "remaining",
            "vintage",
            "methodology_code",
            "owner_type",
            "want_vintages",
            "want_methodologies",
            "want_owner_types",
            "retire_on_purchase",
            "expires_at",
            "created_at",
            "closed_at",
        ]

    def get_holder(self, o: Order) -> str:
        return public_label(o.account)


class TradeSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    seller = serializers.CharField(source="seller_account.number", read_only=True)
    buyer = serializers.CharField(source="buyer_account.number", read_only=True)
    transfer = serializers.CharField(source="transfer.number", read_only=True)
    retirement = serializers.CharField(source="retirement.number", read_only=True, default=None)

    class Meta:
        model = Trade
        fields = [
            "number",
            "mode",
            "executed_at",
            "seller",
            "buyer",
            "quantity",
            "price",
            "transfer",
            "retirement",
        ]


class AuctionSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    account = serializers.CharField(source="account.number", read_only=True)
    bids = serializers.SerializerMethodField()

    class Meta:
        model = Auction
        fields = [
            "number",
            "state",
            "account",
            "quantity",
            "floor_price",
            "vintage",
            "methodology_code",
            "opens_at",
            "closes_at",
            "sold",
            "clearing_price",
            "bids",
        ]

    def get_bids(self, a: Auction) -> int:
        return a.bids.count()


class DealSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    seller = serializers.CharField(source="seller.number", read_only=True)
    buyer = serializers.CharField(source="buyer.number", read_only=True)

    class Meta:
        model = Deal
        fields = ["number", "state", "seller", "buyer", "quantity", "price", "vintage", "note", "created_at"]


class DayPriceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    day = serializers.DateField()
    open = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    close = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    listing_volume_t = serializers.IntegerField()
    volume_t = serializers.IntegerField()
    value_cny = serializers.DecimalField(max_digits=18, decimal_places=2)
    trades = serializers.IntegerField()


class RetireInput(serializers.Serializer):  # type: ignore[type-arg]
    retire_on_purchase = serializers.BooleanField(default=False)
    beneficiary = serializers.CharField(required=False, allow_blank=True, default="")
    purpose = serializers.ChoiceField(
        choices=Retirement.Purpose.choices, required=False, allow_blank=True, default=""
    )


class ListingInput(serializers.Serializer):  # type: ignore[type-arg]
    account = serializers.CharField(help_text="Your registry account number.")
    quantity = serializers.IntegerField(min_value=1)
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    vintage = serializers.IntegerField(required=False, allow_null=True, default=None)
    methodology_code = serializers.CharField(required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class BuyRequestInput(RetireInput):
    account = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Maximum price, CNY/t.")
    vintages = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    methodologies = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    owner_types = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class TakeInput(RetireInput):
    account = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)


class AcceptInput(serializers.Serializer):  # type: ignore[type-arg]
    account = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)
    vintage = serializers.IntegerField(required=False, allow_null=True, default=None)
    methodology_code = serializers.CharField(required=False, allow_blank=True, default="")


class AuctionInput(serializers.Serializer):  # type: ignore[type-arg]
    account = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)
    floor_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    closes_at = serializers.DateTimeField()
    vintage = serializers.IntegerField(required=False, allow_null=True, default=None)


class BidInput(RetireInput):
    account = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    quantity = serializers.IntegerField(min_value=1)


class DealInput(serializers.Serializer):  # type: ignore[type-arg]
    account = serializers.CharField(help_text="The seller's (your) account number.")
    buyer = serializers.CharField(help_text="The buyer's account number.")
    quantity = serializers.IntegerField(min_value=1)
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    vintage = serializers.IntegerField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class PlacedSerializer(serializers.Serializer):  # type: ignore[type-arg]
    order = OrderSerializer()
    trades = TradeSerializer(many=True)


# --- helpers -------------------------------------------------------------------------------------------------------


def _mine(request: Request, number: str) -> RegistryAccount:
    for a in my_accounts(request.user):
        if a.number == number:
            return a
    raise DomainError("not_allowed", "not your account", field="account")


def _retire(data: dict[str, Any]) -> services.RetireRequest | None:
    return services.retire_request(
        bool(data.get("retire_on_purchase")), data.get("beneficiary", ""), data.get("purpose", "")
    )


def _run(request: Request, input_cls: Any, action: Any, created: int = status.HTTP_201_CREATED) -> Response:
    s = input_cls(data=request.data)
    s.is_valid(raise_exception=True)
    try:
        return Response(action(dict(s.validated_data)), status=created)
    except DomainError as exc:
        if exc.code == "not_allowed" and exc.field == "account":
            from django.utils.translation import gettext as _

            exc = DomainError("not_allowed", _("You may not trade for that account."), field="account")
        return _error(exc)


ERRORS = {400: RegistryErrorSerializer, 403: RegistryErrorSerializer, 409: RegistryErrorSerializer}

# --- public ----------------------------------------------------------------------------------------------------------


class BookView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Open listings and buy requests, and the aggregated depth",
        responses={200: OpenApiResponse(description="listings, requests, depth")},
    )
    def get(self, request: Request) -> Response:
        from django.db.models import Q
        from django.utils import timezone

        now = timezone.now()
        open_q = Q(state=Order.State.OPEN) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        depth = services.depth()
        return Response(
            {
                "listings": OrderSerializer(
                    Order.objects.filter(open_q, side="sell")
                    .select_related("account__owner_org")
                    .order_by("price", "pk")[:200],
                    many=True,
                ).data,
                "buy_requests": OrderSerializer(
                    Order.objects.filter(open_q, side="buy")
                    .select_related("account__owner_org")
                    .order_by("-price", "pk")[:200],
                    many=True,
                ).data,
                "depth": {
                    side: [{"price": str(p), "quantity": q, "orders": n} for p, q, n in rows]
                    for side, rows in depth.items()
                },
            }
        )


class TradeListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(summary="The latest 100 trades", responses={200: TradeSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = Trade.objects.select_related("seller_account", "buyer_account", "transfer", "retirement")[:100]
        return Response(TradeSerializer(rows, many=True).data)


class PriceListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Daily open, close (Guangzhou rule) and volume",
        responses={200: DayPriceSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(DayPriceSerializer(services.closes(), many=True).data)


# --- placing -------------------------------------------------------------------------------------------------------


class ListingCreateView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="List units for sale (挂牌)",
        request=ListingInput,
        responses={201: PlacedSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def act(d: dict[str, Any]) -> Any:
            order, trades = services.do_place_listing(
                account=_mine(request, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                price=d["price"],
                vintage=d["vintage"],
                methodology_code=d["methodology_code"],
                expires_at=d["expires_at"],
            )
            return {"order": OrderSerializer(order).data, "trades": TradeSerializer(trades, many=True).data}

        return _run(request, ListingInput, act)


class BuyRequestCreateView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Post a buy request (求购)",
        request=BuyRequestInput,
        responses={201: PlacedSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def act(d: dict[str, Any]) -> Any:
            order, trades = services.do_place_buy_request(
                account=_mine(request, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                price=d["price"],
                vintages=d["vintages"],
                methodologies=d["methodologies"],
                owner_types=d["owner_types"],
                retire=_retire(d),
                expires_at=d["expires_at"],
            )
            return {"order": OrderSerializer(order).data, "trades": TradeSerializer(trades, many=True).data}

        return _run(request, BuyRequestInput, act)


class TakeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Buy from a listing (挂牌点选)", request=TakeInput, responses={201: TradeSerializer, **ERRORS}
    )
    def post(self, request: Request, number: str) -> Response:
        listing = get_object_or_404(Order, number=number, side="sell")

        def act(d: dict[str, Any]) -> Any:
            t = services.do_take_listing(
                listing=listing,
                account=_mine(request, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                retire=_retire(d),
            )
            return TradeSerializer(t).data

        return _run(request, TakeInput, act)


class AcceptView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Sell into a buy request", request=AcceptInput, responses={201: TradeSerializer, **ERRORS}
    )
    def post(self, request: Request, number: str) -> Response:
        order = get_object_or_404(Order, number=number, side="buy")

        def act(d: dict[str, Any]) -> Any:
            t = services.do_accept_buy_request(
                order=order,
                account=_mine(request, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                vintage=d["vintage"],
                methodology_code=d["methodology_code"],
            )
            return TradeSerializer(t).data

        return _run(request, AcceptInput, act)


class CancelView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Cancel an open order", request=None, responses={200: OrderSerializer, **ERRORS})
    def post(self, request: Request, number: str) -> Response:
        order = get_object_or_404(Order, number=number)
        try:
            order = services.do_cancel_order(
                order=order, actor=request.user, reason=str(request.data.get("reason", ""))
            )
        except DomainError as exc:
            if exc.code == "not_allowed":
                raise Http404
            return _error(exc)
        return Response(OrderSerializer(order).data)


class AuctionCreateView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Offer a lot by auction (竞价)",
        request=AuctionInput,
        responses={201: AuctionSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def act(d: dict[str, Any]) -> Any:
            a = services.do_create_auction(
                account=_mine(request, d["account"]),
                actor=request.user,
                quantity=d["quantity"],
                floor_price=d["floor_price"],
                closes_at=d["closes_at"],
                vintage=d["vintage"],
            )
            return AuctionSerializer(a).data

        return _run(request, AuctionInput, act)


class AuctionDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="An auction: terms, number of sealed bids, result after the close",
        responses={200: AuctionSerializer},
    )
    def get(self, request: Request, number: str) -> Response:
        return Response(AuctionSerializer(get_object_or_404(Auction, number=number)).data)


class BidCreateView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Place a sealed bid",
        request=BidInput,
        responses={201: OpenApiResponse(description="bid"), **ERRORS},
    )
    def post(self, request: Request, number: str) -> Response:
        auction = get_object_or_404(Auction, number=number)

        def act(d: dict[str, Any]) -> Any:
            b = services.do_place_bid(
                auction=auction,
                account=_mine(request, d["account"]),
                actor=request.user,
                price=d["price"],
                quantity=d["quantity"],
                retire=_retire(d),
            )
            return {
                "auction": auction.number,
                "price": str(b.price),
                "quantity": b.quantity,
                "state": b.state,
            }

        return _run(request, BidInput, act)


class DealCreateView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Propose a negotiated deal (协议转让)",
        request=DealInput,
        responses={201: DealSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def act(d: dict[str, Any]) -> Any:
            buyer = RegistryAccount.objects.filter(number=d["buyer"]).first()
            if buyer is None:
                from django.utils.translation import gettext as _

                raise DomainError(
                    "unknown_account",
                    _("There is no registry account %(number)s.") % {"number": d["buyer"]},
                    field="buyer",
                )
            deal = services.do_propose_deal(
                seller=_mine(request, d["account"]),
                buyer=buyer,
                actor=request.user,
                quantity=d["quantity"],
                price=d["price"],
                vintage=d["vintage"],
                note=d["note"],
            )
            return DealSerializer(deal).data

        return _run(request, DealInput, act)


class DealActionView(APIView):
    permission_classes = [IsAuthenticated]
    action = ""

    @extend_schema(
        summary="Confirm (buyer), decline (buyer) or cancel (seller) a deal",
        request=RetireInput,
        responses={200: OpenApiResponse(description="deal or trade"), **ERRORS},
    )
    def post(self, request: Request, number: str) -> Response:
        deal = get_object_or_404(Deal, number=number)
        mine = {a.pk for a in my_accounts(request.user)}
        if deal.seller_id not in mine and deal.buyer_id not in mine:
            raise Http404

        def act(d: dict[str, Any]) -> Any:
            if self.action == "confirm":
                return TradeSerializer(
                    services.do_confirm_deal(deal=deal, actor=request.user, retire=_retire(d))
                ).data
            return DealSerializer(
                services.do_close_deal(deal=deal, actor=request.user, decline=self.action == "decline")
            ).data

        return _run(request, RetireInput, act, created=status.HTTP_200_OK)
