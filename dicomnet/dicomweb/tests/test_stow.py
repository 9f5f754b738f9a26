"""STOW-RS (PS3.18 §10.5): the streaming multipart parser on its own, then the Store
transaction over HTTP: durable rows and spool bytes, partial failures (202, 409), the study
of the path, resends, media types, the session, CSRF, the access log and no temp file left."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from django.test import Client
from pydicom.uid import generate_uid

from dicomnet.dicomweb import stow
from dicomnet.dimse import status
from dicomnet.ingest.store import OutOfResources
from dicomnet.models import DicomInstance
from dicomnet.net.incoming import spool_tmp_dir
from patients.models import AccessLog
from tests.dicom_samples import dicom_bytes

BOUNDARY = "nexrel-test-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'


def body_of(*contents: bytes, boundary: str = BOUNDARY, preamble: bytes = b"") -> bytes:
    out = preamble
    for content in contents:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def parsed(chunks, tmp_path: Path, **kwargs) -> list[tuple[stow.Part, bytes]]:
    found = []
    for part in stow.iter_parts(chunks, BOUNDARY, tmp_dir=tmp_path, **kwargs):
        content = part.path.read_bytes() if part.path is not None else b""
        if part.path is not None:
            part.path.unlink()
        found.append((part, content))
    return found


# ---------------------------------------------------------------------- the parser


@pytest.mark.parametrize("size", [1, 3, 7, len(BOUNDARY) + 3, 64 * 1024])
def test_parts_whatever_the_chunks(tmp_path, size):
    first, second = b"A" * 1000 + b"\r\n-", b"\r\n--nexrel-test-bound" + b"B" * 500
    body = body_of(first, second, preamble=b"a preamble\r\n") + b"an epilogue\r\n"
    found = parsed(chunked(body, size), tmp_path)
    assert [content for _, content in found] == [first, second]
    assert [part.index for part, _ in found] == [1, 2]
    assert [part.content_type for part, _ in found] == ["application/dicom"] * 2
    assert all(not part.error for part, _ in found)
    assert list(tmp_path.iterdir()) == []


def test_part_headers_and_empty_headers(tmp_path):
    body = (
        f"--{BOUNDARY}  \r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
        f"\r\nContent-Location: x\r\n\r\nONE\r\n--{BOUNDARY}\r\n\r\nTWO\r\n--{BOUNDARY}--"
    ).encode()
    [(one, a), (two, b)] = parsed(chunked(body, 5), tmp_path)
    assert one.headers == {
        "content-type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        "content-location": "x",
    }
    assert (a, b) == (b"ONE", b"TWO")
    assert two.headers == {}


def test_a_body_cut_short_is_an_error_for_that_part_and_leaves_no_file(tmp_path):
    body = body_of(b"complete", b"cut short")
    cut = body[: body.index(b"cut short") + 4]
    found = parsed(chunked(cut, 4), tmp_path)
    assert [(part.index, part.path is None, bool(part.error)) for part, _ in found] == [
        (1, False, False),
        (2, True, True),
    ]
    assert "ends inside part 2" in found[1][0].error
    assert list(tmp_path.iterdir()) == []


def test_a_consumer_that_stops_early_leaves_no_file(tmp_path):
    body = body_of(b"one", b"two" * 100_000)
    parts = stow.iter_parts(chunked(body, 1000), BOUNDARY, tmp_dir=tmp_path)
    first = next(parts)
    assert first.path is not None
    first.path.unlink()
    parts.close()
    assert list(tmp_path.iterdir()) == []


def test_a_big_body_is_read_with_bounded_buffers(tmp_path):
    chunk = 64 * 1024
    big = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MiB, with CRs and LFs
    stats = stow.ParseStats()
    served = []

    def source() -> Iterator[bytes]:
        for data in chunked(body_of(big, b"small"), chunk):
            served.append(len(data))
            yield data

    found = parsed(source(), tmp_path, stats=stats)
    assert [content for _, content in found] == [big, b"small"]
    assert len(served) > 40
    assert stats.peak_buffer < 3 * chunk
    assert stats.parts == 2


def test_content_types():
    assert stow.boundary_of(CONTENT_TYPE) == BOUNDARY
    assert stow.boundary_of("Multipart/Related; boundary=abc; type=application/dicom") == "abc"
    for refused in (
        "application/dicom",
        "multipart/related; boundary=abc",
        'multipart/related; type="application/dicom+json"; boundary=abc',
        "multipart/form-data; boundary=abc",
        "",
    ):
        with pytest.raises(stow.UnsupportedMedia):
            stow.boundary_of(refused)
    # The right media type without a usable boundary: a bad request, not an unsupported one.
    without = 'multipart/related; type="application/dicom"'
    for malformed in (without, f'{without}; boundary=""', f"{without}; boundary={'b' * 71}"):
        with pytest.raises(stow.MalformedBody, match="no boundary"):
            stow.boundary_of(malformed)
    assert stow.is_dicom_part("application/dicom; transfer-syntax=1.2.840.10008.1.2.1")
    assert not stow.is_dicom_part("application/dicom+json")


# ---------------------------------------------------------------------- over HTTP


def post(client: Client, body: bytes, url: str = "studies", **extra):
    return client.generic("POST", f"/dicomweb/{url}", body, content_type=CONTENT_TYPE, **extra)


def answer(response) -> pydicom.Dataset:
    assert response["Content-Type"] == "application/dicom+json"
    return pydicom.Dataset.from_json(json.loads(response.content))


def tmp_files() -> list[Path]:
    directory = spool_tmp_dir()
    return sorted(directory.iterdir()) if directory.exists() else []


def uids(data: bytes) -> tuple[str, str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data))
    return (
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.SOPClassUID),
    )


@pytest.fixture
def two_instances() -> tuple[bytes, bytes]:
    study, series = generate_uid(), generate_uid()
    first, second = (
        dicom_bytes(
            patient_id="1001",
            patient_name="Côté^Zoé",
            study_uid=study,
            series_uid=series,
            instance_number=n,
        )  # fmt: skip
        for n in (1, 2)
    )
    return first, second


def test_store_two_instances(clinician_client, practice, two_instances):
    first, second = two_instances
    response = post(clinician_client, body_of(first, second))
    assert response.status_code == 200, response.content
    result = answer(response)
    study, series, sop1, sop_class = uids(first)
    sop2 = uids(second)[2]
    assert result.RetrieveURL == f"http://testserver/dicomweb/studies/{study}"
    refs = result.ReferencedSOPSequence
    assert [r.ReferencedSOPInstanceUID for r in refs] == [sop1, sop2]
    assert refs[0].ReferencedSOPClassUID == sop_class
    assert refs[0].RetrieveURL == (
        f"http://testserver/dicomweb/studies/{study}/series/{series}/instances/{sop1}"
    )
    assert "FailedSOPSequence" not in result
    for sop, data in ((sop1, first), (sop2, second)):
        row = DicomInstance.objects.for_practice(practice).get(sop_instance_uid=sop)
        assert Path(row.spool_path).read_bytes() == data
        assert row.peer_address == "127.0.0.1"
    [log] = AccessLog.objects.filter(action="dicomweb_store")
    assert (log.object_ref, log.patient) == (f"stow:{study}", None)
    assert tmp_files() == []


def test_a_bad_part_and_a_good_one_is_202(clinician_client, practice, two_instances):
    good = two_instances[0]
    response = post(clinician_client, body_of(b"not a DICOM object at all", good))
    assert response.status_code == 202, response.content
    result = answer(response)
    [failed] = result.FailedSOPSequence
    assert failed.FailureReason == status.CANNOT_UNDERSTAND
    [stored] = result.ReferencedSOPSequence
    assert stored.ReferencedSOPInstanceUID == uids(good)[2]
    assert DicomInstance.objects.for_practice(practice).count() == 1
    assert tmp_files() == []


def test_all_bad_is_409(clinician_client, practice):
    # (A body cut short is malformed, a 400: test_stow_hostile.py.)
    response = post(clinician_client, body_of(b"junk", b"more junk"))
    assert response.status_code == 409, response.content
    reasons = [f.FailureReason for f in answer(response).FailedSOPSequence]
    assert reasons == [status.CANNOT_UNDERSTAND] * 2
    assert not DicomInstance.objects.exists()
    assert not AccessLog.objects.filter(action="dicomweb_store").exists()
    assert tmp_files() == []


def test_the_study_of_the_path(clinician_client, practice, two_instances):
    first = two_instances[0]
    study, _, sop, sop_class = uids(first)
    other_study = generate_uid()
    response = post(clinician_client, body_of(first), url=f"studies/{other_study}")
    assert response.status_code == 409
    [failed] = answer(response).FailedSOPSequence
    assert failed.FailureReason == status.DATASET_DOES_NOT_MATCH_SOP_CLASS == 0xA900
    assert (failed.ReferencedSOPInstanceUID, failed.ReferencedSOPClassUID) == (sop, sop_class)
    assert not DicomInstance.objects.exists()
    assert tmp_files() == []

    response = post(clinician_client, body_of(first), url=f"studies/{study}")
    assert response.status_code == 200
    assert answer(response).RetrieveURL.endswith(f"/dicomweb/studies/{study}")
    assert post(clinician_client, body_of(first), url="studies/1.2.*").status_code == 400


def test_a_resend_is_stored_without_a_new_row(clinician_client, practice, two_instances):
    body = body_of(*two_instances)
    assert post(clinician_client, body).status_code == 200
    assert DicomInstance.objects.count() == 2
    again = post(clinician_client, body)
    assert again.status_code == 200
    assert len(answer(again).ReferencedSOPSequence) == 2
    assert DicomInstance.objects.count() == 2
    assert tmp_files() == []


def test_media_types_are_415(clinician_client, practice, two_instances):
    for content_type in (
        "application/dicom",
        "multipart/related; boundary=x",
        'multipart/related; type="application/dicom+xml"; boundary=x',
        "application/json",
    ):
        response = clinician_client.generic(
            "POST", "/dicomweb/studies", two_instances[0], content_type=content_type
        )
        assert response.status_code == 415
        assert "multipart/related" in response.json()["detail"]
    assert clinician_client.post("/dicomweb/studies").status_code == 415
    assert not DicomInstance.objects.exists()


def test_without_a_session_401(client, practice, two_instances):
    response = post(client, body_of(two_instances[0]))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not DicomInstance.objects.exists()


def test_csrf_is_enforced(clinician, practice, two_instances):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    assert post(client, body_of(two_instances[0])).status_code == 403
    token = "N" * 32  # a CSRF secret as Django's cookie holds it
    client.cookies["csrftoken"] = token
    assert post(client, body_of(two_instances[0])).status_code == 403  # no header
    assert not DicomInstance.objects.exists()
    response = post(client, body_of(two_instances[0]), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert DicomInstance.objects.count() == 1


def test_the_request_is_read_as_a_stream(clinician_client, practice, two_instances, settings):
    """Far above DATA_UPLOAD_MAX_MEMORY_SIZE: request.body is never read."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = post(clinician_client, body_of(*two_instances))
    assert response.status_code == 200
    assert DicomInstance.objects.count() == 2


