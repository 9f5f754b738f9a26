"""Mounts: which template a study's images are read in, where each image goes, and the
clinicians' changes (move, rotate, flip, take out), each recorded with who and when.

``plan`` is the placement rule, over plain values: images with tooth codes go to the free
slot whose teeth they best cover (the expected view breaking ties), the others fill the
remaining free slots in acquisition order, in the template's order. ``arrange`` applies it
to a study after each processed image; the rest are the edits the mount page posts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from dicomnet.dental.models import Mount, MountChange, MountPlacement, MountSlot, MountTemplate
from dicomnet.dental.seed import ensure_templates
from dicomnet.models import DicomInstance, DicomStudy
from patients import audit
from patients.models import Appointment, User

INTRA_ORAL_MODALITIES = {"IO"}
PHOTO_MODALITIES = {"XC", "VL", "OT"}  # a photo grid appointment's photographs
INTRA_ORAL_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray Image, for presentation
    "1.2.840.10008.5.1.4.1.1.1.3.1",  # … for processing
}
FREE = "free"
UPPER_QUADRANTS, LOWER_QUADRANTS = set("1256"), set("3478")


class MountError(ValueError):
    """A change the mount can't take; the message is for the user."""


@dataclass(frozen=True)
class SlotSpec:
    position: int
    view: str = MountSlot.View.ANY
    teeth: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ImageSpec:
    id: int
    teeth: tuple[str, ...] = ()
    order: tuple = field(default=())

    @property
    def view(self) -> str:
        """A bitewing shows both jaws; a periapical one."""
        quadrants = {t[0] for t in self.teeth}
        if quadrants & UPPER_QUADRANTS and quadrants & LOWER_QUADRANTS:
            return MountSlot.View.BITEWING
        return MountSlot.View.PERIAPICAL if self.teeth else MountSlot.View.ANY


def _score(slot: SlotSpec, image: ImageSpec) -> float:
    teeth = set(image.teeth)
    shared = len(teeth & slot.teeth)
    if not shared:
        return 0.0
    score = shared / len(teeth | slot.teeth)  # Jaccard: the slot that is this image's view
    return score + (0.5 if slot.view == image.view else 0.0)


def plan(
    slots: Sequence[SlotSpec], images: Iterable[ImageSpec], *, taken: Iterable[int] = ()
) -> tuple[dict[int, int], list[ImageSpec]]:
    """Where each image goes: {image id: slot position}, and the images left without a slot.

    1. Images with teeth, in acquisition order, each to the free slot of highest score
       (shared teeth over all teeth, plus a half for the expected view); ties to the first.
    2. The rest (no teeth, or no free slot sharing one) in acquisition order, each to the
       first free slot in the template's order.
    """
    free = [s for s in sorted(slots, key=lambda s: s.position) if s.position not in set(taken)]
    ordered = sorted(images, key=lambda i: (i.order, i.id))
    placed: dict[int, int] = {}
    rest: list[ImageSpec] = []
    for image in ordered:
        best = max(free, key=lambda s: _score(s, image), default=None) if image.teeth else None
        if best is not None and _score(best, image) > 0:
            placed[image.id] = best.position
            free.remove(best)
        else:
            rest.append(image)
    left: list[ImageSpec] = []
    for image in rest:
        if free:
            placed[image.id] = free.pop(0).position
        else:
            left.append(image)
    return placed, left


# -- reading ---------------------------------------------------------------------------


def slot_specs(mount: Mount) -> list[SlotSpec]:
    specs = [SlotSpec(s.position, s.view, frozenset(s.teeth)) for s in mount.template.slots.all()]
    last = max((s.position for s in specs), default=0)
    specs += [SlotSpec(last + n) for n in range(1, mount.extra_slots + 1)]
    return specs


def image_spec(instance: DicomInstance) -> ImageSpec:
    dental = instance.dental or {}
    order = (dental.get("acquired", ""), instance.instance_number or 0)
    return ImageSpec(instance.pk, tuple(dental.get("teeth", ())), order)


def is_intra_oral(instance: DicomInstance) -> bool:
    modality = instance.series.modality if instance.series_id and instance.series else ""
    return modality in INTRA_ORAL_MODALITIES or instance.sop_class_uid in INTRA_ORAL_SOP_CLASSES


def mount_images(study: DicomStudy) -> list[DicomInstance]:
    """The study's images a mount shows: the latest version of each processed image."""
    return list(
        DicomInstance.objects.latest_versions()
        .filter(study=study, state=DicomInstance.State.PROCESSED)
        .select_related("series")
        .order_by("instance_number", "id")
    )


