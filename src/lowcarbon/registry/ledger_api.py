"""REST API of the registry under /api/v1/registry/: my account's holdings, transfers and retirements (each with an
optional client key: the same key again returns the first result with 200), and the public registry (blocks by
serial, project, vintage or application; a retirement's public record) that needs no log-in.

Thin: parse, authorise, call `lowcarbon.registry.ledger`, serialise. Public answers carry account numbers and
organisation names only, never a person's name or phone.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcarbon.core.api_errors import refusal
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import ledger
from lowcarbon.registry.ledger_views import LIVE_STATES, is_repeat, journal_entry, my_accounts, pick_account
from lowcarbon.registry.models import RegistryAccount, Retirement, SerialBlock, Transfer

FORBIDDEN_CODES = {"not_allowed"}
CONFLICT_CODES = {"idempotency_key_reused"}

# --- serializers -------------------------------------------------------------------------------------------------


class RegistryErrorItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class RegistryErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    code = serializers.CharField(
        help_text="Stable reason code, e.g. insufficient_units, idempotency_key_reused."
    )
    errors = RegistryErrorItemSerializer(many=True)


class HoldingSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series = serializers.CharField()
    vintage = serializers.IntegerField()
    project_code = serializers.CharField()
    methodology_code = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units held (tCO2e), reserved ones included.")
    locked = serializers.IntegerField(help_text="Of which reserved by open market orders.")
    blocks = serializers.IntegerField()


class HeldBlockSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    serial = serializers.CharField(read_only=True)
    quantity = serializers.IntegerField(read_only=True)
    application = serializers.CharField(source="application.code", read_only=True)

    class Meta:
        model = SerialBlock
        fields = [
            "id",
            "serial",
            "series",
            "start",
            "end",
            "quantity",
            "state",
            "vintage",
            "project_code",
            "methodology_code",
            "factor_code",
            "application",
            "locked_by",
        ]


class AccountSerializer(serializers.Serializer):  # type: ignore[type-arg]
    number = serializers.CharField()
    kind = serializers.ChoiceField(choices=["person", "organisation"])
    organisation = serializers.CharField(allow_null=True, help_text="The owning organisation's name, if any.")
    balance = serializers.IntegerField(help_text="Units held (tCO2e).")
    available = serializers.IntegerField(help_text="Units that can be transferred or retired now.")
    holdings = HoldingSerializer(many=True)
    blocks = HeldBlockSerializer(many=True, help_text="Held blocks, oldest first.")
    accounts = serializers.ListField(
        child=serializers.CharField(), help_text="Numbers of every account the caller may act for."
    )


#: bounds of numbers in requests: beyond them a request is invalid (400), not an error of the database
MAX_UNITS = 2**31 - 1
MAX_ID = 2**63 - 1


class TransferRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    from_account = serializers.CharField(
        required=False, help_text="Sending account number; default: the caller's account holding units."
    )
    to_account = serializers.CharField(max_length=20, help_text="Receiving account number, e.g. XL-O000003.")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_UNITS, help_text="Whole units (tCO2e).")
    client_key = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Idempotency key: the same key again returns the first transfer (200) instead of a new one.",
    )
    block_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        allow_empty=False,
        help_text="Take the units only from these blocks; default: oldest first.",
    )


class RetirementRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    account = serializers.CharField(
        required=False, help_text="Retiring account number; default: the caller's account holding units."
    )
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_UNITS, help_text="Whole units (tCO2e).")
    beneficiary = serializers.CharField(max_length=200)
    purpose = serializers.ChoiceField(choices=Retirement.Purpose.choices)
    retired_on = serializers.DateField(required=False, help_text="Default: today (Asia/Shanghai).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000, help_text="Public.")
    client_key = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Idempotency key: the same key again returns the first retirement (200) instead of a new one.",
    )
    block_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        allow_empty=False,
        help_text="Take the units only from these blocks; default: oldest first.",
    )


class MovedBlockSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    serial = serializers.CharField()
    quantity = serializers.IntegerField()
    project_code = serializers.CharField()
    vintage = serializers.IntegerField()
    methodology_code = serializers.CharField()
    url = serializers.CharField(help_text="The block's permanent public page.")


class TransferSerializer(serializers.Serializer):  # type: ignore[type-arg]
    number = serializers.CharField()
    from_account = serializers.CharField()
    to_account = serializers.CharField()
    quantity = serializers.IntegerField()
    blocks = MovedBlockSerializer(many=True)
    created_at = serializers.DateTimeField()
    replayed = serializers.BooleanField(help_text="True when this answers a repeated client key.")


class RetirementSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The public record of a retirement."""

    number = serializers.CharField()
    beneficiary = serializers.CharField()
    purpose = serializers.CharField()
    purpose_label = serializers.CharField()
    retired_on = serializers.DateField()
    quantity = serializers.IntegerField()
    account = serializers.CharField(help_text="Retiring account number.")
    organisation = serializers.CharField(allow_null=True, help_text="The retiring organisation, if any.")
    note = serializers.CharField()
    blocks = MovedBlockSerializer(many=True)
    recorded_at = serializers.DateTimeField()
    journal_seq = serializers.IntegerField(allow_null=True)
    journal_hash = serializers.CharField(
        allow_null=True, help_text="SHA-256 of the journal entry recording it."
    )
    url = serializers.CharField(help_text="The public record page (the certificate's QR code opens it).")


