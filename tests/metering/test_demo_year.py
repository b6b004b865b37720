"""The demo's readings lie in its year: the aggregator's gateway upload (good rows and one of each common fault)
fills the January days household01's feed missed, instead of leaving a partial month of the next year behind
(a month of one day, quantified, shown on the dashboards)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Max, Min

from lowcarbon.demo import DEMO_YEAR, GATEWAY_FILE_DAYS, load_demo
from lowcarbon.metering.models import (
    DailyRollup,
    DataFlag,
    IngestBatch,
    MonthlyRollup,
    QuarantinedRow,
    Reading,
)
from lowcarbon.methodology.models import Quantification

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_every_demo_reading_and_result_lies_in_the_demo_year(media_root):
    load_demo()
    year_start = datetime.combine(date(DEMO_YEAR, 1, 1), time.min, SHANGHAI)
    year_end = datetime.combine(date(DEMO_YEAR + 1, 1, 1), time.min, SHANGHAI)
    span = Reading.objects.aggregate(first=Min("ts"), last=Max("ts"))
    # readings are stamped with the end of their hour: the first ends at 01:00 on 1 January, the last at midnight
    assert year_start < span["first"] and span["last"] <= year_end, span
    assert {d.year for d in DailyRollup.objects.values_list("day", flat=True).distinct()} == {DEMO_YEAR}
    assert {d.year for d in MonthlyRollup.objects.values_list("month", flat=True).distinct()} == {DEMO_YEAR}
    assert {d.year for d in Quantification.objects.values_list("month", flat=True).distinct()} == {DEMO_YEAR}

    batch = IngestBatch.objects.get(source="upload", filename=f"网关导出-{DEMO_YEAR}年1月.csv")
    assert (batch.rows_accepted, batch.rows_rejected) == (46, 9)  # two days of hours, less the two refused
    assert set(QuarantinedRow.objects.filter(batch=batch).values_list("reason", flat=True)) == {
        "conflicting_duplicate",
        "unknown_meter",
        "future_timestamp",
        "unparseable_field",
        "before_grid_connection",
        "negative_energy",
        "above_physical_ceiling",
        "export_above_generation",
        "missing_field",
    }
    meter_id = Reading.objects.filter(batch_id=batch.pk).values_list("meter_id", flat=True).first()
    first_day, second_day = GATEWAY_FILE_DAYS
    days = DailyRollup.objects.filter(meter_id=meter_id, day__in=GATEWAY_FILE_DAYS)
    assert {d.day: d.n_readings for d in days} == {first_day: 24, second_day: 22}
    # the hours whose rows were refused are a gap, shown and never filled
    gaps = DataFlag.objects.filter(meter_id=meter_id, code="meter_gap")
    assert list(gaps.values_list("day", "detail")) == [(second_day, "22.00 h / 24 h")]
