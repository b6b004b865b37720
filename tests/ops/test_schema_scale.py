"""The scale rules of DESIGN.md §5, checked on the real database schema (not the models), on SQLite and PostgreSQL:
the large time-series tables (metering.partitions.TIME_SERIES_TABLES) carry their distribution column in every
primary and unique key and take part in no foreign key; on PostgreSQL readings are range-partitioned by UTC month
and daily rollups by year, without a DEFAULT partition, and a write to a period without a partition creates it.
A guard keeps the declaration complete: a model that looks like a time series must be declared or exempted."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, models, transaction
from django.db.migrations.executor import MigrationExecutor

from lowcarbon.metering import partitions
from lowcarbon.metering.domain.partitions import DAILY_ROLLUPS, READINGS, local_years_of_us, months_of_us
from lowcarbon.metering.models import DailyRollup, Meter, Reading
from lowcarbon.metering.parsers import iter_csv
from lowcarbon.metering.services import do_ingest
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.integration]

TS = partitions.TIME_SERIES_TABLES

#: models that look like time series (a composite primary key or a field named `ts`) but are not large
#: time-series tables, each with the reason. Empty today: every such model is declared in TIME_SERIES_TABLES.
EXEMPT: dict[str, str] = {}


def _constraints(table: str) -> dict[str, dict]:
    with connection.cursor() as cur:
        return connection.introspection.get_constraints(cur, table)


def _tables() -> list[str]:
    with connection.cursor() as cur:
        return connection.introspection.table_names(cur)


# ---- the declaration is complete ---------------------------------------------------------------------------------


def _looks_like_time_series(model: type[models.Model]) -> bool:
    meta = model._meta
    return isinstance(meta.pk, models.CompositePrimaryKey) or any(
        f.name == "ts" for f in meta.concrete_fields
    )


def test_every_time_series_model_is_declared_or_exempted():
    candidates = {
        m._meta.db_table
        for m in apps.get_models(include_auto_created=True)
        if not m._meta.proxy and _looks_like_time_series(m)
    }
    undeclared = candidates - set(TS) - set(EXEMPT)
    assert not undeclared, (
        f"{sorted(undeclared)} look like time-series tables: add them to metering.partitions.TIME_SERIES_TABLES "
        "(with their distribution column) or to EXEMPT here with the reason"
    )
    assert not set(TS) & set(EXEMPT)
    model_tables = {m._meta.db_table: m for m in apps.get_models(include_auto_created=True)}
    for table, column in TS.items():
        assert table in model_tables, f"{table} is declared but no model has it"
        assert column in {f.column for f in model_tables[table]._meta.concrete_fields}, (table, column)
    assert set(partitions.PARTITIONED) <= set(TS)


# ---- keys and foreign keys, on both backends ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(TS))
def test_distribution_column_is_in_every_primary_and_unique_key(table):
    column = TS[table]
    assert table in _tables(), f"{table} is not in the database"
    constraints = _constraints(table)
    primary = [c for c in constraints.values() if c["primary_key"]]
    assert len(primary) == 1, constraints
    keys = [(name, c) for name, c in constraints.items() if c["primary_key"] or c["unique"]]
    for name, c in keys:
        assert column in c["columns"], f"{table}: {name} {c['columns']} does not contain {column}"


@pytest.mark.django_db
def test_no_foreign_key_points_from_or_to_a_time_series_table():
    offending = []
    for table in _tables():
        for name, c in _constraints(table).items():
            if c["foreign_key"]:
                target = c["foreign_key"][0]
                if table in TS or target in TS:
                    offending.append(f"{table}.{name} -> {target}")
    assert not offending, offending


@pytest.mark.django_db
@pytest.mark.postgres
def test_no_foreign_key_on_any_partition_either():
    """Django's introspection lists partitioned tables but not their partitions: ask the catalogue for both."""
    with connection.cursor() as cur:
        cur.execute(
            "WITH ts AS (SELECT relid FROM unnest(%s::text[]) AS t(name), "
            "LATERAL pg_partition_tree(t.name::regclass)) "
            "SELECT conname, conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND (conrelid IN (SELECT relid FROM ts) OR confrelid IN (SELECT relid FROM ts))",
            [list(TS)],
        )
        assert cur.fetchall() == []


