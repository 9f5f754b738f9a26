"""Processing of received instances (django-q2 tasks). Every step is idempotent.

``process_instance`` is the task; ``run_pipeline`` does the work:
1. parse the header, create or update the study and series rows;
2. copy the object to final storage under a key chosen from database ids;
3. render the display image and thumbnail (a failure here is recorded, not fatal);
4. run the analyzers;
5. in one transaction: mark the instance PROCESSED, refresh the counts, match the
   patient, link the appointment, place the image in the study's mount and update the
   notification;
6. drop the spool file.
A failing run is retried with back-off, then marked ERROR with its reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from dicomnet.dental.attributes import dental_attributes
from dicomnet.dental.mounts import arrange
from dicomnet.ingest import storage
from dicomnet.ingest.analysis import run_analyzers
from dicomnet.ingest.linking import link_study, notify_new_images
from dicomnet.ingest.parsing import InstanceHeader, header_fields, json_metadata, read_header
from dicomnet.ingest.previews import IMAGE_SUFFIX, NoPreview, render_preview
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from nexrel import logs, metrics

log = logging.getLogger("dicomnet.ingest.pipeline")


def process_instance(instance_id: int) -> str:
    """django-q2 task entry point: claim, run the pipeline, retry on failure with the reason."""
    if not claim(instance_id):
        instance = DicomInstance.objects.filter(pk=instance_id).first()
        if instance is None:
            return "gone"
        if instance.state == DicomInstance.State.PROCESSED:
            return "already processed"
        return "being processed by another run"
    instance = DicomInstance.objects.get(pk=instance_id)
    with logs.bound(instance_id=str(instance_id)):  # this task's lines, and no other's
        try:
            run_pipeline(instance)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:1000]
            log.exception("processing instance %s failed", instance_id)
            _record_failure(instance_id, reason, transient=is_transient(exc))
            return f"failed: {reason}"
        log.info("instance %s processed", instance_id)
    return "processed"


def claim(instance_id: int) -> bool:
    """Take the instance for this run by conditional update; False if another run has it.

    The same instance may be queued twice (a resend, the reconciler at listener start): only
    one run works on it. A claim older than the task timeout belongs to a dead worker.
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=int(settings.Q_CLUSTER.get("timeout", 300)))
    return bool(
        DicomInstance.objects.filter(pk=instance_id)
        .exclude(state=DicomInstance.State.PROCESSED)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
        .update(claimed_at=now)
    )


def is_transient(exc: BaseException) -> bool:
    """A failure of a peer (final storage, the database) rather than of the image: the same
    run succeeds once the peer is back (connection refused or cut, timeout, a 5xx)."""
    if isinstance(exc, (OperationalError, InterfaceError, BotoConnectionError)):
        return True
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return False


def _record_failure(instance_id: int, reason: str, *, transient: bool = False) -> None:
    """Count the failed attempt and schedule the next, or give up (ERROR) after
    ``NEXREL_TASK_MAX_ATTEMPTS``. A transient failure is retried until the peer is back,
    however long: the image is received and safe in the spool, and the queue_stale alert
    says it waits."""
    DicomInstance.objects.filter(pk=instance_id).update(
        attempts=F("attempts") + 1, error=reason, claimed_at=None
    )
    instance = DicomInstance.objects.get(pk=instance_id)
    if transient or instance.attempts < settings.NEXREL_TASK_MAX_ATTEMPTS:
        delay = min(2**instance.attempts, settings.NEXREL_RETRY_MAX_DELAY)
        log.warning(
            "instance %s: attempt %d failed (%s), retry in %d s%s",
            instance_id,
            instance.attempts,
            reason,
            delay,
            " (a peer is unreachable: retried until it is back)" if transient else "",
        )
        _schedule_retry(instance_id, delay=delay)
        return
    DicomInstance.objects.filter(pk=instance_id).update(state=DicomInstance.State.ERROR)
    if instance.study_id:
        DicomStudy.objects.filter(pk=instance.study_id).update(
            status=DicomStudy.Status.ERROR, status_reason=reason[:500]
        )
    log.error("instance %s gave up after %d attempts: %s", instance_id, instance.attempts, reason)


def _schedule_retry(instance_id: int, *, delay: int) -> None:
    from django_q.models import Schedule
    from django_q.tasks import schedule

    schedule(
        "dicomnet.ingest.pipeline.process_instance",
        instance_id,
        # Unique: two runs of one instance (a resend, the reconciler) may fail in one second.
        name=f"retry-instance-{instance_id}-{uuid.uuid4().hex[:12]}",
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + dt.timedelta(seconds=delay),
        repeats=1,
    )


def run_pipeline(instance: DicomInstance) -> DicomInstance:
    with metrics.stage("total"):
        processed = _run_pipeline(instance)
    study = processed.study
    metrics.IMAGES_RECEIVED.labels(
        practice=str(processed.practice_id),
        modality=(study.modality if study is not None else "") or "OT",
        calling_ae=processed.calling_ae or "-",
    ).inc()
    return processed


