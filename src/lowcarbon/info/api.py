"""REST API of the information service under /api/v1/info/ (thin: parse, authorise, call the service, serialise).

Reading notices and projects needs no log-in (drafts and unpublished projects answer 404 except to editors);
writing needs a content editor or registry administrator. Sending a cooperation request needs no log-in and has the
same honeypot and rate limit as the page. Refusals answer {"code", "detail", "errors": {field: [messages]}}.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import get_language
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.info import services as svc
from lowcarbon.info.models import Article, Attachment, CooperationRequest, DemoProject, Outcome, Photo


def _body(request: Request) -> Any:
    """The request's fields: a JSON object or a form; anything else (a JSON list, a number) is a 400."""
    if not hasattr(request.data, "get"):
        raise ParseError("Expected a JSON object.")
    return request.data


def refused(exc: DomainError) -> Response:
    if isinstance(exc, svc.NotAllowed):
        return Response({"code": exc.code, "detail": exc.message}, status=status.HTTP_403_FORBIDDEN)
    errors = exc.by_field() if isinstance(exc, svc.InfoRefused) else {}
    code = status.HTTP_429_TOO_MANY_REQUESTS if exc.code == "rate_limit" else status.HTTP_400_BAD_REQUEST
    return Response({"code": exc.code, "detail": exc.message, "errors": errors}, status=code)


# --- serializers -------------------------------------------------------------------------------------------------


class AttachmentSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    url = serializers.SerializerMethodField(help_text="Where to download the file.")

    class Meta:
        model = Attachment
        fields = ["id", "original_name", "size", "uploaded_at", "url"]

    def get_url(self, obj: Attachment) -> str:
        return reverse("info:attachment_file", args=[obj.pk])


class ArticleSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A notice in both languages, with the text to show in the request language (`title`, `body`) and whether that
    text fell back to the other language."""

    category_label = serializers.CharField(source="get_category_display", read_only=True)
    title = serializers.CharField(source="title.text", read_only=True)
    body = serializers.CharField(source="body.text", read_only=True)
    shown_language = serializers.CharField(source="body.lang", read_only=True)
    fallback = serializers.BooleanField(source="body.fallback", read_only=True)
    is_public = serializers.BooleanField(read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = Article
        fields = [
            "id",
            "category",
            "category_label",
            "title_zh",
            "title_en",
            "body_zh",
            "body_en",
            "title",
            "body",
            "shown_language",
            "fallback",
            "published",
            "publish_at",
            "is_public",
            "updated_at",
            "attachments",
        ]


class ArticleWriteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Fields of a notice; checked by the service (field-named reasons)."""

    category = serializers.ChoiceField(choices=Article.Category.choices)
    title_zh = serializers.CharField(required=False, allow_blank=True)
    title_en = serializers.CharField(required=False, allow_blank=True)
    body_zh = serializers.CharField(required=False, allow_blank=True)
    body_en = serializers.CharField(required=False, allow_blank=True)


class PublishSerializer(serializers.Serializer):  # type: ignore[type-arg]
    publish_at = serializers.CharField(
        required=False, allow_blank=True, help_text="YYYY-MM-DD HH:MM (Asia/Shanghai); empty: now."
    )


class UploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    file = serializers.FileField()


class OutcomeSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    indicator = serializers.CharField(source="indicator.text", read_only=True)

    class Meta:
        model = Outcome
        fields = ["indicator", "indicator_zh", "indicator_en", "value", "unit", "period", "source"]


class PhotoSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    caption = serializers.CharField(source="caption.text", read_only=True)
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Photo
        fields = ["id", "caption", "width", "height", "url", "thumbnail_url"]

    def get_url(self, obj: Photo) -> str:
        return reverse("info:photo_file", args=[obj.pk])

    def get_thumbnail_url(self, obj: Photo) -> str:
        return reverse("info:photo_thumb", args=[obj.pk])


