"""Intra-oral series with tooth codes, for the mount tests (unit, integration, browser);
``radiograph`` gives one the demo's drawing of its teeth, for a browser test a dentist reads."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet.dental.seed import TEMPLATES
from dicomnet.dental.teeth import TOOTH_CODES
from nexrel import radiographs
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


def teeth_of(ds: Dataset) -> list[str]:
    """The FDI numbers ``tooth_item`` wrote in the image's Primary Anatomic Structure Sequence."""
    return [item.CodeMeaning.split()[-1] for item in ds.PrimaryAnatomicStructureSequence]


def radiograph(ds: Dataset, mouth: radiographs.Mouth, *, seed: int) -> Dataset:
    """``ds`` with pixels drawn of its teeth (nexrel.radiographs): a bitewing when they span
    both jaws, else a periapical; windowed over what was exposed."""
    teeth = teeth_of(ds)
    if len({t[0] in "12" for t in teeth}) == 2:
        region = "molar" if any(t[1] in "678" for t in teeth) else "premolar"
        side = "right" if teeth[0][0] == "1" else "left"
        pixels = radiographs.bitewing(region, side, mouth, seed=seed)
    else:
        pixels = radiographs.periapical(teeth, mouth, seed=seed)
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds.ImagerPixelSpacing = [radiographs.INTRAORAL_MM_PER_PIXEL] * 2
    ds.WindowCenter, ds.WindowWidth = radiographs.window(pixels)
    return ds


def fmx_appointment(practice, patient, **fields):
    """``patient``'s FMX appointment (procedure 02101, imaging) starting this hour: its
    worklist item, and its FMX mount waiting for the images."""
    import datetime as dt

    from django.utils import timezone

    from patients.models import Appointment

    start = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    return Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=45),
        procedure_code="02101",
        procedure_description="FMX",
        needs_imaging=True,
        **fields,
    )
