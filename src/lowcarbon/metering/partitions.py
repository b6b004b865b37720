"""The large time-series tables and their range partitions on PostgreSQL (DESIGN.md §5).

`TIME_SERIES_TABLES` declares the large time-series tables and the column they would be distributed by (Citus):
that column is in every primary and unique key of the table, and no foreign key points from or to them
(tests/ops/test_schema_scale.py checks the real schema against this declaration).

On PostgreSQL `metering_reading` is partitioned by RANGE (ts), one partition per UTC month, and
`metering_dailyrollup` by RANGE (day), one partition per year (names and bounds: `domain.partitions`); migration
0004 builds them. There is deliberately no DEFAULT partition: a row for a period without a partition fails loudly.
Partitions are created on demand by `ensure_partitions`, called by every writer before it writes (the ingest, the
models' save() and bulk_create()), and ahead of time by `lowcarbon partitions --ensure-ahead N`.

Cost and locking: the partitions known to exist are cached in-process (loaded from pg_inherits once per database),
so the common case is a set look-up. A missing partition is created under a transaction-level advisory lock on a
fixed key (two processes creating the same partition wait for each other; the second finds it there on its re-check
and creates nothing). `CREATE TABLE … PARTITION OF` takes an ACCESS EXCLUSIVE lock on the parent until the
transaction ends, so on the first write to a new month (or year) readers and writers of that table wait for the
creating ingest chunk to commit (one chunk, well under a second); this happens once per month and table. The ingest
takes the advisory lock at the very start of a chunk that may need a partition (before it reads the table), so two
chunks never wait for each other's lock on the parent in a cycle. A partition created in a transaction that rolls
back is forgotten with it: names enter the cache only on commit. On SQLite all of this is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connections, transaction

from lowcarbon.metering.domain.partitions import DAILY_ROLLUPS, PARTITIONED, READINGS, RangePartitioning

__all__ = [
    "DAILY_ROLLUPS",
    "PARTITIONED",
    "READINGS",
    "TIME_SERIES_TABLES",
    "ensure_partitions",
    "lock_for_creation",
    "missing",
    "partition_report",
]

#: the large time-series tables and their distribution column (in every primary and unique key; no foreign keys)
TIME_SERIES_TABLES: dict[str, str] = {
    "metering_reading": "meter_id",
    "metering_dailyrollup": "meter_id",
    "metering_monthlyrollup": "meter_id",
    # gap and quality flags grow with meters × days like the daily rollups; keyed (meter_id, day, code)
    "metering_dataflag": "meter_id",
}

#: pg_advisory_xact_lock key taken around partition creation (one bigint; the ingest's per-meter locks use the
#: two-integer form, a separate key space)
LOCK_KEY = 0x1C0DE_9A27


@dataclass
class _Known:
    partitioned: set[str] = field(default_factory=set)  # parents that are partitioned tables
    partitions: set[str] = field(default_factory=set)  # names of their partitions


#: per database (alias and name): what is known to exist, committed
_KNOWN: dict[tuple[str, str], _Known] = {}

_CATALOGUE = """
SELECT p.relname, c.relname FROM pg_partitioned_table pt
JOIN pg_class p ON p.oid = pt.partrelid
LEFT JOIN pg_inherits i ON i.inhparent = p.oid
LEFT JOIN pg_class c ON c.oid = i.inhrelid
WHERE p.relname = ANY(%s) AND pg_catalog.pg_table_is_visible(p.oid)"""


def _load(cur: Any) -> _Known:
    cur.execute(_CATALOGUE, [list(PARTITIONED)])
    known = _Known()
    for parent, child in cur.fetchall():
        known.partitioned.add(parent)
        if child is not None:
            known.partitions.add(child)
    return known


def _key(using: str) -> tuple[str, str]:
    return (using, str(connections[using].settings_dict.get("NAME")))


def _known(using: str) -> _Known:
    key = _key(using)
    known = _KNOWN.get(key)
    if known is None:
        with connections[using].cursor() as cur:
            known = _load(cur)
        if known.partitioned == set(PARTITIONED):
            _KNOWN[key] = known  # not cached while a table is not partitioned (before the migration)
    return known


def forget() -> None:
    """Drop the in-process cache (after partitions were dropped behind the cache's back, e.g. in tests)."""
    _KNOWN.clear()


def _scheme(table: str | RangePartitioning) -> RangePartitioning:
    return table if isinstance(table, RangePartitioning) else PARTITIONED[table]


def missing(
    periods: Iterable[date | datetime], table: str | RangePartitioning = READINGS, using: str = "default"
) -> list[date]:
    """The periods (first days) among those holding `periods` whose partition is not known to exist; [] off
    PostgreSQL or when the table is not partitioned. A set look-up when the cache is warm."""
    if connections[using].vendor != "postgresql":
        return []
    scheme = _scheme(table)
    known = _known(using)
    if scheme.table not in known.partitioned:
        return []
    return sorted(p for p in scheme.periods(periods) if scheme.name(p) not in known.partitions)


def lock_for_creation(using: str = "default") -> None:
    """Take the partition-creation lock until the current transaction ends (call inside one)."""
    with connections[using].cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def ensure_partitions(
    periods: Iterable[date | datetime], table: str | RangePartitioning = READINGS, using: str = "default"
) -> list[str]:
    """Make sure a partition exists for every month (readings) or year (daily rollups) holding one of `periods`
    (dates, or datetimes taken in UTC); returns the names of the partitions it created. A no-op on SQLite."""
    scheme = _scheme(table)
    wanted = missing(periods, scheme, using)
    if not wanted:
        return []
    created: list[str] = []
    with transaction.atomic(using=using), connections[using].cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        there = _load(cur).partitions  # re-check under the lock: another process may have created them
        for start in wanted:
            if scheme.name(start) not in there:
                cur.execute(scheme.create_sql(start))
                created.append(scheme.name(start))
    names = {scheme.name(p) for p in wanted}
    key = _key(using)

    def remember() -> None:
        known = _KNOWN.get(key)
        if known is not None:
            known.partitions |= names

    transaction.on_commit(remember, using=using)
    return created


def partition_report(using: str = "default") -> list[dict[str, Any]]:
    """Every partition of the partitioned tables with its bounds and exact row count (PostgreSQL), in order."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return []
    out: list[dict[str, Any]] = []
    with conn.cursor() as cur:
        cur.execute(
            "SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE p.relname = ANY(%s) AND pg_catalog.pg_table_is_visible(p.oid) ORDER BY p.relname, c.relname",
            [list(PARTITIONED)],
        )
        rows = cur.fetchall()
        for parent, name, bounds in rows:
            cur.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 - a name from the catalogue
            out.append({"table": parent, "partition": name, "bounds": bounds, "rows": int(cur.fetchone()[0])})
    return out