def template_for_count(count: int) -> MountTemplate:
    """The template a study without an appointment gets: the one marked ``pick_by_count``
    with as many slots as it has images, else the free mount."""
    fits = (
        MountTemplate.objects.filter(pick_by_count=True)
        .annotate(n=Count("slots"))
        .filter(n=count)
        .order_by("sort")
        .first()
    )
    if fits is not None:
        return fits
    ensure_templates()
    free, _ = MountTemplate.objects.get_or_create(
        key=FREE, defaults={"name": "Free", "columns": 4, "grows": True, "sort": 99}
    )
    return free


def placed_count(mount: Mount) -> int:
    return mount.placements.count()


def slot_count(mount: Mount) -> int:
    return mount.template.slots.count() + mount.extra_slots


# -- automatic placement -----------------------------------------------------------------


def mount_for_study(study: DicomStudy, images: Sequence[DicomInstance]) -> Mount | None:
    """The study's mount, or None if it needs none.

    1. the mount already attached to the study;
    2. the mount made for its appointment (``worklist.services.sync_mount``), attached now
       if the study has intra-oral images or photos (a CT of the same visit takes no mount);
    3. for intra-oral images without either, a new mount of the template that fits their count.
    """
    mount = Mount.objects.filter(study=study).select_related("template").first()
    if mount is not None:
        return mount
    intra_oral = [i for i in images if is_intra_oral(i)]
    if study.appointment_id and (
        intra_oral or any(i.series and i.series.modality in PHOTO_MODALITIES for i in images)
    ):
        mount = (
            Mount.objects.select_for_update()
            .filter(appointment_id=study.appointment_id, study__isnull=True)
            .select_related("template")
            .first()
        )
        if mount is not None:
            mount.study = study
            mount.save(update_fields=["study"])
            return mount
        if Mount.objects.filter(appointment_id=study.appointment_id).exists():
            return None  # the appointment's mount holds another study of the visit
    if not intra_oral:
        return None
    mount, _ = Mount.objects.get_or_create(
        study=study,
        defaults={
            "practice_id": study.practice_id,
            "template": template_for_count(len(intra_oral)),
        },
    )
    return mount


@transaction.atomic
def arrange(study: DicomStudy) -> Mount | None:
    """Place the study's images that have no slot yet (see ``plan``). Idempotent.

    A mount chosen by image count that no person has edited follows the count: when it no
    longer fits, it takes the template that does and is placed again from the start. Images
    a clinician took out stay out.
    """
    images = mount_images(study)
    mount = mount_for_study(study, images)
    if mount is None:
        return None
    if mount.appointment_id is None and not mount.edited:
        fitting = template_for_count(len([i for i in images if is_intra_oral(i)]))
        if fitting.pk != mount.template_id:
            mount.placements.all().delete()
            mount.template, mount.extra_slots = fitting, 0
            mount.save(update_fields=["template", "extra_slots"])
            MountChange.objects.create(
                mount=mount, action=MountChange.Action.TEMPLATE, detail={"template": fitting.key}
            )
    placed = dict(mount.placements.values_list("instance_id", "position"))
    removed = set(
        mount.changes.filter(action=MountChange.Action.REMOVE)
        .exclude(instance_id__in=placed)
        .values_list("instance_id", flat=True)
    )
    waiting = [image_spec(i) for i in images if i.pk not in placed and i.pk not in removed]
    if not waiting:
        return mount
    slots = slot_specs(mount)
    where, left = plan(slots, waiting, taken=placed.values())
    if left and mount.template.grows:
        mount.extra_slots += len(left)
        mount.save(update_fields=["extra_slots"])
        slots = slot_specs(mount)
        where, left = plan(slots, waiting, taken=placed.values())
    for instance_id, position in where.items():
        MountPlacement.objects.create(mount=mount, instance_id=instance_id, position=position)
        MountChange.objects.create(
            mount=mount,
            instance_id=instance_id,
            action=MountChange.Action.PLACE,
            to_position=position,
        )
    return mount


# -- clinicians' changes ---------------------------------------------------------------


def _placement(mount: Mount, instance_id: int) -> MountPlacement:
    placement = mount.placements.select_for_update().filter(instance_id=instance_id).first()
    if placement is None:
        raise MountError(_("This image is not in the mount."))
    return placement


