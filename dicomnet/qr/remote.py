"""The seam between the query/retrieve edges (REST API, pages) and the SCU.

``dicomnet.qr.scu`` does the DICOM work; this module turns its answers into plain dicts the
serializers and templates share, and its failures into one ``RemoteError`` whose message is
the plain reason ("connection refused", "did not answer within 30 s").
"""

from __future__ import annotations

import datetime as dt

from dicomnet.models import DicomServer
from dicomnet.net import association
from dicomnet.qr import scu


class RemoteError(Exception):
    """The remote system could not be reached or refused us; the message says why."""


def _iso(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def remote_study(record: scu.FindRecord) -> dict:
    """One remote study as the API and the page show it."""
    return {
        "study_instance_uid": record.study_instance_uid,
        "patient_name": record.patient_name,
        "patient_id": record.patient_id,
        "patient_birth_date": _iso(record.patient_birth_date),
        "study_date": _iso(record.study_date),
        "study_description": record.study_description,
        "accession_number": record.accession_number,
        "modalities": "\\".join(record.modalities),
        "series_count": record.series_count,
        "instance_count": record.instance_count,
        "already_imported": record.already_imported,
    }


def find(
    server: DicomServer,
    *,
    patient_name: str = "",
    patient_id: str = "",
    patient_birth_date: str = "",
    study_date: str = "",
    modality: str = "",
    accession_number: str = "",
) -> list[dict]:
    """C-FIND at STUDY level (Study Root).

    Date of birth is not a study-level matching key every system honours, so it is applied
    here to the answers: a study whose remote birth date differs is left out, one without a
    birth date is kept.
    """
    try:
        records = scu.find_studies(
            server,
            patient_name=patient_name,
            patient_id=patient_id,
            study_date=study_date,
            modality=modality,
            accession=accession_number,
        )
    except association.ScuError as exc:
        raise RemoteError(str(exc)) from exc
    studies = [remote_study(record) for record in records]
    if patient_birth_date:
        wanted = f"{patient_birth_date[:4]}-{patient_birth_date[4:6]}-{patient_birth_date[6:8]}"
        studies = [s for s in studies if s["patient_birth_date"] in ("", wanted)]
    return studies


def echo(server: DicomServer) -> association.EchoResult:
    """C-ECHO: ``ok``, ``round_trip_ms``, or the ``error`` in plain words."""
    return association.echo(server)