class RetirementCreatedSerializer(RetirementSerializer):
    certificate_url = serializers.CharField(help_text="The PDF certificate (holder only).")
    replayed = serializers.BooleanField(help_text="True when this answers a repeated client key.")


class PublicBlockSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A block as the public registry shows it: no personal data."""

    serial = serializers.CharField(read_only=True)
    quantity = serializers.IntegerField(read_only=True)
    application = serializers.CharField(source="application.code", read_only=True)
    issued_at = serializers.DateTimeField(source="application.issued_at", read_only=True, allow_null=True)
    holder_account = serializers.CharField(source="account.number", read_only=True)
    holder_organisation = serializers.SerializerMethodField(help_text="The holding organisation, if any.")
    retirement = serializers.SerializerMethodField(help_text="Number of the retirement, for retired blocks.")
    cancellation = serializers.SerializerMethodField(help_text="Number of the cancellation, if cancelled.")
    url = serializers.SerializerMethodField(help_text="The block's permanent public page.")

    class Meta:
        model = SerialBlock
        fields = [
            "id",
            "serial",
            "series",
            "start",
            "end",
            "quantity",
            "state",
            "project_code",
            "vintage",
            "methodology_code",
            "factor_code",
            "application",
            "issued_at",
            "holder_account",
            "holder_organisation",
            "retirement",
            "cancellation",
            "changed_at",
            "url",
        ]

    def get_holder_organisation(self, obj: SerialBlock) -> str | None:
        return obj.account.owner_org.display_name if obj.account.owner_org_id else None

    def get_retirement(self, obj: SerialBlock) -> str | None:
        found = [r.number for r in obj.retirements.all()]
        return found[0] if found else None

    def get_cancellation(self, obj: SerialBlock) -> str | None:
        found = [c.number for c in obj.cancellations.all()]
        return found[0] if found else None

    def get_url(self, obj: SerialBlock) -> str:
        return _absolute(self.context.get("request"), reverse("registry:public_block", args=[obj.pk]))


# --- helpers -----------------------------------------------------------------------------------------------------


def _absolute(request: Any, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


def _error(exc: DomainError) -> Response:
    errors = [{"field": exc.field, "code": exc.code, "message": exc.message}]
    return refusal(exc, errors, forbidden=FORBIDDEN_CODES, conflict=CONFLICT_CODES)


def _invalid(errors: Any) -> Response:
    items = [
        {"field": None if k == "non_field_errors" else k, "code": "invalid", "message": " ".join(map(str, v))}
        for k, v in dict(errors).items()
    ]
    text = "; ".join(f"{i['field']}: {i['message']}" for i in items)
    return Response(
        {
            "detail": _("The request is not valid: %(errors)s") % {"errors": text},
            "code": "invalid",
            "errors": items,
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def _source(request: Request, number: str | None) -> RegistryAccount:
    """One of the caller's accounts (404 for any other), by default the first holding units."""
    return pick_account(my_accounts(request.user), (number or "").strip().upper() or None)


