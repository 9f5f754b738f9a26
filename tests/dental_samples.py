"""Intra-oral series with tooth codes, for the mount tests (unit, integration, browser)."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet.dental.seed import TEMPLATES
from dicomnet.dental.teeth import TOOTH_CODES
from tests import dicom_samples

_BY_FDI: dict[tuple[str, str], tuple[str, str]] = {}
for (scheme, value), fdi in TOOTH_CODES.items():
    _BY_FDI.setdefault((scheme, fdi), (value, scheme))


def tooth_item(fdi: str, scheme: str = "SCT") -> Dataset:
    value, _ = _BY_FDI[(scheme, fdi)]
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = f"tooth {fdi}"
    return item


def fmx_teeth(key: str = "fmx-18") -> list[list[str]]:
    """The teeth of each slot of a seeded template, in its order."""
    spec = next(t for t in TEMPLATES if t["key"] == key)
    return [slot["teeth"] for slot in spec["slots"]]


# The order the images are sent in: not the template's, so placing by teeth is what puts
# each one in its slot (bitewings first, then lower left to upper right).
SEND_ORDER = [8, 9, 10, 11, 18, 17, 16, 15, 14, 13, 12, 7, 6, 5, 4, 3, 2, 1]


def fmx_series(*, study_uid: str | None = None, **patient) -> list[Dataset]:
    """An FMX 18 as a sensor sends it: one series, each image with its teeth, SCT and SRT
    codes alternating; returned in SEND_ORDER (slot numbers) with acquisition times and
    instance numbers in that order."""
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    teeth = fmx_teeth()
    images = []
    for n, position in enumerate(SEND_ORDER, start=1):
        ds = dicom_samples.intraoral(
            study_uid=study_uid,
            series_uid=series_uid,
            instance_number=n,
            seed=position,
            **patient,
        )
        ds.AcquisitionDateTime = f"2024010210{n:02d}00"
        scheme = "SCT" if position % 2 else "SRT"
        ds.PrimaryAnatomicStructureSequence = [tooth_item(t, scheme) for t in teeth[position - 1]]
        ds.ImageLaterality = "U"
        ds.PositionerType = "NONE"
        ds.LossyImageCompression = "00"
        ds.BurnedInAnnotation = "NO"
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImagerPixelSpacing = [0.02, 0.02]
        images.append(ds)
    return images
