"""End to end: Orthanc's DICOMweb plugin (Debian's ``orthanc-dicomweb``) with Nexrel as a
remote DICOMweb server (``DicomWeb.Servers``), authenticated by a bearer token that
``manage.py api_token create`` made. Through Orthanc's REST routes
``/dicom-web/servers/nexrel/...`` it lists Nexrel's studies (QIDO-RS) and retrieves one
(WADO-RS) into its own store: the same instances, byte for byte."""

from __future__ import annotations

import hashlib
import json
import urllib.error
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from dicomnet.models import DicomInstance
from patients.models import AccessLog
from tests.dicom_samples import ingest_processed
from tests.orthanc import DICOMWEB_PLUGIN, Orthanc


def command_token() -> str:
    out = StringIO()
    call_command("api_token", "create", "--user", "clinician", "--name", "Orthanc", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def stored_sha256(instance: DicomInstance) -> str:
    with default_storage.open(instance.storage_key, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def with_nexrel(orthanc_factory, web_server: str, token: str) -> Orthanc:
    return orthanc_factory(
        Plugins=[DICOMWEB_PLUGIN],
        DicomWeb={
            "Enable": True,
            "Root": "/dicom-web/",
            "Servers": {
                "nexrel": {
                    "Url": f"{web_server}/dicomweb/",
                    "HttpHeaders": {"Authorization": f"Bearer {token}"},
                }
            },
        },
    )


def call(orthanc: Orthanc, path: str, body: dict):
    """A POST to Orthanc's REST API; on an HTTP error, fail with Orthanc's answer and log."""
    try:
        return orthanc.request("POST", path, json_body=body)
    except urllib.error.HTTPError as exc:
        pytest.fail(f"{path}: {exc.code} {exc.read()[:2000]!r}\n{orthanc.log()[-4000:]}")


def test_orthanc_lists_and_retrieves_a_nexrel_study(web_server, practice, orthanc_factory):
    first = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", instance_number=1
    )
    study = first.study.study_instance_uid
    second = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", instance_number=2,
        study_uid=study, series_uid=first.series.series_instance_uid,
    )  # fmt: skip
    other = ingest_processed(practice, patient_id="1002", patient_name="Bélanger^Étienne")
    orthanc = with_nexrel(orthanc_factory, web_server, command_token())
    assert orthanc.request("GET", "/dicom-web/servers") == ["nexrel"]

    # QIDO-RS through Orthanc: GET {Url}studies, as Nexrel answers it (DICOM JSON).
    studies = call(orthanc, "/dicom-web/servers/nexrel/get", {"Uri": "/studies"})
    if isinstance(studies, (bytes, str)):
        studies = json.loads(studies)
    assert {s["0020000D"]["Value"][0] for s in studies} == {
        study,
        other.study.study_instance_uid,
    }
    series = call(orthanc, "/dicom-web/servers/nexrel/get", {"Uri": f"/studies/{study}/series"})
    assert [s["0020000E"]["Value"][0] for s in series] == [first.series.series_instance_uid]

    # WADO-RS through Orthanc: the study into Orthanc's own store.
    assert orthanc.request("GET", "/instances") == []
    call(orthanc, "/dicom-web/servers/nexrel/retrieve", {"Resources": [{"Study": study}]})
    held = orthanc.request("GET", "/instances")
    assert len(held) == 2
    by_uid = {}
    for orthanc_id in held:
        tags = orthanc.request("GET", f"/instances/{orthanc_id}/simplified-tags")
        by_uid[tags["SOPInstanceUID"]] = orthanc_id
    assert set(by_uid) == {first.sop_instance_uid, second.sop_instance_uid}
    for instance in (first, second):
        received = orthanc.download(f"/instances/{by_uid[instance.sop_instance_uid]}/file")
        assert hashlib.sha256(received).hexdigest() == stored_sha256(instance)

    # Orthanc acted as the token's user: in the access log as the clinician.
    actions = set(
        AccessLog.objects.filter(user__username="clinician").values_list("action", flat=True)
    )
    assert {"dicomweb_search", "dicomweb_retrieve"} <= actions


def test_orthanc_with_a_revoked_token_is_refused(web_server, practice, orthanc_factory):
    ingest_processed(practice, patient_id="1001", patient_name="Côté^Zoé")
    token = command_token()
    call_command("api_token", "revoke", token[:12], stdout=StringIO())
    orthanc = with_nexrel(orthanc_factory, web_server, token)
    with pytest.raises(urllib.error.HTTPError):
        orthanc.request("POST", "/dicom-web/servers/nexrel/get", json_body={"Uri": "/studies"})
    assert orthanc.request("GET", "/instances") == []
