"""The review queue: a person decides whose images a NEEDS_REVIEW study holds.

Each decision goes through ``linking.link_to_patient`` (so the appointment is linked as for a
study matched on arrival, and the matcher's reason is replaced by the decision), is recorded
as a ``StudyAssignment`` (who, when, the link before) and can be undone. Studies from the same
source (same DICOM PatientID, name and device) are assigned together, in one batch.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dicomnet.ingest.linking import link_to_patient, notify_new_images
from dicomnet.models import DicomInstance, DicomStudy, StudyAssignment
from patients.models import Patient, Practice, User
from patients.names import split_person_name
from patients.services import audit

log = logging.getLogger("dicomnet.ingest.review")

# What an assignment changes on the study, hence what undoing it restores.
_LINK_FIELDS = (
    "status",
    "status_reason",
    "status_reason_params",
    "match_candidates",
    "manually_linked",
)


class ReviewError(ValueError):
    """A decision that can't be applied, with a message for the person who made it."""


@dataclass
class SourceGroup:
    """NEEDS_REVIEW studies from one source: same PatientID, name and device."""

    studies: list[DicomStudy]
    candidates: list[dict] = field(default_factory=list)
    # (patient, candidate) for each candidate whose chart still exists
    choices: list[tuple[Patient, dict]] = field(default_factory=list)
    suggested_chart: str = ""

    @property
    def first(self) -> DicomStudy:
        return self.studies[0]

    @property
    def key(self) -> str:
        return f"s{self.first.pk}"


def _source(study: DicomStudy) -> tuple[str, str, int | None]:
    return (study.patient_id.strip(), study.patient_name.strip(), study.server_id)


def review_queue(practice: Practice | int) -> QuerySet[DicomStudy]:
    """The practice's studies waiting for a person, oldest first, with their images."""
    return (
        DicomStudy.objects.for_practice(practice)
        .filter(status=DicomStudy.Status.NEEDS_REVIEW)
        .select_related("server")
        .prefetch_related(
            Prefetch(
                "instances",
                queryset=DicomInstance.objects.latest_versions().order_by("instance_number", "id"),
            )
        )
        .order_by("created_at", "id")
    )


def source_groups(studies: Sequence[DicomStudy]) -> list[SourceGroup]:
    """The studies grouped by source, in queue order; each group's candidates merged."""
    groups: dict[tuple, SourceGroup] = {}
    for study in studies:
        group = groups.setdefault(_source(study), SourceGroup([]))
        group.studies.append(study)
        seen = {c.get("id") for c in group.candidates}
        group.candidates += [c for c in study.match_candidates or [] if c.get("id") not in seen]
    if not studies:
        return []
    ids = {c.get("id") for g in groups.values() for c in g.candidates}
    patients = Patient.objects.for_practice(studies[0].practice_id).in_bulk(
        [i for i in ids if isinstance(i, int)]
    )
    next_number = next_chart_number(studies[0].practice_id)
    for group in groups.values():
        group.choices = [
            (patients[c["id"]], c) for c in group.candidates if c.get("id") in patients
        ]
        group.suggested_chart = suggested_chart_number(group.first, next_number=next_number)
    return list(groups.values())


def _snapshot(study: DicomStudy) -> dict:
    previous = {name: getattr(study, name) for name in _LINK_FIELDS}
    previous["patient"] = study.linked_patient_id
    previous["appointment"] = study.appointment_id
    previous["worklist_item"] = study.worklist_item_id
    return previous


@transaction.atomic
def assign(
    studies: Sequence[DicomStudy],
    patient: Patient,
    *,
    by: User,
    created_patient: bool = False,
) -> list[StudyAssignment]:
    """Link ``studies`` (one source) to ``patient``, as one batch ``undo`` can take back.

    1. Every study and the patient must be of one practice, and the studies of one source.
    2. Each study's link before is recorded, then ``link_to_patient`` links it: the patient,
       the imaging appointment of the study date, PROCESSED, the reason "linked by hand".
    3. Each assignment is in the access log.
    """
    if not studies:
        raise ReviewError(_("Choose at least one study."))
    practices = {s.practice_id for s in studies} | {patient.practice_id}
    if len(practices) != 1:
        raise ReviewError(_("This patient is not a patient of your practice."))
    if len({_source(s) for s in studies}) != 1:
        raise ReviewError(_("Only studies from the same source can be assigned together."))
    batch = uuid.uuid4()
    assignments = []
    for study in studies:
        previous = _snapshot(study)
        from_patient_id = study.linked_patient_id
        link_to_patient(study, patient, by=by.get_username())
        assignments.append(
            StudyAssignment.objects.create(
                practice_id=study.practice_id,
                study=study,
                batch=batch,
                from_patient_id=from_patient_id,
                to_patient=patient,
                created_patient=created_patient,
                previous=previous,
                by=by,
            )
        )
        audit(by, action="assign_study", patient=patient, ref=f"study:{study.pk}")
        log.info(
            "study %s assigned to chart %s by %s", study.pk, patient.chart_number, by.get_username()
        )
    return assignments


