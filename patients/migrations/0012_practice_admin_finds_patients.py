"""The practice admins see the patients' demographics (``patients.view_patient``), to reach
the chart's "export the patient's copy of their record" (issue 9 §6): ``roles.sync_groups``
sets each group to exactly its permissions again."""

from django.db import migrations

from patients import roles


class Migration(migrations.Migration):
    dependencies = [("patients", "0011_notification_read_per_user")]

    operations = [migrations.RunPython(roles.migrate_groups, migrations.RunPython.noop)]