def _moved(request: Request, blocks: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": b.pk,
            "serial": b.serial,
            "quantity": b.quantity,
            "project_code": b.project_code,
            "vintage": b.vintage,
            "methodology_code": b.methodology_code,
            "url": _absolute(request, reverse("registry:public_block", args=[b.pk])),
        }
        for b in blocks.order_by("series", "start")
    ]


def _retirement_data(request: Request, r: Retirement) -> dict[str, Any]:
    entry = journal_entry("retire", r.number)
    org = r.account.owner_org
    return {
        "number": r.number,
        "beneficiary": r.beneficiary,
        "purpose": r.purpose,
        "purpose_label": r.get_purpose_display(),
        "retired_on": r.retired_on,
        "quantity": r.quantity,
        "account": r.account.number,
        "organisation": org.display_name if org is not None else None,
        "note": r.note,
        "blocks": _moved(request, r.blocks.all()),
        "recorded_at": r.created_at,
        "journal_seq": entry.seq if entry else None,
        "journal_hash": entry.hash if entry else None,
        "url": _absolute(request, reverse("registry:public_retirement", args=[r.number])),
    }


_ERRORS = {
    400: RegistryErrorSerializer,
    403: RegistryErrorSerializer,
    404: OpenApiResponse(description="An account that is not the caller's."),
    409: RegistryErrorSerializer,
}


# --- my account, transfers, retirements ---------------------------------------------------------------------------


