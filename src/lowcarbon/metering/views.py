"""Pages of the readings ingest: file upload (CSV or Excel), the sample file, the list of a person's ingest batches,
a batch with its quarantine, and the quarantine as CSV. Thin: parse, authorise, call `do_ingest`, render."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from lowcarbon.metering.domain.validate import RawRow
from lowcarbon.metering.forms import ReadingsUploadForm
from lowcarbon.metering.models import IngestBatch, QuarantinedRow
from lowcarbon.metering.parsers import CsvRows, FileFormatError, iter_file
from lowcarbon.metering.reasons import reason_message
from lowcarbon.metering.services import do_ingest

QUARANTINE_PAGE_SIZE = 100
BATCH_PAGE_SIZE = 50

#: header of the sample file and of the documented format (Chinese aliases are accepted too)
SAMPLE_HEADER = [
    "meter_serial",
    "timestamp",
    "interval_minutes",
    "energy",
    "cumulative",
    "export",
    "export_cumulative",
    "unit",
    "tz",
]
#: example rows of the sample file: interval energy with and without offset, Wh, a cumulative register, export
SAMPLE_ROWS = [
    ["MTR-EXAMPLE-01", "2025-06-01T10:00:00+08:00", "60", "3.42", "", "", "", "kWh", ""],
    ["MTR-EXAMPLE-01", "2025-06-01T11:00:00", "60", "3.87", "", "", "", "kWh", ""],
    ["MTR-EXAMPLE-01", "2025-06-01 12:00", "60", "4010", "", "", "", "Wh", ""],
    ["MTR-EXAMPLE-02", "2025-06-01T10:00:00", "", "", "12345.60", "", "", "kWh", "Asia/Shanghai"],
    ["MTR-EXAMPLE-02", "2025-06-01T11:00:00", "", "", "12349.10", "", "", "kWh", "Asia/Shanghai"],
    ["MTR-EXAMPLE-03", "2025-06-01T03:00:00Z", "60", "3.10", "", "1.20", "", "kWh", ""],
]

QUARANTINE_CSV_HEADER = ["row", "reason", "message", "field", "detail", "original"]


def readable_rows(rows: Iterator[RawRow]) -> Iterator[RawRow]:
    """Rows of a file, with any failure of the reader itself (a truncated or corrupt workbook, say) reported as a
    file that cannot be read rather than as a server error. Reading rows touches no database, so whatever the reader
    raises is about the file. A CSV reader stays one (so ingest can read it in column chunks)."""
    if isinstance(rows, CsvRows):
        return rows.guarded()
    return _readable_rows(rows)


def _readable_rows(rows: Iterator[RawRow]) -> Iterator[RawRow]:
    try:
        yield from rows
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"the file is damaged or not in a supported format ({exc.__class__.__name__}: {exc})"[:500]
        )


# ---- who may do what ---------------------------------------------------------------------------------------------


def may_submit_readings(user: Any) -> bool:
    """Owners, aggregators and registry administrators send readings (the service then accepts only the meters
    each of them manages)."""
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_owner or user.is_aggregator or user.is_registry_admin)
    )


def visible_batches(user: Any) -> QuerySet[IngestBatch]:
    """Batches a person may see: their own; registry administrators see every batch (also CLI and MQTT ones)."""
    qs = IngestBatch.objects.select_related("submitted_by").order_by("-started_at", "-pk")
    if user is None or not user.is_authenticated:
        return qs.none()
    if user.is_registry_admin:
        return qs
    return qs.filter(submitted_by=user)


def reason_rows(batch: IngestBatch) -> list[dict[str, Any]]:
    """Rejected rows of a batch grouped by reason, most frequent first, with the translated message."""
    items = sorted((batch.rejected_by_reason or {}).items(), key=lambda kv: (-int(kv[1]), kv[0]))
    return [{"code": code, "message": reason_message(code), "count": int(n)} for code, n in items]


# ---- pages -------------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """Upload a CSV or Excel file of readings; the rows stream through the ingest service."""
    if not may_submit_readings(request.user):
        raise PermissionDenied(
            _("Only PV owners, aggregators and registry administrators can upload readings.")
        )
    if request.method == "POST":
        form = ReadingsUploadForm(request.POST, request.FILES)
        if form.is_valid():
            f = request.FILES["file"]
            batch = do_ingest(
                readable_rows(iter_file(f, f.name)),
                source=IngestBatch.Source.UPLOAD,
                filename=f.name,
                user=request.user,
            )
            if batch.status == IngestBatch.Status.FAILED:
                messages.error(request, _("The file could not be read. See the batch page for the reason."))
            else:
                messages.success(
                    request,
                    _(
                        "File read: %(rows)d rows, %(accepted)d accepted, %(duplicates)d identical duplicates, "
                        "%(rejected)d rejected."
                    )
                    % {
                        "rows": batch.rows_total,
                        "accepted": batch.rows_accepted,
                        "duplicates": batch.rows_duplicate,
                        "rejected": batch.rows_rejected,
                    },
                )
            return redirect("metering:batch_detail", pk=batch.pk)
    else:
        form = ReadingsUploadForm()
    return render(
        request,
        "metering/upload.html",
        {"form": form, "sample_header": ",".join(SAMPLE_HEADER), "recent": visible_batches(request.user)[:5]},
    )


@require_GET
def sample_csv(request: HttpRequest) -> HttpResponse:
    """A small example file in the accepted format (UTF-8 with BOM, so Excel shows it correctly)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="readings-sample.csv"'
    response.write("\ufeff")
    writer = csv.writer(response, lineterminator="\r\n")
    writer.writerow(SAMPLE_HEADER)
    writer.writerows(SAMPLE_ROWS)
    return response


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    """The person's ingest batches, newest first (registry administrators: all batches)."""
    page = Paginator(visible_batches(request.user), BATCH_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "metering/batch_list.html",
        {"page": page, "show_submitter": request.user.is_registry_admin},
    )


@login_required
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Counts of a batch, its rejections by reason and the quarantined rows (100 a page)."""
    batch = get_object_or_404(visible_batches(request.user), pk=pk)
    rows = batch.quarantine.order_by("row_number", "pk")
    page = Paginator(rows, QUARANTINE_PAGE_SIZE).get_page(request.GET.get("page"))
    for q in page.object_list:
        q.message = reason_message(q.reason)
    return render(
        request,
        "metering/batch_detail.html",
        {
            "batch": batch,
            "reasons": reason_rows(batch),
            "page": page,
            "may_upload": may_submit_readings(request.user),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A cell safe to open in a spreadsheet: text that would start a formula is prefixed with an apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) or (text.startswith("-") and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _quarantine_lines(rows: QuerySet[QuarantinedRow]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield "\ufeff" + writer.writerow(QUARANTINE_CSV_HEADER)
    messages_by_code: dict[str, str] = {}
    for q in rows.iterator(chunk_size=2000):
        if q.reason not in messages_by_code:
            messages_by_code[q.reason] = reason_message(q.reason)
        yield writer.writerow(
            [q.row_number, q.reason, messages_by_code[q.reason], q.field, _cell(q.detail), _cell(q.raw)]
        )


@login_required
@require_GET
def quarantine_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The quarantined rows of a batch as CSV (UTF-8 with BOM): row, reason, message, field, detail, original."""
    batch = get_object_or_404(visible_batches(request.user), pk=pk)
    rows = QuarantinedRow.objects.filter(batch=batch).order_by("row_number", "pk")
    response = StreamingHttpResponse(_quarantine_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="quarantine-batch-{batch.pk}.csv"'
    return response
