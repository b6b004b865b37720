"""REST API of the readings ingest: a JSON batch of readings (the door of meter gateways and scripts), the
person's ingest batches and their quarantine. Thin: parse, authorise, call `do_ingest`, serialise."""

from __future__ import annotations

import codecs
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcarbon.metering.models import IngestBatch, QuarantinedRow
from lowcarbon.metering.parsers import iter_records
from lowcarbon.metering.reasons import reason_message
from lowcarbon.metering.services import do_ingest
from lowcarbon.metering.views import may_submit_readings, visible_batches

#: most readings one API call may carry; larger deliveries are split by the client
MAX_READINGS_PER_CALL = 50_000


class DecimalJSONParser(JSONParser):
    """JSON with numbers read as exact decimals, so 0.1 kWh stays 0.1 kWh (no binary floating point)."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=Decimal)
        except ValueError as exc:
            raise ParseError(_("The body is not valid JSON: %(error)s") % {"error": exc})


class CanSubmitReadings(permissions.BasePermission):
    """Owners, aggregators and registry administrators send readings."""

    message = gettext_lazy("Only PV owners, aggregators and registry administrators can send readings.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return may_submit_readings(request.user)


# ---- serializers -------------------------------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}]})
class _NumberOrString(serializers.Field):
    """A number given as a JSON number or a string (documentation only: rows are checked by the ingest)."""


class ReadingSerializer(serializers.Serializer):
    """One reading as sent. The fields are checked by the ingest service, which rejects a bad row with a reason
    code instead of refusing the whole call."""

    meter_serial = serializers.CharField(help_text="Serial number of the meter.")
    timestamp = serializers.CharField(
        help_text="End of the interval, ISO 8601; without an offset it is Asia/Shanghai time (or `tz`)."
    )
    energy = _NumberOrString(required=False, help_text="Energy of the interval (give energy or cumulative).")
    cumulative = _NumberOrString(required=False, help_text="Register reading at the end of the interval.")
    unit = serializers.CharField(help_text="kWh, Wh or MWh (explicit; never assumed).")
    interval_minutes = _NumberOrString(
        required=False, help_text="Interval length; default the meter's interval."
    )
    export = _NumberOrString(
        required=False, help_text="Energy exported in the interval (bidirectional meters)."
    )
    export_cumulative = _NumberOrString(
        required=False, help_text="Export register at the end of the interval."
    )
    tz = serializers.CharField(
        required=False, help_text="Time zone of a timestamp without offset, e.g. +08:00."
    )


@extend_schema_field(ReadingSerializer(many=True))
class _ReadingsField(serializers.Field):
    """The list of readings, passed on as received so that each bad row is quarantined with its reason."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise serializers.ValidationError(_("“readings” must be a list of reading objects."))
        if not data:
            raise serializers.ValidationError(_("“readings” is empty: send at least one reading."))
        if len(data) > MAX_READINGS_PER_CALL:
            raise serializers.ValidationError(
                _(
                    "Too many readings in one call: %(n)d. At most %(max)d readings may be sent per call; "
                    "split them into several calls."
                )
                % {"n": len(data), "max": MAX_READINGS_PER_CALL}
            )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ReadingsBatchSerializer(serializers.Serializer):
    client_key = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        help_text="Your own key of this delivery; sending the same key again returns the earlier batch (200).",
    )
    readings = _ReadingsField(help_text=f"At most {MAX_READINGS_PER_CALL} readings per call.")


