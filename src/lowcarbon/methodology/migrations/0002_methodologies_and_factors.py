from django.db import migrations


def forwards(apps, schema_editor):
    from lowcarbon.methodology.seed import load_methodology_data

    load_methodology_data(
        apps.get_model("methodology", "Methodology"),
        apps.get_model("methodology", "GridFactor"),
        apps.get_model("methodology", "FactorAssignment"),
    )


class Migration(migrations.Migration):
    dependencies = [("methodology", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
