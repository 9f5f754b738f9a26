"""Reads scoped to a practice. Every view goes through these."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Notification, Patient, Practice
from patients.names import normalise_name


def patients_of(practice: Practice) -> QuerySet[Patient]:
    return Patient.objects.filter(practice=practice)


def search_patients(practice: Practice, query: str) -> QuerySet[Patient]:
    """Chart number, or every word of the name in any order, ignoring accents and case."""
    patients = patients_of(practice)
    words = normalise_name(query).split()
    if not words:
        return patients
    by_name = Q()
    for word in words:
        by_name &= Q(name_key__contains=word)
    return patients.filter(by_name | Q(chart_number__iexact=query.strip()))


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
