"""REST API of PV systems and communities under /api/v1/ (thin: parse, authorise, call the service, serialise).

Every object is looked up through `lowcarbon.pv.access.visible_systems`, so a system the caller may not see
answers 404. Owners' personal data never leaves unmasked: names and phones are masked, household addresses are cut
and household coordinates rounded to 0.01° (about 1 km).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from lowcarbon.accounts.models import Organisation
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.metering.models import Meter
from lowcarbon.pv import access, bulk, services
from lowcarbon.pv.models import (
    Community,
    ManagementConsent,
    MeteringArrangement,
    OwnerType,
    ProgrammeClaim,
    PVSystem,
)

_COARSE = Decimal("0.01")

# --- serializers -------------------------------------------------------------------------------------------------


class CommunitySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Community
        fields = ["code", "name_zh", "name_en", "latitude", "longitude"]


class MeterSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Meter
        fields = ["serial", "purpose", "installed_at", "removed_at", "initial_register"]


class ProgrammeClaimSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = ProgrammeClaim
        fields = ["programme", "period_start", "period_end", "reference"]


class ConsentSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    aggregator = serializers.CharField(source="aggregator.display_name", read_only=True)
    aggregator_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = ManagementConsent
        fields = [
            "aggregator_id",
            "aggregator",
            "document",
            "granted_at",
            "revoked_at",
            "credit_to_aggregator",
        ]


class PVSystemSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A PV system as listed: owner masked, household coordinates rounded to 0.01°."""

    owner = serializers.SerializerMethodField(
        help_text="Organisation name, or the person's masked name (麦**)."
    )
    community = serializers.SlugRelatedField(slug_field="code", read_only=True)
    latitude = serializers.SerializerMethodField()
    longitude = serializers.SerializerMethodField()

    class Meta:
        model = PVSystem
        fields = [
            "code",
            "name",
            "owner_type",
            "owner",
            "community",
            "latitude",
            "longitude",
            "capacity_kwp",
            "tilt_deg",
            "azimuth_deg",
            "grid_connection_date",
            "metering",
            "registered_at",
        ]

    def get_owner(self, obj: PVSystem) -> str:
        return services.owner_label(obj)

    def _coord(self, obj: PVSystem, value: Decimal) -> str:
        if obj.owner_type == OwnerType.HOUSEHOLD and not obj.owner_org_id:
            value = value.quantize(_COARSE, rounding=ROUND_HALF_UP)
        return str(value)

    def get_latitude(self, obj: PVSystem) -> str:
        return self._coord(obj, obj.latitude)

    def get_longitude(self, obj: PVSystem) -> str:
        return self._coord(obj, obj.longitude)


class PVSystemDetailSerializer(PVSystemSerializer):
    """A PV system with its meters, other-programme claims and management consents; address masked for households."""

    owner_phone = serializers.SerializerMethodField(
        help_text="Masked phone of a household owner (138****5678)."
    )
    address = serializers.SerializerMethodField(help_text="Full for organisations; cut for households.")
    meters = serializers.SerializerMethodField()
    programme_claims = ProgrammeClaimSerializer(many=True, read_only=True)
    consents = ConsentSerializer(many=True, read_only=True)
    open_flags = serializers.SerializerMethodField()

    class Meta(PVSystemSerializer.Meta):
        fields = [
            *PVSystemSerializer.Meta.fields,
            "owner_phone",
            "address",
            "installer",
            "meters",
            "programme_claims",
            "consents",
            "open_flags",
        ]

    def get_owner_phone(self, obj: PVSystem) -> str:
        return services.owner_phone_masked(obj)

    def get_address(self, obj: PVSystem) -> str:
        return services.address_for(obj, None)

    @extend_schema_field(MeterSerializer(many=True))
    def get_meters(self, obj: PVSystem) -> list[dict[str, Any]]:
        meters = Meter.objects.filter(subject_kind="pv_system", subject_id=obj.pk).order_by(
            "installed_at", "pk"
        )
        return MeterSerializer(meters, many=True).data  # type: ignore[return-value]

    def get_open_flags(self, obj: PVSystem) -> int:
        return obj.flags.filter(cleared_at__isnull=True).count()


class ProgrammeClaimInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    programme = serializers.ChoiceField(choices=ProgrammeClaim.Programme.choices)
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")


def _decimal_text(help_text: str, required: bool = True) -> serializers.CharField:
    return serializers.CharField(required=required, allow_blank=not required, help_text=help_text)


class RegistrationInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Registration of one system. Numbers may be sent as JSON numbers or as decimal strings; the rules (Zhongshan
    bounding box, capacity limit in force, angles, dates, serial format) are checked by the service."""

    owner_kind = serializers.ChoiceField(
        choices=[("self", "self"), ("organisation", "organisation"), ("household", "household")],
        default="self",
        help_text="self: the caller (a household owner); organisation: `owner_org`; household: identified by "
        "`owner_real_name` and `owner_phone` (aggregators and registry administrators).",
    )
    owner_org = serializers.IntegerField(required=False, allow_null=True)
    owner_real_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    owner_phone = serializers.CharField(required=False, allow_blank=True, max_length=30)
    aggregator_org = serializers.IntegerField(required=False, allow_null=True)
    consent_document = serializers.CharField(required=False, allow_blank=True, max_length=200)
    name = serializers.CharField(max_length=200)
    address = serializers.CharField(max_length=300)
    community = serializers.CharField(help_text="Community code, see /api/v1/communities/.")
    latitude = _decimal_text("Decimal degrees north, 22.2 to 22.8 (Zhongshan).")
    longitude = _decimal_text("Decimal degrees east, 113.1 to 113.7 (Zhongshan).")
    capacity_kwp = _decimal_text(
        "Installed capacity in kWp: above 0, at most the methodology limit in force."
    )
    tilt_deg = _decimal_text("Tilt in degrees, 0 (flat) to 90.")
    azimuth_deg = _decimal_text("Azimuth in degrees, 0 to 360, 180 = south.")
    grid_connection_date = serializers.DateField(help_text="Not in the future.")
    metering = serializers.ChoiceField(choices=MeteringArrangement.choices)
    meter_serial = serializers.CharField(
        max_length=64, help_text="4 to 64 letters, digits, '-' or '_'; unique."
    )
    initial_register = _decimal_text("Meter register at grid connection (kWh); optional.", required=False)
    installer = serializers.CharField(required=False, allow_blank=True, max_length=200)
    programme_claims = ProgrammeClaimInputSerializer(many=True, required=False)


class ProblemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    field = serializers.CharField(help_text="Field (or bulk-file column key) the problem concerns.")
    code = serializers.CharField(help_text="Stable snake_case reason code.")
    message = serializers.CharField(help_text="Translated message.")
    row = serializers.IntegerField(required=False, allow_null=True, help_text="Bulk files: spreadsheet row.")
    column = serializers.CharField(
        required=False, help_text="Bulk files: column header in the request language."
    )


class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = ProblemSerializer(many=True)


class FlagSerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    severity = serializers.CharField()
    value = serializers.DecimalField(max_digits=18, decimal_places=4)
    limit = serializers.DecimalField(max_digits=18, decimal_places=4)
    cleared_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()


class MonthSerializer(serializers.Serializer):  # type: ignore[type-arg]
    month = serializers.DateField(help_text="First day of the month.")
    generation_kwh = serializers.DecimalField(max_digits=18, decimal_places=4, allow_null=True)
    export_kwh = serializers.DecimalField(max_digits=18, decimal_places=4, allow_null=True)
    specific_yield = serializers.DecimalField(
        max_digits=12, decimal_places=2, allow_null=True, help_text="kWh per kWp."
    )
    bound_kwh = serializers.DecimalField(
        max_digits=18, decimal_places=4, allow_null=True, help_text="Clear-sky physical bound (kWh)."
    )
    er_kg = serializers.DecimalField(
        max_digits=16,
        decimal_places=3,
        allow_null=True,
        help_text="Avoided emissions (kg CO2e), current result.",
    )
    factor_code = serializers.CharField(help_text="Grid factor record used by the quantification.")
    ef_cm = serializers.DecimalField(max_digits=10, decimal_places=6, allow_null=True)
    flags = FlagSerializer(many=True)


class MonthlySerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    year = serializers.IntegerField()
    capacity_kwp = serializers.DecimalField(max_digits=10, decimal_places=3)
    months = MonthSerializer(many=True)


class BulkUploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    file = serializers.FileField(help_text="The filled-in template, .xlsx or .csv (UTF-8 or GBK).")
    aggregator_org = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Aggregator organisation you act for (required for aggregators).",
    )


class BulkCreatedSerializer(serializers.Serializer):  # type: ignore[type-arg]
    rows_read = serializers.IntegerField()
    created = serializers.ListField(child=serializers.CharField(), help_text="Codes of the new systems.")


# --- helpers -----------------------------------------------------------------------------------------------------


def _error(code: str, detail: str, problems: list[services.Problem], status_code: int = 400) -> Response:
    errors = []
    for p in problems:
        item: dict[str, Any] = {"field": p.field, "code": p.code, "message": p.message}
        if p.row is not None:
            item["row"] = p.row
            item["column"] = bulk.column_label(p.field)
        errors.append(item)
    return Response({"detail": detail, "code": code, "errors": errors}, status=status_code)


def _serializer_problems(errors: Any, name: str = "") -> list[services.Problem]:
    """DRF validation errors as a flat list of problems named like the service's (programme_claims.0.period_end)."""
    out: list[services.Problem] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            sub = name if key == "non_field_errors" else (f"{name}.{key}" if name else str(key))
            out.extend(_serializer_problems(value, sub))
    elif isinstance(errors, list):
        for i, item in enumerate(errors):
            if isinstance(item, (dict, list)):
                out.extend(_serializer_problems(item, f"{name}.{i}"))
            else:
                out.append(services.Problem(name, str(getattr(item, "code", "invalid")), str(item)))
    else:
        out.append(services.Problem(name, str(getattr(errors, "code", "invalid")), str(errors)))
    return out


