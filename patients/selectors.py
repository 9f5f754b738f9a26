"""Reads of patients and notifications, scoped to a practice."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from patients.models import Notification, Patient, Practice
from patients.names import normalise_name


def search_patients(practice: Practice, query: str) -> QuerySet[Patient]:
    """Chart number, or every word of the name in any order, ignoring accents and case."""
    patients = Patient.objects.for_practice(practice)
    words = normalise_name(query).split()
    if not words:
        return patients
    by_name = Q()
    for word in words:
        by_name &= Q(name_key__contains=word)
    return patients.filter(by_name | Q(chart_number__iexact=query.strip()))


def unread_notifications(practice: Practice) -> QuerySet[Notification]:
    return Notification.objects.for_practice(practice).filter(read_at__isnull=True)
