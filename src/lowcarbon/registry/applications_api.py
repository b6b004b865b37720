"""REST API of applications under /api/v1/applications/ (thin: parse, authorise, call the service, serialise).

Every application is looked up through `applications.visible_applications`, so one the caller may not see answers
404. Refusals answer with a stable code and, for creation, every refused system, period and reason.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
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
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from lowcarbon.core.api_errors import refusal
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.pv import access
from lowcarbon.pv import services as pv_services
from lowcarbon.registry import applications as svc
from lowcarbon.registry.domain import workflow as wf
from lowcarbon.registry.models import Application, ApplicationSystem, Transition

#: refusal codes answered with 403 (who) or 409 (state); everything else a user can cause is 400
FORBIDDEN_CODES = {"not_allowed", "four_eyes", "not_aggregator", "not_issuer"}
CONFLICT_CODES = {"wrong_state", "already_claimed", "pending_application"}

# --- serializers -------------------------------------------------------------------------------------------------


class ApplicationMemberSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A system's share of the application and how it was computed."""

    system = serializers.CharField(source="system.code", read_only=True)
    owner = serializers.SerializerMethodField(help_text="Organisation name, or the person's masked name.")
    credit_account = serializers.CharField(
        source="credit_account.number", read_only=True, allow_null=True, default=None
    )
    explanation = serializers.SerializerMethodField(
        help_text="The computation in sentences (request language)."
    )

    class Meta:
        model = ApplicationSystem
        fields = [
            "system",
            "owner",
            "generation_kwh",
            "er_kg",
            "carry_in_kg",
            "units",
            "carry_out_kg",
            "credit_account",
            "computation",
            "explanation",
        ]

    def get_owner(self, obj: ApplicationSystem) -> str:
        return pv_services.owner_label(obj.system)

    def get_explanation(self, obj: ApplicationSystem) -> list[str]:
        return svc.share_lines(obj.computation or {})


class ApplicationTransitionSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    actor = serializers.CharField(source="actor.display_name", read_only=True)

    class Meta:
        model = Transition
        fields = ["from_state", "to_state", "actor", "comment", "at"]


class ApplicationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """An application as listed."""

    state_label = serializers.CharField(source="get_state_display", read_only=True)
    applicant = serializers.CharField(source="applicant.display_name", read_only=True)
    applicant_org = serializers.CharField(
        source="applicant_org.display_name", read_only=True, allow_null=True, default=None
    )
    methodology = serializers.CharField(source="methodology.code", read_only=True)
    factor = serializers.CharField(source="factor.code", read_only=True)
    first_month = serializers.SerializerMethodField()
    last_month = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = [
            "code",
            "kind",
            "state",
            "state_label",
            "applicant",
            "applicant_org",
            "first_month",
            "last_month",
            "vintage",
            "methodology",
            "factor",
            "claimed_kg",
            "carry_in_kg",
            "units",
            "carry_out_kg",
            "created_at",
            "submitted_at",
            "state_since",
            "issued_at",
        ]

    def get_first_month(self, obj: Application) -> str:
        return svc.fmt_month(obj.period_start)

    def get_last_month(self, obj: Application) -> str:
        return svc.fmt_month(obj.period_end)


class ApplicationDetailSerializer(ApplicationSerializer):
    """An application with its members, timeline, report, commitment and the caller's possible actions."""

    members = serializers.SerializerMethodField()
    transitions = serializers.SerializerMethodField()
    report_url = serializers.SerializerMethodField(help_text="Where to download the report (null if none).")
    available_actions = serializers.SerializerMethodField(
        help_text="Workflow actions the caller may take now."
    )

    class Meta(ApplicationSerializer.Meta):
        fields = [
            *ApplicationSerializer.Meta.fields,
            "commitment_signed_at",
            "commitment_text",
            "report_generated",
            "report_url",
            "members",
            "transitions",
            "available_actions",
        ]

    @staticmethod
    def _user(serializer: serializers.Serializer) -> Any:  # type: ignore[type-arg]
        request = serializer.context.get("request")
        return getattr(request, "user", None)

    def get_report_url(self, obj: Application) -> str | None:
        if not obj.report:
            return None
        return f"/api/v1/applications/{obj.code}/report/"

    def get_available_actions(self, obj: Application) -> list[str]:
        user = self._user(self)
        return svc.available_actions(obj, user) if user is not None else []

    @extend_schema_field(ApplicationMemberSerializer(many=True))
    def get_members(self, obj: Application) -> list[dict[str, Any]]:
        qs = obj.members.select_related("system", "system__owner_user", "system__owner_org", "credit_account")
        return ApplicationMemberSerializer(qs.order_by("system__code"), many=True).data  # type: ignore[return-value]

    @extend_schema_field(ApplicationTransitionSerializer(many=True))
    def get_transitions(self, obj: Application) -> list[dict[str, Any]]:
        return ApplicationTransitionSerializer(svc.timeline(obj), many=True).data  # type: ignore[return-value]


class ApplicationCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.ChoiceField(choices=Application.Kind.choices, help_text="single or bundle")
    systems = serializers.ListField(
        child=serializers.CharField(max_length=20), allow_empty=False, help_text="System codes."
    )
    first_month = serializers.CharField(help_text="YYYY-MM")
    last_month = serializers.CharField(help_text="YYYY-MM, same calendar year as first_month")
    aggregator_org = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Bundles: the aggregator organisation (when you act for several).",
    )


class ApplicationActionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    action = serializers.ChoiceField(
        choices=[(a, a) for a in wf.ACTIONS] + [("sign_commitment", "sign_commitment")]
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class ApplicationReportSerializer(serializers.Serializer):  # type: ignore[type-arg]
    report = serializers.FileField(
        required=False, help_text="Your own verification report (PDF, at most 20 MB)."
    )
    generate = serializers.BooleanField(
        required=False, default=False, help_text="Let the platform draft the report."
    )


class ApplicationRefusalSerializer(serializers.Serializer):  # type: ignore[type-arg]
    system = serializers.CharField()
    first_month = serializers.CharField(allow_null=True)
    last_month = serializers.CharField(allow_null=True)
    code = serializers.CharField(help_text="Stable snake_case reason code.")
    message = serializers.CharField(help_text="System, period and reason in the request language.")


class ApplicationErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = ApplicationRefusalSerializer(many=True)


class ChecklistItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    status = serializers.CharField(help_text="pass, fail or missing")
    title = serializers.CharField()
    detail = serializers.CharField()
    blocking = serializers.BooleanField()


class ChecklistSerializer(serializers.Serializer):  # type: ignore[type-arg]
    system = serializers.CharField()
    first_month = serializers.CharField()
    last_month = serializers.CharField()
    ready = serializers.BooleanField(help_text="No item blocks an application.")
    claimable_months = serializers.ListField(child=serializers.CharField())
    items = ChecklistItemSerializer(many=True)


class ApplicationQueueItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    state = serializers.CharField()
    applicant = serializers.CharField()
    units = serializers.IntegerField()
    days_waiting = serializers.IntegerField()
    actions = serializers.ListField(child=serializers.CharField())


# --- helpers -----------------------------------------------------------------------------------------------------


def _error(exc: DomainError) -> Response:
    refusals = getattr(exc, "refusals", [])
    errors = [
        {
            "system": r.system,
            "first_month": svc.fmt_month(r.first) if r.first else None,
            "last_month": svc.fmt_month(r.last) if r.last else None,
            "code": r.code,
            "message": r.message,
        }
        for r in refusals
    ]
    return refusal(exc, errors, forbidden=FORBIDDEN_CODES, conflict=CONFLICT_CODES)


def _invalid(errors: Any) -> Response:
    text = "; ".join(f"{k}: {' '.join(str(x) for x in v)}" for k, v in dict(errors).items())
    return Response(
        {
            "detail": _("The request is not valid: %(errors)s") % {"errors": text},
            "code": "invalid",
            "errors": [],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


_NOT_FOUND = OpenApiResponse(description="Unknown, or not visible to the caller")
_ERRORS = {
    400: ApplicationErrorSerializer,
    403: ApplicationErrorSerializer,
    404: _NOT_FOUND,
    409: ApplicationErrorSerializer,
}


# --- viewset -----------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Applications the caller may see",
        parameters=[OpenApiParameter("state", OpenApiTypes.STR, enum=Application.State.values)],
    ),
    retrieve=extend_schema(
        summary="One application with its members, timeline and possible actions",
        responses={200: ApplicationDetailSerializer, 404: _NOT_FOUND},
    ),
)
class ApplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """PHCER applications: create (owners, aggregators), read, act on (workflow), report and commitment."""

    serializer_class = ApplicationSerializer
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9_-]+"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = svc.visible_applications(self.request.user).select_related(
            "applicant", "applicant_org", "methodology", "factor"
        )
        if self.action == "list":
            state = self.request.query_params.get("state")
            if state:
                qs = qs.filter(state=state)
        return qs.order_by("-created_at", "-pk")

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        if self.action == "retrieve":
            return ApplicationDetailSerializer
        return super().get_serializer_class()

    @extend_schema(
        summary="Create a draft application (single owner or household bundle)",
        request=ApplicationCreateSerializer,
        responses={201: ApplicationDetailSerializer, **_ERRORS},
    )
    def create(self, request: Request) -> Response:
        ser = ApplicationCreateSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        d = ser.validated_data
        try:
            app = svc.do_create_application(
                request.user,
                system_codes=d["systems"],
                first_month=d["first_month"],
                last_month=d["last_month"],
                kind=d["kind"],
                aggregator_org=d.get("aggregator_org"),
            )
        except DomainError as exc:
            return _error(exc)
        return Response(
            ApplicationDetailSerializer(app, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Take a workflow step, or sign the no-double-claim commitment",
        description="Actions: " + ", ".join([*wf.ACTIONS, "sign_commitment"]) + ". `return`, `reject` and "
        "`complete_verification` need a comment. `submit` needs the signed commitment and a report. `issue` "
        "issues through the ledger (registry administrators, four eyes).",
        request=ApplicationActionSerializer,
        responses={200: ApplicationDetailSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="actions")
    def actions(self, request: Request, code: str | None = None) -> Response:
        app = self.get_object()
        ser = ApplicationActionSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        try:
            if ser.validated_data["action"] == "sign_commitment":
                app = svc.do_sign_commitment(app, request.user)
            else:
                app = svc.do_transition(
                    app, ser.validated_data["action"], request.user, ser.validated_data["comment"]
                )
        except DomainError as exc:
            return _error(exc)
        app = Application.objects.get(pk=app.pk)
        return Response(ApplicationDetailSerializer(app, context={"request": request}).data)

    @extend_schema(
        methods=["GET"],
        summary="Download the verification report (PDF)",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: _NOT_FOUND},
    )
    @extend_schema(
        methods=["POST"],
        summary="Attach a verification report (PDF) or let the platform draft one",
        request={
            "multipart/form-data": ApplicationReportSerializer,
            "application/json": ApplicationReportSerializer,
        },
        responses={200: ApplicationDetailSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], url_path="report")
    def report(self, request: Request, code: str | None = None) -> Any:
        app = self.get_object()
        if request.method == "GET":
            if not app.report:
                raise Http404
            try:
                handle = app.report.open("rb")
            except FileNotFoundError:
                raise Http404
            return FileResponse(handle, filename=f"{app.code}-report.pdf", content_type="application/pdf")
        ser = ApplicationReportSerializer(data=request.data)
        if not ser.is_valid():
            return _invalid(ser.errors)
        try:
            if ser.validated_data.get("report") is not None:
                app = svc.do_attach_report(app, request.user, ser.validated_data["report"])
            elif ser.validated_data.get("generate"):
                app = svc.do_generate_report(app, request.user)
            else:
                return Response(
                    {
                        "detail": _("Send a PDF file as `report`, or `generate`: true."),
                        "code": "report_required",
                        "errors": [],
                    },
                    status=status.HTTP_400_BAD_REQUEST,
                )
        except DomainError as exc:
            return _error(exc)
        return Response(ApplicationDetailSerializer(app, context={"request": request}).data)

    @extend_schema(
        summary="Eligibility checklist of one system for a period, from its own data",
        parameters=[
            OpenApiParameter("system", OpenApiTypes.STR, required=True, description="System code"),
            OpenApiParameter(
                "first_month", OpenApiTypes.STR, description="YYYY-MM (default: January last year)"
            ),
            OpenApiParameter(
                "last_month", OpenApiTypes.STR, description="YYYY-MM (default: December last year)"
            ),
        ],
        responses={200: ChecklistSerializer, 400: ApplicationErrorSerializer, 404: _NOT_FOUND},
    )
    @action(detail=False, methods=["get"], url_path="checklist")
    def checklist(self, request: Request) -> Response:
        code = request.query_params.get("system", "")
        system = access.visible_systems(request.user).filter(code=code).first()
        if system is None:
            raise Http404
        try:
            cl = svc.checklist(
                request.user,
                system,
                request.query_params.get("first_month") or None,
                request.query_params.get("last_month") or None,
            )
        except DomainError as exc:
            return _error(exc)
        return Response(
            {
                "system": system.code,
                "first_month": svc.fmt_month(cl.first),
                "last_month": svc.fmt_month(cl.last),
                "ready": cl.ready,
                "claimable_months": [svc.fmt_month(m) for m in cl.claimable],
                "items": [
                    {
                        "code": r.code,
                        "status": r.status,
                        "title": r.title,
                        "detail": r.detail,
                        "blocking": r.blocking,
                    }
                    for r in cl.rows
                ],
            }
        )

    @extend_schema(
        summary="What waits for the caller: reviewers and verifiers (review), registry administrators (issuance)",
        responses={200: ApplicationQueueItemSerializer(many=True)},
    )
    @action(detail=False, methods=["get"], url_path="queue", pagination_class=None)
    def queue(self, request: Request) -> Response:
        items = svc.reviewer_queue(request.user) + svc.issue_queue(request.user)
        return Response(
            [
                {
                    "code": i.application.code,
                    "state": i.application.state,
                    "applicant": (
                        i.application.applicant_org.display_name
                        if i.application.applicant_org_id
                        else i.application.applicant.display_name
                    ),
                    "units": i.application.units,
                    "days_waiting": i.days_waiting,
                    "actions": i.actions,
                }
                for i in items
            ]
        )
