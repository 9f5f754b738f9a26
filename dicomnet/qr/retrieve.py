"""Import studies from another DICOM system into a patient's chart, as a queued job.

``start_import`` records a ``RetrieveJob`` and enqueues ``run_job`` (a django-q2 task).
``run_job`` claims the job, runs the C-MOVE or C-GET (``dicomnet.qr.scu``), saves the
sub-operation counts as they arrive and ends with a status and, on failure, a message in
plain words. Received objects take the usual ingest path; ``linking.link_study`` links a
retrieved study to the job's patient.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dicomnet.dimse import status
from dicomnet.ingest.store import IngestError, store_instance
from dicomnet.models import DeviceService, DicomServer, RetrieveJob
from dicomnet.qr import scu
from nexrel import metrics
from patients.models import Patient, Practice

log = logging.getLogger("dicomnet.qr.retrieve")

MAX_STUDIES_PER_JOB = 500
RETRIEVE_TASK_TIMEOUT = 3600  # seconds


class ImportRefused(ValueError):
    """The import cannot be started; the message says why."""


def start_import(
    practice: Practice,
    *,
    server: DicomServer,
    study_uids: list[str],
    patient: Patient | None,
    method: str = RetrieveJob.Method.MOVE,
    user=None,
) -> RetrieveJob:
    """Check the request, record the job and queue it (once the transaction commits)."""
    uids = list(dict.fromkeys(u.strip() for u in study_uids if u and u.strip()))
    if server.practice_id != practice.pk:
        raise ImportRefused("this DICOM server belongs to another practice")
    if method not in RetrieveJob.Method.values:
        raise ImportRefused(f"unknown method {method!r}: use 'move' or 'get'")
    refusal = server.refusal(DeviceService(method))
    if refusal:
        raise ImportRefused(refusal)
    if not uids:
        raise ImportRefused("no study selected")
    if len(uids) > MAX_STUDIES_PER_JOB:
        raise ImportRefused(f"at most {MAX_STUDIES_PER_JOB} studies per import")
    if any(len(u) > 64 for u in uids):
        raise ImportRefused("a Study Instance UID is longer than 64 characters")
    if patient is not None and patient.practice_id != practice.pk:
        raise ImportRefused("this patient belongs to another practice")
    job = RetrieveJob.objects.create(
        practice=practice,
        server=server,
        patient=patient,
        requested_by=user if getattr(user, "pk", None) else None,
        method=method,
        study_instance_uids=uids,
    )
    transaction.on_commit(lambda: enqueue(job.pk))
    log.info("import job %s: %s of %d studies from %s", job.pk, method, len(uids), server.ae_title)
    return job


def enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    # A CBCT over a slow link outlasts the cluster's default timeout. If the broker hands
    # the task out again meanwhile, the second run finds the job claimed and exits.
    async_task(
        "dicomnet.qr.retrieve.run_job",
        job_id,
        task_name=f"retrieve-{job_id}",
        group="retrieve",
        timeout=RETRIEVE_TASK_TIMEOUT,
    )


def cancel_job(job: RetrieveJob) -> RetrieveJob:
    """Cancel: a pending job at once; a running one at its next progress report."""
    now = timezone.now()
    if RetrieveJob.objects.filter(pk=job.pk, status=RetrieveJob.Status.PENDING).update(
        status=RetrieveJob.Status.CANCELLED, cancel_requested=True, finished_at=now
    ):
        log.info("import job %s cancelled before it started", job.pk)
    else:
        RetrieveJob.objects.filter(pk=job.pk, status=RetrieveJob.Status.RUNNING).update(
            cancel_requested=True
        )
    job.refresh_from_db()
    return job


def claim(job_id: int) -> bool:
    """Take the job if nobody has: one conditional update, true for exactly one caller.

    A job still RUNNING after the task timeout lost its worker (django-q2 kills a task at
    its timeout and delivers it again): that claim is stale and may be taken over.
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=RETRIEVE_TASK_TIMEOUT + 60)
    fresh = Q(status=RetrieveJob.Status.PENDING, claimed_at=None)
    abandoned = Q(status=RetrieveJob.Status.RUNNING, claimed_at__lt=stale)
    return (
        RetrieveJob.objects.filter(fresh | abandoned, pk=job_id).update(
            status=RetrieveJob.Status.RUNNING, claimed_at=now, started_at=now
        )
        == 1
    )