def new_patient_fields(study: DicomStudy) -> dict:
    """A chart's fields from the study's DICOM demographics (names, date of birth, sex)."""
    family, given = split_person_name(study.patient_name)
    middle = study.patient_name.split("=")[0].split("^")[2:3]
    given = " ".join(p.strip() for p in [given, *middle] if p.strip())

    def readable(name: str) -> str:
        return name.title() if name.isupper() else name  # "COTE" was typed on a device

    sex = study.patient_sex.strip().upper()[:1]
    return {
        "family_name": readable(family),
        "given_name": readable(given),
        "birth_date": study.patient_birth_date,
        "sex": sex if sex in {"F", "M", "O"} else "",
    }


def next_chart_number(practice: Practice | int) -> str:
    """One more than the practice's highest numeric chart number."""
    charts = Patient.objects.for_practice(practice).values_list("chart_number", flat=True)
    return str(max((int(c) for c in charts.iterator() if c.isdigit()), default=1000) + 1)


def suggested_chart_number(study: DicomStudy, *, next_number: str = "") -> str:
    """The DICOM PatientID if no chart has it, else the next free numeric chart number."""
    patient_id = study.patient_id.strip()
    taken = Patient.objects.for_practice(study.practice_id).filter(chart_number=patient_id)
    if patient_id and not taken.exists():
        return patient_id
    return next_number or next_chart_number(study.practice_id)


@transaction.atomic
def create_patient_and_assign(
    studies: Sequence[DicomStudy], *, chart_number: str, by: User
) -> tuple[Patient, list[StudyAssignment]]:
    """A new chart from the first study's DICOM demographics, then ``assign`` to it."""
    if not studies:
        raise ReviewError(_("Choose at least one study."))
    study = studies[0]
    chart_number = chart_number.strip()
    fields = new_patient_fields(study)
    if not fields["family_name"]:
        raise ReviewError(_("The images carry no patient name: create the chart by hand."))
    if not chart_number:
        raise ReviewError(_("Give the new chart a number."))
    if Patient.objects.for_practice(study.practice_id).filter(chart_number=chart_number).exists():
        raise ReviewError(_("Chart number %(chart)s is taken.") % {"chart": chart_number})
    patient = Patient.objects.create(
        practice_id=study.practice_id, chart_number=chart_number, **fields
    )
    audit(by, action="create_patient_from_study", patient=patient, ref=f"study:{study.pk}")
    return patient, assign(studies, patient, by=by, created_patient=True)


@transaction.atomic
def undo(batch: uuid.UUID | str, *, practice: Practice | int, by: User) -> list[DicomStudy]:
    """Take back a batch of assignments: each study's link before is restored.

    Refused if a later assignment of one of its studies is still in force (undo that first),
    or if the batch is already undone. A patient created for the batch stays (its chart may
    already be in use); it is no longer linked to these studies.
    """
    assignments = list(
        StudyAssignment.objects.for_practice(practice)
        .filter(batch=batch)
        .select_related("study", "to_patient")
        # The assignments and their studies: PostgreSQL refuses FOR UPDATE on the nullable
        # side of the outer join to to_patient.
        .select_for_update(of=("self", "study"))
    )
    if not assignments:
        raise StudyAssignment.DoesNotExist
    if any(a.undone_at is not None for a in assignments):
        raise ReviewError(_("This assignment was already undone."))
    for a in assignments:
        later = StudyAssignment.objects.filter(
            study_id=a.study_id, at__gt=a.at, undone_at__isnull=True
        ).exclude(batch=a.batch)
        if later.exists():
            raise ReviewError(_("These images were assigned again since: undo that first."))
    now = timezone.now()
    restored = []
    for a in assignments:
        study = a.study
        previous = a.previous
        for name in _LINK_FIELDS:
            if name in previous:
                setattr(study, name, previous[name])
        study.linked_patient_id = previous.get("patient")
        study.appointment_id = previous.get("appointment")
        study.worklist_item_id = previous.get("worklist_item")
        study.save(
            update_fields=[*_LINK_FIELDS, "patient", "appointment", "worklist_item", "updated_at"]
        )
        notify_new_images(study)
        a.undone_at = now
        a.undone_by = by
        a.save(update_fields=["undone_at", "undone_by"])
        audit(by, action="undo_assign_study", patient=a.to_patient, ref=f"study:{study.pk}")
        restored.append(study)
    return restored


def recent_batches(practice: Practice | int, *, since: dt.timedelta = dt.timedelta(days=1)):
    """The practice's latest assignments, one entry per batch, newest first."""
    rows = (
        StudyAssignment.objects.for_practice(practice)
        .filter(at__gte=timezone.now() - since)
        .select_related("to_patient", "by", "undone_by")
        .order_by("-at", "-id")[:100]
    )
    batches: dict[uuid.UUID, list[StudyAssignment]] = {}
    for row in rows:
        batches.setdefault(row.batch, []).append(row)
    return list(batches.values())[:10]
