"""The ingest service: every rejection reason, identical duplicates, idempotent re-import, rollups, gaps."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lowcarbon.metering.models import (
    DailyRollup,
    DataFlag,
    IngestBatch,
    Meter,
    MonthlyRollup,
    QuarantinedRow,
    Reading,
)
from lowcarbon.metering.parsers import iter_csv, iter_records
from lowcarbon.metering.services import do_ingest
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HEADER = "meter_serial,timestamp,interval_minutes,energy,cumulative,export,unit\n"


def ingest_csv(text: str, user=None, **kw) -> IngestBatch:
    return do_ingest(
        iter_csv(io.BytesIO(text.encode("utf-8"))), source="cli", filename="t.csv", user=user, **kw
    )


@pytest.fixture
def system():
    owner = make_user("owner_household")
    return make_system(owner, serial="M-0001", capacity_kwp="5")


@pytest.fixture
def bidir():
    owner = make_user("owner_household")
    return make_system(owner, serial="M-BIDI", capacity_kwp="5", metering="bidirectional")


def reasons(batch: IngestBatch) -> list[str]:
    return list(
        QuarantinedRow.objects.filter(batch=batch).order_by("row_number").values_list("reason", flat=True)
    )


def test_good_rows_stored_and_rolled_up(system):
    batch = ingest_csv(
        HEADER
        + "M-0001,2025-06-01T11:00:00+08:00,60,3.2,,,kWh\n"
        + "M-0001,2025-06-01 12:00,60,3500,,,Wh\n"  # naive → Asia/Shanghai; Wh converted to kWh
        + "M-0001,2025-06-02T13:00:00+08:00,60,0.0012,,,MWh\n"
    )
    assert (batch.rows_accepted, batch.rows_rejected, batch.rows_duplicate) == (3, 0, 0)
    meter = Meter.objects.get(serial="M-0001")
    assert Reading.objects.filter(meter_id=meter.id).count() == 3
    day1 = DailyRollup.objects.get(meter_id=meter.id, day=date(2025, 6, 1))
    assert day1.energy == Decimal("6.7") and day1.n_readings == 2
    month = MonthlyRollup.objects.get(meter_id=meter.id, month=date(2025, 6, 1))
    assert month.energy == Decimal("7.9") and month.n_readings == 3
    # stored in UTC: 11:00 Shanghai = 03:00 UTC
    assert Reading.objects.filter(meter_id=meter.id, ts=datetime(2025, 6, 1, 3, tzinfo=UTC)).exists()


@pytest.mark.parametrize(
    ("row", "reason", "field"),
    [
        ("NOPE-1,2025-06-01T11:00:00+08:00,60,1,,,kWh", "unknown_meter", "meter_serial"),
        (",2025-06-01T11:00:00+08:00,60,1,,,kWh", "missing_field", "meter_serial"),
        ("M-0001,,60,1,,,kWh", "missing_field", "timestamp"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,1,,,", "missing_field", "unit"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,,,,kWh", "missing_field", "energy"),
        ("M-0001,yesterday noon,60,1,,,kWh", "unparseable_field", "timestamp"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,abc,,,kWh", "unparseable_field", "energy"),
        ("M-0001,2025-06-01T11:00:00+08:00,sixty,1,,,kWh", "unparseable_field", "interval_minutes"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,1,,,m3", "unit_mismatch", "unit"),
        ("M-0001,2099-01-01T11:00:00+08:00,60,1,,,kWh", "future_timestamp", "timestamp"),
        ("M-0001,2023-12-31T11:00:00+08:00,60,1,,,kWh", "before_grid_connection", "timestamp"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,-0.5,,,kWh", "negative_energy", "energy"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,5.6,,,kWh", "above_physical_ceiling", "energy"),
        ("M-0001,2025-06-01T11:00:00+08:00,60,1,,0.5,kWh", "export_not_metered", "export"),
    ],
)
def test_each_rejection_reason(system, row, reason, field):
    batch = ingest_csv(HEADER + row + "\n")
    assert batch.rows_rejected == 1 and batch.rows_accepted == 0
    q = QuarantinedRow.objects.get(batch=batch)
    assert (q.reason, q.field) == (reason, field)
    assert q.raw == row and q.row_number == 1
    assert batch.rejected_by_reason == {reason: 1}
    assert Reading.objects.count() == 0


def test_export_above_generation_and_negative_export(bidir):
    batch = ingest_csv(
        HEADER
        + "M-BIDI,2025-06-01T11:00:00+08:00,60,2,,2.5,kWh\n"
        + "M-BIDI,2025-06-01T12:00:00+08:00,60,2,,-1,kWh\n"
        + "M-BIDI,2025-06-01T13:00:00+08:00,60,2,,1.5,kWh\n"
    )
    assert reasons(batch) == ["export_above_generation", "negative_energy"]
    meter = Meter.objects.get(serial="M-BIDI")
    assert MonthlyRollup.objects.get(meter_id=meter.id).export == Decimal("1.5")


def test_conflicting_and_identical_duplicates(system):
    first = ingest_csv(HEADER + "M-0001,2025-06-01T11:00:00+08:00,60,3.2,,,kWh\n")
    assert first.rows_accepted == 1
    again = ingest_csv(
        HEADER
        + "M-0001,2025-06-01T11:00:00+08:00,60,3.2,,,kWh\n"  # identical: no-op
        + "M-0001,2025-06-01T03:00:00Z,60,3200,,,Wh\n"  # the same instant and value written differently
        + "M-0001,2025-06-01T11:00:00+08:00,60,3.3,,,kWh\n"  # conflicting
    )
    assert (again.rows_accepted, again.rows_duplicate) == (0, 2)
    assert reasons(again) == ["conflicting_duplicate"]
    # inside one file too
    inside = ingest_csv(
        HEADER
        + "M-0001,2025-06-03T11:00:00+08:00,60,1,,,kWh\n"
        + "M-0001,2025-06-03T11:00:00+08:00,60,2,,,kWh\n"
    )
    assert inside.rows_accepted == 1 and reasons(inside) == ["conflicting_duplicate"]


def test_reimport_changes_nothing(system):
    rows = "".join(f"M-0001,2025-07-01T{h:02d}:00:00+08:00,60,{h / 10},,,kWh\n" for h in range(1, 24))
    text = HEADER + rows + "M-0001,2025-07-01T05:00:00+08:00,60,oops,,,kWh\n"
    first = ingest_csv(text)
    meter = Meter.objects.get(serial="M-0001")
    snapshot = (
        Reading.objects.count(),
        list(DailyRollup.objects.values_list("day", "energy", "n_readings")),
        list(MonthlyRollup.objects.values_list("month", "energy", "n_readings")),
    )
    second = ingest_csv(text)
    assert (first.rows_accepted, first.rows_rejected) == (23, 1)
    assert (second.rows_accepted, second.rows_duplicate, second.rows_rejected) == (0, 23, 1)
    assert snapshot == (
        Reading.objects.count(),
        list(DailyRollup.objects.values_list("day", "energy", "n_readings")),
        list(MonthlyRollup.objects.values_list("month", "energy", "n_readings")),
    )
    assert MonthlyRollup.objects.get(meter_id=meter.id).energy == sum(Decimal(h) / 10 for h in range(1, 24))


def test_cumulative_register_deltas_and_decrease(system):
    batch = ingest_csv(
        HEADER
        + "M-0001,2025-06-01T10:00:00+08:00,,,1000,,kWh\n"  # baseline: sets the register, carries no energy
        + "M-0001,2025-06-01T11:00:00+08:00,,,1003.5,,kWh\n"
        + "M-0001,2025-06-01T12:00:00+08:00,,,1002,,kWh\n"  # decrease without replacement
        + "M-0001,2025-06-01T13:00:00+08:00,,,1007.5,,kWh\n"  # 2 h since last accepted read: 4 kWh
        + "M-0001,2025-06-01T12:30:00+08:00,,,1005,,kWh\n"  # older than the last stored register read
    )
    assert reasons(batch) == ["cumulative_decrease", "cumulative_out_of_order"]
    meter = Meter.objects.get(serial="M-0001")
    energies = list(
        Reading.objects.filter(meter_id=meter.id).order_by("ts").values_list("energy", "interval_s")
    )
    assert energies == [(Decimal("0"), 0), (Decimal("3.5"), 3600), (Decimal("4"), 7200)]
    assert DailyRollup.objects.get(meter_id=meter.id).energy == Decimal("7.5")
    # the register continues in a later file
    later = ingest_csv(HEADER + "M-0001,2025-06-01T14:00:00+08:00,,,1010,,kWh\n")
    assert later.rows_accepted == 1
    assert DailyRollup.objects.get(meter_id=meter.id).energy == Decimal("10")


def test_register_rollover_only_when_configured(system):
    Meter.objects.filter(serial="M-0001").update(register_wrap=Decimal("99999.9"))
    batch = ingest_csv(
        HEADER
        + "M-0001,2025-06-01T10:00:00+08:00,,,99998,,kWh\n"
        + "M-0001,2025-06-01T11:00:00+08:00,,,1.1,,kWh\n"
    )
    assert batch.rows_accepted == 2
    meter = Meter.objects.get(serial="M-0001")
    assert DailyRollup.objects.get(meter_id=meter.id).energy == Decimal("3.0")


def test_meter_replacement_new_meter_continues(system):
    from lowcarbon.metering.models import MeterReplacement

    old = Meter.objects.get(serial="M-0001")
    ingest_csv(
        HEADER + "M-0001,2025-06-01T10:00:00+08:00,,,500,,kWh\nM-0001,2025-06-01T11:00:00+08:00,,,503,,kWh\n"
    )
    replaced_at = datetime(2025, 6, 1, 4, 30, tzinfo=UTC)  # 12:30 Shanghai
    new = Meter.objects.create(
        serial="M-0002",
        purpose=old.purpose,
        subject_kind=old.subject_kind,
        subject_id=old.subject_id,
        installed_at=replaced_at,
        initial_register=Decimal("0"),
    )
    old.removed_at = replaced_at
    old.save()
    MeterReplacement.objects.create(
        old_meter=old,
        new_meter=new,
        replaced_at=replaced_at,
        old_final_reading=Decimal("504"),
        new_initial_reading=Decimal("0"),
    )
    batch = ingest_csv(
        HEADER
        + "M-0001,2025-06-01T13:00:00+08:00,,,505,,kWh\n"  # old meter after its removal
        + "M-0002,2025-06-01T12:00:00+08:00,60,1,,,kWh\n"  # new meter before its installation
        + "M-0002,2025-06-01T14:00:00+08:00,,,2.5,,kWh\n"  # first read of the new register: 2.5 since 0
    )
    assert reasons(batch) == ["after_meter_removed", "before_meter_installed"]
    assert Reading.objects.get(meter_id=new.id).energy == Decimal("2.5")


def test_gaps_flagged_not_filled(system):
    rows = "".join(f"M-0001,2025-08-01T{h:02d}:00:00+08:00,60,0.5,,,kWh\n" for h in range(1, 24) if h != 12)
    rows += "M-0001,2025-08-02T00:00:00+08:00,60,0,,,kWh\n"
    ingest_csv(HEADER + rows)
    meter = Meter.objects.get(serial="M-0001")
    flag = DataFlag.objects.get(meter_id=meter.id, day=date(2025, 8, 1))
    assert flag.code == "meter_gap" and "23.00 h" in flag.detail
    assert Reading.objects.filter(meter_id=meter.id).count() == 23  # nothing invented
    ingest_csv(HEADER + "M-0001,2025-08-01T12:00:00+08:00,60,0.5,,,kWh\n")
    assert not DataFlag.objects.filter(meter_id=meter.id, day=date(2025, 8, 1)).exists()


def test_owner_cannot_send_readings_for_another_owners_meter(system):
    stranger = make_user("owner_household")
    make_system(stranger, serial="M-OTHER")
    batch = ingest_csv(HEADER + "M-0001,2025-06-01T11:00:00+08:00,60,1,,,kWh\n", user=stranger)
    assert reasons(batch) == ["unknown_meter"]
    assert Reading.objects.count() == 0
    own = ingest_csv(HEADER + "M-0001,2025-06-01T11:00:00+08:00,60,1,,,kWh\n", user=system.owner_user)
    assert own.rows_accepted == 1


def test_client_key_takes_effect_once(system):
    user = system.owner_user
    recs = [
        {"meter_serial": "M-0001", "timestamp": "2025-06-01T11:00:00+08:00", "energy": "1", "unit": "kWh"}
    ]
    b1 = do_ingest(iter_records(recs), source="api", user=user, client_key="gw-42")
    b2 = do_ingest(iter_records(recs), source="api", user=user, client_key="gw-42")
    assert b1.pk == b2.pk and IngestBatch.objects.count() == 1


def test_chinese_headers_and_gbk_file(system):
    text = "表号,时间,电量,单位\nM-0001,2025-06-01 11:00,1.5,kWh\nM-0001,2025-06-01 12:00,坏,kWh\n"
    batch = do_ingest(iter_csv(io.BytesIO(text.encode("gbk"))), source="cli")
    assert batch.rows_accepted == 1
    q = QuarantinedRow.objects.get(batch=batch)
    assert q.reason == "unparseable_field" and "坏" in q.raw


def test_streaming_in_chunks_matches_single_pass(system):
    rows = "".join(
        f"M-0001,2025-09-{d:02d}T{h:02d}:00:00+08:00,60,{(h % 7) / 3:.4f},,,kWh\n"
        for d in range(1, 11)
        for h in range(24)
    )
    batch = ingest_csv(HEADER + rows, chunk_size=37)
    assert batch.rows_accepted == 240
    meter = Meter.objects.get(serial="M-0001")
    total = sum(Reading.objects.filter(meter_id=meter.id).values_list("energy", flat=True))
    assert MonthlyRollup.objects.get(meter_id=meter.id, month=date(2025, 9, 1)).energy == total
    assert sum(DailyRollup.objects.filter(meter_id=meter.id).values_list("energy", flat=True)) == total


def test_future_tolerance_is_a_parameter(system):
    from lowcarbon.core.params import set_parameter

    now = timezone.now()
    ts = (now + timezone.timedelta(minutes=30)).isoformat()
    assert reasons(ingest_csv(HEADER + f"M-0001,{ts},60,1,,,kWh\n")) == ["future_timestamp"]
    set_parameter("metering.future_tolerance_minutes", Decimal(60), date(2020, 1, 1), "test")
    assert ingest_csv(HEADER + f"M-0001,{ts},60,1,,,kWh\n").rows_accepted == 1