class IngestBatchSerializer(serializers.ModelSerializer):
    """The counts of a batch (the same keys as the CLI's --json output) and when and how it came in."""

    batch = serializers.IntegerField(source="pk", read_only=True)
    file = serializers.CharField(source="filename", read_only=True)
    rows = serializers.IntegerField(source="rows_total", read_only=True)
    accepted = serializers.IntegerField(source="rows_accepted", read_only=True)
    identical_duplicates = serializers.IntegerField(source="rows_duplicate", read_only=True)
    rejected = serializers.IntegerField(source="rows_rejected", read_only=True)
    rejected_by_reason = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    submitted_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="User name of the person who sent it; null for the command line and MQTT.",
    )

    class Meta:
        model = IngestBatch
        fields = [
            "batch",
            "status",
            "file",
            "rows",
            "accepted",
            "identical_duplicates",
            "rejected",
            "rejected_by_reason",
            "error",
            "source",
            "client_key",
            "submitted_by",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RejectedRowSerializer(serializers.ModelSerializer):
    """A rejected row: its number in the delivery (1 = first reading), reason code, translated message, field."""

    row = serializers.IntegerField(source="row_number", read_only=True)
    message = serializers.SerializerMethodField()

    class Meta:
        model = QuarantinedRow
        fields = ["row", "reason", "message", "field", "detail"]
        read_only_fields = fields

    def get_message(self, obj: QuarantinedRow) -> str:
        return reason_message(obj.reason)


class QuarantinedRowSerializer(RejectedRowSerializer):
    """A quarantined row with the meter serial it named and its original text."""

    original = serializers.CharField(source="raw", read_only=True)

    class Meta(RejectedRowSerializer.Meta):
        fields = [*RejectedRowSerializer.Meta.fields, "meter_serial", "original"]
        read_only_fields = fields


class ReadingsBatchResultSerializer(IngestBatchSerializer):
    rejected_rows = serializers.SerializerMethodField()

    class Meta(IngestBatchSerializer.Meta):
        fields = [*IngestBatchSerializer.Meta.fields, "rejected_rows"]
        read_only_fields = fields

    @extend_schema_field(RejectedRowSerializer(many=True))
    def get_rejected_rows(self, obj: IngestBatch) -> list[dict[str, Any]]:
        rows = obj.quarantine.order_by("row_number", "pk")
        return RejectedRowSerializer(rows, many=True).data  # type: ignore[return-value]


# ---- views -------------------------------------------------------------------------------------------------------


class ReadingsBatchView(APIView):
    """POST a batch of readings."""

    parser_classes = [DecimalJSONParser]
    permission_classes = [permissions.IsAuthenticated, CanSubmitReadings]

    @extend_schema(
        operation_id="readings_batch_create",
        tags=["metering"],
        summary="Send a batch of meter readings",
        description=(
            "Validates and stores the readings. Accepted rows are stored, identical duplicates change nothing, "
            "rejected rows are quarantined and returned with their reason code and message. Only meters of "
            f"systems you manage are accepted. At most {MAX_READINGS_PER_CALL} readings per call. "
            "A repeated client_key returns the earlier batch with status 200."
        ),
        request=ReadingsBatchSerializer,
        responses={
            201: ReadingsBatchResultSerializer,
            200: OpenApiResponse(
                ReadingsBatchResultSerializer, description="Repeated client_key: the earlier batch."
            ),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Malformed body or too many readings."),
        },
    )
    def post(self, request: Request) -> Response:
        ser = ReadingsBatchSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        key: str = ser.validated_data["client_key"]
        if key:
            earlier = self._earlier(request, key)
            if earlier is not None:
                return Response(ReadingsBatchResultSerializer(earlier).data, status=status.HTTP_200_OK)
        called_at = timezone.now()
        try:
            batch = do_ingest(
                iter_records(ser.validated_data["readings"]),
                source=IngestBatch.Source.API,
                user=request.user,
                client_key=key,
            )
        except IntegrityError:
            # the same client_key sent twice at the same moment: the other call created the batch
            earlier = self._earlier(request, key) if key else None
            if earlier is None:
                raise
            return Response(ReadingsBatchResultSerializer(earlier).data, status=status.HTTP_200_OK)
        # do_ingest returns the earlier batch when the key was stored between the look-up above and the call
        created = batch.started_at >= called_at
        return Response(
            ReadingsBatchResultSerializer(batch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @staticmethod
    def _earlier(request: Request, key: str) -> IngestBatch | None:
        return IngestBatch.objects.filter(submitted_by=request.user, client_key=key).first()


class IngestBatchListView(generics.ListAPIView):
    """The person's ingest batches, newest first (registry administrators: all)."""

    serializer_class = IngestBatchSerializer

    def get_queryset(self) -> QuerySet[IngestBatch]:
        return visible_batches(self.request.user)

    @extend_schema(operation_id="ingest_batches_list", tags=["metering"], summary="List ingest batches")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class IngestBatchDetailView(generics.RetrieveAPIView):
    """One ingest batch with its counts (404 unless it is yours or you are a registry administrator)."""

    serializer_class = IngestBatchSerializer

    def get_queryset(self) -> QuerySet[IngestBatch]:
        return visible_batches(self.request.user)

    @extend_schema(operation_id="ingest_batches_retrieve", tags=["metering"], summary="An ingest batch")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class IngestBatchQuarantineView(generics.ListAPIView):
    """The quarantined rows of a batch, in row order."""

    serializer_class = QuarantinedRowSerializer

    def get_queryset(self) -> QuerySet[QuarantinedRow]:
        if getattr(self, "swagger_fake_view", False):
            return QuarantinedRow.objects.none()
        batch = generics.get_object_or_404(visible_batches(self.request.user), pk=self.kwargs["pk"])
        return QuarantinedRow.objects.filter(batch=batch).order_by("row_number", "pk")

    @extend_schema(
        operation_id="ingest_batches_quarantine_list",
        tags=["metering"],
        summary="Quarantined rows of a batch",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
