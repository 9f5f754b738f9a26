"""Property tests (hypothesis) of STOW-RS on mutated bodies (issue 10 §6): the multipart
parser never raises, never leaves a temp file, and yields each part whole or with an
error (``tests.fuzzing.stow_parts``); over HTTP, a mutated body or Content-Type is a 400,
415 or a store response (200, 202, 409), never a 500, and leaves no temp file. ``make fuzz``
runs the parser under atheris, for longer (fuzz/stow.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomnet.dicomweb.tests.test_stow import tmp_files
from dicomnet.ingest.parsing import read_header
from dicomnet.models import DicomInstance
from tests.dicom_samples import intraoral, to_bytes
from tests.fuzzing import EXTREMES, STOW_BOUNDARY, mutate, stow_body, stow_parts

# pydicom warns on every odd element of a mutated file.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BODY = stow_body(to_bytes(intraoral(size=16)), to_bytes(intraoral(size=16, seed=1)))
# What a broken or hostile framing is made of.
TOKENS = [
    f"\r\n--{STOW_BOUNDARY}".encode(),
    f"\r\n--{STOW_BOUNDARY}--".encode(),
    f"--{STOW_BOUNDARY}".encode(),
    b"\r\n\r\n",
    b"\r\n",
    b"--",
    b"Content-Type: application/dicom+json\r\n",
]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("extreme"), st.floats(0, 1), st.sampled_from(EXTREMES)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(TOKENS) | st.binary(max_size=8)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("duplicate"), st.floats(0, 1), st.integers(1, 2048)),
)
CONTENT_TYPES = [
    f'multipart/related; type="application/dicom"; boundary="{STOW_BOUNDARY}"',
    f"multipart/related; type=application/dicom; boundary={STOW_BOUNDARY}",
    'multipart/related; type="application/dicom"',
    f"multipart/related; boundary={STOW_BOUNDARY}",
    f'multipart/related; type="application/dicom"; boundary="{STOW_BOUNDARY}x"',
    "application/dicom",
]


@pytest.fixture(scope="module")
def parser_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stow-fuzz")


@settings(max_examples=300, deadline=None)
@given(mutations=st.lists(mutation, max_size=5), chunk=st.integers(1, 4096))
def test_the_parser_never_raises_nor_leaves_a_file(parser_dir, mutations, chunk):
    stow_parts(mutate(BODY, mutations), chunk=chunk, tmp_dir=parser_dir)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(mutation, max_size=4), content_type=st.sampled_from(CONTENT_TYPES))
def test_a_mutated_body_is_never_a_500(clinician_client, practice, mutations, content_type):
    body = mutate(BODY, mutations)
    response = clinician_client.generic(
        "POST", "/dicomweb/studies", body, content_type=content_type
    )
    assert response.status_code in (200, 202, 400, 409, 415), (mutations, response.content)
    assert tmp_files() == []
    for path in DicomInstance.objects.values_list("spool_path", flat=True):
        assert read_header(path).SOPInstanceUID  # what was stored is a whole object
