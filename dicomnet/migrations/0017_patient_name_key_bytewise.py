from django.db import migrations

from patients.bytewise import bytewise_columns


class Migration(migrations.Migration):
    dependencies = [("dicomnet", "0016_alert_schedule")]

    operations = [bytewise_columns("dicomnet_dicomstudy", {"patient_name_key": 220})]
