"""The mount templates Nexrel starts with (dicomnet.dental.seed): FMX 18 and 20, bitewings,
anterior periapicals, comparison, photo grid, free."""

from django.db import migrations


def seed(apps, schema_editor):
    from dicomnet.dental.seed import seed_templates

    seed_templates(
        apps.get_model("dicomnet", "MountTemplate"), apps.get_model("dicomnet", "MountSlot")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dicomnet", "0011_mounts"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
