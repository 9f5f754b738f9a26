"""Reads for query/retrieve, scoped to a practice: retrieve jobs and their state.

What a peer allows is ``DicomServer.refusal`` (one wording for every refusal).
"""

from __future__ import annotations

from django.db.models import QuerySet

from dicomnet.models import RetrieveJob
from patients.models import Practice

FINISHED = {
    RetrieveJob.Status.COMPLETED,
    RetrieveJob.Status.WARNING,
    RetrieveJob.Status.FAILED,
    RetrieveJob.Status.CANCELLED,
}


def jobs_of(practice: Practice) -> QuerySet[RetrieveJob]:
    return RetrieveJob.objects.for_practice(practice).select_related("server", "patient")


def is_finished(job: RetrieveJob) -> bool:
    return job.status in FINISHED