def run_job(job_id: int) -> str:
    """The task: run one import job to its end. Idempotent: a second run exits.

    1. Claim the job (PENDING -> RUNNING) or return.
    2. Run the C-MOVE or C-GET; save the counts at each report; check for a cancel.
    3. Record the outcome: COMPLETED, WARNING (some sub-operations failed or warned),
       FAILED (with the reason) or CANCELLED.
    """
    if not claim(job_id):
        log.info("import job %s already taken or finished", job_id)
        return "skipped"
    job = RetrieveJob.objects.select_related("server__practice", "practice").get(pk=job_id)
    final = scu.RetrieveProgress(final=True, error="the retrieve ended without a final answer")
    try:
        for progress in _operations(job):
            if progress.final:
                final = progress
            _save_counts(job, progress)
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        final = scu.RetrieveProgress(final=True, error=f"unexpected error: {exc}")
    outcome = outcome_of(final)
    error = final.error
    if not error and final.missing:
        error = f"{len(final.missing)} of the studies were not found on {job.server.name}: " + (
            ", ".join(final.missing)
        )
    RetrieveJob.objects.filter(pk=job_id).update(
        status=outcome, error=error[:5000], finished_at=timezone.now()
    )
    metrics.RETRIEVE_JOBS.labels(status=str(outcome)).inc()
    log.info(
        "import job %s: %s (%d completed, %d failed, %d warning)%s",
        job_id,
        outcome,
        final.completed,
        final.failed,
        final.warning,
        f": {final.error}" if final.error else "",
    )
    return outcome


def outcome_of(final: scu.RetrieveProgress) -> str:
    if final.cancelled:
        return RetrieveJob.Status.CANCELLED
    if final.error:
        return RetrieveJob.Status.FAILED
    if final.failed and not final.completed and not final.warning:
        return RetrieveJob.Status.FAILED
    if (
        final.failed
        or final.warning
        or final.missing
        or final.status == status.SUBOPS_COMPLETE_WITH_FAILURES
    ):
        return RetrieveJob.Status.WARNING
    return RetrieveJob.Status.COMPLETED


def _operations(job: RetrieveJob):
    def should_cancel() -> bool:
        return RetrieveJob.objects.filter(pk=job.pk, cancel_requested=True).exists()

    if job.method == RetrieveJob.Method.GET:
        return scu.get(
            job.server,
            study_uids=job.study_instance_uids,
            store=lambda path, sop_uid, sop_class: store_received(
                job, path=path, sop_uid=sop_uid, sop_class=sop_class
            ),
            should_cancel=should_cancel,
        )
    return scu.move(job.server, study_uids=job.study_instance_uids, should_cancel=should_cancel)


def store_received(job: RetrieveJob, *, path: Path, sop_uid: str, sop_class: str) -> int:
    """One object received over a C-GET: the same durable ingest as the listener's C-STORE."""
    # A count for this run of the job, not a field.
    job.received = received = getattr(job, "received", 0) + 1  # type: ignore[attr-defined]
    try:
        store_instance(
            path,
            practice=job.practice,
            server=job.server,
            calling_ae=job.server.ae_title,
            peer_address=job.server.host,
            expected_sop_instance_uid=sop_uid,
            expected_sop_class_uid=sop_class,
            position=received,
        )
    except IngestError as exc:
        log.warning("import job %s: %s refused with 0x%04X: %s", job.pk, sop_uid, exc.status, exc)
        return exc.status
    return status.SUCCESS


def _save_counts(job: RetrieveJob, progress: scu.RetrieveProgress) -> None:
    RetrieveJob.objects.filter(pk=job.pk).update(
        completed=progress.completed,
        failed=progress.failed,
        warning=progress.warning,
        remaining=progress.remaining,
    )
