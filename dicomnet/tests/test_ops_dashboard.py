"""The operations dashboard (dicomnet/ops_dashboard.py, /ops/): the charts' figures, the
devices' last contact and refusals, the failures and their retry, for the practice admin."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from dicomnet import ops_dashboard as board
from dicomnet.models import DicomInstance, DicomServer, RefusedAssociation
from tests.dicom_samples import ingest_processed


def _received(instance: DicomInstance, days_ago: int, **fields) -> None:
    at = timezone.now() - dt.timedelta(days=days_ago)
    DicomInstance.objects.filter(pk=instance.pk).update(
        received_at=at, processed_at=at + dt.timedelta(seconds=2), **fields
    )


def test_the_charts_count_by_day_and_modality(practice):
    today = timezone.localdate()
    sensor = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    one = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    two = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    old = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    _received(one, 0, server=sensor)
    _received(two, 0, state=DicomInstance.State.ERROR, error="boom")
    _received(old, 40)  # before the 30 days
    images = board.images_per_day(practice, today)
    assert images.peak == 2 and images.legend == [("CT", board.COLOURS["CT"])]
    assert len(images.bars) == 1 and images.bars[0].height > 0
    p50, p95 = board.processing_time(practice, today)
    assert p50.peak == 2 and p95.peak == 2
    errors = board.error_rate(practice, today)
    assert errors.peak == 50
    storage = board.storage_growth(practice, today)
    assert len(storage.bars) == board.DAYS  # one per day: the total so far
    devices = {row.device.ae_title: row for row in board.devices(practice)}
    assert devices["CARESTREAM"].last_contact is not None
    assert [i.pk for i in board.recent_failures(practice)] == [two.pk]


def test_the_page_and_the_retry(practice, practice_admin, clinician, client_for):
    failed = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    DicomInstance.objects.filter(pk=failed.pk).update(
        state=DicomInstance.State.ERROR, error="preview crashed"
    )
    RefusedAssociation.objects.create(
        practice=practice, called_ae="NEXREL-CRM", calling_ae="CARESTREAM", peer_address="10.0.0.9",
        reason="wrong host", count=3,
    )  # fmt: skip
    admin = client_for(practice_admin)
    page = admin.get(reverse("ops_dashboard"))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="ops-chart"') == 5 and "preview crashed" in html
    row = next(r for r in page.context["devices"] if r.device.ae_title == "CARESTREAM")
    assert row.refused == 3
    assert client_for(clinician).get(reverse("ops_dashboard")).status_code == 403
    retried = admin.post(reverse("ops_retry", args=[failed.pk]))
    assert retried.status_code == 302
    failed.refresh_from_db()
    assert failed.state == DicomInstance.State.RECEIVED and failed.error == ""
    assert admin.post(reverse("ops_retry", args=[failed.pk])).status_code == 404  # not failed now
