"""The patient's copy of their record (Quebec, R-22.1; issue 9 §6): one zip with their images
as DICOM media and a summary of them in JSON and PDF.

The zip holds:

- ``DICOMDIR`` and the images (the latest version of each SOP instance), laid out by
  pydicom's ``FileSet`` as PS3.10 media: ``PT000000/ST000000/SE000000/IM000000``, file IDs of
  at most eight upper-case characters per component, so that a DICOM viewer opens the media;
- ``SUMMARY.JSON`` and ``SUMMARY.PDF``: the demographics, the studies (date, modality,
  description, images) and the teeth imaged (FDI, from ``DicomInstance.dental``).

The objects are copied one at a time from storage (``default_storage``, maybe S3) through a
temp directory that is removed whatever happens; the zip is written to a file the caller
gives. The export is recorded in the access log (``export_record``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from dicomnet.dental.teeth import FDI, display_all
from dicomnet.ingest.storage import local_copy
from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Patient, User
from patients.services import audit

SUMMARY_JSON = "SUMMARY.JSON"
SUMMARY_PDF = "SUMMARY.PDF"
FORMAT = "nexrel-record-export/1"


@dataclass
class StudySummary:
    study: DicomStudy
    images: list[DicomInstance] = field(default_factory=list)
    file_ids: dict[str, str] = field(default_factory=dict)  # SOP Instance UID → file ID

    @property
    def teeth(self) -> list[str]:
        return sort_teeth(t for i in self.images for t in (i.dental or {}).get("teeth", ()))


def sort_teeth(teeth: Any) -> list[str]:
    """FDI numbers, once each, in number order (11, 12, …, 48, then anything else)."""
    unique = set(teeth)
    return sorted(unique, key=lambda t: (0, int(t)) if str(t).isdigit() else (1, str(t)))


def record_instances(patient: Patient) -> QuerySet[DicomInstance]:
    """The patient's images: the latest version of each processed SOP instance of the
    studies linked to the chart, in study, series and instance order."""
    return (
        DicomInstance.objects.latest_versions()
        .filter(
            practice_id=patient.practice_id,
            study__patient=patient,
            state=DicomInstance.State.PROCESSED,
        )
        .select_related("study", "series")
        .order_by(
            "study__study_date",
            "study__study_time",
            "study_id",
            "series__series_number",
            "series_id",
            "instance_number",
            "id",
        )
    )


def record_studies(patient: Patient) -> list[StudySummary]:
    studies = {
        s.pk: StudySummary(s)
        for s in DicomStudy.objects.for_practice(patient.practice_id)
        .filter(patient=patient)
        .order_by("study_date", "study_time", "id")
    }
    for instance in record_instances(patient):
        studies[instance.study_id].images.append(instance)  # type: ignore[index]
    return list(studies.values())


# The DICOM media -----------------------------------------------------------------------------


def _for_media(ds: Dataset, instance: DicomInstance, *, patient: Patient, study_no: int) -> None:
    """Fill the attributes a DICOMDIR record needs (PS3.3 F.5, type 1) when the object
    lacks them, as ``dcmmkdir +I`` would: sensors often send no Study ID, some no Patient
    ID or series number. A value the object has is never changed."""

    def missing(keyword: str) -> bool:
        return keyword not in ds or ds[keyword].VM == 0

    study = instance.study
    assert study is not None
    if missing("PatientID"):
        ds.PatientID = study.patient_id or patient.chart_number
    if missing("StudyDate"):
        ds.StudyDate = (study.study_date or instance.received_at.date()).strftime("%Y%m%d")
    if missing("StudyTime"):
        ds.StudyTime = study.study_time.strftime("%H%M%S") if study.study_time else "000000"
    if missing("StudyID"):
        ds.StudyID = str(study_no)
    if missing("Modality"):
        ds.Modality = (instance.series.modality if instance.series else "") or "OT"
    if missing("SeriesNumber"):
        number = instance.series.series_number if instance.series else None
        ds.SeriesNumber = number if number is not None else 1
    if missing("InstanceNumber"):
        ds.InstanceNumber = instance.instance_number or 1
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = instance.transfer_syntax_uid


def write_media(studies: list[StudySummary], root: Path, *, patient: Patient) -> int:
    """Write the studies' images and their DICOMDIR under ``root``; fill each study's
    ``file_ids``. Returns the number of images written (0: no DICOMDIR).

    1. Each object is copied from storage and read, one at a time, filled for its
       records (``_for_media``) and staged into pydicom's ``FileSet`` (its own temp dir,
       emptied at the end whatever happens).
    2. ``FileSet.write`` lays out the files and writes the DICOMDIR.
    3. The file IDs are read back from the written file-set.
    """
    fs = FileSet()
    fs.ID = "NEXREL"
    count = 0
    try:
        for study_no, summary in enumerate(studies, start=1):
            for instance in summary.images:
                with local_copy(instance) as path:
                    ds = dcmread(path)
                _for_media(ds, instance, patient=patient, study_no=study_no)
                fs.add(ds)
                del ds
                count += 1
        if not count:
            return 0
        fs.write(root)
        file_ids = {str(fi.SOPInstanceUID): Path(fi.FileID).as_posix() for fi in fs}
    finally:
        fs.clear()  # removes the staged copies now (pydicom's own temp dir), not at GC
    for summary in studies:
        summary.file_ids = {
            i.sop_instance_uid: file_ids[i.sop_instance_uid] for i in summary.images
        }
    return count


# The summaries -------------------------------------------------------------------------------


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def summary_data(
    patient: Patient, studies: list[StudySummary], *, user: User, at: dt.datetime
) -> dict[str, Any]:
    """The summary as JSON data: what SUMMARY.JSON holds and SUMMARY.PDF shows."""
    return {
        "format": FORMAT,
        "exported_at": at.isoformat(),
        "exported_by": user.get_username(),
        "practice": patient.practice.name,
        "patient": {
            "chart_number": patient.chart_number,
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "birth_date": _date(patient.birth_date),
            "sex": patient.sex,
            "health_card_number": patient.health_card_number,
        },
        "studies": [
            {
                "study_instance_uid": s.study.study_instance_uid,
                "date": _date(s.study.study_date),
                "modality": s.study.modality,
                "description": s.study.study_description,
                "accession_number": s.study.accession_number,
                "images": len(s.images),
                "teeth": s.teeth,
                "files": [
                    {
                        "sop_instance_uid": i.sop_instance_uid,
                        "file_id": s.file_ids.get(i.sop_instance_uid, ""),
                        "teeth": sort_teeth((i.dental or {}).get("teeth", ())),
                    }
                    for i in s.images
                ],
            }
            for s in studies
        ],
        "teeth": sort_teeth(t for s in studies for t in s.teeth),
    }


def write_summary_pdf(data: dict[str, Any], path: Path, *, notation: str = FDI) -> None:
    """SUMMARY.PDF: the same data as SUMMARY.JSON, for a person (reportlab, BSD)."""
    styles = getSampleStyleSheet()
    patient = data["patient"]
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title=_("Copy of the record of %(name)s")
        % {"name": f"{patient['given_name']} {patient['family_name']}"},
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        pageCompression=0,  # plain text streams: a few kB, readable by any tool
    )
    sexes = dict(Patient.Sex.choices)
    story: list[Any] = [
        Paragraph(escape(data["practice"]), styles["Title"]),
        Paragraph(_("Copy of the patient's record"), styles["Heading2"]),
        Paragraph(escape(f"{patient['given_name']} {patient['family_name']}"), styles["Heading1"]),
        Table(
            [
                [_("Chart"), patient["chart_number"]],
                [_("Date of birth"), patient["birth_date"] or "—"],
                [_("Sex"), str(sexes.get(patient["sex"], patient["sex"]))],
                [_("Health card number (RAMQ)"), patient["health_card_number"] or "—"],
                [_("Exported on"), data["exported_at"][:16].replace("T", " ")],
                [_("Exported by"), data["exported_by"]],
            ],
            hAlign="LEFT",
        ),
        Spacer(1, 6 * mm),
        Paragraph(_("Studies"), styles["Heading2"]),
    ]
    rows = [[_("Date"), _("Modality"), _("Description"), _("Images"), _("Teeth")]]
    for study in data["studies"]:
        rows.append(
            [
                study["date"] or "—",
                study["modality"],
                Paragraph(escape(study["description"] or "—"), styles["BodyText"]),
                str(study["images"]),
                Paragraph(", ".join(display_all(study["teeth"], notation)), styles["BodyText"]),
            ]
        )
    if len(rows) == 1:
        story.append(Paragraph(_("No study."), styles["BodyText"]))
    else:
        table = Table(rows, colWidths=[24 * mm, 20 * mm, 70 * mm, 16 * mm, 50 * mm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    story += [
        Spacer(1, 6 * mm),
        Paragraph(_("Teeth imaged"), styles["Heading2"]),
        Paragraph(", ".join(display_all(data["teeth"], notation)) or "—", styles["BodyText"]),
        Spacer(1, 6 * mm),
        Paragraph(
            _("The images are in the DICOMDIR of this archive: open it with a DICOM viewer."),
            styles["BodyText"],
        ),
    ]
    doc.build(story)


# The export ----------------------------------------------------------------------------------


def export_record(patient: Patient, *, user: User, out: IO[bytes]) -> dict[str, Any]:
    """Write the patient's record as a zip to ``out`` and record who exported it, when
    and for whom; returns the summary written to SUMMARY.JSON.

    1. The studies and the latest version of each image are read (``record_studies``).
    2. In a temp dir: the DICOM media (``write_media``), SUMMARY.JSON and SUMMARY.PDF.
    3. The temp dir is zipped into ``out`` file by file, then removed, whatever happens.
    4. The export is audited (``export_record``, the patient, the number of images).
    """
    at = timezone.now()
    studies = record_studies(patient)
    work = Path(tempfile.mkdtemp(prefix="nexrel-export-"))
    try:
        media = work / "media"
        media.mkdir()
        count = write_media(studies, media, patient=patient)
        data = summary_data(patient, studies, user=user, at=at)
        (media / SUMMARY_JSON).write_text(
            json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        write_summary_pdf(data, media / SUMMARY_PDF, notation=patient.practice.tooth_notation)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in media.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(media).as_posix())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    audit(user, action="export_record", patient=patient, ref=f"record:{patient.pk}:{count}")
    return data