def _record(mount: Mount, user: User | None, action: str, instance_id: int, **kw) -> MountChange:
    if not mount.edited:
        mount.edited = True
        mount.save(update_fields=["edited"])
    change = MountChange.objects.create(
        mount=mount, user=user, action=action, instance_id=instance_id, **kw
    )
    study = mount.study
    if user is None:  # automatic placement at ingest: the study's own events say enough
        return change
    audit.record(
        "110103",
        action="U",
        what=f"mount_{action}",
        user=user,
        practice_id=mount.practice_id,
        patient=study.patient if study is not None else None,
        study_uid=study.study_instance_uid if study is not None else "",
        object_ref=f"mount:{mount.pk}:instance:{instance_id}",
        detail={k: v for k, v in kw.items() if isinstance(v, int | str | bool | None)},
    )
    return change


@transaction.atomic
def move(mount: Mount, instance_id: int, position: int, *, user: User | None) -> MountChange:
    """Put an image (placed or taken out) in a slot; the slot's image, if any, swaps places
    with it (or goes out of the mount, if the moved image came from outside)."""
    if position not in {s.position for s in slot_specs(mount)}:
        raise MountError(_("No such slot in this mount."))
    if (
        not mount.study_id
        or not DicomInstance.objects.filter(pk=instance_id, study_id=mount.study_id).exists()
    ):
        raise MountError(_("This image is not in the mount's study."))
    moving = mount.placements.select_for_update().filter(instance_id=instance_id).first()
    other = mount.placements.select_for_update().filter(position=position).first()
    if moving is not None and moving.position == position:
        raise MountError(_("The image is already in that slot."))
    source = moving.position if moving else None
    if other is not None:
        other_id = other.instance_id
        other.delete()
    if moving is None:
        moving = MountPlacement(mount=mount, instance_id=instance_id, position=position)
    moving.position = position
    moving.save()
    if other is not None:
        if source is not None:
            MountPlacement.objects.create(
                mount=mount,
                instance_id=other_id,
                position=source,
                rotation=other.rotation,
                flipped=other.flipped,
            )
            return _record(
                mount, user, MountChange.Action.SWAP, instance_id,
                from_position=source, to_position=position, detail={"with": other_id},
            )  # fmt: skip
        _record(mount, user, MountChange.Action.REMOVE, other_id, from_position=position)
    return _record(
        mount,
        user,
        MountChange.Action.MOVE,
        instance_id,
        from_position=source,
        to_position=position,
    )


@transaction.atomic
def rotate(mount: Mount, instance_id: int, degrees: int, *, user: User | None) -> MountChange:
    if degrees % 90:
        raise MountError(_("Rotate by a multiple of 90°."))
    placement = _placement(mount, instance_id)
    before = placement.rotation
    placement.rotation = (placement.rotation + degrees) % 360
    placement.save(update_fields=["rotation"])
    return _record(
        mount, user, MountChange.Action.ROTATE, instance_id,
        from_position=placement.position, to_position=placement.position,
        detail={"from": before, "to": placement.rotation},
    )  # fmt: skip


@transaction.atomic
def flip(mount: Mount, instance_id: int, *, user: User | None) -> MountChange:
    placement = _placement(mount, instance_id)
    placement.flipped = not placement.flipped
    placement.save(update_fields=["flipped"])
    return _record(
        mount, user, MountChange.Action.FLIP, instance_id,
        from_position=placement.position, to_position=placement.position,
        detail={"flipped": placement.flipped},
    )  # fmt: skip


@transaction.atomic
def remove(mount: Mount, instance_id: int, *, user: User | None) -> MountChange:
    placement = _placement(mount, instance_id)
    position = placement.position
    placement.delete()
    return _record(mount, user, MountChange.Action.REMOVE, instance_id, from_position=position)


# -- for appointments (called by worklist.services) ------------------------------------


def sync_appointment_mount(
    appointment: Appointment, template: MountTemplate | None, expected: int | None
) -> Mount | None:
    """The appointment's mount, made or updated from its procedure code's template; an
    appointment whose mount already holds a study or an edit keeps it as it is."""
    mount = Mount.objects.filter(appointment=appointment).first()
    if template is None:
        return mount
    if mount is None:
        return Mount.objects.create(
            practice_id=appointment.practice_id,
            appointment=appointment,
            template=template,
            expected_images=expected,
        )
    if (
        mount.study_id is None
        and not mount.edited
        and (mount.template_id != template.pk or mount.expected_images != expected)
    ):
        mount.template, mount.expected_images = template, expected
        mount.save(update_fields=["template", "expected_images"])
    return mount
