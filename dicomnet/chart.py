"""The chart's image timeline (issue 9 §2): each study of a patient, newest first, with its
images (latest versions), the devices that took them, the teeth they show in the practice's
notation, and its mount with how many of its slots are filled ("7/18")."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch

from dicomnet.dental.teeth import CHART_LOWER, CHART_UPPER, display, display_all
from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Patient

# Teeth listed as they sit on the chart: upper right to upper left, then lower.
_CHART_ORDER = {tooth: i for i, tooth in enumerate(CHART_UPPER + CHART_LOWER)}


@dataclass
class TimelineStudy:
    study: DicomStudy
    instances: list[DicomInstance] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    teeth: list[str] = field(default_factory=list)  # in the practice's notation
    mount_placed: int = 0
    mount_total: int = 0


def _tooth_key(fdi: str) -> tuple[int, str]:
    return (_CHART_ORDER.get(fdi, len(_CHART_ORDER)), fdi)


def device_label(instance: DicomInstance) -> str:
    """The registered device's name, else the AE title it called from (an unknown device)."""
    if instance.server is not None:
        return instance.server.name
    return instance.calling_ae.strip()


def chart_timeline(patient: Patient, notation: str) -> list[TimelineStudy]:
    """The patient's studies for the chart, newest first. Each image gets ``teeth_labels``
    (its own teeth in ``notation``) for its caption."""
    studies = (
        DicomStudy.objects.for_practice(patient.practice_id)
        .filter(patient=patient)
        .select_related("appointment", "mount__template")
        .annotate(mount_slots=Count("mount__template__slots", distinct=True))
        .prefetch_related(
            Prefetch(
                "instances",
                queryset=DicomInstance.objects.latest_versions()
                .select_related("server")
                .order_by("instance_number", "id"),
            ),
            "mount__placements",
        )
        .order_by("-study_date", "-created_at", "-id")
    )
    return [_entry(study, notation) for study in studies]


def _entry(study: DicomStudy, notation: str) -> TimelineStudy:
    entry = TimelineStudy(study=study, instances=list(study.instances.all()))
    teeth: set[str] = set()
    for instance in entry.instances:
        own = sorted((instance.dental or {}).get("teeth", ()), key=_tooth_key)
        instance.teeth_labels = display_all(own, notation)  # type: ignore[attr-defined]  # for the caption
        teeth.update(own)
        device = device_label(instance)
        if device and device not in entry.devices:
            entry.devices.append(device)
    entry.teeth = [display(t, notation) for t in sorted(teeth, key=_tooth_key)]
    mount = getattr(study, "mount", None)
    if mount is not None:
        entry.mount_placed = len(mount.placements.all())
        slots = study.mount_slots + mount.extra_slots  # type: ignore[attr-defined]  # annotate()
        entry.mount_total = mount.expected_images or slots
    return entry
