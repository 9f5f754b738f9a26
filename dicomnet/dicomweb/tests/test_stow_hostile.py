"""STOW-RS bodies whose multipart framing is broken (issue 10 §6): 400 with a message that
says where, logged, nothing of the broken part kept (no row, no spool file, no temp file),
the parts before it stored and listed. And a deflate bomb in a part: refused (0xC000) in
bounded memory, as by C-STORE."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import pytest

from dicomnet.dicomweb.tests.test_stow import (
    BOUNDARY,
    CONTENT_TYPE,
    answer,
    body_of,
    post,
    tmp_files,
    uids,
)
from dicomnet.dimse import status
from dicomnet.models import DicomInstance
from tests.dicom_samples import dicom_bytes, intraoral, to_bytes
from tests.integration import hostile

PART_HEADERS = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()


@pytest.fixture
def good() -> bytes:
    return dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")


def stored_rows() -> list[str]:
    return list(DicomInstance.objects.values_list("sop_instance_uid", flat=True))


def spool_files(data: Path) -> list[Path]:
    """The objects in the spool (not its temp area)."""
    spool = data / "spool"
    return [p for p in spool.rglob("*") if p.is_file() and p.relative_to(spool).parts[0] != "tmp"]


def broken_bodies(good: bytes) -> dict[str, tuple[bytes, str]]:
    """name: (body, what the 400 says), each with one good part before the broken one."""
    first = PART_HEADERS + good + b"\r\n"
    small = to_bytes(intraoral(size=8))  # a whole object, under the 16 KiB of headers
    closing = f"\r\n--{BOUNDARY}--\r\n".encode()
    return {
        "no closing delimiter": (
            first + PART_HEADERS + good + b"\r\n",  # every byte of the part, then nothing
            "the body ends inside part 2 (no closing delimiter)",
        ),
        "a part cut short": (
            first + PART_HEADERS + good[: len(good) // 2],
            "the body ends inside part 2 (no closing delimiter)",
        ),
        "a part cut inside its headers": (
            first + PART_HEADERS[:30],
            "the body ends inside part 2 (no closing delimiter)",
        ),
        # No blank line after the (absent) headers: read on, the next part's headers would
        # end them, and the next part's content would pass for this one's.
        "a part with no headers' end": (
            first + f"--{BOUNDARY}\r\n".encode() + small + b"\r\n" + PART_HEADERS + small + closing,
            "part 2 has no blank line between its headers and its content",
        ),
        "headers longer than 16 KiB": (
            first + f"--{BOUNDARY}\r\nX-Padding: {'x' * 20_000}\r\n\r\n".encode() + good + closing,
            "the headers of part 2 are too long",
        ),
    }


CASES = ["no closing delimiter", "a part cut short", "a part cut inside its headers",
         "a part with no headers' end", "headers longer than 16 KiB"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_broken_body_is_400_and_keeps_only_the_whole_parts_before(
    clinician_client, practice, good, isolated_data, caplog, case
):
    body, says = broken_bodies(good)[case]
    with caplog.at_level(logging.INFO, logger="dicomnet.dicomweb"):
        response = post(clinician_client, body)
    assert response.status_code == 400, response.content
    refusal = response.json()
    assert says in refusal["detail"]
    assert refusal["detail"].startswith("the multipart body is malformed: ")
    first = uids(good)[2]
    assert refusal["stored"] == [first]  # the part before: stored, durable, listed
    assert stored_rows() == [first]
    assert [p.read_bytes() for p in spool_files(isolated_data)] == [good]
    assert tmp_files() == []
    assert (
        f"STOW-RS body refused after 1 stored part(s): the multipart body is malformed: {says}"
        in caplog.text
    )


def test_a_broken_first_part_stores_nothing(clinician_client, practice, good):
    body = f"--{BOUNDARY}\r\n".encode() + good + f"\r\n--{BOUNDARY}--\r\n".encode()
    response = post(clinician_client, body)
    assert response.status_code == 400, response.content
    assert "part 1 has no blank line" in response.json()["detail"]
    assert response.json()["stored"] == []
    assert not DicomInstance.objects.exists()
    assert tmp_files() == []


def test_an_empty_header_block_is_not_broken(clinician_client, practice, good):
    """RFC 2046: a part may have no header field at all, if the blank line is there."""
    body = f"--{BOUNDARY}\r\n\r\n".encode() + good + f"\r\n--{BOUNDARY}--\r\n".encode()
    response = post(clinician_client, body)
    assert response.status_code == 200, response.content
    assert stored_rows() == [uids(good)[2]]


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/dicom"; boundary=""',
        f'multipart/related; type="application/dicom"; boundary={"b" * 71}',
    ],
    ids=["no boundary", "empty boundary", "boundary over 70 characters"],
)
def test_a_content_type_without_a_boundary_is_400(clinician_client, practice, good, content_type):
    response = clinician_client.generic(
        "POST", "/dicomweb/studies", body_of(good), content_type=content_type
    )
    assert response.status_code == 400, response.content
    assert "has no boundary parameter" in response.json()["detail"]
    assert not DicomInstance.objects.exists()
    assert tmp_files() == []


def test_the_boundary_not_in_the_body_is_400(clinician_client, practice, good):
    response = post(clinician_client, body_of(good, boundary="another-boundary"))
    assert response.status_code == 400
    assert response.json()["detail"] == "the body holds no part"
    assert CONTENT_TYPE.endswith(f'boundary="{BOUNDARY}"')
    assert not DicomInstance.objects.exists()


def test_a_deflate_bomb_part_is_refused_without_inflating_it(
    clinician_client, practice, good, tmp_path, caplog
):
    bomb = hostile.deflate_bomb(tmp_path / "bomb.dcm").read_bytes()  # 2 GiB inflated
    tracemalloc.start()
    try:
        with caplog.at_level(logging.INFO, logger="dicomnet.dicomweb"):
            response = post(clinician_client, body_of(bomb, good))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 202, response.content
    [failed] = answer(response).FailedSOPSequence
    assert failed.FailureReason == status.CANNOT_UNDERSTAND
    assert [r.ReferencedSOPInstanceUID for r in answer(response).ReferencedSOPSequence] == [
        uids(good)[2]
    ]
    assert peak < 300 * 1024**2, f"{peak >> 20} MB held"
    assert "NEXREL_MAX_INFLATED_BYTES" in caplog.text
    assert tmp_files() == []
