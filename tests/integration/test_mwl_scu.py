"""MWL SCU against a real external worklist provider: DCMTK ``wlmscpfs`` serving ``.wl`` files
(UTF-8 and Latin-1), queried by ``worklist.scu``, imported as appointments by the service, the
management command and the page."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind

from dicomnet.models import DicomServer
from patients.models import Appointment, Patient, Practice
from tests.fixtures import free_port, wait_for_port
from tests.peers import stop_process
from worklist.importing import import_records
from worklist.models import WorklistItem
from worklist.scu import WorklistQueryError, query_worklist

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("wlmscpfs"), reason="DCMTK not installed"),
]

PROVIDER_AE = "EXTWL"
ORTHANC_WORKLISTS_PLUGIN = "/usr/share/orthanc/plugins/libModalityWorklists.so"
DAY = dt.date(2030, 5, 6)


def write_item(
    folder: Path,
    accession: str,
    *,
    patient_id: str,
    name: str,
    birth_date: str = "",
    sex: str = "",
    date: str = "20300506",
    time: str = "090000",
    station: str = "VATECH",
    modality: str = "IO",
    description: str = "Bitewings",
    code: str = "",
    charset: str = "ISO_IR 192",
) -> dict:
    """One Scheduled Procedure Step as a ``.wl`` file, as an external RIS would keep it."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ModalityWorklistInformationFind
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SpecificCharacterSet = charset
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = ""
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    ds.PatientSex = sex
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = f"RP-{accession}"[:16]
    ds.RequestedProcedureDescription = description
    ds.RequestedProcedurePriority = ""
    if code:
        procedure = Dataset()
        procedure.CodeValue = code
        procedure.CodingSchemeDesignator = "CDT"
        procedure.CodeMeaning = description
        ds.RequestedProcedureCodeSequence = [procedure]
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = time
    step.Modality = modality
    step.ScheduledPerformingPhysicianName = "Gauthier^Marie"
    step.ScheduledProcedureStepDescription = description
    step.ScheduledProcedureStepID = f"SPS-{accession}"[:16]
    step.ScheduledStationName = ""
    step.ScheduledProcedureStepLocation = ""
    step.PreMedication = ""
    step.RequestedContrastAgent = ""
    ds.ScheduledProcedureStepSequence = [step]
    ds.save_as(folder / f"{accession or 'no-accession'}.wl", enforce_file_format=True)
    return {"study_instance_uid": ds.StudyInstanceUID, "step_id": step.ScheduledProcedureStepID}


def standard_items(folder: Path) -> dict[str, dict]:
    """Zoé Côté is a known chart; Amélie and Noémie are new; one item is outside the range
    and one has no accession number."""
    return {
        "ACC-1001": write_item(
            folder,
            "ACC-1001",
            patient_id="1001",
            name="Côté^Zoé",
            birth_date="19880314",
            sex="F",
            station="CARESTREAM",
            description="Bitewings",
            code="D0274",
        ),
        "ACC-2001": write_item(
            folder,
            "ACC-2001",
            patient_id="2001",
            name="Ste-Marie^Amélie",
            birth_date="19900203",
            sex="F",
            time="103000",
            station="PLANMECA",
            modality="PX",
            description="Panoramique",
            code="D0330",
        ),
        "ACC-2002": write_item(
            folder,
            "ACC-2002",
            patient_id="2002",
            name="Lefèbvre^Noémie",
            birth_date="19790921",
            sex="F",
            time="110000",
            station="SIRONA",
            description="Périapicale",
            code="D0220",
            charset="ISO_IR 100",
        ),
        "ACC-LATER": write_item(
            folder, "ACC-LATER", patient_id="1002", name="Bélanger^Étienne", date="20300509"
        ),
        "": write_item(folder, "", patient_id="1003", name="Lévesque^Geneviève", time="150000"),
    }


@dataclass
class Provider:
    port: int
    folder: Path  # the AE title's directory of .wl files
    server: DicomServer
    uids: dict[str, dict]


