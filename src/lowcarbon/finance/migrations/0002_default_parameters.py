from django.db import migrations


def forwards(apps, schema_editor):
    # the finance defaults are part of core's DEFAULT_PARAMETERS; loading is idempotent (get_or_create)
    from lowcarbon.core.seed import load_default_parameters

    load_default_parameters(apps.get_model("core", "Parameter"))


class Migration(migrations.Migration):
    dependencies = [("finance", "0001_initial"), ("core", "0002_default_parameters")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
