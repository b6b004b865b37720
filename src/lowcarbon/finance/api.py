"""REST API of investment and financing under /api/v1/finance/ (thin: parse, authorise, call the service,
serialise). Projects are looked up through `services.visible_projects`, so one the caller may not see answers 404.
Refusals answer with a stable code, a message and every refused field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcarbon.core.api_errors import refusal
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.finance import services as svc
from lowcarbon.finance.models import FinancingProject, FinancingType, Interest, ProjectKind

FORBIDDEN_CODES = {"not_allowed"}
CONFLICT_CODES = {"wrong_state", "already_interested"}


# --- serializers -------------------------------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A financing project as listed."""

    community = serializers.CharField(source="community.code", read_only=True)
    owner = serializers.CharField(source="owner_label", read_only=True)
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    self_consumption_percent = serializers.SerializerMethodField()
    systems = serializers.SerializerMethodField()

    class Meta:
        model = FinancingProject
        fields = [
            "code",
            "name",
            "kind",
            "owner",
            "community",
            "roof_area_m2",
            "capacity_kwp",
            "amount_cny",
            "financing_type",
            "tilt_deg",
            "azimuth_deg",
            "self_consumption_percent",
            "description",
            "systems",
            "state",
            "state_label",
            "created_at",
            "published_at",
            "closed_at",
        ]

    def get_self_consumption_percent(self, obj: FinancingProject) -> str:
        return svc._fmt(obj.self_consumption_share * 100)

    def get_systems(self, obj: FinancingProject) -> list[str]:
        return list(obj.systems.order_by("code").values_list("code", flat=True))


class YearSerializer(serializers.Serializer):  # type: ignore[type-arg]
    year = serializers.IntegerField()
    generation_kwh = serializers.DecimalField(max_digits=20, decimal_places=2)
    self_kwh = serializers.DecimalField(max_digits=20, decimal_places=2)
    export_kwh = serializers.DecimalField(max_digits=20, decimal_places=2)
    er_kg = serializers.DecimalField(max_digits=20, decimal_places=3)
    units = serializers.IntegerField()
    revenue_self = serializers.DecimalField(max_digits=20, decimal_places=2)
    revenue_export = serializers.DecimalField(max_digits=20, decimal_places=2)
    revenue_units = serializers.DecimalField(max_digits=20, decimal_places=2)
    om = serializers.DecimalField(max_digits=20, decimal_places=2)
    net = serializers.DecimalField(max_digits=20, decimal_places=2)
    cumulative = serializers.DecimalField(max_digits=20, decimal_places=2)


class CalculationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    assumptions = serializers.DictField(
        child=serializers.CharField(), help_text="Values used (percent where named)."
    )
    grid_factor = serializers.CharField(help_text="Code of the grid-factor record.")
    clear_sky_kwh_per_kwp = serializers.DecimalField(max_digits=12, decimal_places=3)
    specific_yield_kwh_per_kwp = serializers.DecimalField(max_digits=12, decimal_places=1)
    first_year_kwh = serializers.DecimalField(max_digits=20, decimal_places=2)
    first_year_tco2e = serializers.DecimalField(max_digits=20, decimal_places=2)
    capex_cny = serializers.DecimalField(max_digits=20, decimal_places=2)
    npv_cny = serializers.DecimalField(max_digits=20, decimal_places=2)
    irr = serializers.DecimalField(max_digits=12, decimal_places=6, allow_null=True)
    payback_year = serializers.IntegerField(allow_null=True)
    payback_years = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    years = YearSerializer(many=True)
    note = serializers.CharField()


def calculation_data(calc: svc.Calculation) -> dict[str, Any]:
    r = calc.result
    return {
        "assumptions": calc.values,
        "grid_factor": calc.grid_factor_code,
        "clear_sky_kwh_per_kwp": calc.clear_sky_kwh_per_kwp,
        "specific_yield_kwh_per_kwp": calc.specific_yield_kwh_per_kwp,
        "first_year_kwh": calc.first_year_kwh,
        "first_year_tco2e": calc.first_year_t,
        "capex_cny": r.capex,
        "npv_cny": r.npv,
        "irr": r.irr,
        "payback_year": r.payback_year,
        "payback_years": r.payback_years,
        "years": YearSerializer(r.rows, many=True).data,
        "note": svc.gettext(
            "Expected generation = pvlib clear-sky yield × performance ratio (no measured irradiation table); "
            "unit revenue is indicative, not a quote."
        ),
    }


