"""patients 0011: the practice-wide ``Notification.read_at`` becomes each person's read marks,
and back. Run on the test database with Django's migration executor, from 0010's models."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("patients", "0010_export_record")]
AFTER = [("patients", "0011_notification_read_per_user")]
READ_AT = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _migrate(targets):
    """Migrate to ``targets``; returns the models as they are there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_read_at_becomes_a_mark_for_each_person_of_the_practice_and_back() -> None:
    apps = _migrate(BEFORE)
    try:
        Practice = apps.get_model("patients", "Practice")
        User = apps.get_model("patients", "User")
        Notification = apps.get_model("patients", "Notification")
        a = Practice.objects.create(name="A", ae_title="MIGRATE-A")
        b = Practice.objects.create(name="B", ae_title="MIGRATE-B")
        for name, practice in (("ann", a), ("bob", a), ("carl", b)):
            User.objects.create(username=name, practice=practice)
        read = Notification.objects.create(practice=a, message="read", read_at=READ_AT)
        unread = Notification.objects.create(practice=a, message="unread")
        theirs = Notification.objects.create(practice=b, message="B's, unread")

        apps = _migrate(AFTER)
        marks = apps.get_model("patients", "NotificationRead").objects
        assert sorted(marks.values_list("notification_id", "user__username", "read_at")) == [
            (read.pk, "ann", READ_AT),
            (read.pk, "bob", READ_AT),
        ]

        apps = _migrate(BEFORE)
        notices = apps.get_model("patients", "Notification").objects
        assert dict(notices.values_list("pk", "read_at")) == {
            read.pk: READ_AT,
            unread.pk: None,
            theirs.pk: None,
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