# --- viewsets ----------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Communities of Xiaolan Town (public)"),
    retrieve=extend_schema(summary="One community"),
)
class CommunityViewSet(viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """Communities of Xiaolan Town: public reference data."""

    queryset = Community.objects.order_by("code")
    serializer_class = CommunitySerializer
    permission_classes = [AllowAny]
    pagination_class = None
    lookup_field = "code"


@extend_schema_view(
    list=extend_schema(
        summary="PV systems the caller may see",
        parameters=[
            OpenApiParameter("community", OpenApiTypes.STR, description="Community code"),
            OpenApiParameter("owner_type", OpenApiTypes.STR, enum=OwnerType.values),
        ],
    ),
    retrieve=extend_schema(
        summary="One PV system by code",
        responses={200: PVSystemDetailSerializer, 404: OpenApiResponse(description="Unknown or not visible")},
    ),
)
class PVSystemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """PV systems scoped by who may see them (owners, consented aggregators, reviewers, administrators)."""

    serializer_class = PVSystemSerializer
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9_-]+"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = access.visible_systems(self.request.user).select_related("community", "owner_user", "owner_org")
        if self.action == "list":
            community = self.request.query_params.get("community")
            owner_type = self.request.query_params.get("owner_type")
            if community:
                qs = qs.filter(community__code=community)
            if owner_type:
                qs = qs.filter(owner_type=owner_type)
        return qs.order_by("code")

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        if self.action == "retrieve":
            return PVSystemDetailSerializer
        return super().get_serializer_class()

    @extend_schema(
        summary="Register a PV system",
        request=RegistrationInputSerializer,
        responses={
            201: PVSystemDetailSerializer,
            400: ErrorSerializer,
            403: OpenApiResponse(description="Not allowed"),
        },
    )
    def create(self, request: Request) -> Response:
        user = request.user
        if not (user.is_owner or user.is_aggregator or user.is_registry_admin):
            raise PermissionDenied(_("You may not register PV systems."))
        ser = RegistrationInputSerializer(data=request.data)
        if not ser.is_valid():
            return _error("invalid", _("The registration is not valid."), _serializer_problems(ser.errors))
        data = dict(ser.validated_data)
        data["programme_claims"] = [dict(c) for c in data.get("programme_claims", [])]
        try:
            system = services.do_register_system(data, actor=user)
        except services.RegistrationInvalid as exc:
            return _error("invalid", _("The registration is not valid."), exc.problems)
        except DomainError as exc:
            return _error(
                exc.code, exc.message, [], status.HTTP_403_FORBIDDEN if exc.code == "not_allowed" else 400
            )
        return Response(PVSystemDetailSerializer(system).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Monthly generation, clear-sky bound and avoided emissions of a year",
        parameters=[
            OpenApiParameter("year", OpenApiTypes.INT, description="Calendar year (default: this year)")
        ],
        responses={
            200: MonthlySerializer,
            400: ErrorSerializer,
            404: OpenApiResponse(description="Unknown or not visible"),
        },
    )
    @action(detail=True, methods=["get"])
    def monthly(self, request: Request, code: str | None = None) -> Response:
        system = self.get_object()
        today = timezone.localdate()
        try:
            year = int(request.query_params.get("year", today.year))
        except ValueError:
            year = -1
        if not 2000 <= year <= today.year:
            return _error("invalid_year", _("Give a year between 2000 and this year."), [])
        rows = services.monthly_overview(system, year)
        payload = {
            "code": system.code,
            "year": year,
            "capacity_kwp": system.capacity_kwp,
            "months": [
                {
                    "month": r.month,
                    "generation_kwh": r.generation_kwh,
                    "export_kwh": r.export_kwh,
                    "specific_yield": r.specific_yield,
                    "bound_kwh": r.bound_kwh,
                    "er_kg": r.er_kg,
                    "factor_code": r.factor_code,
                    "ef_cm": r.ef_cm,
                    "flags": [
                        {
                            "code": f.code,
                            "severity": f.severity,
                            "value": f.value,
                            "limit": f.limit,
                            "cleared_at": f.cleared_at,
                            "reason": services.flag_reason(f),
                        }
                        for f in r.flags
                    ],
                }
                for r in rows
            ],
        }
        return Response(MonthlySerializer(payload).data)

    @extend_schema(
        summary="Register household systems from a bulk file (all or nothing)",
        request={"multipart/form-data": BulkUploadSerializer},
        responses={
            201: BulkCreatedSerializer,
            400: ErrorSerializer,
            403: OpenApiResponse(description="Only aggregators and registry administrators"),
        },
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def bulk(self, request: Request) -> Response:
        user = request.user
        if not (user.is_aggregator or user.is_registry_admin):
            raise PermissionDenied(_("Only aggregators and registry administrators register in bulk."))
        ser = BulkUploadSerializer(data=request.data)
        if not ser.is_valid():
            return _error("invalid", _("The upload is not valid."), _serializer_problems(ser.errors))
        org = None
        org_id = ser.validated_data.get("aggregator_org")
        if org_id is None:
            orgs = access.aggregator_orgs(user)
            if len(orgs) == 1:
                org_id = orgs[0]
        if org_id is not None:
            org = Organisation.objects.filter(pk=org_id).first()
            if org is None:
                return _error("unknown_organisation", services.message_for("unknown_organisation"), [])
        try:
            result = services.do_bulk_register(
                bulk.parse_upload(ser.validated_data["file"]), actor=user, aggregator_org=org
            )
        except DomainError as exc:
            return _error(exc.code, exc.message, [])
        if not result.ok:
            return _error(
                "invalid_rows",
                _("Nothing was saved: %(n)s problems were found.") % {"n": len(result.problems)},
                result.problems,
            )
        return Response(
            {"rows_read": result.rows_read, "created": [s.code for s in result.created]},
            status=status.HTTP_201_CREATED,
        )