class ProjectDetailSerializer(ProjectSerializer):
    calculation = serializers.SerializerMethodField()

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "calculation"]

    def get_calculation(self, obj: FinancingProject) -> dict[str, Any] | None:
        try:
            return calculation_data(svc.calculate(obj))
        except DomainError:
            return None


class ProjectWriteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=200)
    community = serializers.CharField(help_text="Community code")
    roof_area_m2 = serializers.CharField(required=False, allow_blank=True)
    capacity_kwp = serializers.CharField(required=False, allow_blank=True, help_text="Or give roof_area_m2")
    amount_cny = serializers.CharField()
    financing_type = serializers.ChoiceField(choices=FinancingType.choices)
    tilt_deg = serializers.CharField(required=False, allow_blank=True)
    azimuth_deg = serializers.CharField(required=False, allow_blank=True)
    self_consumption_percent = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    owner_org = serializers.CharField(
        required=False, allow_blank=True, help_text="'org:<id>' when acting for several"
    )
    systems = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="PV system codes"
    )


class ActionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    action = serializers.ChoiceField(choices=[("publish", "publish"), ("close", "close")])


class InterestSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    project = serializers.CharField(source="project.code", read_only=True)
    financier = serializers.CharField(source="financier_label", read_only=True)

    class Meta:
        model = Interest
        fields = ["id", "project", "financier", "message", "amount_cny", "terms", "created_at"]
        read_only_fields = fields


class InterestWriteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    message = serializers.CharField()
    amount_cny = serializers.CharField()
    terms = serializers.CharField(required=False, allow_blank=True)


@extend_schema_serializer(component_name="FinanceError")
class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField())


class RoofSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(required=False, allow_blank=True)
    area_m2 = serializers.CharField()
    tilt_deg = serializers.CharField(required=False, allow_blank=True)
    azimuth_deg = serializers.CharField(required=False, allow_blank=True)


class EstimateRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    roofs = RoofSerializer(many=True)
    community = serializers.CharField(required=False, allow_blank=True)
    packing_m2_per_kwp = serializers.CharField(required=False, allow_blank=True)
    capex_cny_per_kwp = serializers.CharField(required=False, allow_blank=True)
    performance_ratio = serializers.CharField(required=False, allow_blank=True)


# --- helpers -----------------------------------------------------------------------------------------------------


def _cny(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


def _error(exc: DomainError) -> Response:
    problems = getattr(exc, "problems", None) or []
    errors = [{"field": p.field, "message": p.message} for p in problems]
    return refusal(exc, errors, forbidden=FORBIDDEN_CODES, conflict=CONFLICT_CODES)


def _invalid(errors: Any) -> Response:
    items = [
        {"field": k, "message": f"{svc.field_label(k)}: {' '.join(str(x) for x in v)}"}
        for k, v in dict(errors).items()
    ]
    return Response(
        {"detail": "; ".join(i["message"] for i in items), "code": "invalid", "errors": items},
        status=status.HTTP_400_BAD_REQUEST,
    )


_NOT_FOUND = OpenApiResponse(description="Unknown, or not visible to the caller")
_ERRORS = {400: ErrorSerializer, 403: ErrorSerializer, 404: _NOT_FOUND, 409: ErrorSerializer}
_FILTERS = [
    OpenApiParameter("state", OpenApiTypes.STR, enum=FinancingProject.State.values),
    OpenApiParameter("community", OpenApiTypes.STR, description="Community code"),
    OpenApiParameter("financing_type", OpenApiTypes.STR, enum=FinancingType.values),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=ProjectKind.values),
    OpenApiParameter("min_amount", OpenApiTypes.NUMBER),
    OpenApiParameter("max_amount", OpenApiTypes.NUMBER),
    OpenApiParameter("q", OpenApiTypes.STR, description="Text in name or description, or the exact code"),
]


