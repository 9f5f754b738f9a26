"""The operations alerts' schedule (dicomnet/alerts.py): evaluated every minute by the
django-q2 workers. Idempotent by name; removed when migrating back."""

from django.db import migrations

NAME = "nexrel-alerts"
FUNC = "dicomnet.alerts.evaluate"


def schedule(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME, defaults={"func": FUNC, "schedule_type": "I", "minutes": 1, "repeats": -1}
    )


def unschedule(apps, schema_editor) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dicomnet", "0015_ops_alerts"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
