"""Image analysis hook: callables run on each new instance, findings stored on it.

Each analyzer named in ``settings.NEXREL_ANALYZERS`` is called as
``analyzer(instance, display)`` with the 8-bit display image and returns a JSON-able dict
stored under its name in ``DicomInstance.analysis``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string

from dicomnet.models import DicomInstance

log = logging.getLogger("dicomnet.ingest.analysis")

Analyzer = Callable[[DicomInstance, np.ndarray], dict]

# Projection radiography: intra-oral, panoramic, digital and computed radiography. A CT
# slice, an ultrasound or a nuclear medicine image has other histograms, and "over-exposed"
# means nothing for them.
PROJECTION_MODALITIES = frozenset({"IO", "PX", "DX", "CR"})


def exposure_check(instance: DicomInstance, display: np.ndarray) -> dict:
    """Flag blank, over-exposed (burned out, dark) or under-exposed (washed out) images.

    Works on the displayed histogram: radiopaque is bright, so over-exposure piles
    pixels at black and under-exposure leaves a pale, low-contrast image. Only projection
    X-rays (``PROJECTION_MODALITIES``, by the series' Modality) are checked; the others
    get ``{"skipped": ...}`` and no verdict.
    """
    series = instance.series  # None when called outside the pipeline, on a bare instance
    if series is not None:
        modality = (series.modality or "").strip().upper()
        if modality not in PROJECTION_MODALITIES:
            return {"skipped": f"modality {modality or '(none)'} is not a projection X-ray"}
    grey: np.ndarray = display if display.ndim == 2 else display[..., :3].mean(axis=-1)
    # Everything from the 256-bin histogram: one pass over the pixels, not four.
    if grey.dtype != np.uint8:
        grey = np.clip(grey, 0, 255).astype(np.uint8)
    hist = np.bincount(grey.ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64)
    total = float(hist.sum()) or 1.0
    mean = float(hist @ levels) / total
    std = float(np.sqrt(max(float(hist @ levels**2) / total - mean**2, 0.0)))
    dark = float(hist[:16].sum()) / total
    bright = float(hist[240:].sum()) / total
    findings: list[str] = []
    if std < 2.0:
        verdict = "blank"
        findings.append("no usable contrast: the image is uniform")
    elif dark > 0.6:
        verdict = "over_exposed"
        findings.append(f"{dark:.0%} of pixels are near black")
    elif mean > 200 and std < 30:
        verdict = "under_exposed"
        findings.append(f"pale image (mean {mean:.0f}) with low contrast (sd {std:.0f})")
    elif bright > 0.6:
        verdict = "under_exposed"
        findings.append(f"{bright:.0%} of pixels are near white")
    else:
        verdict = "ok"
    return {
        "verdict": verdict,
        "findings": findings,
        "mean": round(mean, 1),
        "std": round(std, 1),
        "dark_fraction": round(dark, 3),
        "bright_fraction": round(bright, 3),
    }


def analyzers() -> list[tuple[str, Analyzer]]:
    return [(path.rsplit(".", 1)[-1], import_string(path)) for path in settings.NEXREL_ANALYZERS]


def run_analyzers(instance: DicomInstance, display: np.ndarray) -> dict:
    results: dict = {}
    for name, analyzer in analyzers():
        try:
            results[name] = analyzer(instance, display)
        except Exception as exc:  # one broken analyzer must not stop the pipeline
            log.exception("analyzer %s failed on instance %s", name, instance.pk)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results