# ---- partitioning on PostgreSQL ----------------------------------------------------------------------------------


def _partition_of(table: str, where: str, params: list) -> set[str]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {where}", params)  # noqa: S608
        return {r[0] for r in cur.fetchall()}


def _partition_names(table: str) -> set[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [table],
        )
        return {r[0] for r in cur.fetchall()}


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("table", "key"), [("metering_reading", "RANGE (ts)"), ("metering_dailyrollup", "RANGE (day)")]
)
def test_table_is_range_partitioned_without_default_partition(table, key):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pt.partstrat, pg_get_partkeydef(pt.partrelid), pt.partdefid FROM pg_partitioned_table pt "
            "WHERE pt.partrelid = %s::regclass",
            [table],
        )
        row = cur.fetchone()
    assert row is not None, f"{table} is not a partitioned table"
    strategy, keydef, default = row
    assert (strategy, keydef) == ("r", key)
    assert default == 0, f"{table} has a DEFAULT partition"
    assert partitions.PARTITIONED[table].column in key


def _csv(serial: str, stamps: list[str], energy: str = "1.5") -> bytes:
    lines = ["meter_serial,timestamp,interval_minutes,energy,unit"]
    lines += [f"{serial},{ts},60,{energy},kWh" for ts in stamps]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.django_db
@pytest.mark.postgres
def test_ingest_into_a_month_without_partition_creates_it_utc_months():
    """Both ingest paths (arrays for a CSV, row by row for an iterator of rows) create the month's partition; months
    are UTC months: 2019-04-01 03:00 in Xiaolan (UTC+8) is still March in UTC."""
    owner = make_user("owner_household")
    make_system(owner, serial="PART-001", grid_connection_date=date(2018, 1, 1))
    meter = Meter.objects.get(serial="PART-001")
    assert "metering_reading_p2019_03" not in _partition_names("metering_reading")
    assert "metering_dailyrollup_p2019" not in _partition_names("metering_dailyrollup")

    batch = do_ingest(
        iter_csv(io.BytesIO(_csv("PART-001", ["2019-03-10T12:00:00+08:00", "2019-04-01T03:00:00+08:00"]))),
        source="api",
        run_hooks=False,
    )
    assert batch.rows_accepted == 2, batch.rejected_by_reason
    assert _partition_of("metering_reading", "meter_id = %s", [meter.id]) == {"metering_reading_p2019_03"}
    assert _partition_of("metering_dailyrollup", "meter_id = %s", [meter.id]) == {
        "metering_dailyrollup_p2019"
    }

    # the row-by-row path (a plain iterator of rows) for another month
    rows = list(iter_csv(io.BytesIO(_csv("PART-001", ["2019-06-15T12:00:00Z"]))))
    batch = do_ingest(iter(rows), source="api", run_hooks=False)
    assert batch.rows_accepted == 1, batch.rejected_by_reason
    assert _partition_of(
        "metering_reading", "meter_id = %s AND ts >= %s", [meter.id, datetime(2019, 6, 1, tzinfo=UTC)]
    ) == {"metering_reading_p2019_06"}
    # a month nobody wrote to has no partition (nothing is created from rejected rows)
    assert "metering_reading_p2019_05" not in _partition_names("metering_reading")


