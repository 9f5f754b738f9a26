"""Which worklist item a received study or a performed step names, by its identifiers.

A device that took its work from the worklist carries the item's identifiers back: in the
images (StudyInstanceUID, AccessionNumber, RequestAttributesSequence) and in its MPPS
(ScheduledStepAttributesSequence). They are tried from the most to the least specific:
1. StudyInstanceUID (unique per practice);
2. AccessionNumber (unique per practice);
3. ScheduledProcedureStepID, only when exactly one item of the practice carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from worklist.models import WorklistItem

# DICOM JSON tags of the study metadata read here.
REQUEST_ATTRIBUTES_SEQUENCE = "00400275"
SCHEDULED_PROCEDURE_STEP_ID = "00400009"
ACCESSION_NUMBER = "00080050"


@dataclass(frozen=True)
class ItemMatch:
    item: WorklistItem
    key: str  # the DICOM keyword that matched
    value: str

    def describe(self) -> str:
        return f"worklist item {self.item.accession_number} ({self.key} {self.value})"


def items_of(practice_id: int) -> QuerySet[WorklistItem]:
    return WorklistItem.objects.for_practice(practice_id).select_related("patient", "appointment")


def _clean(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def item_for_identifiers(
    practice_id: int,
    *,
    study_instance_uids: Iterable[str | None] = (),
    accession_numbers: Iterable[str | None] = (),
    step_ids: Iterable[str | None] = (),
) -> ItemMatch | None:
    """The practice's item these identifiers name, or None. See the module docstring."""
    items = items_of(practice_id)
    uids = _clean(study_instance_uids)
    if uids:
        item = items.filter(study_instance_uid__in=uids).first()
        if item is not None:
            return ItemMatch(item, "StudyInstanceUID", item.study_instance_uid)
    accessions = _clean(accession_numbers)
    if accessions:
        item = items.filter(accession_number__in=accessions).first()
        if item is not None:
            return ItemMatch(item, "AccessionNumber", item.accession_number)
    steps = _clean(step_ids)
    if steps:
        found = list(items.filter(scheduled_procedure_step_id__in=steps)[:2])
        if len(found) == 1:
            return ItemMatch(
                found[0], "ScheduledProcedureStepID", found[0].scheduled_procedure_step_id
            )
    return None


def _json_strings(element: dict | None) -> list[str]:
    if not isinstance(element, dict):
        return []
    return [v for v in element.get("Value", []) if isinstance(v, str)]


def request_attributes(metadata: dict) -> tuple[list[str], list[str]]:
    """Step IDs and accession numbers of a study's RequestAttributesSequence (DICOM JSON)."""
    sequence = metadata.get(REQUEST_ATTRIBUTES_SEQUENCE) if isinstance(metadata, dict) else None
    step_ids: list[str] = []
    accessions: list[str] = []
    for entry in _json_items(sequence):
        step_ids += _json_strings(entry.get(SCHEDULED_PROCEDURE_STEP_ID))
        accessions += _json_strings(entry.get(ACCESSION_NUMBER))
    return step_ids, accessions


def _json_items(sequence: dict | None) -> list[dict]:
    if not isinstance(sequence, dict):
        return []
    return [entry for entry in sequence.get("Value", []) if isinstance(entry, dict)]


def item_for_study(study) -> ItemMatch | None:
    """The worklist item a received study (a ``DicomStudy``) carries the identifiers of."""
    step_ids, accessions = request_attributes(study.metadata or {})
    return item_for_identifiers(
        study.practice_id,
        study_instance_uids=[study.study_instance_uid],
        accession_numbers=[study.accession_number, *accessions],
        step_ids=step_ids,
    )
