"""The whole pipeline with S3 storage (a moto server over HTTP), configured as production is."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.utils import timezone

from dicomnet.ingest.pipeline import process_instance
from dicomnet.ingest.storage import copy_into_spool_tmp
from dicomnet.ingest.store import store_instance
from dicomnet.models import DicomInstance, DicomStudy
from tests.dicom_samples import write_dicom

pytestmark = [pytest.mark.integration]


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _bucket_keys(client, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_pipeline_stores_encrypted_objects_in_s3(practice, s3_settings, s3_server, tmp_path):
    bucket, client = s3_settings, s3_server.client()
    source = write_dicom(
        tmp_path / "in.dcm",
        study_uid="1.2.826.0.1.3680043.8.498.1001",
        series_uid="1.2.826.0.1.3680043.8.498.1001.1",
        patient_id="1001",
        patient_name="COTE^ZOE",
        study_date=timezone.localdate(),
    )
    with open(source, "rb") as fh:
        received = copy_into_spool_tmp(fh)
    outcome = store_instance(received, practice=practice, server=None, calling_ae="CARESTREAM")
    spool_path = outcome.instance.spool_path

    assert process_instance(outcome.instance.pk) == "processed"

    instance = DicomInstance.objects.get(pk=outcome.instance.pk)
    assert instance.state == DicomInstance.State.PROCESSED, instance.error
    assert instance.preview_error == ""
    keys = {instance.storage_key, instance.preview_key, instance.thumbnail_key}
    prefix = f"{practice.pk}/{instance.study_id}/{instance.series_id}/{instance.pk}-v1"
    assert keys == {f"{prefix}.dcm", f"{prefix}.webp", f"{prefix}.thumb.webp"}
    assert _bucket_keys(client, bucket) == keys
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", key
    body = client.get_object(Bucket=bucket, Key=instance.storage_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == instance.sha256
    assert body == source.read_bytes()
    for key in (instance.preview_key, instance.thumbnail_key):
        assert is_webp(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert spool_path and not Path(spool_path).exists()  # the spool copy is dropped

    study = DicomStudy.objects.get(pk=instance.study_id)
    assert study.instance_count == 1
    assert study.patient is not None and study.patient.chart_number == "1001"
    assert study.status == DicomStudy.Status.PROCESSED

    # A retried task (spool file gone, so the bytes come back from S3) overwrites the same
    # keys: no renamed copies such as "...-v1_AbCdEfG.dcm".
    DicomInstance.objects.filter(pk=instance.pk).update(state=DicomInstance.State.RECEIVED)
    assert process_instance(instance.pk) == "processed"
    instance.refresh_from_db()
    assert {instance.storage_key, instance.preview_key, instance.thumbnail_key} == keys
    assert _bucket_keys(client, bucket) == keys
    head = client.head_object(Bucket=bucket, Key=instance.storage_key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == instance.size
    assert DicomStudy.objects.get(pk=study.pk).instance_count == 1
