"""Operations alerts (dicomnet/alerts.py): each rule, one notice when an alert opens and one
when it resolves (none while it holds), for the practice admins only, by email to those who
asked; the schedule exists."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django.utils.translation import override
from django_q.models import Schedule

from dicomnet import alerts
from dicomnet.models import DicomInstance, OpsAlert
from dicomnet.net.heartbeat import write_heartbeat
from dicomnet.ops_status import spool_space
from patients.models import Notification, Practice, User
from patients.selectors import unread_notifications
from tests.dicom_samples import ingest_processed


@pytest.fixture
def ops(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.NEXREL_ALERTS_ENABLED = True
    return settings


def _alive(settings) -> None:
    write_heartbeat(0, directory=settings.DATA_DIR / "heartbeats")


def _alerts() -> list[Notification]:
    return list(Notification.objects.filter(for_admins=True).order_by("id"))


def test_listener_down_opens_once_and_resolves_once(ops, practice, practice_admin, clinician):
    assert alerts.evaluate()["opened"] == 1  # no heartbeat at all
    assert alerts.evaluate()["opened"] == 0  # still down: no second notice
    (alert,) = OpsAlert.objects.filter(resolved_at=None)
    assert alert.rule == "listener_down"
    notices = _alerts()
    assert {n.practice_id for n in notices} == set(Practice.objects.values_list("pk", flat=True))
    ours = [n for n in notices if n.practice_id == practice.pk]
    assert [n.params["state"] for n in ours] == ["firing"]
    # The admins' bell has it, the clinician's does not.
    assert list(unread_notifications(practice_admin)) == ours
    assert not unread_notifications(clinician).filter(for_admins=True).exists()
    _alive(ops)
    assert alerts.evaluate()["resolved"] == 1
    ours = [n for n in _alerts() if n.practice_id == practice.pk]
    assert [n.params["state"] for n in ours] == ["firing", "resolved"]
    assert OpsAlert.objects.get().resolved_at is not None


def test_email_to_the_admins_who_asked(
    ops, practice, practice_admin, django_capture_on_commit_callbacks
):
    practice_admin.email, practice_admin.email_notifications = "admin@clinique.example", True
    practice_admin.save()
    with django_capture_on_commit_callbacks(execute=True):
        alerts.evaluate()
    sent = [m for m in mail.outbox if "admin@clinique.example" in m.to]
    assert len(sent) == 1 and "listener" in sent[0].body.lower()
    clinicians = set(User.objects.filter(username="clinician").values_list("email", flat=True))
    assert not any(set(m.to) & clinicians - {""} for m in mail.outbox)


def test_queue_failures_quota_and_spool_rules(ops, practice):
    _alive(ops)
    now = timezone.now()
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    DicomInstance.objects.filter(pk=instance.pk).update(
        state=DicomInstance.State.RECEIVED, received_at=now - dt.timedelta(minutes=30)
    )
    assert [f.rule for f in alerts.queue_stale(now)] == ["queue_stale"]
    DicomInstance.objects.filter(pk=instance.pk).update(state=DicomInstance.State.ERROR)
    ops.NEXREL_ALERT_FAILURES_PER_HOUR = 0
    assert [f.values["count"] for f in alerts.processing_failures(now)] == [1]
    assert alerts.queue_stale(now) == []
    practice.storage_quota_gb = 1
    practice.save()
    ops.NEXREL_ALERT_STORAGE_PERCENT = 0
    (quota,) = alerts.storage_quota(now)
    assert quota.practice_id == practice.pk and quota.values["quota_gb"] == 1
    ops.NEXREL_ALERT_SPOOL_FREE_PERCENT = 101
    assert [f.rule for f in alerts.spool_low(now)] == ["spool_low"]
    ops.NEXREL_ALERT_SPOOL_FREE_PERCENT = 0
    ops.NEXREL_SPOOL_MIN_FREE_MB = 0
    assert alerts.spool_low(now) == []
    # On a big disk, the C-STORE headroom comes before any percentage: near it, an alert.
    free_mb = spool_space().free_bytes // (1024 * 1024)
    ops.NEXREL_SPOOL_MIN_FREE_MB = free_mb // 2 + 1
    assert [f.rule for f in alerts.spool_low(now)] == ["spool_low"]


def test_tls_certificate_expiry(ops, tmp_path):
    from dicomnet.net.tls_dev import DevCertificates, ensure_dev_certificates

    ensure_dev_certificates(tmp_path / "tls", hosts=["localhost"])
    ops.DICOM_TLS_CERT = str(DevCertificates(tmp_path / "tls").server_certificate)
    ops.NEXREL_ALERT_TLS_DAYS = 100000
    (finding,) = alerts.tls_expiry(timezone.now())
    assert finding.rule == "tls_expiry" and finding.values["days"] > 0
    ops.NEXREL_ALERT_TLS_DAYS = 0
    assert alerts.tls_expiry(timezone.now()) == []


def test_the_words_and_the_schedule(ops, practice, practice_admin):
    alerts.evaluate()
    notice = next(n for n in _alerts() if n.practice_id == practice.pk)
    with override("en"):
        assert notice.text.startswith("The DICOM listener has not been seen for")
    with override("fr"):
        assert notice.text.startswith("Le serveur DICOM ne donne plus signe de vie")
    assert Schedule.objects.filter(func="dicomnet.alerts.evaluate", minutes=1).exists()
    out = io.StringIO()
    call_command("check_alerts", stdout=out)
    assert "listener_down" in out.getvalue()