@extend_schema_serializer(component_name="DemoProject")
class ProjectSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    name = serializers.CharField(source="name.text", read_only=True)
    community = serializers.CharField(source="community.code", read_only=True, allow_null=True, default=None)
    owner_org = serializers.CharField(source="owner_org.display_name", read_only=True)

    class Meta:
        model = DemoProject
        fields = [
            "id",
            "kind",
            "kind_label",
            "name",
            "name_zh",
            "name_en",
            "community",
            "location",
            "owner_org",
        ]


@extend_schema_serializer(component_name="DemoProjectDetail")
class ProjectDetailSerializer(ProjectSerializer):
    """A project with its description, contact, typed-in outcomes, photos and the outcomes the platform computed
    for its linked PV systems (generation from monthly meter rollups, avoided emissions from quantification)."""

    description = serializers.CharField(source="description.text", read_only=True)
    outcomes = OutcomeSerializer(many=True, read_only=True)
    photos = PhotoSerializer(many=True, read_only=True)
    computed_outcomes = serializers.SerializerMethodField()

    class Meta(ProjectSerializer.Meta):
        fields = [
            *ProjectSerializer.Meta.fields,
            "description",
            "description_zh",
            "description_en",
            "contact_name",
            "contact_phone",
            "contact_email",
            "started_on",
            "outcomes",
            "photos",
            "computed_outcomes",
        ]

    def get_computed_outcomes(self, obj: DemoProject) -> dict[str, Any] | None:
        c = svc.computed_outcomes(obj)
        if c is None:
            return None
        return {
            "systems": [s.code for s in c.systems],
            "capacity_kwp": str(c.capacity_kwp),
            "methods": [{"methodology": m, "grid_factor": f} for m, f in c.methods],
            "years": [
                {
                    "year": y.year,
                    "period": y.period,
                    "months": y.months,
                    "generation_kwh": str(y.generation_kwh.quantize(1)),
                    "avoided_tco2e": str(y.er_t),
                }
                for y in c.years
            ],
        }


class RequestWriteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    organisation = serializers.CharField()
    contact = serializers.CharField(help_text="Phone number or e-mail address.")
    message = serializers.CharField()
    website = serializers.CharField(required=False, allow_blank=True, help_text="Leave empty (spam trap).")


class CooperationRequestSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    project = serializers.IntegerField(source="project_id", read_only=True)
    project_name = serializers.CharField(source="project.name.text", read_only=True)
    state_label = serializers.CharField(source="get_state_display", read_only=True)

    class Meta:
        model = CooperationRequest
        fields = [
            "id",
            "project",
            "project_name",
            "name",
            "organisation",
            "contact",
            "message",
            "state",
            "state_label",
            "created_at",
            "answered_at",
            "answer_note",
        ]


class AnswerSerializer(serializers.Serializer):  # type: ignore[type-arg]
    answer_note = serializers.CharField(required=False, allow_blank=True)


class SentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    detail = serializers.CharField()


