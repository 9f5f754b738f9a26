"""Every tooth code of CID 4018 and 4019, SCT and SRT, to FDI and to Universal."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sr._snomed_dict import mapping
from pydicom.sr.codedict import codes

from dicomnet.dental.attributes import dental_attributes
from dicomnet.dental.teeth import (
    DECIDUOUS,
    PERMANENT,
    TOOTH_CODES,
    UNIVERSAL,
    display,
    fdi_for_code,
    universal,
)

# FDI → Universal, written out by hand from ISO 3950 and the ADA's Universal chart.
UNIVERSAL_OF = {
    **{f"1{p}": str(9 - p) for p in range(1, 9)},  # 18 → 1 … 11 → 8
    **{f"2{p}": str(8 + p) for p in range(1, 9)},  # 21 → 9 … 28 → 16
    **{f"3{p}": str(25 - p) for p in range(1, 9)},  # 38 → 17 … 31 → 24
    **{f"4{p}": str(24 + p) for p in range(1, 9)},  # 41 → 25 … 48 → 32
    **dict(
        zip(["55", "54", "53", "52", "51", "61", "62", "63", "64", "65"], "ABCDEFGHIJ", strict=True)
    ),
    **dict(
        zip(["75", "74", "73", "72", "71", "81", "82", "83", "84", "85"], "KLMNOPQRST", strict=True)
    ),
}

# Each CID 4018/4019 concept by its name, and its tooth (hand-written from the meanings).
CID_TEETH = {
    "PermanentMaxillaryRightThirdMolarTooth": "18",
    "PermanentMaxillaryRightSecondMolarTooth": "17",
    "PermanentMaxillaryRightFirstMolarTooth": "16",
    "PermanentMaxillaryRightSecondPremolarTooth": "15",
    "PermanentMaxillaryRightFirstPremolarTooth": "14",
    "PermanentMaxillaryRightCanineTooth": "13",
    "PermanentMaxillaryRightLateralIncisorTooth": "12",
    "PermanentMaxillaryRightCentralIncisorTooth": "11",
    "PermanentMaxillaryLeftCentralIncisorTooth": "21",
    "PermanentMaxillaryLeftLateralIncisorTooth": "22",
    "PermanentMaxillaryLeftCanineTooth": "23",
    "PermanentMaxillaryLeftFirstPremolarTooth": "24",
    "PermanentMaxillaryLeftSecondPremolarTooth": "25",
    "PermanentMaxillaryLeftFirstMolarTooth": "26",
    "PermanentMaxillaryLeftSecondMolarTooth": "27",
    "PermanentMaxillaryLeftThirdMolarTooth": "28",
    "MandibularLeftThirdMolarTooth": "38",
    "MandibularLeftSecondMolarTooth": "37",
    "MandibularLeftFirstMolarTooth": "36",
    "MandibularLeftSecondPremolarTooth": "35",
    "MandibularLeftFirstPremolarTooth": "34",
    "MandibularLeftCanineTooth": "33",
    "MandibularLeftLateralTooth": "32",
    "MandibularLeftCentralIncisorTooth": "31",
    "MandibularRightCentralIncisorTooth": "41",
    "MandibularRightLateralIncisorTooth": "42",
    "MandibularRightCanineTooth": "43",
    "MandibularRightFirstPremolarTooth": "44",
    "MandibularRightSecondPremolarTooth": "45",
    "MandibularRightFirstMolarTooth": "46",
    "MandibularRightSecondMolarTooth": "47",
    "MandibularRightThirdMolarTooth": "48",
    "DeciduousMaxillaryRightSecondMolarTooth": "55",
    "DeciduousMaxillaryRightFirstMolarTooth": "54",
    "DeciduousMaxillaryRightCanineTooth": "53",
    "DeciduousMaxillaryRightLateralIncisorTooth": "52",
    "DeciduousMaxillaryRightCentralIncisorTooth": "51",
    "DeciduousMaxillaryLeftCentralIncisorTooth": "61",
    "DeciduousMaxillaryLeftLateralIncisorTooth": "62",
    "DeciduousMaxillaryLeftCanineTooth": "63",
    "DeciduousMaxillaryLeftFirstMolarTooth": "64",
    "DeciduousMaxillaryLeftSecondMolarTooth": "65",
    "DeciduousMandibularLeftSecondMolarTooth": "75",
    "DeciduousMandibularLeftFirstMolarTooth": "74",
    "DeciduousMandibularLeftCanineTooth": "73",
    "DeciduousMandibularLeftLateralIncisorTooth": "72",
    "DeciduousMandibularLeftCentralIncisorTooth": "71",
    "DeciduousMandibularRightCentralIncisorTooth": "81",
    "DeciduousMandibularRightLateralIncisorTooth": "82",
    "DeciduousMandibularRightCanineTooth": "83",
    "DeciduousMandibularRightFirstMolarTooth": "84",
    "DeciduousMandibularRightSecondMolarTooth": "85",
}

# SNOMED RT: T-54210 is 18, then ten apart around the permanent arch; T-54610 is 51.
SRT_TEETH = {
    "T-54210": "18", "T-54220": "17", "T-54230": "16", "T-54240": "15", "T-54250": "14",
    "T-54260": "13", "T-54270": "12", "T-54280": "11", "T-54290": "21", "T-54300": "22",
    "T-54310": "23", "T-54320": "24", "T-54330": "25", "T-54340": "26", "T-54350": "27",
    "T-54360": "28", "T-54370": "38", "T-54380": "37", "T-54390": "36", "T-54400": "35",
    "T-54410": "34", "T-54420": "33", "T-54430": "32", "T-54440": "31", "T-54450": "41",
    "T-54460": "42", "T-54470": "43", "T-54480": "44", "T-54490": "45", "T-54500": "46",
    "T-54510": "47", "T-54520": "48",
    "T-54610": "51", "T-54620": "52", "T-54630": "53", "T-54640": "54", "T-54650": "55",
    "T-54660": "61", "T-54670": "62", "T-54680": "63", "T-54690": "64", "T-54700": "65",
    "T-54710": "81", "T-54720": "82", "T-54730": "83", "T-54740": "84", "T-54750": "85",
    "T-54760": "71", "T-54770": "72", "T-54780": "73", "T-54790": "74", "T-54800": "75",
}  # fmt: skip


def _cid_codes():
    for cid in (codes.cid4018, codes.cid4019):
        for name in cid.dir():
            yield name, getattr(cid, name)


def test_the_tables_cover_every_cid_concept():
    assert {name for name, _ in _cid_codes()} == set(CID_TEETH)
    assert sorted(CID_TEETH.values()) == sorted(PERMANENT + DECIDUOUS)


@pytest.mark.parametrize(("name", "code"), list(_cid_codes()), ids=lambda v: str(v)[:40])
def test_every_sct_code_maps_to_its_fdi_and_universal_number(name, code):
    assert code.scheme_designator == "SCT"
    fdi = fdi_for_code("SCT", code.value)
    assert fdi == CID_TEETH[name]
    assert universal(fdi) == UNIVERSAL_OF[fdi]
    assert display(fdi, UNIVERSAL) == UNIVERSAL_OF[fdi] and display(fdi) == fdi


@pytest.mark.parametrize(("value", "fdi"), SRT_TEETH.items())
def test_every_legacy_srt_code_maps_to_its_fdi_and_universal_number(value, fdi):
    assert fdi_for_code("SRT", value) == fdi
    assert fdi_for_code("SNM3", value) == fdi  # SNOMED RT's older designator
    assert universal(fdi_for_code("SRT", value)) == UNIVERSAL_OF[fdi]


def test_the_srt_ids_of_the_current_concepts_and_the_older_sct_ids_map_too():
    """SNOMED's SCT ↔ SRT table: T-54282 is the current concept of 11, 7121006 the SCT id
    that T-54220 (17) had."""
    assert fdi_for_code("SRT", "T-54282") == "11"
    assert fdi_for_code("SCT", "7121006") == "17"
    for (scheme, value), fdi in TOOTH_CODES.items():
        other = mapping["SCT"].get(value) if scheme == "SCT" else None
        if other and ("SRT", other) in TOOTH_CODES:
            assert TOOTH_CODES[("SRT", other)] == fdi, (value, other)


def test_what_is_not_a_tooth_maps_to_nothing():
    assert fdi_for_code("SRT", "T-54000") is None  # teeth, gums and supporting structures
    assert fdi_for_code("SCT", "91609006") is None  # mandible
    assert fdi_for_code("99SDM", "T-54210") is None
    with pytest.raises(ValueError):
        universal("19")


def _code(value, scheme, meaning=""):
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def test_dental_attributes_reads_teeth_region_and_fidelity():
    ds = Dataset()
    ds.PrimaryAnatomicStructureSequence = [
        _code("T-54210", "SRT"),
        _code("865995000", "SCT"),  # 16
        _code("68085002", "SCT"),  # 18 again, as SCT: one tooth
        _code("T-54000", "SRT", "Teeth, gums and supporting structures"),
    ]
    region = _code("70925003", "SCT", "Maxilla")
    region.AnatomicRegionModifierSequence = [_code("T-5100A", "SRT", "old code")]
    ds.AnatomicRegionSequence = [region]
    ds.ImageLaterality = "R"
    ds.PositionerType = "NONE"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [10.5]
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelSpacing = [0.019, 0.019]
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    got = dental_attributes(ds)
    assert got["teeth"] == ["18", "16"]
    assert len(got["structures"]) == 4
    assert got["regions"][0]["region"] == "Maxilla"
    assert got["region_modifiers"][0]["region"] == "First molar region"  # deprecated T-5100A
    assert (got["laterality"], got["positioner_type"], got["lossy"]) == ("R", "NONE", "01")
    assert (got["lossy_ratio"], got["lossy_method"]) == ([10.5], "ISO_10918_1")
    assert (got["burned_in_annotation"], got["presentation_intent"]) == ("NO", "FOR PRESENTATION")
    assert got["pixel_spacing"] == [0.019, 0.019]
    assert got["pixel_spacing_calibration_type"] == "GEOMETRY"
    assert dental_attributes(Dataset()) == {}
