"""DataFlag is keyed by (meter_id, day, code) instead of a surrogate id, so that the meter id is in every primary
and unique key of the time-series tables (DESIGN.md §5). Django cannot alter a primary key into a composite one,
so the table is rebuilt: the old one is renamed, the new one created, the flags copied over, the old one dropped."""

from django.db import migrations, models


def _rename_old_pkey(apps, schema_editor):
    # PostgreSQL index names are unique per schema: free "metering_dataflag_pkey" for the new table
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'ALTER INDEX IF EXISTS "metering_dataflag_pkey" RENAME TO "metering_dataflagold_pkey"'
        )


def _restore_old_pkey(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'ALTER INDEX IF EXISTS "metering_dataflagold_pkey" RENAME TO "metering_dataflag_pkey"'
        )


COLUMNS = "meter_id, day, code, detail"


class Migration(migrations.Migration):

    dependencies = [
        ("metering", "0002_labels"),
    ]

    operations = [
        migrations.RenameModel("DataFlag", "DataFlagOld"),
        migrations.RunPython(_rename_old_pkey, _restore_old_pkey, elidable=False),
        migrations.CreateModel(
            name="DataFlag",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "meter_id", "day", "code", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("meter_id", models.BigIntegerField()),
                ("day", models.DateField()),
                ("code", models.CharField(max_length=40)),
                ("detail", models.CharField(blank=True, max_length=300)),
            ],
            options={
                "verbose_name": "data flag",
                "verbose_name_plural": "data flags",
            },
        ),
        migrations.RunSQL(
            f"INSERT INTO metering_dataflag ({COLUMNS}) SELECT {COLUMNS} FROM metering_dataflagold",
            f"INSERT INTO metering_dataflagold ({COLUMNS}) SELECT {COLUMNS} FROM metering_dataflag",
            elidable=False,
        ),
        migrations.DeleteModel("DataFlagOld"),
    ]
