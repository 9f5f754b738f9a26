"""What the listener accepts: every dental storage class, and which transfer syntax it picks."""

from __future__ import annotations

import functools

import pytest
from pydicom import uid
from pynetdicom.presentation import build_context, negotiate_as_acceptor

from dicomnet.net.listener import DENTAL_STORAGE_CLASSES, build_ae

IO_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"


@functools.cache
def listener_contexts() -> tuple:
    """The listener's presentation contexts (building its AE takes a fifth of a second)."""
    return tuple(build_ae().supported_contexts)


def accepted(proposed: list[str], abstract: str = IO_FOR_PRESENTATION) -> str | None:
    offer = build_context(abstract, proposed)
    offer.context_id = 1
    contexts, _ = negotiate_as_acceptor([offer], list(listener_contexts()))
    (result,) = contexts
    return result.transfer_syntax[0] if result.result == 0x00 else None


@pytest.mark.parametrize("abstract", DENTAL_STORAGE_CLASSES)
def test_every_dental_storage_class_is_accepted_in_every_common_syntax(abstract):
    for syntax in [
        uid.ImplicitVRLittleEndian,
        uid.ExplicitVRLittleEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.JPEGBaseline8Bit,
        uid.JPEGLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
        uid.RLELossless,
    ]:
        assert accepted([syntax], abstract) == syntax, (abstract, syntax.name)


@pytest.mark.parametrize(
    ("proposed", "chosen"),
    [
        # Explicit VR over implicit: vendors' private tags keep their VR.
        ([uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian], uid.ExplicitVRLittleEndian),
        # A lossless compression is kept as the device made it, not re-encoded by the sender.
        ([uid.ImplicitVRLittleEndian, uid.JPEG2000Lossless], uid.JPEG2000Lossless),
        ([uid.RLELossless, uid.ImplicitVRLittleEndian], uid.RLELossless),
        # Never ask for a lossy compression when the sender can send the pixels intact.
        ([uid.JPEGBaseline8Bit, uid.ImplicitVRLittleEndian], uid.ImplicitVRLittleEndian),
        ([uid.JPEG2000, uid.ExplicitVRLittleEndian], uid.ExplicitVRLittleEndian),
        # An object that only exists lossy is still taken.
        ([uid.JPEGBaseline8Bit], uid.JPEGBaseline8Bit),
    ],
    ids=["explicit", "j2k-lossless", "rle", "no-lossy-baseline", "no-lossy-j2k", "lossy-only"],
)
def test_transfer_syntax_choice(proposed, chosen):
    assert accepted(proposed) == chosen
