"""WADO-RS frames and bulk data (PS3.18 §10.4.1.1.2, §10.4.1.1.4) over real ingested objects
in several transfer syntaxes: as stored, or decoded to native little endian, one part per
frame in the order asked; only what the path names; errors and negotiation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.utils.http import parse_header_parameters
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet.dicomweb import frames
from dicomnet.models import DicomInstance
from tests.dicom_samples import ingest_bytes, ingest_dataset, intraoral

STAR = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
DECODED = 'multipart/related; type="application/octet-stream"'


def related_parts(response) -> tuple[str, list[tuple[str, bytes]]]:
    """(type parameter, [(part Content-Type, bytes)]) of a multipart/related answer."""
    assert response.status_code == 200, response.content
    media_type, params = parse_header_parameters(response["Content-Type"])
    assert media_type == "multipart/related"
    marker = b"--" + params["boundary"].encode()
    body = b"".join(response.streaming_content) if response.streaming else response.content
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
    return params["type"], found


def frames_url(instance: DicomInstance, frame_list: str) -> str:
    return (
        f"/dicomweb/studies/{instance.study.study_instance_uid}/series/"
        f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}/"
        f"frames/{frame_list}"
    )


def ingest_file(practice, name: str) -> DicomInstance:
    return ingest_bytes(practice, Path(get_testdata_file(name)).read_bytes())


def native_le(path: str, index: int) -> bytes:
    frame = pixel_array(dcmread(path), index=index, raw=True)
    return np.ascontiguousarray(frame.astype(frame.dtype.newbyteorder("<"))).tobytes()


@pytest.fixture
def multiframe(practice) -> DicomInstance:
    """A native 16-bit object of three frames, each filled with its own number."""
    ds = intraoral(patient_id="2001", patient_name="Bélanger^Éloi", size=32)
    ds.NumberOfFrames = 3
    ds.PixelData = np.stack(
        [np.full((32, 32), n * 1000 + 7, np.uint16) for n in (1, 2, 3)]
    ).tobytes()
    return ingest_dataset(practice, ds)


def test_frames_of_a_native_object_in_the_order_asked(clinician_client, multiframe):
    response = clinician_client.get(frames_url(multiframe, "3,1"), HTTP_ACCEPT=DECODED)
    part_type, found = related_parts(response)
    assert part_type == "application/octet-stream"
    assert [t for t, _ in found] == [
        f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    ] * 2
    values = [np.frombuffer(data, "<u2") for _, data in found]
    assert [v.size for v in values] == [32 * 32] * 2
    assert [int(v[0]) for v in values] == [3007, 1007]


def test_a_frame_past_the_last_is_404_and_a_bad_list_400(clinician_client, multiframe):
    assert clinician_client.get(frames_url(multiframe, "4"), HTTP_ACCEPT=DECODED).status_code == 404
    for bad in ("0", "1,", "a", "1;2", "-1"):
        response = clinician_client.get(frames_url(multiframe, bad), HTTP_ACCEPT=DECODED)
        assert response.status_code == 400, bad
        assert "frame list" in response.json()["detail"]


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
        "SC_rgb_rle.dcm",  # RLE Lossless
        "JPEG-LL.dcm",  # JPEG Lossless SV1
        "emri_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless, multi-frame
    ],
)
def test_compressed_frames_as_stored_or_decoded(clinician_client, practice, name):
    path = get_testdata_file(name)
    ds = dcmread(path)
    instance = ingest_file(practice, name)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    last = count  # the last frame: found through the fragments, not the first one
    stored = list(generate_frames(ds.PixelData, number_of_frames=count))[last - 1]
    syntax = ds.file_meta.TransferSyntaxUID

    response = clinician_client.get(frames_url(instance, str(last)), HTTP_ACCEPT=STAR)
    _, [(content_type, data)] = related_parts(response)
    assert content_type == f"{frames.IMAGE_MEDIA_TYPES[syntax]}; transfer-syntax={syntax}"
    assert data == stored

    response = clinician_client.get(frames_url(instance, str(last)), HTTP_ACCEPT=DECODED)
    _, [(content_type, data)] = related_parts(response)
    assert content_type.endswith(f"transfer-syntax={ExplicitVRLittleEndian}")
    assert data == native_le(path, last - 1)


def test_the_image_media_type_of_the_stored_syntax(clinician_client, practice):
    instance = ingest_file(practice, "MR_small_jp2klossless.dcm")
    response = clinician_client.get(
        frames_url(instance, "1"), HTTP_ACCEPT='multipart/related; type="image/jp2"'
    )
    part_type, [(content_type, _)] = related_parts(response)
    assert part_type == "image/jp2"
    response = clinician_client.get(
        frames_url(instance, "1"), HTTP_ACCEPT='multipart/related; type="image/jpeg"'
    )
    assert response.status_code == 406
    assert "1.2.840.10008.1.2.4.90" in response.json()["detail"]


@pytest.mark.parametrize(
    "name", ["MR_small_bigendian.dcm", "image_dfl.dcm", "MR_small_implicit.dcm", "CT_small.dcm"]
)
def test_native_syntaxes_decoded_to_little_endian(clinician_client, practice, name):
    path = get_testdata_file(name)
    instance = ingest_file(practice, name)
    response = clinician_client.get(frames_url(instance, "1"), HTTP_ACCEPT=DECODED)
    _, [(_, data)] = related_parts(response)
    assert data == native_le(path, 0)


def test_frames_of_another_practice_or_an_unknown_instance_are_404(
    client_for, clinician_client, other_practice, multiframe
):
    other = client_for(other_practice.user)
    assert other.get(frames_url(multiframe, "1"), HTTP_ACCEPT=DECODED).status_code == 404
    url = frames_url(multiframe, "1").replace(multiframe.sop_instance_uid, generate_uid())
    assert clinician_client.get(url, HTTP_ACCEPT=DECODED).status_code == 404


def test_frames_without_credentials_401(client, multiframe):
    response = client.get(frames_url(multiframe, "1"))
    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


# ---------------------------------------------------------------------- bulk data


def test_the_pixel_data_bulk_data_uri_of_the_metadata(clinician_client, practice):
    path = get_testdata_file("CT_small.dcm")
    instance = ingest_file(practice, "CT_small.dcm")
    metadata_url = frames_url(instance, "1").removesuffix("frames/1") + "metadata"
    [meta] = clinician_client.get(metadata_url).json()
    uri = meta["7FE00010"]["BulkDataURI"]
    assert uri.endswith("/bulkdata/7FE00010")
    response = clinician_client.get(uri.removeprefix("http://testserver"))
    _, [(content_type, data)] = related_parts(response)
    assert content_type.startswith("application/octet-stream; transfer-syntax=")
    assert data == dcmread(path).PixelData


def test_a_bulk_data_value_inside_a_sequence(clinician_client, practice):
    ds = intraoral(patient_id="2002", patient_name="Zoé^Côté")
    item = Dataset()
    item.add_new(0x00420011, "OB", bytes(range(256)) * 20)  # EncapsulatedDocument
    ds.add_new(0x00400275, "SQ", [item])  # RequestAttributesSequence
    instance = ingest_dataset(practice, ds)
    metadata_url = frames_url(instance, "1").removesuffix("frames/1") + "metadata"
    [meta] = clinician_client.get(metadata_url).json()
    uri = meta["00400275"]["Value"][0]["00420011"]["BulkDataURI"]
    assert uri.endswith("/bulkdata/00400275/0/00420011")
    _, [(_, data)] = related_parts(clinician_client.get(uri.removeprefix("http://testserver")))
    assert data == bytes(range(256)) * 20


def test_bulk_data_bad_path_400_missing_404(clinician_client, practice):
    instance = ingest_file(practice, "CT_small.dcm")
    base = frames_url(instance, "1").removesuffix("frames/1") + "bulkdata/"
    assert clinician_client.get(base + "7FE0001").status_code == 400
    assert clinician_client.get(base + "00091001/x/00100010").status_code == 400
    assert clinician_client.get(base + "60003000").status_code == 404
    assert clinician_client.get(base + "00540016/0/00181072").status_code == 404


def test_parse_frame_list_and_bulk_path():
    assert frames.parse_frame_list("1,3,5") == [1, 3, 5]
    assert frames.parse_bulk_path("00540016/0/00181072") == [0x00540016, "0", 0x00181072]
    with pytest.raises(frames.BadRetrieve):
        frames.parse_bulk_path("../etc")


@pytest.mark.parametrize(
    ("accept", "decoded"),
    [
        ("", True),
        ("*/*", True),
        (DECODED, True),
        (f"{DECODED}; transfer-syntax={ExplicitVRLittleEndian}", True),
        (STAR, False),
    ],
)
def test_negotiation_of_a_native_object(accept, decoded):
    answer = frames.negotiate_frames(accept, ExplicitVRLittleEndian)
    assert isinstance(answer, frames.FrameAnswer)
    assert answer.decoded is decoded


def test_negotiation_of_a_compressed_object():
    jpeg = "1.2.840.10008.1.2.4.50"
    default = frames.negotiate_frames("", jpeg)
    assert isinstance(default, frames.FrameAnswer) and not default.decoded
    assert default.part_type == f"image/jpeg; transfer-syntax={jpeg}"
    assert isinstance(frames.negotiate_frames("image/png", jpeg), str)
    assert isinstance(frames.negotiate_frames('multipart/related; type="image/jls"', jpeg), str)


def test_a_deflated_objects_frames_are_named_explicit_little_endian(clinician_client, practice):
    instance = ingest_file(practice, "image_dfl.dcm")
    response = clinician_client.get(frames_url(instance, "1"), HTTP_ACCEPT=STAR)
    _, [(content_type, data)] = related_parts(response)
    assert content_type == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    assert data == native_le(get_testdata_file("image_dfl.dcm"), 0)
