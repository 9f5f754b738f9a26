from django.db import migrations

from patients.bytewise import bytewise_columns


class Migration(migrations.Migration):
    dependencies = [("patients", "0017_storage_quota")]

    operations = [
        bytewise_columns("patients_patient", {"name_key": 220, "given_first_key": 220}),
        # In folded-name order: "Côté" before "Cyr" on both databases.
        migrations.AlterModelOptions(
            name="patient",
            options={
                "ordering": ["name_key", "chart_number"],
                "verbose_name": "patient",
                "verbose_name_plural": "patients",
            },
        ),
    ]
