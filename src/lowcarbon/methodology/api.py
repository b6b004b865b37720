"""REST endpoints of methodologies, grid factors and quantification (thin: parse, authorise, call the service)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.methodology.domain.quantify import format_month, parse_month
from lowcarbon.methodology.models import FactorAssignment, GridFactor, Methodology, Quantification
from lowcarbon.methodology.services import (
    do_quantify,
    factor_ef_cm,
    quantifications,
    resolve_system_codes,
    summary_data,
)
from lowcarbon.pv.access import managed_systems, visible_systems
from lowcarbon.pv.models import PVSystem

# --- fields and serializers ------------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2024-05"})
class MonthField(serializers.Field):  # type: ignore[type-arg]
    """A calendar month written YYYY-MM (its first day internally)."""

    default_error_messages = {"invalid": gettext_lazy("Expected a month as YYYY-MM.")}

    def to_internal_value(self, data: Any) -> date:
        try:
            return parse_month(str(data))
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: date) -> str:
        return format_month(value)


class FactorAssignmentSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    factor = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = FactorAssignment
        fields = ["factor", "valid_from", "note"]


class MethodologySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    factor_assignments = FactorAssignmentSerializer(many=True, read_only=True)

    class Meta:
        model = Methodology
        fields = [
            "code",
            "name_zh",
            "name_en",
            "version",
            "effective_from",
            "effective_to",
            "source",
            "factor_assignments",
        ]


class GridFactorSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    ef_cm = serializers.SerializerMethodField(help_text="EF_CM = w_OM·EF_OM + w_BM·EF_BM (kgCO2/kWh), exact")

    class Meta:
        model = GridFactor
        fields = [
            "code",
            "kind",
            "scope",
            "edition_year",
            "ef_om",
            "ef_bm",
            "w_om",
            "w_bm",
            "ef_cm",
            "ef_avg",
            "source",
            "confidence",
        ]

    @extend_schema_field({"type": "string", "format": "decimal", "nullable": True, "example": "0.656525"})
    def get_ef_cm(self, obj: GridFactor) -> str | None:
        value = factor_ef_cm(obj)
        return None if value is None else f"{value:f}"


class QuantificationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    system = serializers.SerializerMethodField()
    month = MonthField(read_only=True)
    methodology = serializers.SlugRelatedField(slug_field="code", read_only=True)
    factor = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Quantification
        fields = [
            "id",
            "system",
            "month",
            "methodology",
            "factor",
            "ef_cm",
            "generation_kwh",
            "export_kwh",
            "er_kg",
            "computed_at",
            "superseded_at",
        ]

    def get_system(self, obj: Quantification) -> str:
        codes: dict[int, str] = self.context.get("system_codes", {})
        return codes.get(obj.system_id, "")


class QuantifyRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Body of POST /quantify/: system codes (optional) and a month range (optional, inclusive)."""

    systems = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, allow_empty=False, max_length=10000
    )

    def get_fields(self) -> dict[str, serializers.Field]:  # type: ignore[type-arg]
        fields = super().get_fields()
        fields["from"] = MonthField(required=False)  # "from" is a Python keyword, so added here
        fields["to"] = MonthField(required=False)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start and end and start > end:
            raise ValidationError({"from": [_("The first month is after the last month of the range.")]})
        return attrs


class ExcludedMonthSerializer(serializers.Serializer):  # type: ignore[type-arg]
    system = serializers.CharField()
    month = serializers.CharField()
    reason = serializers.CharField()
    message = serializers.CharField()


class QuantifySummarySerializer(serializers.Serializer):  # type: ignore[type-arg]
    systems = serializers.IntegerField()
    months_computed = serializers.IntegerField()
    months_unchanged = serializers.IntegerField()
    months_superseded = serializers.IntegerField()
    months_excluded = serializers.DictField(
        child=serializers.IntegerField(), help_text="count per reason code"
    )
    total_er_kg = serializers.DecimalField(max_digits=20, decimal_places=3)
    total_er_t = serializers.DecimalField(max_digits=20, decimal_places=6)
    excluded = ExcludedMonthSerializer(many=True)


# --- views -----------------------------------------------------------------------------------------------------


