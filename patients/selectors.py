"""Reads scoped to a practice. Every view goes through these."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Notification, Patient, Practice


def patients_of(practice: Practice) -> QuerySet[Patient]:
    return Patient.objects.filter(practice=practice)


def studies_of(practice: Practice) -> QuerySet[DicomStudy]:
    return DicomStudy.objects.filter(practice=practice)


def patient_studies(patient: Patient) -> QuerySet[DicomStudy]:
    return (
        studies_of(patient.practice)
        .filter(patient=patient)
        .select_related("appointment", "server")
        .prefetch_related(
            Prefetch("instances", queryset=DicomInstance.objects.order_by("instance_number", "id"))
        )
    )


def instances_of(practice: Practice) -> QuerySet[DicomInstance]:
    return DicomInstance.objects.filter(practice=practice)


def unread_notifications(practice: Practice) -> QuerySet[Notification]:
    return Notification.objects.filter(practice=practice, read_at__isnull=True)
