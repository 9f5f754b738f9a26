"""The worklist (MWL C-FIND) on the running listener, asked by DCMTK findscu and pynetdicom.

Today the demo has Côté^Zoé on CARESTREAM (UTF-8 profile) and Lévesque^Geneviève and
Bouchard^Hélène on SIRONA (Latin-1 profile); VATECH never sends its station AE title.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from django.utils import timezone
from pydicom import Dataset
from pydicom.uid import generate_uid
from pydicom.valuerep import PersonName
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind as MWL
from pynetdicom.sop_class import Verification

from dicomnet.dimse import status
from dicomnet.models import DicomServer
from patients.models import Patient
from tests.fixtures import wait_until
from worklist.models import WorklistItem, WorklistQuery

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("findscu"), reason="DCMTK not installed"),
]

PATIENT_NAME = 0x00100010
SIRONA_TODAY = ["Lévesque^Geneviève", "Bouchard^Hélène"]


def today() -> str:
    return timezone.localdate().strftime("%Y%m%d")


def findscu(port: int, calling: str, keys: list[bytes], out: Path) -> list[Dataset]:
    """``findscu -W`` with ``-k`` keys (bytes: as the device's character set has them)."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [b"findscu", b"-W", b"-v", b"-aet", calling.encode(), b"-aec", b"NEXREL-CRM"]
    argv += [b"-X", b"-od", str(out).encode(), b"127.0.0.1", str(port).encode()]
    for key in keys:
        argv += [b"-k", key]
    result = subprocess.run(argv, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def day_keys(station: str) -> list[bytes]:
    return [
        b"ScheduledProcedureStepSequence[0].ScheduledStationAETitle=" + station.encode(),
        b"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=" + today().encode(),
        b"ScheduledProcedureStepSequence[0].Modality",
        b"ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
        b"PatientName",
        b"PatientID",
        b"AccessionNumber",
        b"StudyInstanceUID",
    ]


def raw_name(ds: Dataset) -> bytes:
    """PatientName as the bytes on the wire (raw until read; PersonName keeps them)."""
    value = ds.get_item(PATIENT_NAME).value
    raw = value.original_string if isinstance(value, PersonName) else value
    return raw.rstrip(b" ")


def test_findscu_finds_todays_items_for_a_station_in_utf8(listener, tmp_path):
    proc, port = listener
    answers = findscu(port, "CARESTREAM", day_keys("CARESTREAM"), tmp_path / "all")
    assert len(answers) == 1
    (zoe,) = answers
    assert zoe.SpecificCharacterSet == "ISO_IR 192"
    assert raw_name(zoe) == "Côté^Zoé".encode()
    assert zoe.PatientName == "Côté^Zoé" and zoe.PatientID == "1001"
    step = zoe.ScheduledProcedureStepSequence[0]
    item = WorklistItem.objects.get(accession_number=zoe.AccessionNumber)
    assert (step.ScheduledStationAETitle, step.ScheduledProcedureStepStartDate) == (
        "CARESTREAM",
        today(),
    )
    assert (step.Modality, step.ScheduledProcedureStepID) == (
        "IO",
        item.scheduled_procedure_step_id,
    )
    assert zoe.StudyInstanceUID == item.study_instance_uid
    # The device fetched it: the calendar's "fetched by the device" step.
    assert item.first_fetched_at is not None and item.fetched_by == "CARESTREAM"

    # An accented, upper-case pattern in UTF-8 finds the same patient.
    keys = [b"SpecificCharacterSet=ISO_IR 192", "PatientName=CÔTÉ*".encode()]
    by_name = findscu(port, "CARESTREAM", day_keys("CARESTREAM")[:2] + keys, tmp_path / "name")
    assert [raw_name(ds) for ds in by_name] == ["Côté^Zoé".encode()]
    queries = WorklistQuery.objects.filter(calling_ae="CARESTREAM").order_by("at")
    assert [(q.result_count, q.status) for q in queries] == [(1, "success"), (1, "success")]
    assert queries[1].query["00100010"]["Value"] == [{"Alphabetic": "CÔTÉ*"}]
    assert "worklist query from CARESTREAM: 1 item(s), success" in proc.output()


def test_findscu_for_a_latin1_device_gets_latin1_names(listener, tmp_path):
    _, port = listener
    answers = findscu(port, "SIRONA", day_keys("SIRONA"), tmp_path / "all")
    assert {ds.SpecificCharacterSet for ds in answers} == {"ISO_IR 100"}
    assert [raw_name(ds) for ds in answers] == [n.encode("latin-1") for n in SIRONA_TODAY]
    assert [ds.PatientName for ds in answers] == SIRONA_TODAY

    # The device writes its query in Latin-1 too: "lév*", byte 0xE9.
    keys = [b"SpecificCharacterSet=ISO_IR 100", b"PatientName=l\xe9v*"]
    by_name = findscu(port, "SIRONA", day_keys("SIRONA")[:2] + keys, tmp_path / "name")
    assert [raw_name(ds) for ds in by_name] == [b"L\xe9vesque^Genevi\xe8ve"]


def associate(port: int, calling: str):
    ae = AE(ae_title=calling)
    ae.add_requested_context(MWL)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_established
    return assoc


def mwl_query(station: str = "", **top) -> Dataset:
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = ""
    ds.AccessionNumber = ""
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = today()
    step.ScheduledProcedureStepStartTime = ""
    step.Modality = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def find(assoc, query: Dataset) -> tuple[list[Dataset], int]:
    answers, final = [], None
    for rsp, identifier in assoc.send_c_find(query, MWL):
        assert rsp is not None and "Status" in rsp, "no response from the listener"
        if rsp.Status in (status.PENDING, status.PENDING_WARNING):
            answers.append(identifier)
        else:
            final = rsp.Status
    return answers, final


def test_pynetdicom_scu_in_both_character_sets_and_the_own_station_quirk(listener):
    _, port = listener
    assoc = associate(port, "CARESTREAM")
    try:
        answers, final = find(assoc, mwl_query("CARESTREAM"))
        assert final == status.SUCCESS
        assert [(ds.SpecificCharacterSet, raw_name(ds)) for ds in answers] == [
            ("ISO_IR 192", "Côté^Zoé".encode())
        ]
        # Several queries on one association; a UTF-8 query by name.
        query = mwl_query("", SpecificCharacterSet="ISO_IR 192", PatientName="lévesque*")
        answers, final = find(assoc, query)
        assert final == status.SUCCESS and [ds.PatientName for ds in answers] == [SIRONA_TODAY[0]]
    finally:
        assoc.release()

    assoc = associate(port, "SIRONA")
    try:
        answers, _ = find(assoc, mwl_query("SIRONA"))
        assert [raw_name(ds) for ds in answers] == [n.encode("latin-1") for n in SIRONA_TODAY]
        assert [ds.PatientName for ds in answers] == SIRONA_TODAY
    finally:
        assoc.release()

    assoc = associate(port, "VATECH")  # sends no station AE title
    try:
        answers, _ = find(assoc, mwl_query(""))
        stations = {ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle for ds in answers}
        assert stations == {"VATECH"} and len(answers) == 2
    finally:
        assoc.release()
    counts = WorklistQuery.objects.order_by("at").values_list("calling_ae", "result_count")
    assert list(counts) == [("CARESTREAM", 1), ("CARESTREAM", 1), ("SIRONA", 2), ("VATECH", 2)]


def test_c_cancel_stops_the_stream_with_fe00(listener, practice):
    _, port = listener
    patient = Patient.objects.get(practice=practice, chart_number="1005")
    start = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(7, 0)))
    WorklistItem.objects.bulk_create(
        WorklistItem(
            practice=practice,
            patient=patient,
            accession_number=f"C{n:06d}",
            requested_procedure_id=f"CRP{n:06d}",
            scheduled_procedure_step_id=f"CSPS{n:06d}",
            study_instance_uid=generate_uid(),
            modality="IO",
            scheduled_station_ae_title="CARESTREAM",
            scheduled_start=start + dt.timedelta(seconds=n),
            patient_name="Tremblay^Chloé",
            patient_name_key="tremblay chloe",
            patient_id="1005",
        )
        for n in range(400)
    )
    assoc = associate(port, "CARESTREAM")
    try:
        statuses = []
        for rsp, _ in assoc.send_c_find(mwl_query("CARESTREAM"), MWL):
            statuses.append(rsp.Status)
            if len(statuses) == 1:
                assoc.send_c_cancel(1, query_model=MWL)
    finally:
        assoc.release()
    pending = statuses[:-1]
    assert statuses[-1] == status.CANCEL
    assert set(pending) == {status.PENDING} and len(pending) < 400
    record = wait_until(lambda: WorklistQuery.objects.filter(status="cancelled").first(), 5)
    assert record.result_count == len(pending)
    assert WorklistItem.objects.exclude(first_fetched_at=None).count() == len(pending)