@extend_schema(tags=["methodology"], summary="Methodology versions with their factor assignments (public)")
class MethodologyList(generics.ListAPIView):  # type: ignore[type-arg]
    permission_classes = [AllowAny]
    serializer_class = MethodologySerializer
    queryset = Methodology.objects.prefetch_related("factor_assignments__factor").order_by("effective_from")


@extend_schema(
    tags=["methodology"], summary="Grid emission-factor editions with their computed EF_CM (public)"
)
class GridFactorList(generics.ListAPIView):  # type: ignore[type-arg]
    permission_classes = [AllowAny]
    serializer_class = GridFactorSerializer
    queryset = GridFactor.objects.all()


def _month_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_month(raw)
    except ValueError:
        raise ValidationError({name: [_("Expected a month as YYYY-MM.")]})


@extend_schema(
    tags=["methodology"],
    summary="Quantification results of the PV systems you can see",
    parameters=[
        OpenApiParameter("system", OpenApiTypes.STR, description="PV system code"),
        OpenApiParameter("from", OpenApiTypes.STR, description="first month, YYYY-MM"),
        OpenApiParameter("to", OpenApiTypes.STR, description="last month, YYYY-MM"),
        OpenApiParameter(
            "include_superseded",
            OpenApiTypes.BOOL,
            description="also list superseded rows (default: current only)",
        ),
    ],
)
class QuantificationList(generics.ListAPIView):  # type: ignore[type-arg]
    permission_classes = [IsAuthenticated]
    serializer_class = QuantificationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        params = self.request.query_params
        start, end = _month_param(self.request, "from"), _month_param(self.request, "to")
        user = self.request.user
        systems = visible_systems(user)
        code = params.get("system")
        if code:
            systems = systems.filter(code=code)
            if not systems.exists():
                raise NotFound(_("No PV system you may see has the code %(code)s.") % {"code": code})
        # reviewers and administrators see every system: no id list needed
        everything = not code and (user.is_reviewer or user.is_registry_admin)
        ids = None if everything else list(systems.values_list("id", flat=True))
        include = params.get("include_superseded", "").lower() in ("1", "true", "yes")
        return quantifications(ids, start, end, include_superseded=include)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args:  # the page being listed: look up the codes of its systems only
            ids = {q.system_id for q in args[0]}
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["system_codes"] = dict(
                PVSystem.objects.filter(id__in=ids).values_list("id", "code")
            )
        return super().get_serializer(*args, **kwargs)


@extend_schema(
    tags=["methodology"],
    summary="Quantify avoided emissions",
    description=(
        "Reviewers and registry administrators may quantify any or all systems; owners and aggregators only the "
        "systems they manage (all of them when `systems` is omitted)."
    ),
    request=QuantifyRequestSerializer,
    responses={
        200: QuantifySummarySerializer,
        400: OpenApiResponse(description="invalid month or unknown system"),
        403: OpenApiResponse(description="a system you may not quantify"),
    },
)
class QuantifyView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        body = QuantifyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        system_ids = _authorised_system_ids(request.user, data.get("systems"))
        try:
            summary = do_quantify(system_ids, data.get("from"), data.get("to"))
        except DomainError as exc:
            raise ValidationError({exc.field or "detail": [exc.message]})
        return Response(QuantifySummarySerializer(summary_data(summary)).data, status=status.HTTP_200_OK)


def _authorised_system_ids(user: Any, codes: list[str] | None) -> list[int] | None:
    """System ids the user asks for and may quantify; None means every system (reviewers and administrators)."""
    privileged = user.is_reviewer or user.is_registry_admin
    if codes is None:
        if privileged:
            return None
        ids = list(managed_systems(user).values_list("id", flat=True))
        if not ids:
            raise PermissionDenied(_("You manage no PV systems to quantify."))
        return ids
    codes = list(dict.fromkeys(codes))
    if privileged:
        try:
            return resolve_system_codes(codes)
        except DomainError as exc:
            raise ValidationError({"systems": [exc.message]})
    # owners and aggregators: unknown codes are refused like other people's, so existence is not revealed
    found = dict(managed_systems(user).filter(code__in=codes).values_list("code", "id"))
    refused = [c for c in codes if c not in found]
    if refused:
        raise PermissionDenied(_("You may not quantify PV system %(codes)s.") % {"codes": ", ".join(refused)})
    return [found[c] for c in codes]
