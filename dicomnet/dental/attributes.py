"""What an intra-oral or panoramic image says about itself: its teeth, region, view and
pixel fidelity. ``dental_attributes`` reads it from the header into the plain dict kept on
``DicomInstance.dental``; nothing here touches the database.

Read: Primary Anatomic Structure Sequence (0008,2228) with its teeth (CID 4018/4019, SCT
or SRT), Anatomic Region Sequence (0008,2218) and its modifier (0008,2220) (CID 4016/4017,
the deprecated SRT T-51005…T-5100C included), Image Laterality, Positioner Type, Lossy
Image Compression (0028,2110) with its ratio and method, Burned In Annotation, Presentation
Intent Type, and the calibration attributes (Pixel Spacing, Imager Pixel Spacing, Nominal
Scanned Pixel Spacing, Estimated Radiographic Magnification Factor, Pixel Spacing
Calibration Type and Description).
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes

from dicomnet.dental.teeth import fdi_for_code

# CID 4017 as first published: eight SRT codes later withdrawn because SNOMED had given them
# to other concepts (PS3.16 keeps them for received objects). Each names the region its
# replacement names, in the same order.
DEPRECATED_REGION_MODIFIERS = {
    "T-51005": "Central incisor region",
    "T-51006": "Lateral incisor region",
    "T-51007": "Canine region",
    "T-51008": "First premolar region",
    "T-51009": "Second premolar region",
    "T-5100A": "First molar region",
    "T-5100B": "Second molar region",
    "T-5100C": "Third molar region",
}


def _region_meanings() -> dict[tuple[str, str], str]:
    from pydicom.sr._snomed_dict import mapping

    table = {("SRT", code): meaning for code, meaning in DEPRECATED_REGION_MODIFIERS.items()}
    for cid in (codes.cid4016, codes.cid4017):
        for name in cid.dir():
            code = getattr(cid, name)
            table[("SCT", code.value)] = code.meaning
            srt = mapping["SCT"].get(code.value)
            if srt:
                table[("SRT", srt)] = code.meaning
    # The SRT ids of CID 4016 and 4017 as PS3.16 lists them, where SNOMED's table has none.
    table.update(
        {
            ("SRT", "T-11170"): "Maxilla",
            ("SRT", "T-11180"): "Mandible",
            ("SRT", "T-D1213"): "Jaw region",
            ("SRT", "R-FB322"): "Central incisor region",
            ("SRT", "R-FB35C"): "Lateral incisor region",
            ("SRT", "R-FB35B"): "Canine region",
        }
    )
    return table


REGION_MEANINGS = _region_meanings()


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get``, or ``default`` for an element pydicom can't decode (a VR no edition
    defines, a value that doesn't fit its VR): the object is stored; one such element must
    not stop its processing."""
    try:
        return ds.get(keyword, default)
    except Exception:
        return default


def _code(item: Dataset) -> dict[str, str]:
    scheme = str(_get(item, "CodingSchemeDesignator", "") or "").strip()
    value = str(_get(item, "CodeValue", "") or _get(item, "LongCodeValue", "") or "").strip()
    meaning = str(_get(item, "CodeMeaning", "") or "").strip()
    return {"scheme": scheme, "value": value, "meaning": meaning}


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        return [item for item in _get(ds, keyword) or [] if isinstance(item, Dataset)]
    except TypeError:
        return []


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _numbers(value: Any) -> list[float] | None:
    if value in (None, ""):
        return None
    try:
        return [float(v) for v in (value if isinstance(value, list | tuple) else list(value))]
    except (TypeError, ValueError):
        try:
            return [float(value)]
        except (TypeError, ValueError):
            return None


def _text(ds: Dataset, keyword: str) -> str:
    value = _get(ds, keyword, "")
    if value is None or isinstance(value, Sequence | Dataset):
        return ""  # a sequence where text belongs: str() would decode every item
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def dental_attributes(ds: Dataset) -> dict[str, Any]:
    """The dental attributes of one header (see the module docstring); empty values left out.

    ``teeth`` lists the FDI numbers of the structures that are teeth, in the sequence's order
    and without repeats; ``structures`` keeps every code as sent.
    """
    structures = [_code(item) for item in _items(ds, "PrimaryAnatomicStructureSequence")]
    teeth: list[str] = []
    for code in structures:
        fdi = fdi_for_code(code["scheme"], code["value"])
        if fdi:
            code["fdi"] = fdi
            if fdi not in teeth:
                teeth.append(fdi)
    regions, modifiers = [], []
    for item in _items(ds, "AnatomicRegionSequence"):
        region = _code(item)
        known = REGION_MEANINGS.get((region["scheme"], region["value"]))
        if known:
            region["region"] = known
        regions.append(region)
        for modifier_item in _items(item, "AnatomicRegionModifierSequence"):
            modifier = _code(modifier_item)
            known = REGION_MEANINGS.get((modifier["scheme"], modifier["value"]))
            if known:
                modifier["region"] = known
            modifiers.append(modifier)
    result: dict[str, Any] = {
        "teeth": teeth,
        "structures": structures,
        "regions": regions,
        "region_modifiers": modifiers,
        "laterality": _text(ds, "ImageLaterality"),
        "positioner_type": _text(ds, "PositionerType"),
        "lossy": _text(ds, "LossyImageCompression"),
        "lossy_ratio": _numbers(_get(ds, "LossyImageCompressionRatio")),
        "lossy_method": _text(ds, "LossyImageCompressionMethod"),
        "burned_in_annotation": _text(ds, "BurnedInAnnotation"),
        "presentation_intent": _text(ds, "PresentationIntentType"),
        "pixel_spacing": _numbers(_get(ds, "PixelSpacing")),
        "imager_pixel_spacing": _numbers(_get(ds, "ImagerPixelSpacing")),
        "nominal_scanned_pixel_spacing": _numbers(_get(ds, "NominalScannedPixelSpacing")),
        "magnification": _number(_get(ds, "EstimatedRadiographicMagnificationFactor")),
        "pixel_spacing_calibration_type": _text(ds, "PixelSpacingCalibrationType"),
        "pixel_spacing_calibration": _text(ds, "PixelSpacingCalibrationDescription"),
        "acquired": _text(ds, "AcquisitionDateTime")
        or (_text(ds, "AcquisitionDate") + _text(ds, "AcquisitionTime"))
        or (_text(ds, "ContentDate") + _text(ds, "ContentTime")),
    }
    return {k: v for k, v in result.items() if v not in ("", None, [])}
