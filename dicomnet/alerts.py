"""Operations alerts (issue 11 §2), evaluated every minute by a django-q2 schedule
(``evaluate``, scheduled by migration dicomnet.00xx_alert_schedule; ``manage.py
check_alerts`` runs it once).

Each rule returns what is wrong now, as findings. A new finding opens an ``OpsAlert`` and
tells the practice admins (their bell, and email for those who asked); while it holds it is
only marked seen again (no repeat); once it clears, the alert is resolved and they are told
so. Rules about the whole installation (listener, queue, spool, certificate) concern every
practice; the storage quota, its own practice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from dicomnet.models import DicomInstance, OpsAlert
from dicomnet.net.heartbeat import read_heartbeats
from dicomnet.ops_status import oldest_waiting_seconds, spool_space
from patients.mail import email_notification_on_commit
from patients.models import Notification, Practice

log = logging.getLogger("dicomnet.alerts")

GB = 1024**3


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str  # in English, for the log and the admin
    values: dict[str, Any] = field(default_factory=dict)
    practice_id: int | None = None  # None: the whole installation


def listener_down(now: dt.datetime) -> list[Finding]:
    beats = read_heartbeats()
    if any(b.fresh for b in beats):
        return []
    seconds = int(min((b.age for b in beats), default=-1))
    if seconds < 0:
        # Never seen since the data directory was made: a listener that never started.
        seconds = settings.NEXREL_HEALTH_LISTENER_STALE_SECONDS
    return [
        Finding("listener_down", f"no listener heartbeat for {seconds} s", {"seconds": seconds})
    ]


def processing_failures(now: dt.datetime) -> list[Finding]:
    count = DicomInstance.objects.filter(
        state=DicomInstance.State.ERROR, received_at__gte=now - dt.timedelta(hours=1)
    ).count()
    if count <= settings.NEXREL_ALERT_FAILURES_PER_HOUR:
        return []
    return [Finding("processing_failures", f"{count} failures in the last hour", {"count": count})]


def queue_stale(now: dt.datetime) -> list[Finding]:
    waited = oldest_waiting_seconds(now)
    if waited is None:
        return []
    minutes = int(waited // 60)
    if minutes < settings.NEXREL_ALERT_QUEUE_STALE_MINUTES:
        return []
    return [Finding("queue_stale", f"oldest image waits {minutes} min", {"minutes": minutes})]


def storage_quota(now: dt.datetime) -> list[Finding]:
    findings = []
    quotas = dict(
        Practice.objects.exclude(storage_quota_gb=None).values_list("pk", "storage_quota_gb")
    )
    used = dict(
        DicomInstance.objects.filter(practice_id__in=quotas)
        .values_list("practice_id")
        .annotate(total=Sum("size"))
    )
    for practice_id, quota_gb in quotas.items():
        bytes_used = used.get(practice_id) or 0
        percent = 100.0 * bytes_used / (quota_gb * GB) if quota_gb else 100.0
        if percent >= settings.NEXREL_ALERT_STORAGE_PERCENT:
            values = {"percent": int(percent), "used_gb": bytes_used / GB, "quota_gb": quota_gb}
            findings.append(
                Finding("storage_quota", f"storage at {percent:.0f}% of quota", values, practice_id)
            )
    return findings


def spool_low(now: dt.datetime) -> list[Finding]:
    """Under the percentage, or near the MB headroom below which C-STORE is refused (on a
    big disk the headroom comes first)."""
    space = spool_space()
    percent = space.free_percent
    if percent >= settings.NEXREL_ALERT_SPOOL_FREE_PERCENT and not space.near_refusing:
        return []
    return [Finding("spool_low", f"spool disk {percent:.1f}% free", {"percent": percent})]


def tls_expiry(now: dt.datetime) -> list[Finding]:
    if not settings.DICOM_TLS_CERT:
        return []
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(Path(settings.DICOM_TLS_CERT).read_bytes())
    expires = certificate.not_valid_after_utc
    days = (expires - now).days
    if days > settings.NEXREL_ALERT_TLS_DAYS:
        return []
    values = {"days": days, "date": expires.date().isoformat()}
    return [Finding("tls_expiry", f"TLS certificate expires in {days} days", values)]


RULES = [listener_down, processing_failures, queue_stale, storage_quota, spool_low, tls_expiry]


def findings_now(now: dt.datetime) -> list[Finding]:
    found: list[Finding] = []
    for rule in RULES:
        try:
            found.extend(rule(now))
        except Exception:
            log.exception("alert rule %s could not be evaluated", rule.__name__)
    return found


def _tell(alert: OpsAlert, state: str) -> None:
    """The practice admins' notice of the alert (each practice's, for a global one)."""
    practices = (
        [alert.practice_id]
        if alert.practice_id
        else list(Practice.objects.values_list("pk", flat=True))
    )
    for practice_id in practices:
        notice = Notification.objects.create(
            practice_id=practice_id,
            for_admins=True,
            message=f"{state}: {alert.message}"[:300],
            params={"alert": alert.rule, "state": state, "values": alert.values},
        )
        email_notification_on_commit(notice)


def evaluate(now: dt.datetime | None = None) -> dict[str, int]:
    """One evaluation: open, keep or resolve alerts. Idempotent (a redelivered task sees
    the same state and tells no one twice)."""
    if not settings.NEXREL_ALERTS_ENABLED:
        return {"opened": 0, "resolved": 0, "firing": 0}
    now = now or timezone.now()
    current = {(f.rule, f.practice_id): f for f in findings_now(now)}
    opened = resolved = 0
    with transaction.atomic():
        firing = {
            (a.rule, a.practice_id): a
            for a in OpsAlert.objects.select_for_update().filter(resolved_at=None)
        }
        for key, finding in current.items():
            alert = firing.get(key)
            if alert is not None:
                alert.last_seen, alert.message, alert.values = now, finding.message, finding.values
                alert.save(update_fields=["last_seen", "message", "values"])
                continue
            alert = OpsAlert.objects.create(
                rule=finding.rule,
                practice_id=finding.practice_id,
                message=finding.message,
                values=finding.values,
                first_seen=now,
                last_seen=now,
            )
            log.warning("alert %s: %s", alert.rule, alert.message)
            _tell(alert, "firing")
            opened += 1
        for key, alert in firing.items():
            if key in current:
                continue
            alert.resolved_at = now
            alert.save(update_fields=["resolved_at"])
            log.info("alert %s resolved", alert.rule)
            _tell(alert, "resolved")
            resolved += 1
    return {"opened": opened, "resolved": resolved, "firing": len(current)}