def _run_pipeline(instance: DicomInstance) -> DicomInstance:
    with storage.local_copy(instance) as path:
        with metrics.stage("parse"):
            ds = read_header(path)
            header = header_fields(ds)
            study, series = upsert_study_and_series(instance, header, lambda: json_metadata(ds))
            logs.bind(study_uid=header.study_instance_uid)
        instance.study, instance.series = study, series
        instance.instance_number = header.instance_number
        instance.rows, instance.columns, instance.frames = (
            header.rows,
            header.columns,
            header.frames,
        )
        instance.dental = dental_attributes(ds)
        instance.save(
            update_fields=[
                "study",
                "series",
                "instance_number",
                "rows",
                "columns",
                "frames",
                "dental",
            ]
        )

        key = storage.instance_key(instance)
        with metrics.stage("store"):
            storage.put_file(key, path)

        preview_key = thumbnail_key = preview_error = ""
        analysis: dict = {}
        try:
            with metrics.stage("preview", expected=(NoPreview,)):
                preview = render_preview(
                    path,
                    ds=ds,
                    max_size=settings.NEXREL_PREVIEW_MAX_SIZE,
                    thumb_size=settings.NEXREL_THUMBNAIL_SIZE,
                )
        except NoPreview as exc:
            preview_error = str(exc)[:500]
            log.info("instance %s stored without preview: %s", instance.pk, preview_error)
        else:
            preview_key = storage.instance_key(instance, IMAGE_SUFFIX)
            thumbnail_key = storage.instance_key(instance, ".thumb" + IMAGE_SUFFIX)
            storage.put_bytes(preview_key, preview.display_image)
            storage.put_bytes(thumbnail_key, preview.thumbnail_image)
            analysis = run_analyzers(instance, preview.display)

    spool_path = instance.spool_path
    with transaction.atomic(), metrics.stage("link"):
        instance.storage_key = key
        instance.preview_key, instance.thumbnail_key = preview_key, thumbnail_key
        instance.preview_error, instance.analysis = preview_error, analysis
        instance.state, instance.error = DicomInstance.State.PROCESSED, ""
        instance.spool_path, instance.processed_at = "", timezone.now()
        instance.claimed_at = None
        instance.save()
        refresh_counts(study)
        # Linking commits with the PROCESSED mark: a failure here rolls both back and the
        # retry links, rather than finding the instance "already processed" and unlinked.
        study.refresh_from_db()
        link_study(study)
        arrange(study)  # the image's slot in the study's mount (dicomnet.dental.mounts)
        notify_new_images(study)
    if spool_path:
        with contextlib.suppress(OSError):
            os.unlink(Path(spool_path))
    return instance


def upsert_study_and_series(
    instance: DicomInstance, h: InstanceHeader, metadata: Callable[[], dict]
) -> tuple[DicomStudy, DicomSeries]:
    """``metadata`` is called only when the study needs it: the header as JSON is costly
    and a 300-slice series has one study."""
    study, created = DicomStudy.objects.get_or_create(
        practice_id=instance.practice_id,
        study_instance_uid=h.study_instance_uid,
        defaults=dict(
            patient_id=h.patient_id,
            patient_name=h.patient_name,
            patient_birth_date=h.patient_birth_date,
            patient_sex=h.patient_sex,
            accession_number=h.accession_number,
            study_date=h.study_date,
            study_time=h.study_time,
            study_description=h.study_description,
            modality=h.modality,
            server=instance.server,
            metadata=metadata,
        ),
    )
    if not created:
        modalities = set(filter(None, study.modality.split("\\"))) | {h.modality} - {""}
        study.modality = "\\".join(sorted(modalities))[:64]
        if not study.metadata:
            study.metadata = metadata()
        study.save(update_fields=["modality", "metadata", "updated_at"])
    series, _ = DicomSeries.objects.get_or_create(
        study=study,
        series_instance_uid=h.series_instance_uid,
        defaults=dict(
            practice_id=instance.practice_id,
            series_number=h.series_number,
            modality=h.modality,
            series_description=h.series_description,
            body_part_examined=h.body_part_examined,
        ),
    )
    return study, series


def refresh_counts(study: DicomStudy) -> None:
    """Counts are derived from rows, so a task that runs twice can't double them.

    Called in the transaction that marks an instance PROCESSED. The study row is locked
    first: under PostgreSQL's READ COMMITTED, two workers finishing the same study would
    otherwise each count before the other commits, and the later write would lose one.
    Holding the lock, the last to commit counts after every earlier commit.
    """
    list(DicomStudy.objects.select_for_update().filter(pk=study.pk).values_list("pk"))
    for series in study.series.all():
        count = (
            series.instances.filter(state=DicomInstance.State.PROCESSED)
            .values("sop_instance_uid")
            .distinct()
            .count()
        )
        DicomSeries.objects.filter(pk=series.pk).update(instance_count=count)
    DicomStudy.objects.filter(pk=study.pk).update(
        series_count=study.series.count(),
        # One SOP kept in several versions is one image.
        instance_count=DicomInstance.objects.filter(
            study=study, state=DicomInstance.State.PROCESSED
        )
        .values("sop_instance_uid")
        .distinct()
        .count(),
    )


def reprocess(instance: DicomInstance) -> None:
    """Run the whole pipeline again for an instance (admin action)."""
    from dicomnet.ingest.queues import Lane
    from dicomnet.ingest.store import enqueue_processing

    DicomInstance.objects.filter(pk=instance.pk).update(
        state=DicomInstance.State.RECEIVED, attempts=0, error=""
    )
    enqueue_processing(instance.pk, lane=Lane.BULK)
