"""dicomnet.ingest.analysis: the exposure check on synthetic images, and the configurable hook."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet.ingest.analysis import exposure_check, run_analyzers
from dicomnet.ingest.parsing import read_header
from dicomnet.ingest.previews import render_preview
from dicomnet.models import DicomInstance

rng = np.random.default_rng(11)


def check(display: np.ndarray) -> dict:
    return exposure_check(DicomInstance(), display)


def test_uniform_image_is_blank() -> None:
    for level in (0, 128, 255):
        result = check(np.full((64, 64), level, dtype=np.uint8))
        assert result["verdict"] == "blank", level
        assert "uniform" in result["findings"][0]
        assert result["std"] == 0


def test_almost_uniform_noise_is_still_blank() -> None:
    display = (128 + rng.integers(-1, 2, size=(64, 64))).astype(np.uint8)
    assert check(display)["verdict"] == "blank"


def test_burned_out_image_is_over_exposed() -> None:
    display = np.zeros((100, 100), dtype=np.uint8)
    display[:, 70:] = np.linspace(20, 255, 30, dtype=np.uint8)  # 70 % at black
    result = check(display)
    assert result["verdict"] == "over_exposed"
    assert result["dark_fraction"] == 0.7
    assert result["findings"] == ["70% of pixels are near black"]


def test_pale_low_contrast_image_is_under_exposed() -> None:
    display = rng.normal(220, 10, size=(100, 100)).clip(0, 255).astype(np.uint8)
    result = check(display)
    assert result["verdict"] == "under_exposed"
    assert "pale image" in result["findings"][0]
    assert 215 <= result["mean"] <= 225


def test_mostly_white_image_is_under_exposed() -> None:
    display = np.full((100, 100), 250, dtype=np.uint8)
    display[:, :35] = np.linspace(0, 200, 35, dtype=np.uint8)  # contrast, but 65 % white
    result = check(display)
    assert result["verdict"] == "under_exposed"
    assert result["bright_fraction"] == 0.65
    assert result["findings"] == ["65% of pixels are near white"]


@pytest.mark.parametrize("channels", [None, 3])
def test_well_exposed_image_is_ok(channels) -> None:
    ramp = np.tile(np.linspace(0, 255, 256), (64, 1))
    tooth = ramp.copy()
    tooth[20:44, 100:160] = 230  # a bright restoration on a full-range background
    display = tooth.astype(np.uint8)
    if channels:
        display = np.repeat(display[..., None], channels, axis=-1)
    result = check(display)
    assert result["verdict"] == "ok"
    assert result["findings"] == []
    assert 0 < result["dark_fraction"] < 0.1 and 0 < result["bright_fraction"] < 0.2


def test_washed_out_xray_is_flagged_after_rendering(tmp_path: Path) -> None:
    """End to end with the preview: a pale, flat exposure inside the device's window."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.3"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    pixels = rng.normal(3600, 60, size=(64, 64)).clip(0, 4095).astype(np.uint16)
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    path = tmp_path / "pale.dcm"
    ds.save_as(path, enforce_file_format=True)
    display = render_preview(path, ds=read_header(path)).display
    assert check(display)["verdict"] == "under_exposed"


# --- the hook ----------------------------------------------------------------------------


def broken_analyzer(instance: DicomInstance, display: np.ndarray) -> dict:
    raise RuntimeError(f"model weights missing for instance {instance.sop_instance_uid}")


def size_analyzer(instance: DicomInstance, display: np.ndarray) -> dict:
    return {"shape": list(display.shape), "sop": instance.sop_instance_uid}


HERE = "dicomnet.tests.test_analysis"


@pytest.fixture
def instance(practice) -> DicomInstance:
    return DicomInstance.objects.create(
        practice=practice, sop_instance_uid="1.2.3.4", sop_class_uid="1.2.3", sha256="0" * 64
    )


def test_default_configuration_runs_the_exposure_check(instance, settings) -> None:
    assert settings.NEXREL_ANALYZERS == ["dicomnet.ingest.analysis.exposure_check"]
    results = run_analyzers(instance, np.zeros((8, 8), dtype=np.uint8))
    assert results == {"exposure_check": check(np.zeros((8, 8), dtype=np.uint8))}


def test_configured_analyzers_all_run_and_a_failing_one_is_recorded(
    instance, settings, caplog
) -> None:
    settings.NEXREL_ANALYZERS = [
        f"{HERE}.broken_analyzer",
        "dicomnet.ingest.analysis.exposure_check",
        f"{HERE}.size_analyzer",
    ]
    display = np.zeros((8, 12), dtype=np.uint8)
    with caplog.at_level(logging.ERROR, logger="dicomnet.ingest.analysis"):
        results = run_analyzers(instance, display)

    assert list(results) == ["broken_analyzer", "exposure_check", "size_analyzer"]
    assert results["broken_analyzer"] == {
        "error": "RuntimeError: model weights missing for instance 1.2.3.4"
    }
    assert results["exposure_check"]["verdict"] == "blank"
    assert results["size_analyzer"] == {"shape": [8, 12], "sop": "1.2.3.4"}
    [record] = [r for r in caplog.records if r.name == "dicomnet.ingest.analysis"]
    assert "broken_analyzer failed" in record.getMessage() and record.exc_info

    # The findings are storable as they are.
    instance.analysis = results
    instance.save(update_fields=["analysis"])
    instance.refresh_from_db()
    assert instance.analysis["size_analyzer"]["shape"] == [8, 12]


def test_no_analyzers_configured_gives_no_findings(instance, settings) -> None:
    settings.NEXREL_ANALYZERS = []
    assert run_analyzers(instance, np.zeros((8, 8), dtype=np.uint8)) == {}


@pytest.mark.parametrize("modality", ["CT", "US", "NM", "MR", ""])
def test_exposure_check_skips_what_is_not_a_projection_x_ray(modality) -> None:
    from dicomnet.models import DicomSeries

    burned_out = np.zeros((64, 64), dtype=np.uint8)
    result = exposure_check(DicomInstance(series=DicomSeries(modality=modality)), burned_out)
    assert "verdict" not in result
    assert "not a projection X-ray" in result["skipped"]


@pytest.mark.parametrize("modality", ["IO", "PX", "DX", "CR", "io"])
def test_exposure_check_runs_on_projection_x_rays(modality) -> None:
    from dicomnet.models import DicomSeries

    burned_out = np.zeros((64, 64), dtype=np.uint8)
    result = exposure_check(DicomInstance(series=DicomSeries(modality=modality)), burned_out)
    assert result["verdict"] == "blank"
