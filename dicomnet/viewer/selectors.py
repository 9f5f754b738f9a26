"""The images of a study as the viewer shows them: series by number, in each the latest
version of every processed SOP instance by InstanceNumber."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from patients.models import Practice

# SOP classes a CBCT or CT arrives as: CT, Enhanced CT, and "X-Ray 3D Craniofacial".
VOLUME_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.13.1.4",  # X-Ray 3D Craniofacial Image Storage
}
# Fewer slices than this is a scout or a few images, not a volume to reformat.
MIN_VOLUME_SLICES = 8


@dataclass
class ViewerSeries:
    series: DicomSeries
    instances: list[DicomInstance] = field(default_factory=list)

    @property
    def slices(self) -> int:
        return sum(i.frames for i in self.instances)

    @property
    def is_volume(self) -> bool:
        """A CT-like series with enough slices (single-frame slices or one multi-frame)."""
        return self.slices >= MIN_VOLUME_SLICES and all(
            i.sop_class_uid in VOLUME_SOP_CLASSES for i in self.instances
        )


def viewer_study(practice: Practice | int, study_instance_uid: str) -> DicomStudy:
    """The practice's study; DoesNotExist for another practice's or an unknown one."""
    return (
        DicomStudy.objects.for_practice(practice)
        .select_related("patient")
        .get(study_instance_uid=study_instance_uid)
    )


def viewer_series(study: DicomStudy) -> list[ViewerSeries]:
    """The study's viewable series (those with a processed instance), in viewing order."""
    latest: dict[str, DicomInstance] = {}
    rows = (
        DicomInstance.objects.for_practice(study.practice_id)
        .filter(study=study, state=DicomInstance.State.PROCESSED, series__isnull=False)
        .select_related("series")
        .order_by("version")
    )
    for instance in rows:
        latest[instance.sop_instance_uid] = instance
    by_series: dict[int, ViewerSeries] = {}
    for instance in latest.values():
        assert instance.series is not None
        entry = by_series.setdefault(instance.series.pk, ViewerSeries(instance.series))
        entry.instances.append(instance)
    found = list(by_series.values())
    for entry in found:
        entry.instances.sort(key=lambda i: (_number_key(i.instance_number), i.pk))
    found.sort(key=lambda s: (_number_key(s.series.series_number), s.series.pk))
    return found


def _number_key(number: int | None) -> tuple[bool, int]:
    """Numbered first, by number; unnumbered last."""
    return number is None, number or 0


class CompareError(ValueError):
    """Why two images cannot be compared, in words for the page."""


COMPARED_IMAGES = 2


def compared_instances(practice: Practice | int, ids: list[str]) -> list[DicomInstance]:
    """The practice's two images to compare, in the order asked; CompareError when the ids
    are not two distinct images of this practice with their series (another practice's image
    reads as unknown)."""
    if len(ids) != COMPARED_IMAGES or len(set(ids)) != COMPARED_IMAGES:
        raise CompareError(_("Choose two different images to compare."))
    try:
        pks = [int(i) for i in ids]
    except ValueError:
        raise CompareError(_("An image id is a number.")) from None
    found = {
        i.pk: i
        for i in DicomInstance.objects.filter(
            practice_id=practice if isinstance(practice, int) else practice.pk,
            pk__in=pks,
            state=DicomInstance.State.PROCESSED,
            series__isnull=False,
        ).select_related("study__patient", "series")
    }
    if len(found) != COMPARED_IMAGES:
        raise CompareError(_("One of the images does not exist, or is not processed yet."))
    return [found[pk] for pk in pks]