def test_get_still_searches_and_retrieves(clinician_client, practice):
    assert clinician_client.get("/dicomweb/studies").status_code == 204
    assert clinician_client.get(f"/dicomweb/studies/{generate_uid()}").status_code == 404
    assert clinician_client.delete("/dicomweb/studies").status_code == 405


@pytest.mark.parametrize(
    ("error", "reason"),
    [(OutOfResources("disk full"), 0xA700), (RuntimeError("bug"), 0x0110)],
)
def test_store_errors_are_failure_reasons(
    clinician_client, practice, two_instances, monkeypatch, error, reason
):
    def failing(path, **kwargs):
        raise error

    monkeypatch.setattr("dicomnet.dicomweb.views.store_instance", failing)
    response = post(clinician_client, body_of(two_instances[0]))
    assert response.status_code == 409
    [failed] = answer(response).FailedSOPSequence
    assert failed.FailureReason == reason
    assert failed.ReferencedSOPInstanceUID == uids(two_instances[0])[2]
    assert tmp_files() == []


def test_a_part_of_another_type_fails(clinician_client, practice, two_instances):
    body = (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom+json\r\n\r\n".encode()
        + two_instances[0]
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    response = post(clinician_client, body)
    assert response.status_code == 409
    assert answer(response).FailedSOPSequence[0].FailureReason == 0xC000
    assert not DicomInstance.objects.exists()
    assert tmp_files() == []


# ---------------------------------------------------------------------- the size limit (413)


def test_read_chunks_stops_past_the_limit():
    assert b"".join(stow.read_chunks(io.BytesIO(b"x" * 10), 4, limit=10)) == b"x" * 10
    read = []
    with pytest.raises(stow.BodyTooLarge, match="limit of 9 bytes"):
        for data in stow.read_chunks(io.BytesIO(b"x" * 10), 4, limit=9):
            read.append(data)
    assert b"".join(read) == b"x" * 8  # the chunk crossing the limit is never yielded


def test_a_declared_length_over_the_limit_is_413_before_reading(
    clinician_client, practice, two_instances, settings, monkeypatch
):
    body = body_of(*two_instances)
    settings.DICOMWEB_MAX_STOW_BYTES = len(body) - 1

    def never(*args, **kwargs):
        raise AssertionError("the body was read")

    monkeypatch.setattr(stow, "read_chunks", never)
    response = post(clinician_client, body)
    assert response.status_code == 413
    assert f"limit of {len(body) - 1} bytes" in response.json()["detail"]
    assert not DicomInstance.objects.exists()
    assert tmp_files() == []

    monkeypatch.undo()
    settings.DICOMWEB_MAX_STOW_BYTES = len(body)  # exactly the limit is taken
    assert post(clinician_client, body).status_code == 200


class ShortReads(io.BytesIO):
    """A stream that answers at most 1000 bytes a read, as a socket does."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(1000 if size is None or size < 0 else min(size, 1000))


def test_a_body_without_length_growing_past_the_limit_is_413(
    clinician, practice, two_instances, settings
):
    """As ASGI hands a chunked body over: no Content-Length, a stream longer than any
    limit. Reading stops at the limit; the part being read is dropped (no temp file), the
    part before it stays stored and is listed."""
    from django.test import RequestFactory

    from dicomnet.dicomweb import views
    from patients.tokens import create_token

    first, second = two_instances
    body = body_of(first, second)
    settings.DICOMWEB_MAX_STOW_BYTES = len(body) - 10_000  # inside the second part
    _, raw = create_token(clinician, "uploader")
    request = RequestFactory().generic(
        "POST", "/dicomweb/studies", b"", CONTENT_TYPE=CONTENT_TYPE,
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )  # fmt: skip
    assert "CONTENT_LENGTH" not in request.META
    request._stream = ShortReads(body)  # type: ignore[attr-defined]
    response = views.studies(request)
    assert response.status_code == 413, response.content
    answer = json.loads(response.content)
    assert "reading stopped" in answer["detail"]
    assert answer["stored"] == [uids(first)[2]]
    assert list(DicomInstance.objects.values_list("sop_instance_uid", flat=True)) == [
        uids(first)[2]
    ]
    assert AccessLog.objects.filter(action="dicomweb_store").count() == 1
    assert tmp_files() == []