# --- views -------------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Notices and documents (public; editors also see drafts)",
        parameters=[
            OpenApiParameter("category", str, enum=Article.Category.values),
            OpenApiParameter("q", str, description="Words searched in titles and texts of both languages."),
        ],
    ),
    retrieve=extend_schema(summary="One notice"),
)
class ArticleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    serializer_class = ArticleSerializer
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    queryset = Article.objects.none()

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = svc.visible_articles(self.request.user).prefetch_related("attachments")
        if self.action == "list":
            qs = svc.search_articles(
                qs,
                self.request.query_params.get("q", "")[:100],
                self.request.query_params.get("category", ""),
            )
        return qs

    def _editor(self, request: Request) -> Response | None:
        if not request.user.is_authenticated:
            return Response(
                {"code": "not_authenticated", "detail": "log in"}, status=status.HTTP_401_UNAUTHORIZED
            )
        if not svc.is_editor(request.user):
            return refused(svc.NotAllowed())
        return None

    @extend_schema(
        summary="Create a draft notice (editors)",
        request=ArticleWriteSerializer,
        responses={201: ArticleSerializer, 400: OpenApiResponse(description="field-named reasons")},
    )
    def create(self, request: Request) -> Response:
        denied = self._editor(request)
        if denied:
            return denied
        try:
            article = svc.do_save_article(request.user, _body(request))
        except DomainError as exc:
            return refused(exc)
        return Response(ArticleSerializer(article).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a notice (editors)", request=ArticleWriteSerializer, responses=ArticleSerializer
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        denied = self._editor(request)
        if denied:
            return denied
        article = self.get_object()
        data = {f: getattr(article, f) for f in ("category", *svc.ARTICLE_TEXT_FIELDS)}
        data.update({k: v for k, v in _body(request).items() if k in data})
        try:
            article = svc.do_save_article(request.user, data, article)
        except DomainError as exc:
            return refused(exc)
        return Response(ArticleSerializer(article).data)

    @extend_schema(
        summary="Publish now or at a time (editors)", request=PublishSerializer, responses=ArticleSerializer
    )
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        denied = self._editor(request)
        if denied:
            return denied
        article = self.get_object()
        try:
            when = svc.parse_datetime_local(str(_body(request).get("publish_at") or ""))
            article = svc.do_publish_article(request.user, article, when)
        except DomainError as exc:
            return refused(exc)
        return Response(ArticleSerializer(article).data)

    @extend_schema(summary="Withdraw from publication (editors)", request=None, responses=ArticleSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, pk: str | None = None) -> Response:
        denied = self._editor(request)
        if denied:
            return denied
        article = svc.do_unpublish_article(request.user, self.get_object())
        return Response(ArticleSerializer(article).data)

    @extend_schema(
        summary="Attach a file (editors)",
        request={"multipart/form-data": UploadSerializer},
        responses={201: AttachmentSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def attachments(self, request: Request, pk: str | None = None) -> Response:
        denied = self._editor(request)
        if denied:
            return denied
        article = self.get_object()
        try:
            att = svc.do_add_attachment(request.user, article, request.FILES.get("file"))
        except DomainError as exc:
            return refused(exc)
        return Response(AttachmentSerializer(att).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="Demonstration projects (public)",
        parameters=[OpenApiParameter("kind", str, enum=DemoProject.Kind.values)],
    ),
    retrieve=extend_schema(summary="One project with its outcomes", responses=ProjectDetailSerializer),
)
class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    permission_classes = [AllowAny]
    queryset = DemoProject.objects.none()

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return ProjectDetailSerializer if self.action == "retrieve" else ProjectSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = svc.visible_projects(self.request.user).select_related("community", "owner_org")
        kind = self.request.query_params.get("kind", "")
        if self.action == "list" and kind in DemoProject.Kind.values:
            qs = qs.filter(kind=kind)
        return qs.order_by("kind", "pk")

    @extend_schema(
        summary="Send a cooperation request to the project's owner (no log-in)",
        request=RequestWriteSerializer,
        responses={
            201: SentSerializer,
            400: OpenApiResponse(description="field-named reasons"),
            429: OpenApiResponse(description="too many requests"),
        },
    )
    @action(detail=True, methods=["post"], authentication_classes=[])
    def requests(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        try:
            req = svc.do_send_request(
                project,
                _body(request),
                sender_ip=request.META.get("REMOTE_ADDR"),
                language=get_language() or "",
            )
        except DomainError as exc:
            return refused(exc)
        return Response({"id": req.pk, "detail": "sent"}, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="Cooperation requests to the caller's projects (administrators: all)",
        parameters=[OpenApiParameter("state", str, enum=CooperationRequest.State.values)],
    )
)
class CooperationRequestViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = CooperationRequestSerializer
    permission_classes = [IsAuthenticated]
    queryset = CooperationRequest.objects.none()

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = svc.inbox_requests(self.request.user).order_by("-created_at", "-pk")
        state = self.request.query_params.get("state", "")
        if state in CooperationRequest.State.values:
            qs = qs.filter(state=state)
        return qs

    @extend_schema(
        summary="Mark a request answered", request=AnswerSerializer, responses=CooperationRequestSerializer
    )
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str | None = None) -> Response:
        req = self.get_object()
        try:
            req = svc.do_mark_answered(request.user, req, str(_body(request).get("answer_note") or ""))
        except DomainError as exc:
            return refused(exc)
        return Response(CooperationRequestSerializer(req).data)
