"""Orthanc as a front end: record its 'instance stored' notifications and fetch the instances.

``record_notification`` is called by the webhook; ``fetch_notification`` is the django-q2
task. The task:
1. claims the notification by conditional update (PENDING, not claimed or claimed by a dead
   worker), so two workers never fetch the same instance;
2. streams ``GET {ORTHANC_URL}/instances/{id}/file`` (HTTP basic auth) into the spool;
3. hands the file to ``store_instance``, the same ingest path as the DICOM listener;
4. on failure records the reason and retries with back-off, then marks it FAILED.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from dicomnet.ingest.storage import copy_into_spool_tmp
from dicomnet.ingest.store import store_instance
from dicomnet.models import DicomServer, OrthancNotification
from patients.models import Practice

log = logging.getLogger("dicomnet.ingest.orthanc")

# Orthanc's identifiers are SHA-1 based: five groups of eight hex digits.
INSTANCE_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")
TASK = "dicomnet.ingest.orthanc.fetch_notification"


class FetchError(Exception):
    """The instance could not be fetched from Orthanc (the message says why)."""


def record_notification(
    *, practice: Practice, orthanc_instance_id: str, remote_aet: str = ""
) -> tuple[OrthancNotification, bool]:
    """Record one notification and queue its fetch; a resend returns the existing row.

    A resend of a FAILED notification queues a new round of attempts (Orthanc still has it).
    Returns the notification and whether a fetch was queued.
    """
    server = _sending_device(practice, remote_aet)
    try:
        with transaction.atomic():
            notification = OrthancNotification.objects.create(
                practice=practice, server=server, orthanc_instance_id=orthanc_instance_id
            )
            enqueue_at_commit(notification.pk)
        return notification, True
    except IntegrityError:
        pass
    notification = OrthancNotification.objects.for_practice(practice).get(
        orthanc_instance_id=orthanc_instance_id
    )
    with transaction.atomic():
        requeued = OrthancNotification.objects.filter(
            pk=notification.pk, status=OrthancNotification.Status.FAILED
        ).update(status=OrthancNotification.Status.PENDING, attempts=0, claimed_at=None)
        if requeued:
            enqueue_at_commit(notification.pk)
    if requeued:
        notification.refresh_from_db()
    return notification, bool(requeued)


def _sending_device(practice: Practice, remote_aet: str) -> DicomServer | None:
    """The device that sent the image to Orthanc, else the practice's Orthanc entry."""
    devices = DicomServer.objects.for_practice(practice).filter(is_active=True)
    if remote_aet:
        device = devices.filter(ae_title=remote_aet).first()
        if device:
            return device
    return devices.filter(vendor_profile=DicomServer.VendorProfile.ORTHANC).first()


def enqueue_at_commit(notification_id: int) -> None:
    """Queue the fetch with the row's commit (as ``ingest.enqueue_at_commit``): with the ORM
    broker in the same database the task is written in the same transaction."""
    q_cluster = settings.Q_CLUSTER
    if q_cluster.get("orm") == DEFAULT_DB_ALIAS and "redis" not in q_cluster:
        enqueue_fetch(notification_id)
    else:
        transaction.on_commit(lambda: enqueue_fetch(notification_id), robust=False)


def enqueue_fetch(notification_id: int) -> None:
    from django_q.tasks import async_task

    async_task(TASK, notification_id, task_name=f"orthanc-fetch-{notification_id}")


def fetch_notification(notification_id: int) -> str:
    """django-q2 task entry point: claim, fetch and ingest; on failure retry, then FAILED."""
    if not claim(notification_id):
        return "already fetched or being fetched"
    notification = OrthancNotification.objects.select_related("practice", "server").get(
        pk=notification_id
    )
    try:
        instance_id = fetch_and_store(notification)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        _record_failure(notification_id, reason)
        return f"failed: {reason}"
    OrthancNotification.objects.filter(pk=notification_id).update(
        status=OrthancNotification.Status.FETCHED,
        instance_id=instance_id,
        error="",
        claimed_at=None,
    )
    return "fetched"


def claim(notification_id: int) -> bool:
    """Take the notification by conditional update; False if fetched or held by another run."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=int(settings.Q_CLUSTER.get("timeout", 300)))
    return bool(
        OrthancNotification.objects.filter(
            pk=notification_id, status=OrthancNotification.Status.PENDING
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
        .update(claimed_at=now)
    )


def fetch_and_store(notification: OrthancNotification) -> int:
    """Stream the instance from Orthanc into the spool and ingest it; returns its id."""
    path = download_instance(notification.orthanc_instance_id)
    try:
        server = notification.server
        outcome = store_instance(
            path,
            practice=notification.practice,
            server=server,
            calling_ae=server.ae_title if server else "",
            peer_address=f"orthanc {notification.orthanc_instance_id[:17]}",
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return outcome.instance.pk


def download_instance(orthanc_instance_id: str) -> Path:
    """``GET /instances/{id}/file`` into the spool's temp area; FetchError says why not."""
    if not INSTANCE_ID.match(orthanc_instance_id):
        raise FetchError(f"not an Orthanc instance id: {orthanc_instance_id!r}")
    base = settings.ORTHANC_URL.rstrip("/")
    if not base:
        raise FetchError("ORTHANC_URL is not set")
    request = urllib.request.Request(f"{base}/instances/{orthanc_instance_id}/file")
    if settings.ORTHANC_USERNAME:
        token = f"{settings.ORTHANC_USERNAME}:{settings.ORTHANC_PASSWORD}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    try:
        with urllib.request.urlopen(request, timeout=settings.ORTHANC_TIMEOUT) as response:
            return copy_into_spool_tmp(response)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise FetchError(
                f"Orthanc at {base} refused our credentials (HTTP {exc.code}): "
                "check ORTHANC_USERNAME and ORTHANC_PASSWORD"
            ) from exc
        if exc.code == 404:
            raise FetchError(f"Orthanc at {base} has no instance {orthanc_instance_id}") from exc
        raise FetchError(f"Orthanc at {base} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot reach Orthanc at {base}: {reason}") from exc


def _record_failure(notification_id: int, reason: str) -> None:
    OrthancNotification.objects.filter(pk=notification_id).update(
        attempts=F("attempts") + 1, error=reason, claimed_at=None
    )
    notification = OrthancNotification.objects.get(pk=notification_id)
    if notification.attempts < settings.NEXREL_TASK_MAX_ATTEMPTS:
        log.warning(
            "Orthanc instance %s: attempt %d failed, retrying: %s",
            notification.orthanc_instance_id,
            notification.attempts,
            reason,
        )
        _schedule_retry(notification_id, delay=2**notification.attempts)
        return
    OrthancNotification.objects.filter(pk=notification_id).update(
        status=OrthancNotification.Status.FAILED
    )
    log.error(
        "Orthanc instance %s gave up after %d attempts: %s",
        notification.orthanc_instance_id,
        notification.attempts,
        reason,
    )


def _schedule_retry(notification_id: int, *, delay: int) -> None:
    from django_q.models import Schedule
    from django_q.tasks import schedule

    schedule(
        TASK,
        notification_id,
        name=f"retry-orthanc-{notification_id}-{uuid.uuid4().hex[:12]}",
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + dt.timedelta(seconds=delay),
        repeats=1,
    )
