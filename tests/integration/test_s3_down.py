"""S3 unreachable under a running listener and worker (issue 11, fault tests).

The spool is the durable receipt: while S3 is cut (a TCP proxy in front of moto, so the
bucket keeps its state) the listener goes on answering Success, the uploads fail and are
retried with back-off, with the reason in the log, and nothing is given up. The spool fills,
since nothing leaves it: below ``NEXREL_SPOOL_MIN_FREE_MB`` the listener answers 0xA700.
Once S3 is back every acknowledged object is uploaded, the spool drains, the refused ones
are accepted when sent again, and the bucket holds each object once, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pydicom
import pytest
from django.utils import timezone
from django_q.models import Schedule
from pydicom import Dataset
from pydicom.uid import generate_uid

from dicomnet.dimse import status
from dicomnet.models import DicomInstance
from tests.dicom_samples import intraoral
from tests.fixtures import ManagedProcess, wait_until
from tests.integration import scu
from tests.integration.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration]

SPOOL_MB = 24
MIN_FREE_MB = 4
IMAGE_SIZE = 1024  # 16-bit pixels: 2 MiB an object, so the spool takes about ten
SCHEDULER_TICK = 30  # django-q2 runs due schedules (our retries) every 30 s


def _bucket(client, bucket: str) -> dict[str, bytes]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_s3_outage_loses_nothing_acknowledged(
    small_spool, listener_factory, isolated_data, s3_server, s3_bucket
):
    spool = small_spool(SPOOL_MB)
    with TcpProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1])) as proxy:
        env = {
            "NEXREL_S3_BUCKET": s3_bucket,
            "NEXREL_S3_REGION": s3_server.region,
            "NEXREL_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            "AWS_MAX_ATTEMPTS": "1",  # boto3's own retries would only slow the test
            "NEXREL_SPOOL_MIN_FREE_MB": str(MIN_FREE_MB),
            # One attempt before giving up, for a failure of the image: an unreachable S3
            # must not count, or the outage would turn every image into an ERROR.
            "NEXREL_TASK_MAX_ATTEMPTS": "1",
            "Q_WORKERS": "1",
        }
        proxy.cut()
        listener, port = listener_factory(env=env)
        worker = ManagedProcess(["qcluster"], data_dir=isolated_data, env=env).start()
        try:
            _outage_and_recovery(proxy, port, spool, listener, worker, s3_server, s3_bucket)
        finally:
            worker.stop(timeout=10)


def _outage_and_recovery(proxy, port, spool, listener, worker, s3_server, s3_bucket) -> None:
    study, series = generate_uid(), generate_uid()
    sent: list[Dataset] = [
        intraoral(patient_id="1001", study_uid=study, series_uid=series, instance_number=n,
                  seed=n, size=IMAGE_SIZE)
        for n in range(1, 16)
    ]  # fmt: skip

    # 1. S3 down: Success while the spool has room, then 0xA700 below the headroom.
    answers = scu.store(port, sent).statuses
    accepted = answers.count(status.SUCCESS)
    assert answers == [status.SUCCESS] * accepted + [status.OUT_OF_RESOURCES] * (
        len(sent) - accepted
    ), answers
    assert 5 <= accepted < len(sent), f"the spool took {accepted} of {len(sent)}"
    assert "spool disk nearly full" in listener.output()
    assert "NEXREL_SPOOL_MIN_FREE_MB=4" in listener.output()
    assert len(list((spool / "objects").glob("*/*.dcm"))) == accepted
    assert not [p for p in (spool / "tmp").rglob("*") if p.is_file()]

    # 2. The uploads fail, each with its reason and a retry scheduled; none is given up.
    rows = DicomInstance.objects.all()
    try:
        wait_until(lambda: rows.filter(attempts__gte=1).count() == accepted, timeout=60)
    except AssertionError:
        raise AssertionError(f"no upload attempted:\n{worker.output()[-4000:]}") from None
    assert not rows.filter(state=DicomInstance.State.ERROR).exists()
    assert all(
        "Could not connect to the endpoint URL" in e for e in rows.values_list("error", flat=True)
    )
    retries = Schedule.objects.filter(name__startswith="retry-instance-")
    assert retries.count() >= accepted
    soon = timezone.now() + dt.timedelta(seconds=60)
    assert all(r.next_run <= soon for r in retries)
    log = worker.output()
    assert "retry in 2 s (a peer is unreachable: retried until it is back)" in log
    assert "EndpointConnectionError" in log

    # 3. S3 back: the retries (at the scheduler's next tick) upload everything, and the
    #    spool drains.
    proxy.restore()
    processed = rows.filter(state=DicomInstance.State.PROCESSED)
    try:
        wait_until(lambda: processed.count() == accepted, timeout=SCHEDULER_TICK + 60)
    except AssertionError:
        raise AssertionError(f"not uploaded:\n{worker.output()[-4000:]}") from None
    assert not list((spool / "objects").glob("*/*.dcm"))

    # 4. The refused ones, sent again: accepted now, uploaded at once.
    refused = sent[accepted:]
    assert scu.store(port, refused).statuses == [status.SUCCESS] * len(refused)
    wait_until(lambda: processed.count() == len(sent), timeout=60)

    # 5. In the bucket: every object once, byte for byte, and nothing else.
    instances = list(DicomInstance.objects.all())
    assert sorted(i.sop_instance_uid for i in instances) == sorted(
        str(ds.SOPInstanceUID) for ds in sent
    )
    bucket = _bucket(s3_server.client(), s3_bucket)
    expected = {k for i in instances for k in (i.storage_key, i.preview_key, i.thumbnail_key)}
    assert set(bucket) == expected and len(expected) == 3 * len(sent)
    originals = {str(ds.SOPInstanceUID): ds.PixelData for ds in sent}
    for instance in instances:
        stored = bucket[instance.storage_key]
        assert hashlib.sha256(stored).hexdigest() == instance.sha256  # as received
        ds = pydicom.dcmread(io.BytesIO(stored))
        assert ds.PixelData == originals[instance.sop_instance_uid]
