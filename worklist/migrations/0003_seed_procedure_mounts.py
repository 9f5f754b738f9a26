"""The mount template and expected image count of the practices' existing procedure codes
that have a default (worklist.services.DEFAULT_PROCEDURE_MOUNTS); rows set by hand stay."""

from django.db import migrations

MOUNTS = {
    "D0210": ("fmx-18", 18),
    "D0272": ("bitewings-2", 2),
    "D0274": ("bitewings-4", 4),
    "D0277": ("vertical-bitewings-4", 4),
    "02101": ("fmx-18", 18),
    "02102": ("fmx-20", 20),
    "02142": ("bitewings-2", 2),
    "02144": ("bitewings-4", 4),
}


def seed(apps, schema_editor):
    ProcedureModality = apps.get_model("worklist", "ProcedureModality")
    MountTemplate = apps.get_model("dicomnet", "MountTemplate")
    templates = {t.key: t for t in MountTemplate.objects.all()}
    for code, (key, expected) in MOUNTS.items():
        ProcedureModality.objects.filter(procedure_code=code, mount_template=None).update(
            mount_template=templates.get(key), expected_images=expected
        )


class Migration(migrations.Migration):
    dependencies = [
        ("worklist", "0002_procedure_mount_template"),
        ("dicomnet", "0012_seed_mount_templates"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
