"""WADO-RS (PS3.18 §10.4) over real processed studies: the stored bytes of a study, series
and instance, streamed as multipart/related; the latest version; metadata in DICOM JSON with
BulkDataURIs; negotiation, errors, the session, practice scoping and the access log."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from django.core.files.storage import default_storage
from django.utils.http import parse_header_parameters
from pydicom import Dataset
from pydicom.uid import generate_uid

from dicomnet.dicomweb import wado
from dicomnet.models import DicomInstance
from patients.models import AccessLog, Patient
from tests.dicom_samples import ingest_dataset, ingest_processed, intraoral

MULTIPART = 'multipart/related; type="application/dicom"'


@dataclass
class Archive:
    first: DicomInstance  # Côté, CT, one series of two instances
    second: DicomInstance
    other_series: DicomInstance  # the same study, a second series
    other: DicomInstance  # practice B's

    @property
    def study(self) -> str:
        return self.first.study.study_instance_uid

    @property
    def series(self) -> str:
        return self.first.series.series_instance_uid


@pytest.fixture
def archive(practice, other_practice) -> Archive:
    first = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", instance_number=1
    )
    study, series = first.study.study_instance_uid, first.series.series_instance_uid
    second = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", instance_number=2,
        study_uid=study, series_uid=series,
    )  # fmt: skip
    other_series = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", study_uid=study
    )
    other = ingest_processed(other_practice.practice, patient_id="1001", patient_name="Autre^B")
    return Archive(first, second, other_series, other)


def stored_sha256(instance: DicomInstance) -> str:
    with default_storage.open(instance.storage_key, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def parts(response) -> list[tuple[str, bytes]]:
    """(Content-Type, bytes) of each part of a multipart/related response."""
    assert response.status_code == 200
    assert response.streaming
    media_type, params = parse_header_parameters(response["Content-Type"])
    assert (media_type, params["type"]) == ("multipart/related", "application/dicom")
    assert not response.has_header("Content-Length")
    marker = b"--" + params["boundary"].encode()
    body = b"".join(response.streaming_content)
    assert body.startswith(marker + b"\r\n")
    assert body.endswith(b"\r\n" + marker + b"--\r\n")
    inner = body[len(marker) + 2 : -(len(marker) + 6)]
    found = []
    for part in inner.split(b"\r\n" + marker + b"\r\n"):
        headers, _, content = part.partition(b"\r\n\r\n")
        [content_type] = [
            line.split(b":", 1)[1].strip().decode()
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-type:")
        ]
        found.append((content_type, content))
    return found


def hashes(response) -> list[str]:
    return [hashlib.sha256(content).hexdigest() for _, content in parts(response)]


def get(client, url: str, accept: str | None = MULTIPART):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    return client.get(f"/dicomweb/{url}", **headers)


# ---------------------------------------------------------------------- retrieve


def test_a_study_is_its_stored_bytes_in_a_streamed_multipart(clinician_client, archive):
    response = get(clinician_client, f"studies/{archive.study}")
    assert response["Cache-Control"] == "private, no-store"
    found = parts(response)
    assert [content_type.split(";")[0] for content_type, _ in found] == ["application/dicom"] * 3
    assert found[0][0] == (
        f"application/dicom; transfer-syntax={archive.first.transfer_syntax_uid}"
    )
    assert sorted(hashlib.sha256(content).hexdigest() for _, content in found) == sorted(
        stored_sha256(i) for i in (archive.first, archive.second, archive.other_series)
    )
    assert stored_sha256(archive.first) == archive.first.sha256  # as received


def test_a_series_and_an_instance(clinician_client, archive):
    series = get(clinician_client, f"studies/{archive.study}/series/{archive.series}")
    assert hashes(series) == [stored_sha256(archive.first), stored_sha256(archive.second)]
    one = get(
        clinician_client,
        f"studies/{archive.study}/series/{archive.series}/instances/"
        f"{archive.second.sop_instance_uid}",
    )
    assert hashes(one) == [stored_sha256(archive.second)]


def test_the_body_is_streamed_in_chunks_never_whole(archive):
    instances = [archive.first, archive.second]
    chunks = list(wado.multipart_body(instances, "b", chunk=1024))
    assert max(len(c) for c in chunks) <= 1024
    assert len(chunks) > sum(i.size for i in instances) // 1024
    generator = wado.multipart_body(instances, "b")
    assert next(generator).startswith(b"--b\r\n")  # nothing is opened before it is needed


def test_the_latest_version_of_a_re_sent_instance_wins(practice, clinician_client):
    sop = generate_uid()
    first = ingest_dataset(practice, intraoral(sop_uid=sop, seed=1, patient_name="Côté^Zoé"))
    study, series = first.study.study_instance_uid, first.series.series_instance_uid
    latest = ingest_dataset(
        practice, intraoral(sop_uid=sop, seed=2, study_uid=study, series_uid=series)
    )
    assert (first.version, latest.version) == (1, 2)
    assert first.sha256 != latest.sha256
    url = f"studies/{study}/series/{series}/instances/{sop}"
    for path in (f"studies/{study}", f"studies/{study}/series/{series}", url):
        assert hashes(get(clinician_client, path)) == [stored_sha256(latest)], path


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        MULTIPART,
        f"{MULTIPART}; transfer-syntax=*",
        "multipart/related; type=application/dicom",
        "multipart/*",
        f"application/dicom+json, {MULTIPART};q=0.5",
    ],
)
def test_accept_taking_the_stored_bytes(clinician_client, archive, accept):
    response = get(clinician_client, f"studies/{archive.study}", accept=accept)
    assert len(parts(response)) == 3


def test_accept_the_stored_transfer_syntax(clinician_client, archive):
    syntax = archive.first.transfer_syntax_uid
    assert syntax
    accept = f"{MULTIPART}; transfer-syntax={syntax}"
    assert len(parts(get(clinician_client, f"studies/{archive.study}", accept=accept))) == 3


def test_another_transfer_syntax_is_406_transcoding_not_supported(clinician_client, archive):
    accept = f"{MULTIPART}; transfer-syntax=1.2.840.10008.1.2.4.50"
    response = get(clinician_client, f"studies/{archive.study}", accept=accept)
    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert "transcoding is not supported" in response.json()["detail"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/dicom",
        "application/dicom+json",
        'multipart/related; type="application/octet-stream"',
        'multipart/related; type="image/jpeg"',
        "text/html",
        f"{MULTIPART};q=0",
    ],
)
def test_other_media_types_are_406(clinician_client, archive, accept):
    response = get(clinician_client, f"studies/{archive.study}", accept=accept)
    assert response.status_code == 406
    assert "detail" in response.json()


# ---------------------------------------------------------------------- errors, scoping


@pytest.mark.parametrize(
    "path",
    ["studies/1.2.*", "studies/abc/series/1.2.3", "studies/1.2.3/series/1.2.3/instances/1.2.x"],
)
def test_an_invalid_uid_is_400(clinician_client, archive, path):
    response = get(clinician_client, path)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert get(clinician_client, f"{path}/metadata", accept=None).status_code == 400


def test_unknown_or_another_practices_is_404_never_403(
    clinician_client, client_for, archive, other_practice
):
    theirs = archive.other
    paths = [
        f"studies/{theirs.study.study_instance_uid}",
        f"studies/{theirs.study.study_instance_uid}/series/{theirs.series.series_instance_uid}",
        f"studies/{theirs.study.study_instance_uid}/series/{theirs.series.series_instance_uid}"
        f"/instances/{theirs.sop_instance_uid}",
        f"studies/{generate_uid()}",
        f"studies/{archive.study}/series/{generate_uid()}",
        f"studies/{archive.study}/series/{archive.series}/instances/{generate_uid()}",
        # the instance exists, but not in this series
        f"studies/{archive.study}/series/{archive.series}"
        f"/instances/{archive.other_series.sop_instance_uid}",
    ]
    for path in paths:
        for url in (path, f"{path}/metadata"):
            response = get(clinician_client, url, accept=None)
            assert response.status_code == 404, url
            assert response["Content-Type"] == "application/json"
            assert "detail" in response.json()
    b_client = client_for(other_practice.user)
    assert len(parts(get(b_client, paths[0]))) == 1


def test_without_a_session_401_with_www_authenticate(client, archive):
    for url in (f"studies/{archive.study}", f"studies/{archive.study}/metadata"):
        response = get(client, url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="Nexrel DICOMweb"'


def test_get_only(clinician_client, archive):
    # POST on a study is STOW-RS (test_stow.py): without a multipart body, 415.
    assert clinician_client.post(f"/dicomweb/studies/{archive.study}").status_code == 415
    assert clinician_client.put(f"/dicomweb/studies/{archive.study}").status_code == 405
    series = f"/dicomweb/studies/{archive.study}/series/{archive.series}"
    assert clinician_client.post(series).status_code == 405


def test_a_retrieve_is_in_the_access_log(clinician_client, clinician, archive):
    zoe = Patient.objects.get(practice=clinician.practice, chart_number="1001")
    assert archive.first.study.patient == zoe
    for path in (
        f"studies/{archive.study}",
        f"studies/{archive.study}/series/{archive.series}/metadata",
        f"studies/{archive.study}/series/{archive.series}"
        f"/instances/{archive.first.sop_instance_uid}/metadata",
    ):
        before = AccessLog.objects.count()
        get(clinician_client, path, accept=None)
        [row] = AccessLog.objects.order_by("-pk")[: AccessLog.objects.count() - before]
        assert (row.user, row.patient, row.action, row.object_ref) == (
            clinician,
            zoe,
            "dicomweb_retrieve",
            f"wado:{path}",  # the whole path: AccessLog.object_ref holds 255 characters
        )
    before = AccessLog.objects.count()
    get(clinician_client, f"studies/{archive.study}", accept="text/html")  # 406: nothing sent
    assert AccessLog.objects.count() == before


# ---------------------------------------------------------------------- metadata


def test_instance_metadata_in_dicom_json_with_bulk_data_uris(clinician_client, archive):
    instance_path = (
        f"studies/{archive.study}/series/{archive.series}/instances/"
        f"{archive.first.sop_instance_uid}"
    )
    response = get(clinician_client, f"{instance_path}/metadata", accept="application/dicom+json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    assert "Côté^Zoé".encode() in response.content  # UTF-8, not \u-escaped
    [answer] = response.json()
    assert answer["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Côté^Zoé"}]}
    assert answer["00080018"]["Value"] == [archive.first.sop_instance_uid]
    uri = f"http://testserver/dicomweb/{instance_path}/bulkdata/7FE00010"
    assert answer["7FE00010"] == {"vr": "OW", "BulkDataURI": uri}
    assert "00020010" not in answer  # the file meta is not metadata
    # the URI is served (dicomnet/dicomweb/tests/test_frames.py checks its bytes)
    assert clinician_client.get(f"/dicomweb/{instance_path}/bulkdata/7FE00010").status_code == 200


def test_study_and_series_metadata_answer_every_instance(clinician_client, archive):
    study = get(clinician_client, f"studies/{archive.study}/metadata", accept=None).json()
    assert {a["00080018"]["Value"][0] for a in study} == {
        i.sop_instance_uid for i in (archive.first, archive.second, archive.other_series)
    }
    series = get(
        clinician_client, f"studies/{archive.study}/series/{archive.series}/metadata", accept="*/*"
    ).json()
    assert [a["00200013"]["Value"][0] for a in series] == [1, 2]
    assert all("BulkDataURI" in a["7FE00010"] for a in series)


@pytest.mark.parametrize("accept", [MULTIPART, "application/dicom+xml", "text/html"])
def test_metadata_media_types_other_than_json_are_406(clinician_client, archive, accept):
    response = get(clinician_client, f"studies/{archive.study}/metadata", accept=accept)
    assert response.status_code == 406


def test_long_values_and_nested_ones_become_bulk_data_uris():
    ds = Dataset()
    ds.PatientName = "Côté^Zoé"
    ds.add_new(0x00204000, "LT", "x" * 2000)  # ImageComments, long
    ds.add_new(0x00091010, "OB", b"\x00" * 100)  # small: inline
    item = Dataset()
    item.add_new(0x00420011, "OB", b"\x01" * 5000)  # EncapsulatedDocument, nested
    ds.add_new(0x00400275, "SQ", [item])  # RequestAttributesSequence
    tree = wado.dataset_metadata(ds, "http://h/i")
    assert tree["00204000"] == {"vr": "LT", "BulkDataURI": "http://h/i/bulkdata/00204000"}
    assert "InlineBinary" in tree["00091010"]
    assert tree["00400275"]["Value"][0]["00420011"] == {
        "vr": "OB",
        "BulkDataURI": "http://h/i/bulkdata/00400275/0/00420011",
    }
    assert tree["00100010"]["Value"] == [{"Alphabetic": "Côté^Zoé"}]


# ---------------------------------------------------------------------- S3


def test_retrieve_and_metadata_from_s3_storage(s3_settings, practice, clinician_client):
    """The same bytes when default storage is S3 (a moto server), as production runs it."""
    first = ingest_processed(practice, patient_id="1001", patient_name="Côté^Zoé")
    assert first.storage_key and not first.spool_path
    study = first.study.study_instance_uid
    assert hashes(get(clinician_client, f"studies/{study}")) == [first.sha256]
    [answer] = get(clinician_client, f"studies/{study}/metadata", accept=None).json()
    assert answer["00100010"]["Value"] == [{"Alphabetic": "Côté^Zoé"}]
