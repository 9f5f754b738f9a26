"""The study page's reads (issue 9 §2): its series and images (latest versions), the teeth,
a readable dump of an image's DICOM header, the matching history and the findings; and the
whole study as a zip of its original objects.

The header is read from storage with ``stop_before_pixels``: the pixel data is never read.
The zip is written to a temp file, one object at a time, which the caller streams and
closes (``tempfile.TemporaryFile``: removed when closed, whatever happens).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import default_storage
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dicomnet.dental.teeth import display_all
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy, StudyAssignment

# Values longer than this are cut in the dump; binary values are shown by their length.
VALUE_CHARS = 160
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


@dataclass
class SeriesRows:
    series: DicomSeries | None
    instances: list[DicomInstance] = field(default_factory=list)


@dataclass
class TagRow:
    depth: int
    tag: str
    name: str
    vr: str
    value: str


def latest_instances(study: DicomStudy):
    return (
        DicomInstance.objects.filter(practice_id=study.practice_id, study=study)
        .latest_versions()
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "pk")
    )


def study_series(study: DicomStudy, notation: str) -> list[SeriesRows]:
    """The study's series in order, each with its images (the latest version of each SOP
    instance); each image's teeth in the practice's notation as ``instance.teeth``."""
    rows: dict[int | None, SeriesRows] = {}
    for instance in latest_instances(study):
        teeth = (instance.dental or {}).get("teeth", ())
        instance.teeth = display_all(teeth, notation)
        rows.setdefault(instance.series_id, SeriesRows(instance.series)).instances.append(instance)
    return list(rows.values())


def assignments(study: DicomStudy):
    """Who assigned the study from the review queue, newest first (undone ones too)."""
    return (
        StudyAssignment.objects.for_practice(study.practice_id)
        .filter(study=study)
        .select_related("from_patient", "to_patient", "by", "undone_by")
    )


def _open(instance: DicomInstance) -> IO[bytes]:
    if instance.storage_key:
        return default_storage.open(instance.storage_key, "rb")
    if instance.spool_path:
        return Path(instance.spool_path).open("rb")
    raise FileNotFoundError(f"instance {instance.pk} has no stored object")


def open_original(instance: DicomInstance) -> IO[bytes]:
    """The object as received (Part 10), from storage or, not yet stored, the spool."""
    return _open(instance)


def _value(element: DataElement) -> str:
    if element.VR in BINARY_VRS:
        length = len(element.value) if element.value is not None else 0
        return f"<{length} bytes>"
    text = str(element.value if not isinstance(element.value, bytes) else element.repval)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _rows(dataset: Dataset, depth: int) -> Iterator[TagRow]:
    for element in dataset:
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        name = element.name if not element.tag.is_private else f"Private: {element.name}"
        if element.VR == "SQ":
            yield TagRow(depth, tag, name, "SQ", f"{len(element.value)} item(s)")
            for item in element.value:
                yield from _rows(item, depth + 1)
        else:
            yield TagRow(depth, tag, name, element.VR, _value(element))


def tag_dump(instance: DicomInstance) -> list[TagRow]:
    """The file meta and the dataset, nested sequences indented; never the pixel data."""
    with _open(instance) as stream:
        dataset = dcmread(stream, stop_before_pixels=True, force=True)
    rows = list(_rows(dataset.file_meta, 0)) if dataset.file_meta else []
    return rows + list(_rows(dataset, 0))


def write_study_zip(study: DicomStudy) -> IO[bytes]:
    """The study's original objects (latest versions) in a zip, in a temp file at offset 0.

    Layout: ``S<series number>/<instance number>_<SOP Instance UID>.dcm``. An image without
    a stored object is left out (it is still being received)."""
    out = tempfile.TemporaryFile()
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for instance in latest_instances(study):
                try:
                    src = _open(instance)
                except FileNotFoundError:
                    continue
                number = instance.series.series_number if instance.series else None
                name = (
                    f"S{number if number is not None else 0}/"
                    f"{instance.instance_number or 0:04d}_{instance.sop_instance_uid}.dcm"
                )
                with src, archive.open(name, "w", force_zip64=True) as dst:
                    while chunk := src.read(1024 * 1024):
                        dst.write(chunk)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def findings(instance: DicomInstance) -> list[tuple[str, Any]]:
    """The analyzers' results (``DicomInstance.analysis``), by analyzer name."""
    return sorted((instance.analysis or {}).items())
