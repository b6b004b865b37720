"""A register value or energy with more digits than the stored columns hold (16 digits, 4 after the point: at most
12 before it, in the meter's canonical unit) is refused row by row with `value_too_large`, naming the field, through
every door: the CSV file path (read on arrays, the odd row row by row) and the row path (JSON records); the good
rows of the same delivery are stored."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import translation

from lowcarbon.metering.models import IngestBatch, Meter, Quantity, QuarantinedRow, Reading
from lowcarbon.metering.parsers import iter_csv, iter_records
from lowcarbon.metering.reasons import reason_message
from lowcarbon.metering.services import do_ingest
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

NOW = datetime(2025, 7, 1, 4, 0, tzinfo=UTC)
HEADER = "meter_serial,timestamp,interval_minutes,energy,cumulative,export,unit"


@pytest.fixture
def meters():
    owner = make_user("owner_household")
    make_system(owner, serial="VR-PV", capacity_kwp="5")
    Meter.objects.create(
        serial="VR-HALL",
        purpose="building",
        quantity=Quantity.ELECTRICITY,
        subject_kind="building",
        subject_id=1,
    )
    return owner


# (row, field): each too large for the stored columns; the good rows around them are stored
TOO_LARGE = [
    ("VR-HALL,2025-06-01T11:00:00+08:00,60,1234567890123,,,kWh", "energy"),  # 13 integer digits
    ("VR-HALL,2025-06-01T12:00:00+08:00,60,1000000000,,,MWh", "energy"),  # 10**12 kWh once converted
    ("VR-PV,2025-06-01T12:00:00+08:00,,,9999999999999.5,,kWh", "cumulative"),  # a first register read
    ("VR-HALL,2025-06-01T13:00:00+08:00,60,1e40,,,kWh", "energy"),  # far beyond: no arithmetic error either
]
GOOD = [
    "VR-HALL,2025-06-01T10:00:00+08:00,60,999999999999.5,,,kWh",  # 12 integer digits fit
    "VR-PV,2025-06-01T11:00:00+08:00,60,1.5,,,kWh",
    "VR-HALL,2025-06-01T14:00:00+08:00,60,12.25,,,kWh",
]


def _lines() -> list[str]:
    return [GOOD[0], GOOD[1], *(row for row, _f in TOO_LARGE), GOOD[2]]


def _check(batch: IngestBatch, raws: list[str]) -> None:
    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert (batch.rows_accepted, batch.rows_rejected) == (len(GOOD), len(TOO_LARGE))
    assert batch.rejected_by_reason == {"value_too_large": len(TOO_LARGE)}
    quarantined = list(QuarantinedRow.objects.filter(batch=batch).order_by("row_number"))
    assert [(q.row_number, q.reason, q.field) for q in quarantined] == [
        (3 + k, "value_too_large", field) for k, (_row, field) in enumerate(TOO_LARGE)
    ]
    assert [q.raw for q in quarantined] == raws  # the original text, as sent
    assert "999999999999.9999" in quarantined[0].detail
    stored = sorted(Reading.objects.values_list("energy", flat=True))
    assert stored == [Decimal("1.5"), Decimal("12.25"), Decimal("999999999999.5")]
    with translation.override("zh-hans"):
        assert "数值过大" in reason_message("value_too_large")
    with translation.override("en"):
        assert "Value too large" in reason_message("value_too_large")


def test_a_csv_file_with_too_large_values_stores_the_good_rows_and_quarantines_those(meters):
    text = "\n".join([HEADER, *_lines()]) + "\n"
    batch = do_ingest(iter_csv(io.BytesIO(text.encode())), source="cli", filename="big.csv", now=NOW)
    _check(batch, [row for row, _f in TOO_LARGE])


def test_json_records_with_too_large_values_store_the_good_rows_and_quarantine_those(meters):
    names = HEADER.split(",")
    records = [dict(zip(names, line.split(","), strict=True)) for line in _lines()]
    batch = do_ingest(iter_records(records), source="api", now=NOW)
    _check(batch, [json.dumps(records[2 + k], ensure_ascii=False) for k in range(len(TOO_LARGE))])
