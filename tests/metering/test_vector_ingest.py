"""The array path of CSV ingest gives exactly what the row-by-row path gives: same stored readings, rollups, gap
flags, counts and quarantine (reason, row number, field, detail, original text), on random files that contain
every kind of rejection, identical and conflicting duplicates (in the file and against stored readings), register
readings, odd formats, blank and ragged rows — and it does take the common rows on arrays."""

from __future__ import annotations

import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowcarbon.metering import services
from lowcarbon.metering.domain import vector as vec
from lowcarbon.metering.domain.validate import _number, parse_timestamp
from lowcarbon.metering.models import (
    DailyRollup,
    DataFlag,
    IngestBatch,
    Meter,
    MonthlyRollup,
    Quantity,
    QuarantinedRow,
    Reading,
)
from lowcarbon.metering.parsers import iter_csv
from lowcarbon.metering.services import do_ingest
from tests.factories import make_system, make_user

NOW = datetime(2025, 7, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai

KNOWN = ["VX-GEN", "VX-BIDI", "VX-OLD", "VX-NEW", "VX-REG", "VX-WATER", "VX-HEAT", "VX-OTHER"]


@pytest.fixture
def meters():
    owner = make_user("owner_household")
    make_system(owner, serial="VX-GEN", capacity_kwp="5", grid_connection_date=date(2024, 1, 1))
    make_system(owner, serial="VX-BIDI", capacity_kwp="8", metering="bidirectional")
    old_sys = make_system(owner, serial="VX-OLD", capacity_kwp="5")
    make_system(owner, serial="VX-REG", capacity_kwp="10")
    replaced = datetime(2025, 6, 10, 4, 30, tzinfo=UTC)
    Meter.objects.filter(serial="VX-OLD").update(removed_at=replaced)
    Meter.objects.create(
        serial="VX-NEW",
        purpose="pv_generation",
        subject_kind="pv_system",
        subject_id=old_sys.pk,
        installed_at=replaced,
        initial_register=Decimal("0"),
    )
    Meter.objects.filter(serial="VX-REG").update(register_wrap=Decimal("99999.9"), interval_minutes=15)
    Meter.objects.create(
        serial="VX-WATER",
        purpose="building",
        quantity=Quantity.WATER,
        subject_kind="building",
        subject_id=1,
        installed_at=datetime(2025, 1, 1, 0, 0, 0, 500, tzinfo=UTC),
    )
    Meter.objects.create(
        serial="VX-HEAT", purpose="building", quantity=Quantity.HEAT, subject_kind="building", subject_id=2
    )
    stranger = make_user("owner_household")
    make_system(stranger, serial="VX-OTHER")
    return owner


# ---- random files ----------------------------------------------------------------------------------------------


def _ts(rng: random.Random, when: datetime) -> str:
    """The same instant written in one of many ways (some not readable on arrays, some not readable at all)."""
    local = when + timedelta(hours=8)
    kind = rng.random()
    if kind < 0.35:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind < 0.55:
        return local.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    if kind < 0.65:
        return local.strftime("%Y-%m-%d %H:%M")
    if kind < 0.70:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    if kind < 0.73:
        return (when - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M-05:00")
    if kind < 0.76:
        return local.strftime("%Y/%m/%d %H:%M")
    if kind < 0.78:
        return " " + when.strftime("%Y-%m-%dT%H:%M:%SZ") + " "
    if kind < 0.80:
        return when.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
    if kind < 0.82:
        return local.strftime("%Y-%m-%dT%H:%MZ")
    if kind < 0.84:
        return rng.choice(
            ["yesterday", "2025-02-30T10:00:00Z", "2025-06-01T24:00:00Z", "", "1985-06-01 12:00"]
        )
    if kind < 0.86:
        return local.strftime("%Y-%m-%dT%H:%M:%S+24:00")
    return when.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _qty(rng: random.Random, v: Decimal) -> str:
    kind = rng.random()
    if kind < 0.55:
        return f"{v:.4f}"
    if kind < 0.75:
        return str(v.normalize())
    if kind < 0.80:
        return f"{v:.1f}"
    if kind < 0.83:
        return f"{v:.6f}"
    if kind < 0.85:
        return f" {v} "
    if kind < 0.87:
        return f"{v:,.3f}" if v < 1000 else f"{v * 1000:,.1f}"
    if kind < 0.89:
        return rng.choice(["abc", "1e2", "-0.5", "-0", "NaN", "Infinity", "+1.5", ".5", "5.", "1_0", "０.5"])
    if kind < 0.91:
        return f"{v:.4f}".lstrip("0") or "0"
    if kind < 0.92:
        return "123456789012.5"
    return str(v)


def _energy_for(rng: random.Random, when: datetime, cap: float, minutes: int) -> Decimal:
    hour = (when.hour + 8) % 24
    base = max(0.0, cap * minutes / 60 * (1 - abs(hour - 12.5) / 6.5))
    if rng.random() < 0.05:
        base = cap * minutes / 60 * 1.5  # above the physical ceiling
    return Decimal(f"{base * rng.uniform(0.3, 1.05):.4f}")


def make_file(seed: int, *, tz_column: bool = False) -> tuple[str, str]:
    """(a file stored before, the random file), both CSV text."""
    rng = random.Random(seed)
    cols = ["meter_serial", "timestamp", "interval_minutes", "energy", "cumulative", "export", "unit"]
    if tz_column:
        cols.append("tz")
    if rng.random() < 0.3:
        cols = ["表号" if c == "meter_serial" else "时间" if c == "timestamp" else c for c in cols]
    rows: list[list[str]] = []
    start = datetime(2025, 6, 5, 16, 0, tzinfo=UTC)
    register = Decimal("99000")
    reg_time = start
    for _k in range(rng.randint(250, 400)):
        r = rng.random()
        serial = rng.choice(
            ["VX-GEN", "VX-GEN", "VX-GEN", "VX-BIDI", "VX-OLD", "VX-NEW", "VX-WATER", "VX-HEAT"]
        )
        when = start + timedelta(hours=rng.randint(0, 24 * 40))
        minutes = rng.choice([60, 60, 60, 30, 15])
        interval = rng.choice([str(minutes)] * 8 + ["", "0", "sixty", "1.5", "44641", "060", " 60", "０６０"])
        unit = rng.choice(["kWh"] * 10 + ["KWH", " kWh ", "Wh", "MWh", "m3", "m³", "L", "GJ", "", "x"])
        if serial == "VX-WATER":
            unit = rng.choice(["m3", "m³", "L", "l", "kWh"])
        if serial == "VX-HEAT":
            unit = rng.choice(["kWh", "GJ", "MWh"])
        energy = _energy_for(rng, when, 5, minutes)
        if unit.strip().lower() == "wh":
            energy = (energy * 1000).quantize(Decimal("0.01"))
        elif unit.strip().lower() == "mwh":
            energy = (energy / 1000).quantize(Decimal("0.0000001"), rounding=ROUND_HALF_UP)
        export = ""
        if serial == "VX-BIDI" and rng.random() < 0.6 or rng.random() < 0.03:
            export = _qty(rng, (energy * Decimal(rng.uniform(0, 1.2))).quantize(Decimal("0.0001")))
        cumulative = ""
        if r < 0.12:  # register readings of VX-REG (rollover, decreases, out of order)
            serial = rng.choice(["VX-REG", "VX-REG", "VX-GEN"])  # VX-GEN's register does not roll over
            step = Decimal(rng.choice(["1.5", "2.25", "0", "-3", "400"]))
            register = (register + step) % Decimal("99999.9") if step >= 0 else register + step
            reg_time += timedelta(minutes=rng.choice([15, 15, 30, -45]))
            when = reg_time
            cumulative = f"{register:.4f}"
            energy_text = "" if rng.random() < 0.8 else _qty(rng, abs(step))
            interval = rng.choice(["", "", "15"])
            unit = "kWh"
        else:
            energy_text = _qty(rng, energy)
        if 0.18 <= r < 0.19:
            energy_text = "-" + energy_text.strip()
        if r > 0.97:
            serial = rng.choice(["NOPE-1", "", "  ", " VX-GEN ", "VX-OTHER", "vx-gen"])
        if 0.12 <= r < 0.14:
            when = NOW + timedelta(minutes=rng.choice([1, 4, 6, 60 * 24 * 30]))  # future (tolerance 5 min)
        if 0.14 <= r < 0.16:
            when = datetime(2023, 12, rng.randint(1, 31), 3, tzinfo=UTC)  # before grid connection
        row = [serial, _ts(rng, when), interval, energy_text, cumulative, export, unit]
        if tz_column:
            row.append(rng.choice(["", "", "", "+09:00", "Asia/Tokyo", "Bad/Zone", "UTC"]))
        if 0.16 <= r < 0.17:
            row = row + ["extra"]  # ragged: more cells than the header
        if 0.17 <= r < 0.18:
            row = row[:4]  # ragged: fewer cells
        rows.append(row)
        if rng.random() < 0.08 and rows:
            dup = list(rng.choice(rows))  # sent again: identical or with another value
            if rng.random() < 0.5 and len(dup) > 3:
                dup[3] = _qty(rng, Decimal(rng.randint(0, 30)) / 10)
            rows.append(dup)
        if rng.random() < 0.02:
            rows.append([])
            rows.append(["", "", ""])
    prior = [r for r in rows if rng.random() < 0.1]

    def text(rs: list[list[str]]) -> str:
        out = io.StringIO()
        import csv

        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rs)
        return out.getvalue()

    return text(prior), text(rows)


# ---- comparison ------------------------------------------------------------------------------------------------


def snapshot(batch: IngestBatch) -> dict[str, object]:
    serial = dict(Meter.objects.values_list("id", "serial"))
    batch.refresh_from_db()
    return {
        "readings": sorted(
            (serial[m], ts, i, e, c, x, xc)
            for m, ts, i, e, c, x, xc in Reading.objects.values_list(
                "meter_id", "ts", "interval_s", "energy", "cumulative", "export", "export_cumulative"
            )
        ),
        "daily": sorted(
            (serial[m], *rest)
            for m, *rest in DailyRollup.objects.values_list(
                "meter_id", "day", "energy", "export", "n_readings", "covered_s", "max_energy"
            )
        ),
        "monthly": sorted(
            (serial[m], *rest)
            for m, *rest in MonthlyRollup.objects.values_list(
                "meter_id", "month", "energy", "export", "n_readings", "covered_s"
            )
        ),
        "flags": sorted(
            (serial[m], *rest)
            for m, *rest in DataFlag.objects.values_list("meter_id", "day", "code", "detail")
        ),
        "quarantine": list(
            QuarantinedRow.objects.filter(batch=batch)
            .order_by("row_number", "id")
            .values_list("row_number", "reason", "field", "detail", "meter_serial", "raw")
        ),
        "counts": (
            batch.status,
            batch.error,
            batch.rows_total,
            batch.rows_accepted,
            batch.rows_duplicate,
            batch.rows_rejected,
            batch.rejected_by_reason,
        ),
    }


def wipe() -> None:
    for model in (Reading, DailyRollup, MonthlyRollup, DataFlag, QuarantinedRow, IngestBatch):
        model.objects.all().delete()


def both_paths(prior: str, text: str, chunk_size: int, user=None) -> tuple[dict, dict, int]:
    """Ingest `prior` then `text` row by row, snapshot, wipe, do the same through the array path."""

    def run(rowwise: bool) -> IngestBatch:
        for t in (prior, text):
            rows = iter_csv(io.BytesIO(t.encode()))
            batch = do_ingest(
                iter(list(rows)) if rowwise else rows,
                source="cli",
                user=user,
                now=NOW,
                chunk_size=chunk_size,
                run_hooks=False,
            )
        return batch

    slow = snapshot(run(True))
    wipe()
    stored_on_arrays = []
    real = services._store_fast
    with mock.patch.object(
        services,
        "_store_fast",
        side_effect=lambda b, f: (stored_on_arrays.append(len(f.meter_id)), real(b, f)),
    ):
        fast = snapshot(run(False))
    return slow, fast, sum(stored_on_arrays)


@pytest.mark.django_db
@pytest.mark.integration
@pytest.mark.parametrize(("seed", "chunk_size"), [(1, 5000), (2, 37), (3, 1), (4, 113), (5, 5000), (6, 64)])
def test_array_path_equals_row_by_row(meters, seed, chunk_size):
    prior, text = make_file(seed)
    slow, fast, on_arrays = both_paths(prior, text, chunk_size)
    for key in slow:
        assert fast[key] == slow[key], key
    reasons = set(slow["counts"][6])
    # the files do contain the rejections and duplicates this is about
    assert {"unparseable_field", "unit_mismatch", "conflicting_duplicate"} <= reasons
    assert slow["counts"][4] > 0  # identical duplicates
    assert on_arrays > 0.3 * slow["counts"][3]  # most accepted rows went the array way


@pytest.mark.django_db
@pytest.mark.integration
def test_array_path_equals_row_by_row_with_tz_column_and_a_person(meters):
    prior, text = make_file(11, tz_column=True)
    slow, fast, on_arrays = both_paths(prior, text, 50, user=meters)
    assert fast == slow
    assert "unknown_meter" in slow["counts"][6] and on_arrays > 0


@pytest.mark.django_db
@pytest.mark.integration
def test_every_rejection_kind_is_covered(meters):
    seen: set[str] = set()
    for seed in range(1, 7):
        _prior, text = make_file(seed)
        b = do_ingest(iter_csv(io.BytesIO(text.encode())), source="cli", now=NOW, run_hooks=False)
        seen |= set(b.rejected_by_reason)
        wipe()
    assert seen >= {
        "unknown_meter",
        "missing_field",
        "unparseable_field",
        "unit_mismatch",
        "future_timestamp",
        "before_meter_installed",
        "after_meter_removed",
        "conflicting_duplicate",
        "cumulative_decrease",
        "cumulative_out_of_order",
        "negative_energy",
        "export_not_metered",
        "before_grid_connection",
        "above_physical_ceiling",
        "export_above_generation",
    }


# ---- the array readers against the row readers (no database) -----------------------------------------------------

_datetimes = st.datetimes(
    min_value=datetime(1985, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.none() | st.just(UTC)
)
_ts_text = st.one_of(
    _datetimes.map(lambda d: d.replace(microsecond=0).isoformat()),
    _datetimes.map(lambda d: d.isoformat(sep=" ", timespec="minutes")),
    _datetimes.map(lambda d: d.isoformat()),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
    ),
    st.text(alphabet="0123456789-:TZ +", max_size=26),
)


@pytest.mark.unit
@settings(max_examples=400, deadline=None)
@given(texts=st.lists(_ts_text, min_size=1, max_size=20), tz=st.sampled_from(["", "+09:00"]))
def test_timestamps_on_arrays_equal_parse_timestamp(texts, tz):
    import numpy as np

    ok, us = vec.parse_timestamps(texts, np.array([tz == ""] * len(texts)))
    for text, good, v in zip(texts, ok.tolist(), us.tolist(), strict=True):
        if good:
            assert vec.to_us(parse_timestamp(text, tz)) == v, text


_num_text = st.one_of(
    st.decimals(min_value=0, max_value=10**13, places=4, allow_nan=False).map(str),
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str),
    st.from_regex(r"\A[0-9]{0,14}(\.[0-9]{0,6})?\Z"),
    st.text(alphabet="0123456789.,-e ", max_size=18),
)


@pytest.mark.unit
@settings(max_examples=400, deadline=None)
@given(texts=st.lists(_num_text, min_size=1, max_size=20), exponent=st.sampled_from([0, -3, 3]))
def test_quantities_on_arrays_equal_decimal_parse(texts, exponent):
    import numpy as np

    from lowcarbon.core.domain.units import q_kwh

    ok, present, units = vec.parse_quantities(texts)
    in_range, scaled = vec.scale(units, np.full(len(texts), exponent, dtype=np.int64))
    text_out = vec.format_units(np.where(in_range, scaled, 0))
    for i, text in enumerate(texts):
        if not ok[i]:
            continue
        d = _number(text)
        assert (d is not None) == bool(present[i]), text
        if d is not None and in_range[i]:
            exact = q_kwh(d * Decimal(10) ** exponent)
            assert Decimal(int(scaled[i])).scaleb(-4) == exact, text
            assert text_out[i] == str(exact), text
