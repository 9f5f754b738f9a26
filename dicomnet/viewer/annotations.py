"""The annotations of the viewer: measurements, text notes and manual calibrations, one row
per drawing on one frame of an image, always within the user's practice.

Views only translate HTTP into these calls; a bad input is an ``AnnotationError`` whose
message the user can act on.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from dicomnet.models import DicomInstance, ImageAnnotation
from patients.models import Practice, User

# The JSON a drawing may carry: a few points and a label, never an image.
MAX_DATA_BYTES = 16_384


class AnnotationError(ValueError):
    """An annotation the viewer sent that cannot be stored, and why."""


def instance_for_viewer(practice: Practice | int, sop_instance_uid: str) -> DicomInstance:
    """The latest version of the practice's instance ``sop_instance_uid``; DoesNotExist for
    another practice's or an unknown one."""
    instance = (
        DicomInstance.objects.for_practice(practice)
        .filter(sop_instance_uid=sop_instance_uid)
        .select_related("study__patient")
        .order_by("-version")
        .first()
    )
    if instance is None:
        raise DicomInstance.DoesNotExist(sop_instance_uid)
    return instance


def annotations_of(instance: DicomInstance) -> list[ImageAnnotation]:
    """Every annotation on ``instance`` (any version of its SOP instance), oldest first."""
    return list(
        ImageAnnotation.objects.for_practice(instance.practice_id)
        .filter(instance__sop_instance_uid=instance.sop_instance_uid)
        .select_related("author", "instance")
    )


def annotation_for(practice: Practice | int, pk: int) -> ImageAnnotation:
    """The practice's annotation ``pk``; DoesNotExist for another practice's."""
    return (
        ImageAnnotation.objects.for_practice(practice)
        .select_related("author", "instance__study__patient")
        .get(pk=pk)
    )


def _clean(
    instance: DicomInstance, *, kind: Any, frame: Any, label: Any, data: Any
) -> tuple[str, int, str, dict[str, Any]]:
    if kind not in ImageAnnotation.Kind.values:
        raise AnnotationError(
            f"unknown kind {kind!r}; one of {', '.join(ImageAnnotation.Kind.values)}"
        )
    if not isinstance(frame, int) or isinstance(frame, bool) or not 1 <= frame <= instance.frames:
        raise AnnotationError(f"frame must be a number from 1 to {instance.frames}")
    if not isinstance(label, str) or len(label) > 200:
        raise AnnotationError("label must be text of at most 200 characters")
    if not isinstance(data, dict):
        raise AnnotationError("data must be a JSON object")
    if len(json.dumps(data)) > MAX_DATA_BYTES:
        raise AnnotationError(f"data is larger than {MAX_DATA_BYTES} bytes")
    if kind == ImageAnnotation.Kind.CALIBRATION:
        mm_per_px = data.get("mm_per_px")
        if not isinstance(mm_per_px, int | float) or not 0 < mm_per_px < 100:
            raise AnnotationError("a calibration needs mm_per_px, a number between 0 and 100")
    return kind, frame, label, data


@transaction.atomic
def create_annotation(
    instance: DicomInstance,
    *,
    author: User,
    kind: Any,
    frame: Any = 1,
    label: Any = "",
    data: Any = None,
) -> ImageAnnotation:
    """Store a new drawing on ``instance``. A calibration replaces the frame's earlier one:
    an image has one mm-per-pixel at a time."""
    kind, frame, label, data = _clean(
        instance, kind=kind, frame=frame, label=label, data=data if data is not None else {}
    )
    if kind == ImageAnnotation.Kind.CALIBRATION:
        ImageAnnotation.objects.for_practice(instance.practice_id).filter(
            instance__sop_instance_uid=instance.sop_instance_uid,
            frame=frame,
            kind=ImageAnnotation.Kind.CALIBRATION,
        ).delete()
    return ImageAnnotation.objects.create(
        practice_id=instance.practice_id,
        instance=instance,
        frame=frame,
        author=author,
        kind=kind,
        label=label,
        data=data,
    )


def update_annotation(annotation: ImageAnnotation, *, changes: dict[str, Any]) -> ImageAnnotation:
    """Change the label or the data (the points moved) of ``annotation``; kind and frame stay."""
    unknown = set(changes) - {"label", "data"}
    if unknown:
        raise AnnotationError(f"only label and data can change, not {', '.join(sorted(unknown))}")
    _, _, label, data = _clean(
        annotation.instance,
        kind=annotation.kind,
        frame=annotation.frame,
        label=changes.get("label", annotation.label),
        data=changes.get("data", annotation.data),
    )
    annotation.label, annotation.data = label, data
    annotation.save(update_fields=["label", "data", "updated_at"])
    return annotation


def as_json(annotation: ImageAnnotation) -> dict[str, Any]:
    """The annotation as the viewer and the exports read it."""
    return {
        "id": annotation.pk,
        "sop_instance_uid": annotation.instance.sop_instance_uid,
        "frame": annotation.frame,
        "kind": annotation.kind,
        "label": annotation.label,
        "data": annotation.data,
        "author": annotation.author.get_username() if annotation.author else "",
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }
