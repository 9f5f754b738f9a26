"""Synthetic dental radiographs for the demo: 12-bit MONOCHROME2 pixels (radiopaque is
bright) that read as bitewings, periapicals and a panoramic, each drawn in well under a
second. Nothing here knows DICOM or the database (``nexrel.demo_images`` does).

``teeth`` draws teeth and bone as an X-ray sees them; ``intraoral`` and ``panoramic`` lay
out the images. A patient's ``Mouth`` (missing teeth, restorations) is drawn the same in
every image, so one patient's images agree.
"""

from nexrel.radiographs.intraoral import MM_PER_PIXEL as INTRAORAL_MM_PER_PIXEL
from nexrel.radiographs.intraoral import bitewing, bitewing_teeth, periapical
from nexrel.radiographs.panoramic import PANORAMIC_MM_PER_PIXEL, panoramic
from nexrel.radiographs.teeth import Mouth, window

__all__ = [
    "INTRAORAL_MM_PER_PIXEL",
    "PANORAMIC_MM_PER_PIXEL",
    "Mouth",
    "bitewing",
    "bitewing_teeth",
    "panoramic",
    "periapical",
    "window",
]
