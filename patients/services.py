"""Writes for the patients app."""

from __future__ import annotations

from patients.models import AccessLog, Patient, User


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