# --- views -------------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Financing projects the caller may see", parameters=_FILTERS),
    retrieve=extend_schema(
        summary="One project with its expected generation and cash flows (saved assumptions)",
        responses={200: ProjectDetailSerializer, 404: _NOT_FOUND},
    ),
)
class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Financing projects: owners create and publish; financiers browse published ones and express interest."""

    serializer_class = ProjectSerializer
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9_-]+"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = svc.visible_projects(self.request.user).select_related("community", "owner_org", "owner_user")
        if self.action == "list":
            qs = svc.filter_projects(qs, self.request.query_params)
        return qs.order_by("-created_at", "-pk")

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        if self.action == "retrieve":
            return ProjectDetailSerializer
        return super().get_serializer_class()

    @extend_schema(
        summary="Create a draft financing project (enterprise / institution owners, aggregators)",
        request=ProjectWriteSerializer,
        responses={201: ProjectDetailSerializer, **_ERRORS},
    )
    def create(self, request: Request) -> Response:
        ser = ProjectWriteSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        data = dict(ser.validated_data)
        systems = data.pop("systems", [])
        try:
            project = svc.do_create_project(request.user, data, systems)
        except DomainError as exc:
            return _error(exc)
        return Response(ProjectDetailSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Publish or close the project",
        request=ActionSerializer,
        responses={200: ProjectDetailSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="actions")
    def actions(self, request: Request, code: str | None = None) -> Response:
        project = self.get_object()
        ser = ActionSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        try:
            if ser.validated_data["action"] == "publish":
                project = svc.do_publish(request.user, project)
            else:
                project = svc.do_close(request.user, project)
        except DomainError as exc:
            return _error(exc)
        return Response(ProjectDetailSerializer(project).data)

    @extend_schema(
        summary="Recalculate with other assumptions (nothing is saved)",
        parameters=[
            OpenApiParameter(s.key, OpenApiTypes.NUMBER, description=f"{s.unit}") for s in svc.ASSUMPTIONS
        ],
        responses={200: CalculationSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="calculation")
    def calculation(self, request: Request, code: str | None = None) -> Response:
        project = self.get_object()
        overrides = {k: v for k, v in request.query_params.items() if k in svc.SPECS}
        try:
            calc = svc.calculate(project, overrides)
        except DomainError as exc:
            return _error(exc)
        return Response(calculation_data(calc))

    @extend_schema(
        methods=["GET"],
        summary="Leads: all for the owner's side and administrators, the caller's own for a financier",
        responses={200: InterestSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Express interest (financiers, published projects); the owner is notified",
        request=InterestWriteSerializer,
        responses={201: InterestSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], url_path="interests", pagination_class=None)
    def interests(self, request: Request, code: str | None = None) -> Response:
        project = self.get_object()
        if request.method == "GET":
            return Response(InterestSerializer(svc.visible_interests(request.user, project), many=True).data)
        ser = InterestWriteSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        try:
            interest = svc.do_express_interest(request.user, project, ser.validated_data)
        except DomainError as exc:
            return _error(exc)
        return Response(InterestSerializer(interest).data, status=status.HTTP_201_CREATED)


class PipelineView(APIView):
    """Administrators: projects and leads by stage with the amounts."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Financing pipeline by stage (administrators)",
        responses={200: OpenApiTypes.OBJECT, 403: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        try:
            data = svc.pipeline(request.user)
        except DomainError as exc:
            return _error(exc)
        return Response(
            {
                "stages": [
                    {
                        "state": s.state,
                        "label": s.label,
                        "projects": s.projects,
                        "amount_cny": _cny(s.amount_cny),
                        "leads": s.leads,
                        "offered_cny": _cny(s.offered_cny),
                    }
                    for s in data["stages"]
                ],
                "totals": {k: _cny(v) if isinstance(v, Decimal) else v for k, v in data["totals"].items()},
                "pending_financiers": [u.username for u in data["pending_financiers"]],
            }
        )


class EstimateView(APIView):
    """Public rooftop potential estimate: roofs → kWp → kWh/yr → tCO2e/yr and investment. Saves nothing."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary="Rooftop potential of a building or an industrial park (public, saves nothing)",
        request=EstimateRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, 400: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        ser = EstimateRequestSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        d = ser.validated_data
        try:
            est = svc.estimate(svc.parse_estimate(d["roofs"], d))
        except DomainError as exc:
            return _error(exc)
        park = est.park
        return Response(
            {
                "grid_factor": est.grid_factor_code,
                "grid_factor_kg_per_kwh": str(est.grid_factor),
                "packing_m2_per_kwp": str(est.input.packing),
                "performance_ratio": str(est.input.performance_ratio),
                "capex_cny_per_kwp": str(est.input.capex),
                "roofs": [
                    {
                        "name": r.roof.name,
                        "area_m2": str(r.roof.area_m2),
                        "capacity_kwp": str(r.capacity_kwp),
                        "specific_yield_kwh_per_kwp": str(r.specific_yield_kwh_per_kwp),
                        "annual_kwh": str(r.annual_kwh),
                        "annual_tco2e": str(r.annual_t),
                        "investment_cny": str(r.investment_cny),
                    }
                    for r in park.roofs
                ],
                "total": {
                    "area_m2": str(park.area_m2),
                    "capacity_kwp": str(park.capacity_kwp),
                    "annual_kwh": str(park.annual_kwh),
                    "annual_tco2e": str(park.annual_t),
                    "investment_cny": str(park.investment_cny),
                },
            }
        )
