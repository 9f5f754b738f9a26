"""Writes for the patients app."""

from __future__ import annotations

from django.utils import timezone

from patients.models import AccessLog, Notification, Patient, User


def audit(user: User, action: str, *, patient: Patient | None = None, ref: str = "") -> None:
    """Record who accessed what (Law 25)."""
    if user.practice_id:
        AccessLog.objects.create(
            practice_id=user.practice_id,
            user=user,
            patient=patient,
            action=action,
            object_ref=ref[:100],
        )


def mark_notifications_read(patient: Patient) -> int:
    """The patient's new-image notices are read once someone opens the patient's page."""
    return Notification.objects.filter(
        practice_id=patient.practice_id, patient=patient, read_at__isnull=True
    ).update(read_at=timezone.now())