class AccountMeView(APIView):
    """The caller's registry account: balance, holdings by series and vintage, held blocks."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["registry"],
        summary="My registry account and holdings",
        parameters=[
            OpenApiParameter(
                "account",
                OpenApiTypes.STR,
                description="One of the caller's account numbers (an organisation's); default: the first holding units.",
            )
        ],
        responses={200: AccountSerializer, 404: _ERRORS[404]},
    )
    def get(self, request: Request) -> Response:
        accounts = my_accounts(request.user)
        acct = pick_account(accounts, request.query_params.get("account"))
        blocks = SerialBlock.objects.filter(account=acct, state=SerialBlock.State.HELD).select_related(
            "application"
        )
        data = {
            "number": acct.number,
            "kind": "organisation" if acct.owner_org_id else "person",
            "organisation": acct.owner_org.display_name if acct.owner_org_id else None,
            "balance": ledger.balance(acct),
            "available": ledger.available(acct),
            "holdings": ledger.holdings(acct),
            "blocks": HeldBlockSerializer(blocks.order_by(*ledger.OLDEST_FIRST), many=True).data,
            "accounts": [a.number for a in accounts],
        }
        return Response(AccountSerializer(data).data)


class TransferCreateView(APIView):
    """Move units to another account (oldest first, or from named blocks); idempotent with a client key."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["registry"],
        summary="Transfer units to another registry account",
        request=TransferRequestSerializer,
        responses={201: TransferSerializer, 200: TransferSerializer, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        ser = TransferRequestSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        cd = ser.validated_data
        try:
            source = _source(request, cd.get("from_account"))
        except Http404:
            return _error(DomainError("not_allowed", _("You may not move units out of this account.")))
        number = cd["to_account"].strip().upper()
        target = RegistryAccount.objects.filter(number=number).first()
        if target is None:
            return _error(
                DomainError(
                    "unknown_account",
                    _("No registry account has the number %(n)s.") % {"n": number},
                    field="to_account",
                )
            )
        key = cd.get("client_key", "")
        repeated = is_repeat(request.user, "transfer", key.strip())
        try:
            t: Transfer = ledger.do_transfer(
                from_account=source,
                to_account=target,
                quantity=cd["quantity"],
                actor=request.user,
                client_key=key,
                block_ids=cd.get("block_ids"),
            )
        except DomainError as exc:
            return _error(exc)
        t = Transfer.objects.select_related("from_account", "to_account").get(pk=t.pk)
        data = {
            "number": t.number,
            "from_account": t.from_account.number,
            "to_account": t.to_account.number,
            "quantity": t.quantity,
            "blocks": _moved(request, t.blocks.all()),
            "created_at": t.created_at,
            "replayed": repeated,
        }
        return Response(
            TransferSerializer(data).data, status=status.HTTP_200_OK if repeated else status.HTTP_201_CREATED
        )


class RetirementCreateView(APIView):
    """Retire units for a beneficiary and purpose (final); idempotent with a client key."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["registry"],
        summary="Retire units",
        request=RetirementRequestSerializer,
        responses={201: RetirementCreatedSerializer, 200: RetirementCreatedSerializer, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        ser = RetirementRequestSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        cd = ser.validated_data
        try:
            acct = _source(request, cd.get("account"))
        except Http404:
            return _error(DomainError("not_allowed", _("You may not retire units of this account.")))
        key = cd.get("client_key", "")
        repeated = is_repeat(request.user, "retire", key.strip())
        try:
            r = ledger.do_retire(
                account=acct,
                quantity=cd["quantity"],
                beneficiary=cd["beneficiary"],
                purpose=cd["purpose"],
                retired_on=cd.get("retired_on") or timezone.localdate(),
                actor=request.user,
                client_key=key,
                block_ids=cd.get("block_ids"),
                note=cd.get("note", ""),
            )
        except DomainError as exc:
            return _error(exc)
        r = Retirement.objects.select_related("account__owner_org").get(pk=r.pk)
        data = {
            **_retirement_data(request, r),
            "certificate_url": _absolute(
                request, reverse("registry:retirement_certificate", args=[r.number])
            ),
            "replayed": repeated,
        }
        return Response(
            RetirementCreatedSerializer(data).data,
            status=status.HTTP_200_OK if repeated else status.HTTP_201_CREATED,
        )


# --- public registry ----------------------------------------------------------------------------------------------


class PublicBlockListView(ListAPIView):  # type: ignore[type-arg]
    """Blocks of the public registry: by a serial (a block or any single unit inside it), project, vintage,
    application or state. No log-in; no personal data."""

    permission_classes = [AllowAny]
    serializer_class = PublicBlockSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = (
            SerialBlock.objects.filter(state__in=LIVE_STATES)
            .select_related("account__owner_org", "application")
            .prefetch_related("retirements", "cancellations")
        )
        p = self.request.query_params
        serial = (p.get("serial") or "").strip()
        if serial:
            block = ledger.find_by_serial(serial)
            return qs.filter(pk=block.pk) if block is not None else qs.none()
        if p.get("project"):
            qs = qs.filter(project_code__iexact=p["project"].strip())
        if p.get("vintage"):
            try:
                qs = qs.filter(vintage=int(p["vintage"]))
            except ValueError:
                raise DomainError("invalid_vintage", _("The vintage is a four-digit year."), field="vintage")
        if p.get("application"):
            qs = qs.filter(application__code__iexact=p["application"].strip())
        if p.get("state"):
            qs = qs.filter(state=p["state"])
        return qs.order_by("-vintage", "series", "start")

    @extend_schema(
        tags=["registry"],
        summary="Search the public registry",
        parameters=[
            OpenApiParameter(
                "serial", OpenApiTypes.STR, description="A block serial or any single unit's serial."
            ),
            OpenApiParameter("project", OpenApiTypes.STR, description="Project code."),
            OpenApiParameter("vintage", OpenApiTypes.INT, description="Vintage year."),
            OpenApiParameter("application", OpenApiTypes.STR, description="Application number."),
            OpenApiParameter(
                "state", OpenApiTypes.STR, enum=[str(s) for s in LIVE_STATES], description="Block state."
            ),
        ],
        responses={200: PublicBlockSerializer(many=True), 400: RegistryErrorSerializer},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().get(request, *args, **kwargs)
        except DomainError as exc:
            return _error(exc)


class PublicRetirementView(APIView):
    """The public record of one retirement."""

    permission_classes = [AllowAny]

    @extend_schema(
        tags=["registry"],
        summary="Public record of a retirement",
        responses={
            200: RetirementSerializer,
            404: OpenApiResponse(description="No retirement has this number."),
        },
    )
    def get(self, request: Request, number: str) -> Response:
        r = Retirement.objects.select_related("account__owner_org").filter(number=number).first()
        if r is None:
            raise Http404
        return Response(RetirementSerializer(_retirement_data(request, r)).data)
