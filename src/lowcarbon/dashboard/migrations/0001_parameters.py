from django.db import migrations


def forwards(apps, schema_editor):
    from lowcarbon.core.seed import load_default_parameters

    load_default_parameters(apps.get_model("core", "Parameter"))


class Migration(migrations.Migration):
    dependencies = [("core", "0002_default_parameters")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
