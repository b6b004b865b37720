"""Concurrent deliveries of overlapping readings on PostgreSQL: every reading is stored once and the rollups equal
the sum of the stored readings (the per-meter advisory lock serialises deliveries for the same meter)."""

from __future__ import annotations

import io
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from lowcarbon.metering.models import DailyRollup, Meter, MonthlyRollup, Reading
from lowcarbon.metering.parsers import iter_csv
from lowcarbon.metering.services import do_ingest
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_overlapping_concurrent_ingests_store_each_reading_once():
    owner = make_user("owner_household")
    make_system(owner, serial="CONC-001", capacity_kwp="10")
    header = "meter_serial,timestamp,interval_minutes,energy,unit\n"
    rows = [
        f"CONC-001,2025-03-{d:02d}T{h:02d}:00:00+08:00,60,{(d * h) % 9 / 2:.1f},kWh"
        for d in range(1, 21)
        for h in range(1, 24)
    ]
    # eight deliveries, each a different overlapping slice of the same rows
    files = [header + "\n".join(rows[i * 40 : i * 40 + 200]) + "\n" for i in range(8)]
    errors: list[BaseException] = []
    batches = []

    def work(text: str) -> None:
        try:
            batches.append(
                do_ingest(iter_csv(io.BytesIO(text.encode())), source="api", chunk_size=50, run_hooks=False)
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    distinct = len({r for f in files for r in f.splitlines()[1:]})
    meter = Meter.objects.get(serial="CONC-001")
    assert Reading.objects.filter(meter_id=meter.id).count() == distinct
    assert sum(b.rows_accepted for b in batches) == distinct
    assert sum(b.rows_rejected for b in batches) == 0
    total = Reading.objects.filter(meter_id=meter.id).aggregate(s=Sum("energy"))["s"]
    assert DailyRollup.objects.filter(meter_id=meter.id).aggregate(s=Sum("energy"))["s"] == total
    assert MonthlyRollup.objects.get(meter_id=meter.id).energy == total
    assert total > Decimal(0)
