from django.db import migrations


def forwards(apps, schema_editor):
    from lowcarbon.pv.seed import load_communities

    load_communities(apps.get_model("pv", "Community"))


class Migration(migrations.Migration):
    dependencies = [("pv", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
