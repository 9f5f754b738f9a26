from django.db import migrations

from patients.bytewise import bytewise_columns


class Migration(migrations.Migration):
    dependencies = [("worklist", "0004_edges_verbose_names")]

    operations = [bytewise_columns("worklist_worklistitem", {"patient_name_key": 220})]
