# PostgreSQL only: drop the LIKE-pattern indexes (varchar_pattern_ops) that Django adds beside the unique index of
# a unique text column, where no query of the platform matches by pattern: the journal's hash and the numbers of
# transfers, retirements and cancellations are only ever looked up whole (the unique index serves that). Each one
# cost an index insert for every journal entry and every record. Reversible: the reverse creates them again.

from django.db import migrations

# (model, field) whose pattern index goes
COLUMNS = [
    ("JournalEntry", "hash"),
    ("Transfer", "number"),
    ("Retirement", "number"),
    ("Cancellation", "number"),
]


def _pattern_indexes(apps, schema_editor):
    for model_name, field_name in COLUMNS:
        model = apps.get_model("registry", model_name)
        column = model._meta.get_field(field_name).column
        table = model._meta.db_table
        yield table, column, schema_editor._create_index_name(table, [column], suffix="_like")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _table, _column, name in _pattern_indexes(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    q = schema_editor.quote_name
    for table, column, name in _pattern_indexes(apps, schema_editor):
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {q(name)} ON {q(table)} ({q(column)} varchar_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0007_serial_block_oldest_first_index"),
    ]

    operations = [
        migrations.RunPython(drop, create),
    ]