@pytest.mark.django_db
@pytest.mark.postgres
def test_orm_writes_create_partitions():
    Reading.objects.create(
        meter_id=1, ts=datetime(2017, 2, 3, 4, tzinfo=UTC), interval_s=3600, energy=Decimal(1)
    )
    Reading.objects.bulk_create(
        [
            Reading(meter_id=2, ts=datetime(2017, 5, d, tzinfo=UTC), interval_s=3600, energy=Decimal(1))
            for d in (1, 2)
        ]
    )
    DailyRollup.objects.create(meter_id=1, day=date(2016, 12, 31), energy=Decimal(2))
    assert _partition_of("metering_reading", "meter_id IN (1, 2) AND ts < '2018-01-01'", []) == {
        "metering_reading_p2017_02",
        "metering_reading_p2017_05",
    }
    assert _partition_of("metering_dailyrollup", "meter_id = 1 AND day < '2017-01-01'", []) == {
        "metering_dailyrollup_p2016"
    }


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_partition_created_in_a_rolled_back_transaction_is_not_remembered():
    month = date(2013, 7, 1)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert partitions.ensure_partitions([month]) == ["metering_reading_p2013_07"]
        raise RuntimeError("roll back")
    assert "metering_reading_p2013_07" not in _partition_names("metering_reading")
    # the cache did not keep it: the next write creates it again
    assert partitions.missing([month]) == [month]
    assert partitions.ensure_partitions([month]) == ["metering_reading_p2013_07"]
    Reading.objects.create(
        meter_id=9, ts=datetime(2013, 7, 31, 23, 59, tzinfo=UTC), interval_s=60, energy=Decimal(0)
    )


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_row_outside_every_partition_fails_loudly():
    """No DEFAULT partition: a writer that bypasses ensure_partitions gets an error, never a silent home."""
    from django.db import DatabaseError

    with pytest.raises(DatabaseError, match="no partition"), transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO metering_reading (meter_id, ts, interval_s, energy) VALUES (1, '1999-01-01 00:00Z', 60, 0)"
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creators_of_one_partition_both_succeed():
    """Two connections create the same partition at once: the advisory lock makes the second wait, find it on its
    re-check and create nothing (without it, two CREATE TABLE … IF NOT EXISTS can collide in the catalogue)."""
    month = date(2011, 5, 1)
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    started = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = partitions.ensure_partitions([month])
                started.set()
                time.sleep(0.5)  # hold the lock: the second creator arrives meanwhile
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            started.set()
        finally:
            connection.close()

    def second() -> None:
        try:
            started.wait(10)
            results["second"] = partitions.ensure_partitions([month])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    partitions.forget()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert results == {"first": ["metering_reading_p2011_05"], "second": []}
    finally:
        with connection.cursor() as cur:
            cur.execute('DROP TABLE IF EXISTS "metering_reading_p2011_05"')
        partitions.forget()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_ingests_of_different_meters_into_a_new_month():
    """Deliveries for different meters (no shared meter lock) reaching a month without partition at the same time:
    all succeed (no deadlock between the partition lock and the locks on the parent table)."""
    owner = make_user("owner_household")
    serials = [f"PCON-{k}" for k in range(4)]
    for s in serials:
        make_system(owner, serial=s, grid_connection_date=date(2010, 1, 1))
    stamps = [f"2012-0{m}-{d:02d}T{h:02d}:00:00Z" for m in (2, 3) for d in (1, 2) for h in range(24)]
    errors: list[BaseException] = []
    batches = []
    partitions.forget()

    def work(serial: str) -> None:
        try:
            data = iter_csv(io.BytesIO(_csv(serial, stamps, "0.5")))
            batches.append(do_ingest(data, source="api", chunk_size=24, run_hooks=False))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(s,)) for s in serials]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert sorted(b.rows_accepted for b in batches) == [len(stamps)] * len(serials)
        assert Reading.objects.filter(ts__year=2012).count() == len(stamps) * len(serials)
        assert {"metering_reading_p2012_02", "metering_reading_p2012_03"} <= _partition_names(
            "metering_reading"
        )
    finally:
        with connection.cursor() as cur:
            for name in (
                "metering_reading_p2012_02",
                "metering_reading_p2012_03",
                "metering_dailyrollup_p2012",
            ):
                cur.execute(f'DROP TABLE IF EXISTS "{name}"')
        partitions.forget()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migration_carries_existing_rows_into_partitions():
    """Unapply and reapply the partitioning migration with rows in place: the rows come back in their UTC month's
    partition, and the key and constraints keep their names."""
    executor = MigrationExecutor(connection)
    before, after = ("metering", "0003_dataflag_meter_key"), ("metering", "0004_partition_time_series")
    rows = [
        Reading(
            meter_id=5, ts=datetime(2015, 1, 31, 20, tzinfo=UTC), interval_s=3600, energy=Decimal("1.25")
        ),
        Reading(meter_id=5, ts=datetime(2015, 3, 1, 0, tzinfo=UTC), interval_s=3600, energy=Decimal("2.5")),
    ]
    try:
        executor.migrate([before])
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_partitioned_table")
            assert cur.fetchone()[0] == 0
        Reading.objects.bulk_create(rows)
        DailyRollup.objects.create(meter_id=5, day=date(2015, 2, 1), energy=Decimal("1.25"))
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        assert _partition_names("metering_reading") >= {
            "metering_reading_p2015_01",
            "metering_reading_p2015_03",
        }
        assert "metering_reading_p2015_02" not in _partition_names("metering_reading")
        assert _partition_of("metering_reading", "meter_id = 5", []) == {
            "metering_reading_p2015_01",
            "metering_reading_p2015_03",
        }
        assert _partition_of("metering_dailyrollup", "meter_id = 5", []) == {"metering_dailyrollup_p2015"}
        assert sorted(Reading.objects.filter(meter_id=5).values_list("energy", flat=True)) == [
            Decimal("1.25"),
            Decimal("2.5"),
        ]
        names = set(_constraints("metering_reading"))
        assert {"metering_reading_pkey", "metering_reading_interval_s_check"} <= names
    finally:
        MigrationExecutor(connection).migrate([after])
        with connection.cursor() as cur:
            for name in (
                "metering_reading_p2015_01",
                "metering_reading_p2015_03",
                "metering_dailyrollup_p2015",
            ):
                cur.execute(f'DROP TABLE IF EXISTS "{name}"')
        partitions.forget()


