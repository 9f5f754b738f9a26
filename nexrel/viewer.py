"""The diagnostic viewer's page (docs/viewer.md): /viewer/studies/<StudyInstanceUID>/. It
composes the patient (patients) and the study's images (dicomnet.viewer); the pixels come
from DICOMweb and the drawing from static/viewer/, so this view only describes the study."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _

from dicomnet.dental.selectors import mount_positions
from dicomnet.dental.teeth import display_all
from dicomnet.models import DicomInstance, DicomStudy
from dicomnet.viewer.selectors import (
    CompareError,
    ViewerSeries,
    compared_instances,
    viewer_series,
    viewer_study,
)
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.names import split_person_name
from patients.services import audit


def _series_json(entry: ViewerSeries) -> dict[str, Any]:
    series = entry.series
    return {
        "uid": series.series_instance_uid,
        "number": series.series_number,
        "modality": series.modality,
        "description": series.series_description,
        "volume": entry.is_volume,
        "instances": [
            {
                "uid": i.sop_instance_uid,
                "number": i.instance_number,
                "frames": i.frames,
                "thumb": reverse("instance_image", args=[i.pk, "thumbnail"])
                if i.thumbnail_key
                else "",
                "preview": reverse("instance_image", args=[i.pk, "preview"])
                if i.preview_key
                else "",
            }  # fmt: skip
            for i in entry.instances
        ],
    }


def _strings() -> dict[str, str]:
    """The words the script shows itself (the buttons are in the template)."""
    return {
        "loading": _("Loading the full-resolution image…"),
        "failed": _("The image could not be decoded: %(error)s"),
        "calibration": _("Calibration"),
        "uncalibrated": _("uncalibrated"),
        "user_calibration": _("manual (%(mm)s mm/px)"),
        "detector": _("detector plane (Imager Pixel Spacing)"),
        "pixel_spacing": _("Pixel Spacing"),
        "note_prompt": _("Text of the note"),
        "calibrate_prompt": _("Known length of the line you drew, in mm"),
        "calibrate_first": _("Draw a line over an object of known length first."),
        "calibrate_bad": _("Enter a length in mm greater than zero."),
        "save_failed": _("The annotation could not be saved: %(error)s"),
        "slice": _("Image"),
        "play": _("Play"),
        "pause": _("Pause"),
        "mpr_unavailable": _("MPR needs a CT or CBCT series of several slices."),
        "preset_default": _("File"),
        "preset_bone": _("Bone"),
        "preset_soft": _("Soft tissue"),
        "preset_endo": _("Endo"),
        "preset_perio": _("Perio"),
        "axial": _("Axial"),
        "coronal": _("Coronal"),
        "sagittal": _("Sagittal"),
    }


def _header(study: DicomStudy) -> dict[str, Any]:
    """What the page's header says about the study: who (the linked patient and chart, else
    the DICOM Patient Name marked as not linked), and the date, modality and description
    that are known (the template joins them, so none leaves a dangling separator)."""
    if study.patient:
        who = {"name": study.patient.full_name, "chart": study.patient.chart_number}
    else:
        family, given = split_person_name(study.patient_name)
        who = {"name": " ".join(n for n in (given, family) if n), "chart": ""}
    details = [d for d in (study.modality.replace("\\", ", "), study.study_description) if d]
    return {"patient": who, "linked": study.patient is not None, "details": details}


def _opened(
    series: list[ViewerSeries], series_uid: str, instance_uid: str
) -> tuple[ViewerSeries, DicomInstance] | None:
    """The series and image to open: those the query names, else the study's first."""
    for entry in series:
        for instance in entry.instances:
            if instance.sop_instance_uid == instance_uid or (
                not instance_uid and entry.series.series_instance_uid == series_uid
            ):
                return entry, instance
    if series:
        return series[0], series[0].instances[0]
    return None


@role_required(roles.VIEW_IMAGES, roles.USE_VIEWER)
def study_viewer(request: PracticeRequest, study_uid: str) -> HttpResponse:
    try:
        study = viewer_study(request.user.practice, study_uid)
    except DicomStudy.DoesNotExist:
        raise Http404("no such study") from None
    series = viewer_series(study)
    # Opened from a mount: next and previous follow its slots (dicomnet.dental).
    positions = mount_positions(request.user.practice, request.GET.get("mount"), study)
    if positions:
        for entry in series:
            entry.instances.sort(key=lambda i: positions.get(i.pk, len(positions) + 1))
    opened = _opened(series, request.GET.get("series", ""), request.GET.get("instance", ""))
    audit(request.user, action="view_study", patient=study.patient, ref=f"viewer:{study_uid}")
    config = {
        "study": study_uid,
        "dicomweb": reverse("dicomweb_studies").removesuffix("studies"),
        "annotations": reverse("viewer_instance_annotations", args=["SOP"]),
        "annotation": reverse("viewer_annotation", args=[0]),
        "wasmBasePath": static("viewer/dist/"),
        "series": [_series_json(s) for s in series],
        "open": {
            "series": opened[0].series.series_instance_uid if opened else "",
            "instance": opened[1].sop_instance_uid if opened else "",
        },
        "strings": _strings(),
    }
    return render(
        request,
        "viewer/study.html",
        {
            "study": study,
            "header": _header(study),
            "series": series,
            "first": opened[1] if opened else None,
            "viewer_config": config,
        },
    )


def _side_json(instance: DicomInstance, notation: str) -> dict[str, Any]:
    study = instance.study
    assert study is not None and instance.series is not None  # compared_instances's filter
    return {
        "study": study.study_instance_uid,
        "series": instance.series.series_instance_uid,
        "sop": instance.sop_instance_uid,
        "frames": instance.frames,
        "teeth": display_all((instance.dental or {}).get("teeth", ()), notation),
    }


def _prior_or_current(instances: list[DicomInstance]) -> list[str]:
    """ "prior" and "current" by study date; "" for both when the dates are equal or unknown."""
    first, second = (i.study.study_date if i.study else None for i in instances)
    if first is None or second is None or first == second:
        return ["", ""]
    return ["current", "prior"] if first > second else ["prior", "current"]


@role_required(roles.VIEW_IMAGES, roles.USE_VIEWER)
def compare_viewer(request: PracticeRequest) -> HttpResponse:
    """Two images side by side (``?image=<id>&image=<id>``, from the chart), zoom, pan and
    window/level synchronised (static/viewer/src/compare.js)."""
    try:
        instances = compared_instances(request.user.practice, request.GET.getlist("image"))
    except CompareError as error:
        return render(request, "viewer/compare_error.html", {"error": str(error)}, status=400)
    notation = request.user.practice.tooth_notation
    studies = [i.study for i in instances if i.study is not None]  # compared_instances's filter
    for study in studies:
        audit(
            request.user,
            action="view_study",
            patient=study.patient,
            ref=f"compare:{study.study_instance_uid}",
        )
    side_configs = [_side_json(i, notation) for i in instances]
    config = {
        "dicomweb": reverse("dicomweb_studies").removesuffix("studies"),
        "wasmBasePath": static("viewer/dist/"),
        "sides": side_configs,
        "strings": {
            "loading": _("Loading the full-resolution image…"),
            "failed": _("The image could not be decoded: %(error)s"),
        },
    }
    sides = [
        {"instance": i, "header": _header(study), "teeth": side["teeth"], "when": when}
        for i, study, side, when in zip(
            instances,
            studies,
            side_configs,
            _prior_or_current(instances),
            strict=True,
        )
    ]
    return render(request, "viewer/compare.html", {"sides": sides, "compare_config": config})