def test_device_that_may_not_query_is_refused(listener):
    """At association time: the worklist context is rejected, with a log line saying why."""
    proc, port = listener
    DicomServer.objects.filter(ae_title="PLANMECA").update(allow_find=False)
    ae = AE(ae_title="PLANMECA")
    ae.add_requested_context(MWL)
    ae.add_requested_context(Verification)  # so that the association itself is accepted
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    try:
        assert assoc.is_established
        assert [str(cx.abstract_syntax) for cx in assoc.rejected_contexts] == [str(MWL)]
        assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [str(Verification)]
    finally:
        assoc.release()
    wait_until(lambda: "presentation context(s) refused" in proc.output(), timeout=5)
    assert "The modality worklist (MWL C-FIND) is not allowed" in proc.output()
    assert not WorklistItem.objects.exclude(first_fetched_at=None).exists()


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_malformed_identifier_gets_a900(listener):
    proc, port = listener
    bad_date = mwl_query("CARESTREAM")
    bad_date.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate = "2026-11-25"
    two_steps = mwl_query("CARESTREAM")
    two_steps.ScheduledProcedureStepSequence.append(Dataset())
    assoc = associate(port, "CARESTREAM")
    try:
        assert find(assoc, bad_date) == ([], status.IDENTIFIER_DOES_NOT_MATCH)
        assert find(assoc, two_steps) == ([], status.IDENTIFIER_DOES_NOT_MATCH)
        # The association stays usable.
        assert find(assoc, mwl_query("CARESTREAM"))[1] == status.SUCCESS
    finally:
        assoc.release()
    logged = "'2026-11-25' is neither a single value nor a range"
    wait_until(lambda: logged in proc.output(), timeout=5)
    outcomes = list(WorklistQuery.objects.order_by("at").values_list("status", flat=True))
    assert [o.split(":")[0] for o in outcomes] == ["malformed", "malformed", "success"]
