"""Reads for the mount page, its PDF, the API and the chart: a mount as slots with their
teeth (in the practice's notation) and images, and each tooth's latest image."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch

from dicomnet.dental.models import Mount, MountPlacement, MountSlot
from dicomnet.dental.mounts import slot_specs
from dicomnet.dental.teeth import FDI, display_all
from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Patient, Practice


@dataclass
class SlotView:
    position: int
    row: int
    column: int
    view: str
    teeth: list[str]  # FDI
    labels: list[str]  # in the practice's notation
    rotation: int  # the slot's own rotation
    placement: MountPlacement | None = None

    @property
    def instance(self) -> DicomInstance | None:
        return self.placement.instance if self.placement else None

    @property
    def mismatch(self) -> bool:
        """The image names teeth, and none of the slot's: worth a look (moved, or mis-coded)."""
        teeth = set((self.instance.dental or {}).get("teeth", ())) if self.instance else set()
        return bool(teeth and self.teeth and not teeth & set(self.teeth))

    @property
    def view_label(self) -> str:
        return str(MountSlot.View(self.view).label)

    @property
    def transform(self) -> str:
        """The CSS transform that shows the image as the slot and the clinician want it."""
        if self.placement is None:
            return ""
        turn = (self.rotation + self.placement.rotation) % 360
        parts = [f"rotate({turn}deg)"] if turn else []
        if self.placement.flipped:
            parts.append("scaleX(-1)")
        return " ".join(parts)


@dataclass
class MountView:
    mount: Mount
    slots: list[SlotView]
    outside: list[DicomInstance] = field(default_factory=list)
    rows: int = 1

    @property
    def placed(self) -> int:
        return sum(1 for s in self.slots if s.placement)

    @property
    def order(self) -> list[DicomInstance]:
        """The images in the mount's order (for the viewer's next and previous)."""
        return [s.instance for s in self.slots if s.instance is not None]


def mounts_of(practice: Practice | int):
    return Mount.objects.for_practice(practice).select_related(
        "template", "study", "study__patient", "appointment"
    )


def mount_view(mount: Mount, notation: str = FDI) -> MountView:
    template_slots = {s.position: s for s in mount.template.slots.all()}
    placements = {
        p.position: p for p in mount.placements.select_related("instance", "instance__study")
    }
    columns = max(mount.template.columns, 1)
    slots: list[SlotView] = []
    extra = 0
    for spec in slot_specs(mount):
        slot = template_slots.get(spec.position)
        if slot is not None:
            row, column, rotation = slot.row, slot.column, slot.rotation
            view, teeth = slot.view, list(slot.teeth)
        else:  # a free mount's added slot: after the template's, row by row
            index = len(template_slots) + extra
            extra += 1
            row, column, rotation, view, teeth = (
                index // columns + 1,
                index % columns + 1,
                0,
                "any",
                [],
            )
        slots.append(
            SlotView(
                position=spec.position,
                row=row,
                column=column,
                view=view,
                teeth=teeth,
                labels=display_all(teeth, notation),
                rotation=rotation,
                placement=placements.get(spec.position),
            )
        )
    outside: list[DicomInstance] = []
    if mount.study_id:
        placed = {p.instance_id for p in placements.values()}
        outside = [
            i
            for i in DicomInstance.objects.latest_versions()
            .filter(study_id=mount.study_id, state=DicomInstance.State.PROCESSED)
            .select_related("study")
            .order_by("instance_number", "id")
            if i.pk not in placed
        ]
    rows = max((s.row for s in slots), default=1)
    return MountView(mount=mount, slots=slots, outside=outside, rows=rows)


def api_mount(mount: Mount) -> dict:
    """``{"template": name, "slots": [{"position", "teeth" (FDI), "instance"}]}``."""
    view = mount_view(mount)
    return {
        "template": mount.template.name,
        "slots": [
            {
                "position": s.position,
                "teeth": s.teeth,
                "instance": s.placement.instance_id if s.placement else None,
            }
            for s in view.slots
        ],
    }


@dataclass
class ToothImages:
    fdi: str
    label: str
    latest: DicomInstance | None = None
    images: list[DicomInstance] = field(default_factory=list)


def tooth_chart(patient: Patient, notation: str = FDI) -> dict[str, ToothImages]:
    """Each permanent tooth's images (newest first) among the patient's studies, by the
    tooth codes of the images or, failing those, of the mount slot they are in."""
    from dicomnet.dental.teeth import CHART_LOWER, CHART_UPPER, display

    chart = {t: ToothImages(t, display(t, notation)) for t in CHART_UPPER + CHART_LOWER}
    instances = (
        DicomInstance.objects.latest_versions()
        .filter(
            practice_id=patient.practice_id,
            study__patient=patient,
            state=DicomInstance.State.PROCESSED,
        )
        .select_related("study")
        .prefetch_related(
            Prefetch(
                "placements",
                queryset=MountPlacement.objects.select_related("mount__template"),
            )
        )
        .order_by("-study__study_date", "-received_at", "-id")
    )
    for instance in instances:
        teeth = set((instance.dental or {}).get("teeth", ()))
        if not teeth:
            for placement in instance.placements.all():
                slot = placement.mount.template.slots.filter(position=placement.position).first()
                teeth.update(slot.teeth if slot else ())
        for tooth in teeth:
            entry = chart.get(tooth)
            if entry is None:
                continue
            entry.images.append(instance)
            if entry.latest is None:
                entry.latest = instance
    return chart


def mount_positions(
    practice: Practice | int, mount_id: str | int | None, study: DicomStudy
) -> dict[int, int]:
    """{instance id: slot position} of the study's mount ``mount_id`` (for the viewer's next
    and previous); empty for an unknown mount, another practice's or another study's."""
    try:
        pk = int(mount_id or 0)
    except ValueError:
        return {}
    mount = Mount.objects.for_practice(practice).filter(pk=pk, study=study).first()
    if mount is None:
        return {}
    return dict(mount.placements.values_list("instance_id", "position"))