@pytest.fixture
def start_wlmscpfs(tmp_path: Path) -> Iterator[Callable[..., tuple[int, Path]]]:
    started: list[subprocess.Popen] = []

    def start(*options: str) -> tuple[int, Path]:
        root = tmp_path / f"worklists-{len(started)}"
        folder = root / PROVIDER_AE
        folder.mkdir(parents=True)
        (folder / "lockfile").touch()
        port = free_port()
        log = open(tmp_path / f"wlmscpfs-{port}.log", "wb")
        # -csk: answer in the character set of each file (UTF-8 or Latin-1).
        started.append(
            subprocess.Popen(
                ["wlmscpfs", "-s", "-csk", "-dfp", str(root), *options, str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()
        wait_for_port(port)
        return port, folder

    yield start
    for proc in started:
        stop_process(proc, timeout=5)


def register(practice: Practice, port: int, ae_title: str = PROVIDER_AE) -> DicomServer:
    return DicomServer.objects.create(
        practice=practice,
        name="RIS régional",
        ae_title=ae_title,
        host="127.0.0.1",
        port=port,
        allow_store=False,
        allow_find=True,
    )


@pytest.fixture
def provider(practice, start_wlmscpfs) -> Provider:
    port, folder = start_wlmscpfs()
    return Provider(port, folder, register(practice, port), standard_items(folder))


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def test_query_decodes_both_character_sets_and_honours_the_filters(provider):
    records = query_worklist(provider.server, date_from=DAY, date_to=DAY + dt.timedelta(days=1))

    by_accession = {r.accession_number: r for r in records}
    assert set(by_accession) == {"ACC-1001", "ACC-2001", "ACC-2002", ""}  # not ACC-LATER
    zoe, amelie, noemie = (by_accession[a] for a in ("ACC-1001", "ACC-2001", "ACC-2002"))
    assert (zoe.family_name, zoe.given_name) == ("Côté", "Zoé")  # ISO_IR 192
    assert (noemie.family_name, noemie.given_name) == ("Lefèbvre", "Noémie")  # ISO_IR 100
    assert noemie.step_description == "Périapicale"
    assert (amelie.scheduled_start, amelie.station_ae_title, amelie.modality) == (
        local(DAY, 10, 30),
        "PLANMECA",
        "PX",
    )
    assert (amelie.birth_date, amelie.sex, amelie.procedure_code) == (
        dt.date(1990, 2, 3),
        "F",
        "D0330",
    )
    assert amelie.study_instance_uid == provider.uids["ACC-2001"]["study_instance_uid"]
    assert amelie.step_id == "SPS-ACC-2001"
    assert amelie.performing_physician == "Gauthier^Marie"

    panoramic = query_worklist(provider.server, date_from=DAY, date_to=DAY, modality="PX")
    assert [r.accession_number for r in panoramic] == ["ACC-2001"]
    sirona = query_worklist(provider.server, date_from=DAY, date_to=DAY, station_ae="SIRONA")
    assert [r.accession_number for r in sirona] == ["ACC-2002"]
    later = query_worklist(
        provider.server, date_from=DAY + dt.timedelta(days=3), date_to=DAY + dt.timedelta(days=3)
    )
    assert [r.accession_number for r in later] == ["ACC-LATER"]


def import_day(provider: Provider, practice: Practice):
    records = query_worklist(provider.server, date_from=DAY, date_to=DAY)
    return import_records(practice=practice, server=provider.server, records=records)


def test_import_is_idempotent_and_a_reimport_updates_a_moved_item(practice, provider):
    charts_before = Patient.objects.filter(practice=practice).count()

    report = import_day(provider, practice)

    assert report.summary() == "3 created, 0 updated, 0 unchanged, 1 skipped"
    (skipped,) = [line for line in report.lines if line.outcome == "skipped"]
    assert "no accession number" in skipped.message
    imported = Appointment.objects.filter(practice=practice, external_ref__startswith="EXTWL:")
    assert imported.count() == 3
    zoe = imported.get(external_ref="EXTWL:ACC-1001")
    assert zoe.patient == Patient.objects.get(practice=practice, chart_number="1001")
    assert (zoe.start, zoe.operatory, zoe.procedure_code, zoe.needs_imaging) == (
        local(DAY, 9),
        "OP-1",  # CARESTREAM's operatory in the demo
        "D0274",
        True,
    )
    assert zoe.provider == "Marie Gauthier"
    noemie = Patient.objects.get(practice=practice, chart_number="2002")
    assert (noemie.family_name, noemie.given_name, noemie.birth_date) == (
        "Lefèbvre",
        "Noémie",
        dt.date(1979, 9, 21),
    )
    assert Patient.objects.filter(practice=practice).count() == charts_before + 2
    # The appointment's worklist item carries the provider's identifiers, so images made
    # from either worklist link exactly.
    item = WorklistItem.objects.get(appointment=zoe)
    assert (item.accession_number, item.study_instance_uid, item.scheduled_procedure_step_id) == (
        "ACC-1001",
        provider.uids["ACC-1001"]["study_instance_uid"],
        "SPS-ACC-1001",
    )

    again = import_day(provider, practice)
    assert again.summary() == "0 created, 0 updated, 3 unchanged, 1 skipped"
    assert imported.count() == 3

    # The provider moves Amélie's panoramic from 10:30 to 14:15.
    for path in provider.folder.glob("ACC-2001.wl"):
        path.unlink()
    write_item(
        provider.folder,
        "ACC-2001",
        patient_id="2001",
        name="Ste-Marie^Amélie",
        time="141500",
        station="PLANMECA",
        modality="PX",
        description="Panoramique",
        code="D0330",
    )
    moved = import_day(provider, practice)
    assert moved.summary() == "0 created, 1 updated, 2 unchanged, 1 skipped"
    assert imported.count() == 3
    amelie = imported.get(external_ref="EXTWL:ACC-2001")
    assert (amelie.start, amelie.end - amelie.start) == (
        local(DAY, 14, 15),
        dt.timedelta(minutes=30),
    )
    assert WorklistItem.objects.get(appointment=amelie).scheduled_start == local(DAY, 14, 15)


def test_management_command_dry_run_then_import(practice, provider, capsys):
    call_command(
        "import_worklist",
        "--server",
        PROVIDER_AE,
        "--from",
        "2030-05-06",
        "--to",
        "2030-05-06",
        "--dry-run",
    )
    out = capsys.readouterr().out
    assert "EXTWL: 3 created, 0 updated, 0 unchanged, 1 skipped (dry run: nothing saved)" in out
    assert "Noémie Lefèbvre (2002)" in out
    assert not Appointment.objects.filter(external_ref__startswith="EXTWL:").exists()
    assert not Patient.objects.filter(practice=practice, chart_number="2002").exists()

    call_command(
        "import_worklist",
        "--server",
        str(provider.server.pk),
        "--from",
        "2030-05-06",
        "--to",
        "2030-05-06",
    )
    assert "EXTWL: 3 created" in capsys.readouterr().out
    assert Appointment.objects.filter(external_ref__startswith="EXTWL:").count() == 3


def test_page_shows_the_items_and_imports_them(
    client, clinician_client, practice, provider, other_practice
):
    url = reverse("worklist_import")
    assert client.get(url).status_code == 302  # login required

    form = clinician_client.get(url)
    assert form.status_code == 200
    assert "RIS régional" in form.content.decode()

    query = {"server": provider.server.pk, "date_from": "2030-05-06", "date_to": "2030-05-06"}
    shown = clinician_client.get(url, query)
    page = shown.content.decode()
    assert shown.status_code == 200
    assert "Zoé Côté" in page and "Noémie Lefèbvre" in page and "Amélie Ste-Marie" in page
    assert not Appointment.objects.filter(external_ref__startswith="EXTWL:").exists()
    # The import button posts the same query again.
    for name, value in query.items():
        assert f'type="hidden" name="{name}" value="{value}"' in page

    done = clinician_client.post(url, query)
    assert done.status_code == 200
    assert "3 created, 0 updated, 0 unchanged, 1 skipped" in done.content.decode()
    assert Appointment.objects.filter(external_ref__startswith="EXTWL:").count() == 3

    # Another practice's provider is not among the choices.
    foreign = register(other_practice.practice, provider.port, ae_title="FOREIGNWL")
    refused = clinician_client.post(url, {**query, "server": foreign.pk})
    assert refused.status_code == 400
    assert Appointment.objects.filter(external_ref__startswith="FOREIGNWL:").count() == 0


@pytest.fixture
def scripted_provider() -> Iterator[Callable[..., int]]:
    """A pynetdicom MWL provider for the answers wlmscpfs cannot be made to give reliably
    (it closes the connection right after an A-ASSOCIATE-RJ, and aborts instead of sending a
    failure status)."""
    servers = []

    def start(*, handler=None, require_calling_aet: list[str] | None = None) -> int:
        scp = AE(ae_title=PROVIDER_AE)
        scp.add_supported_context(ModalityWorklistInformationFind)
        scp.require_calling_aet = require_calling_aet or []
        port = free_port()
        handlers = [(evt.EVT_C_FIND, handler)] if handler else []
        servers.append(scp.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers))
        return port

    yield start
    for server in servers:
        server.shutdown()


def test_failures_are_explained_in_plain_words(
    clinician_client, practice, start_wlmscpfs, scripted_provider
):
    # Nothing listens on the port.
    nobody = register(practice, free_port(), ae_title="NOBODY")
    with pytest.raises(
        WorklistQueryError, match=r"NOBODY at 127\.0\.0\.1:\d+ refused the connection"
    ):
        query_worklist(nobody, date_from=DAY, date_to=DAY, timeout=5)

    # The provider takes longer than we wait.
    port, folder = start_wlmscpfs("--sleep-before", "4")
    write_item(folder, "ACC-SLOW", patient_id="1001", name="Côté^Zoé")
    slow = register(practice, port)
    with pytest.raises(
        WorklistQueryError, match=r"^EXTWL at 127\.0\.0\.1:\d+ did not answer within 1 s$"
    ):
        query_worklist(slow, date_from=DAY, date_to=DAY, timeout=1)

    # The provider does not know us: rejected, with the reason, on the page too.
    rejecting = register(
        practice, scripted_provider(require_calling_aet=["SOMEONE-ELSE"]), ae_title="PICKY"
    )
    response = clinician_client.post(
        reverse("worklist_import"),
        {"server": rejecting.pk, "date_from": "2030-05-06", "date_to": "2030-05-06"},
    )
    assert response.status_code == 502
    assert (
        "rejected the association permanently: our calling AE title is not recognised"
        in response.content.decode()
    )
    assert not Appointment.objects.filter(external_ref__startswith="PICKY:").exists()


def test_a_failure_status_from_the_provider_is_reported_with_its_meaning(
    practice, scripted_provider
):
    def out_of_resources(event):
        refused = Dataset()
        refused.Status = 0xA700
        refused.ErrorComment = "disque plein"
        yield refused, None

    port = scripted_provider(handler=out_of_resources)
    with pytest.raises(WorklistQueryError) as failure:
        query_worklist(register(practice, port), date_from=DAY, date_to=DAY, timeout=5)
    assert str(failure.value) == (
        f"EXTWL at 127.0.0.1:{port} answered with status 0xA700 "
        "(Refused: Out of resources): disque plein"
    )


@pytest.mark.skipif(
    not (shutil.which("Orthanc") and Path(ORTHANC_WORKLISTS_PLUGIN).exists()),
    reason="Orthanc or its ModalityWorklists plugin not installed",
)
def test_orthanc_worklist_plugin_as_a_second_provider(practice, tmp_path):
    """The same items served by Orthanc's ModalityWorklists plugin (it answers in Latin-1)."""
    folder = tmp_path / "orthanc-worklists"
    folder.mkdir()
    uids = standard_items(folder)
    port = free_port()
    config = {
        "Name": "nexrel-test",
        "StorageDirectory": str(tmp_path / "orthanc-db"),
        "IndexDirectory": str(tmp_path / "orthanc-db"),
        "DicomAet": "ORTHANCWL",
        "DicomPort": port,
        "HttpServerEnabled": False,
        "HttpPort": free_port(),
        "DicomAlwaysAllowFindWorklist": True,
        "Plugins": [ORTHANC_WORKLISTS_PLUGIN],
        "Worklists": {"Enable": True, "Database": str(folder)},
    }
    (tmp_path / "orthanc.json").write_text(json.dumps(config))
    log = open(tmp_path / "orthanc.log", "wb")
    proc = subprocess.Popen(
        ["Orthanc", str(tmp_path / "orthanc.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        wait_for_port(port)
        server = register(practice, port, ae_title="ORTHANCWL")
        records = query_worklist(server, date_from=DAY, date_to=DAY, timeout=10)
        by_accession = {r.accession_number: r for r in records}
        assert set(by_accession) == {"ACC-1001", "ACC-2001", "ACC-2002", ""}
        assert by_accession["ACC-1001"].patient_name == "Côté^Zoé"
        assert by_accession["ACC-2002"].patient_name == "Lefèbvre^Noémie"
        assert by_accession["ACC-2001"].study_instance_uid == uids["ACC-2001"]["study_instance_uid"]

        report = import_records(practice=practice, server=server, records=records)
        assert report.summary() == "3 created, 0 updated, 0 unchanged, 1 skipped"
        again = import_records(practice=practice, server=server, records=records)
        assert again.summary() == "0 created, 0 updated, 3 unchanged, 1 skipped"
        assert Appointment.objects.filter(external_ref__startswith="ORTHANCWL:").count() == 3
    finally:
        stop_process(proc, timeout=10)
