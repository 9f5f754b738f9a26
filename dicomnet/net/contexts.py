"""Presentation contexts: the storage classes and transfer syntaxes Nexrel accepts and offers.

Shared by the listener (what it accepts) and every SCU (what C-GET receives).
"""

from __future__ import annotations

from pydicom import uid

# Dental classes named here too, so a pynetdicom upgrade that drops one is noticed in tests.
DENTAL_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray, For Presentation
    "1.2.840.10008.5.1.4.1.1.1.3.1",  # Digital Intra-Oral X-Ray, For Processing
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray, For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray, For Processing
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.13.1.2",  # X-Ray 3D Craniofacial
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
]

# Every common syntax. pynetdicom picks the first of *our* list that the sender offers, so
# the order is a policy: explicit VR first (keeps vendors' private tags typed), then the
# lossless compressions (kept as the device made them), uncompressed variants, implicit VR,
# and lossy syntaxes last: never ask a sender to compress lossily what it could send intact.
_LOSSY = {
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLSNearLossless,
    uid.JPEG2000,
    uid.JPEG2000MC,
    uid.HTJ2K,
}
_COMPRESSED = uid.JPEGLSTransferSyntaxes + uid.JPEG2000TransferSyntaxes + uid.JPEGTransferSyntaxes
ALL_TRANSFER_SYNTAXES = list(
    dict.fromkeys(
        [uid.ExplicitVRLittleEndian]
        + [ts for ts in _COMPRESSED if ts not in _LOSSY]
        + uid.RLETransferSyntaxes
        + [uid.DeflatedExplicitVRLittleEndian, uid.ExplicitVRBigEndian, uid.ImplicitVRLittleEndian]
        + [ts for ts in _COMPRESSED if ts in _LOSSY]
    )
)
