"""On PostgreSQL, rebuild `metering_reading` as a table PARTITION BY RANGE (ts) with one partition per UTC month
(`metering_reading_p2026_01`), and `metering_dailyrollup` as PARTITION BY RANGE (day) with one partition per year
(`metering_dailyrollup_p2026`); see lowcarbon.metering.partitions. A no-op on SQLite.

Each table is renamed aside, a partitioned table with the same columns, defaults, CHECK constraints and primary key
(same names) is created, partitions are created for every month/year holding existing rows, the rows are copied,
the old table is dropped and its other indexes are rebuilt on the new one. There is no DEFAULT partition.
Django's model state does not change (the models stay ordinary models). On a large installation this rewrites both
tables once, in the migration's transaction, holding an exclusive lock on them meanwhile.
"""

from django.db import migrations

from lowcarbon.metering.domain.partitions import PARTITIONED, RangePartitioning


def _q(name):
    return '"' + name.replace('"', '""') + '"'


def _is_partitioned(cur, table):
    cur.execute(
        "SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid "
        "WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)",
        [table],
    )
    return cur.fetchone() is not None


def _keys(cur, table):
    """(primary key constraint name, its columns in order, [(name, definition) of the other indexes])."""
    cur.execute(
        "SELECT con.conname, array_agg(a.attname ORDER BY k.n) FROM pg_constraint con "
        "CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum "
        "WHERE con.conrelid = %s::regclass AND con.contype = 'p' GROUP BY con.conname",
        [table],
    )
    pk_name, pk_columns = cur.fetchone()
    cur.execute(
        "SELECT con.conname, con.contype FROM pg_constraint con "
        "WHERE con.conrelid = %s::regclass AND con.contype IN ('u', 'f', 'x')",
        [table],
    )
    if others := cur.fetchall():
        # unique, foreign-key and exclusion constraints are not expected on these tables (DESIGN.md §5)
        raise RuntimeError(f"{table} has constraints this migration does not carry over: {others}")
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY c.relname",
        [table],
    )
    return pk_name, list(pk_columns), cur.fetchall()


def _rebuild(cur, table, pk_name, pk_columns, indexes, partition_by, create_partitions):
    """Rename `table` aside, create its replacement (PARTITION BY `partition_by` or plain), create partitions
    (callable on the cursor and the old table's name), copy the rows, drop the old table, rebuild the indexes."""
    aside = f"{table}_rebuild"
    cur.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(aside)}")
    cur.execute(f"ALTER TABLE {_q(aside)} RENAME CONSTRAINT {_q(pk_name)} TO {_q(aside + '_pkey')}")
    columns = ", ".join(_q(c) for c in pk_columns)
    cur.execute(
        f"CREATE TABLE {_q(table)} (LIKE {_q(aside)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE "
        f"INCLUDING COMMENTS, CONSTRAINT {_q(pk_name)} PRIMARY KEY ({columns})){partition_by}"
    )
    create_partitions(cur, aside)
    cur.execute(f"INSERT INTO {_q(table)} SELECT * FROM {_q(aside)}")  # noqa: S608 - same columns (LIKE)
    cur.execute(f"DROP TABLE {_q(aside)}")
    for _name, definition in indexes:
        cur.execute(definition.replace(" ON ONLY ", " ON ", 1))


def _partition(cur, scheme: RangePartitioning):
    if _is_partitioned(cur, scheme.table):
        return
    pk_name, pk_columns, indexes = _keys(cur, scheme.table)
    if scheme.column not in pk_columns:
        raise RuntimeError(f"{scheme.table}: the partition column {scheme.column} must be in the primary key")
    column = _q(scheme.column)
    value = f"{column} AT TIME ZONE 'UTC'" if scheme.timestamptz else column

    def create_partitions(cur, source):
        cur.execute(
            f"SELECT DISTINCT date_trunc('{scheme.unit}', {value})::date FROM {_q(source)}"  # noqa: S608
        )
        for (start,) in sorted(cur.fetchall()):
            cur.execute(scheme.create_sql(start))

    _rebuild(cur, scheme.table, pk_name, pk_columns, indexes, f" PARTITION BY RANGE ({column})", create_partitions)


def _unpartition(cur, scheme: RangePartitioning):
    if not _is_partitioned(cur, scheme.table):
        return
    pk_name, pk_columns, indexes = _keys(cur, scheme.table)
    _rebuild(cur, scheme.table, pk_name, pk_columns, indexes, "", lambda cur, source: None)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        for scheme in PARTITIONED.values():
            _partition(cur, scheme)
    from lowcarbon.metering import partitions

    partitions.forget()


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        for scheme in PARTITIONED.values():
            _unpartition(cur, scheme)
    from lowcarbon.metering import partitions

    partitions.forget()


class Migration(migrations.Migration):

    dependencies = [
        ("metering", "0003_dataflag_meter_key"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=False),
    ]