# ---- the helper and the command ----------------------------------------------------------------------------------


def test_partition_names_and_utc_bounds():
    assert READINGS.name(date(2026, 1, 1)) == "metering_reading_p2026_01"
    assert DAILY_ROLLUPS.name(date(2026, 7, 9)) == "metering_dailyrollup_p2026"
    assert READINGS.period(datetime.fromisoformat("2026-02-01T03:00:00+08:00")) == date(2026, 1, 1)
    assert READINGS.create_sql(date(2026, 12, 5)) == (
        'CREATE TABLE IF NOT EXISTS "metering_reading_p2026_12" PARTITION OF "metering_reading" '
        "FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')"
    )
    assert DAILY_ROLLUPS.create_sql(date(2026, 12, 5)).endswith("FROM ('2026-01-01') TO ('2027-01-01')")
    assert READINGS.ahead(date(2026, 11, 24), 3) == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
    us = np.array([1767225600 * 10**6 - 1, 1767225600 * 10**6], dtype=np.int64)  # around 2026-01-01T00:00Z
    assert months_of_us(us) == [date(2025, 12, 1), date(2026, 1, 1)]
    # 2025-12-31T23:59:59Z is already 2026 in Xiaolan; a day back is still 2025
    assert local_years_of_us(us[:1], timedelta(hours=8), timedelta(days=1)) == [
        date(2025, 1, 1),
        date(2026, 1, 1),
    ]


@pytest.mark.django_db
def test_partitions_command(on_postgres):
    out = io.StringIO()
    call_command("partitions", "--ensure-ahead", "1", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["vendor"] == connection.vendor
    if not on_postgres:
        assert result == {"vendor": "sqlite", "created": [], "partitions": []}
        out = io.StringIO()
        call_command("partitions", stdout=out)
        assert "PostgreSQL" in out.getvalue() and "不分区" in out.getvalue()
        return
    this_month = READINGS.period(datetime.now(UTC))
    names = {p["partition"] for p in result["partitions"]}
    assert READINGS.name(this_month) in names
    assert READINGS.name(READINGS.following(this_month)) in names
    assert DAILY_ROLLUPS.name(this_month) in names
    out = io.StringIO()
    call_command("partitions", "--ensure-ahead", "1", stdout=out)
    text = out.getvalue()
    assert "没有缺失的分区" in text and "行数" in text and READINGS.name(this_month) in text
