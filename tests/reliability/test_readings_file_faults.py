"""A 10,000-row readings file in which 5 % of the rows are bad, with every kind of fault the ingest knows (generated
deterministically, each fault recorded as it is injected), imported with `lowcarbon import-readings`: every good
row is stored with its value, every bad row is quarantined with its own reason and its original text (compared row
by row with the injected faults), and importing the same file again adds nothing."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from lowcarbon.metering.models import DailyRollup, IngestBatch, Meter, MonthlyRollup, QuarantinedRow, Reading
from lowcarbon.metering.reasons import REASON_MESSAGES
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

ROWS = 10_000
BAD = ROWS // 20
HEADER = "meter_serial,timestamp,interval_minutes,energy,cumulative,export,unit"
REPLACED_AT = datetime(2025, 3, 1, tzinfo=UTC)  # the old meter came off, the new one went on
#: every reason a row of data can be refused for; `ingest_error` (an internal failure) cannot be caused by data
FAULTS = sorted(set(REASON_MESSAGES) - {"ingest_error"})


def _local(ts: datetime) -> str:
    return (ts + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00")


@dataclass
class Stream:
    """The good readings of one meter, hour by hour."""

    serial: str
    next_ts: datetime
    last_ts: datetime | None = None
    register: Decimal | None = None  # for a register (cumulative) meter
    rows: int = 0
    energy: Decimal = Decimal(0)
    days: set = field(default_factory=set)


class ReadingsFile:
    """The file's lines and, for each bad row, (row number, reason, line), in the order they were written."""

    def __init__(self, seed: int = 20260101) -> None:
        rng = random.Random(seed)
        t0 = datetime(2024, 12, 31, 17, tzinfo=UTC)  # 2025-01-01 01:00 in Xiaolan
        self.gen = Stream("REL-GEN", t0)
        self.bidi = Stream("REL-BIDI", t0)
        self.cum = Stream("REL-CUM", t0, register=Decimal("1000.0"))
        self.old = Stream("REL-OLD", t0)
        self.new = Stream("REL-NEW", REPLACED_AT + timedelta(hours=1))
        streams = [self.gen, self.bidi, self.cum, self.old, self.new]
        weights = [50, 20, 15, 7, 8]
        bad_rows = set(rng.sample(range(20, ROWS + 1), BAD))  # the first rows give every meter a reading
        self.lines: list[str] = []
        self.faults: list[tuple[int, str, str]] = []
        for n in range(1, ROWS + 1):
            if n in bad_rows:
                reason = FAULTS[len(self.faults) % len(FAULTS)]
                line = self._fault(reason, len(self.faults), rng)
                self.faults.append((n, reason, line))
            else:
                stream = streams[n % 5] if n < 20 else rng.choices(streams, weights)[0]
                line = self._good(stream, rng)
            self.lines.append(line)

    def text(self) -> str:
        return HEADER + "\n" + "\n".join(self.lines) + "\n"

    def _good(self, s: Stream, rng: random.Random) -> str:
        ts = s.next_ts
        s.next_ts += timedelta(hours=1)
        s.last_ts = ts
        s.rows += 1
        if s is self.cum:
            step = Decimal(rng.randint(0, 3000)) / 1000
            first = s.rows == 1  # the first register read only sets the baseline
            s.register += step
            if not first:
                s.energy += step
            return f"{s.serial},{_local(ts)},,,{s.register},,kWh"
        energy = Decimal(rng.randint(0, 4000)) / 1000
        s.energy += energy
        if s is self.bidi:
            export = (energy * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.001"))
            return f"{s.serial},{_local(ts)},60,{energy},,{export},kWh"
        return f"{s.serial},{_local(ts)},60,{energy},,,kWh"

    def _fault(self, reason: str, i: int, rng: random.Random) -> str:
        """A bad row; timestamps at half past never collide with the good readings on the hour."""
        half = self.gen.next_ts + timedelta(minutes=30 + i % 20)
        off = _local(half)
        if reason == "unknown_meter":
            return f"REL-NOPE-{i},{off},60,1.5,,,kWh"
        if reason == "missing_field":
            return [
                f",{off},60,1.5,,,kWh",
                "REL-GEN,,60,1.5,,,kWh",
                f"REL-GEN,{off},60,1.5,,,",
                f"REL-GEN,{off},60,,,,kWh",
            ][i % 4]
        if reason == "unparseable_field":
            return [
                f"REL-GEN,{off[:10]} 半夜,60,1.5,,,kWh",
                f"REL-GEN,{off},60,1.5O,,,kWh",
                f"REL-GEN,{off},六十,1,,,kWh",
            ][i % 3]
        if reason == "unit_mismatch":
            return f"REL-GEN,{off},60,1.5,,,m3"
        if reason == "future_timestamp":
            return f"REL-GEN,2099-01-{1 + i % 28:02d}T12:00:00+08:00,60,1.5,,,kWh"
        if reason == "before_meter_installed":
            return f"REL-NEW,{_local(REPLACED_AT - timedelta(days=1 + i % 20))},60,1.5,,,kWh"
        if reason == "after_meter_removed":
            return f"REL-OLD,{_local(REPLACED_AT + timedelta(days=1 + i % 20))},60,1.5,,,kWh"
        if reason == "conflicting_duplicate":  # the hour just stored again, with another value
            return f"REL-GEN,{_local(self.gen.last_ts)},60,9.999,,,kWh"
        if reason == "cumulative_decrease":  # after the last register read, but lower
            ts = self.cum.last_ts + timedelta(minutes=30)
            return f"REL-CUM,{_local(ts)},,,{self.cum.register - 1},,kWh"
        if reason == "cumulative_out_of_order":  # before the last register read
            ts = self.cum.last_ts - timedelta(minutes=30)
            return f"REL-CUM,{_local(ts)},,,{self.cum.register + 1},,kWh"
        if reason == "negative_energy":
            return f"REL-GEN,{off},60,-0.{1 + i % 9},,,kWh"
        if reason == "export_not_metered":
            return f"REL-GEN,{off},60,1.5,,0.5,kWh"
        if reason == "before_grid_connection":
            return f"REL-GEN,2023-{1 + i % 12:02d}-15T12:00:00+08:00,60,1.5,,,kWh"
        if reason == "above_physical_ceiling":  # 10 kWp for an hour, with the 1.1 margin: at most 11 kWh
            return f"REL-GEN,{off},60,{11 + rng.randint(1, 50)},,,kWh"
        if reason == "export_above_generation":
            return f"REL-BIDI,{off},60,2,,{2 + rng.randint(1, 9) / 10},kWh"
        if reason == "value_too_large":  # more than the 12 digits before the point a stored value may have
            return f"REL-GEN,{off},60,{10**12 + rng.randint(1, 10**6)},,,kWh"
        raise AssertionError(reason)


@pytest.fixture
def meters() -> dict[str, Meter]:
    owner = make_user("owner_household")
    make_system(owner, serial="REL-GEN", capacity_kwp="10")
    make_system(owner, serial="REL-BIDI", capacity_kwp="10", metering="bidirectional")
    make_system(owner, serial="REL-CUM", capacity_kwp="10")
    replaced = make_system(owner, serial="REL-OLD", capacity_kwp="10")
    Meter.objects.filter(serial="REL-OLD").update(removed_at=REPLACED_AT)
    Meter.objects.create(
        serial="REL-NEW",
        purpose="pv_generation",
        subject_kind="pv_system",
        subject_id=replaced.pk,
        installed_at=REPLACED_AT,
    )
    return {m.serial: m for m in Meter.objects.filter(serial__startswith="REL-")}


def _import(path: Path) -> dict:
    out = io.StringIO()
    call_command("import_readings", str(path), "--json", stdout=out)
    return json.loads(out.getvalue())


def _total(rows) -> Decimal:  # type: ignore[no-untyped-def]
    """Summed here: SQLite would add decimals as floating point."""
    return sum(rows.values_list("energy", flat=True), Decimal(0))


def _state() -> tuple:
    return (
        Reading.objects.count(),
        list(Reading.objects.order_by("meter_id", "ts").values_list("meter_id", "ts", "energy", "batch_id")),
        list(
            DailyRollup.objects.order_by("meter_id", "day").values_list(
                "meter_id", "day", "energy", "export", "n_readings"
            )
        ),
        list(
            MonthlyRollup.objects.order_by("meter_id", "month").values_list(
                "meter_id", "month", "energy", "n_readings"
            )
        ),
    )


def test_ten_thousand_rows_with_every_fault_kind(meters, tmp_path):  # type: ignore[no-untyped-def]
    f = ReadingsFile()
    assert len(f.lines) == ROWS and len(f.faults) == BAD
    assert {r for _n, r, _l in f.faults} == set(FAULTS) and len(FAULTS) == 16
    path = tmp_path / "readings.csv"
    path.write_text(f.text(), encoding="utf-8")

    first = _import(path)
    injected = Counter(reason for _n, reason, _l in f.faults)
    assert (first["rows"], first["accepted"], first["identical_duplicates"], first["rejected"]) == (
        ROWS,
        ROWS - BAD,
        0,
        BAD,
    )
    assert first["rejected_by_reason"] == dict(injected)

    # every bad row in quarantine with its own reason and its original text, and nothing else
    batch = IngestBatch.objects.get(pk=first["batch"])
    quarantined = list(
        QuarantinedRow.objects.filter(batch=batch)
        .order_by("row_number")
        .values_list("row_number", "reason", "raw")
    )
    assert quarantined == f.faults

    # every good row stored, with its value, in the rollups once
    for s in (f.gen, f.bidi, f.cum, f.old, f.new):
        meter = meters[s.serial]
        stored = Reading.objects.filter(meter_id=meter.pk)
        assert stored.count() == s.rows, s.serial
        assert _total(stored) == _total(MonthlyRollup.objects.filter(meter_id=meter.pk)) == s.energy, s.serial
        assert _total(DailyRollup.objects.filter(meter_id=meter.pk)) == s.energy, s.serial
    before = _state()

    # the same file again: nothing added, the bad rows refused again
    again = _import(path)
    assert (again["accepted"], again["identical_duplicates"], again["rejected"]) == (0, ROWS - BAD, BAD)
    assert _state() == before
    # a register read that was lower than the one before it now lies before the last stored read as well
    expected = [
        (n, "cumulative_out_of_order" if reason == "cumulative_decrease" else reason, line)
        for n, reason, line in f.faults
    ]
    assert (
        list(
            QuarantinedRow.objects.filter(batch_id=again["batch"])
            .order_by("row_number")
            .values_list("row_number", "reason", "raw")
        )
        == expected
    )
