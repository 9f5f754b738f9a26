"""End to end: QIDO-RS, WADO-RS and STOW-RS through a real DICOMweb client (dicomweb-client)
against the running web server, with a bearer token of the demo clinician made by
``manage.py api_token create`` (as a PACS or a script would), and logged in through the
login page as a browser would (the session, and its CSRF protection of STOW-RS)."""

from __future__ import annotations

import hashlib
import io
import re
from io import StringIO

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from django.core.management import call_command
from pydicom.uid import generate_uid

from dicomnet.ingest.pipeline import process_instance
from dicomnet.models import DicomInstance
from tests.dicom_samples import dicom_bytes, ingest_processed


def logged_in_session(base: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    done = session.post(
        f"{base}/accounts/login/",
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": "clinician",
            "password": "nexrel-demo",
        },
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
        allow_redirects=False,
    )
    assert done.status_code == 302, done.text[:500]
    assert "sessionid" in session.cookies
    return session


def sha256_of(ds: pydicom.Dataset) -> str:
    """The SHA-256 of a parsed object written back as it was read (preamble and file meta
    kept, nothing coerced): the received bytes when the client changed nothing."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return hashlib.sha256(out.getvalue()).hexdigest()


def command_token(username: str = "clinician") -> str:
    """A token made as an administrator would: the last line ``api_token create`` prints."""
    out = StringIO()
    call_command("api_token", "create", "--user", username, "--name", "e2e", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def token_session(token: str) -> requests.Session:
    """What a DICOMweb client is given: a session that sends the bearer token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def test_dicomweb_client_searches_studies_series_and_instances(web_server, practice):
    first = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", study_date="20240115",
        instance_number=1,
    )  # fmt: skip
    ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", study_date="20240115",
        instance_number=2, study_uid=first.study.study_instance_uid,
        series_uid=first.series.series_instance_uid,
    )  # fmt: skip
    ingest_processed(practice, patient_id="1002", patient_name="Bélanger^Étienne")
    study_uid = first.study.study_instance_uid
    series_uid = first.series.series_instance_uid

    anonymous = requests.get(f"{web_server}/dicomweb/studies", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    session = token_session(command_token())
    client = DICOMwebClient(f"{web_server}/dicomweb", session=session)
    studies = client.search_for_studies(search_filters={"PatientName": "cote*"})
    assert [s["0020000D"]["Value"] for s in studies] == [[study_uid]]
    assert studies[0]["00100010"]["Value"] == [{"Alphabetic": "Côté^Zoé"}]
    assert studies[0]["00201208"]["Value"] == [2]
    # RetrieveURL is built from the request's Host; dicomweb-client sends Host without the
    # port (web.py: ``headers['Host'] = self.host``), so only the path is compared here.
    [retrieve_url] = studies[0]["00081190"]["Value"]
    assert retrieve_url.startswith("http://127.0.0.1")
    assert retrieve_url.endswith(f"/dicomweb/studies/{study_uid}")

    series = client.search_for_series(study_instance_uid=study_uid)
    assert [s["0020000E"]["Value"] for s in series] == [[series_uid]]
    assert series[0]["00080060"]["Value"] == ["CT"]

    instances = client.search_for_instances(
        study_instance_uid=study_uid, series_instance_uid=series_uid
    )
    assert sorted(i["00200013"]["Value"][0] for i in instances) == [1, 2]

    every_series = client.search_for_series(search_filters={"PatientName": "BÉLANGER"})
    assert len(every_series) == 1
    assert every_series[0]["00100010"]["Value"] == [{"Alphabetic": "Bélanger^Étienne"}]

    assert client.search_for_studies(search_filters={"PatientName": "nobody*"}) == []
    paged = client.search_for_instances(limit=1, offset=1)
    assert len(paged) == 1

    # WADO-RS: the study's objects, as stored, and an instance's metadata.
    qido_uids = {
        i["00080018"]["Value"][0] for i in client.search_for_instances(study_instance_uid=study_uid)
    }
    retrieved = client.retrieve_study(study_uid)
    assert {str(ds.SOPInstanceUID) for ds in retrieved} == qido_uids
    assert len(qido_uids) == 2
    assert {str(ds.PatientName) for ds in retrieved} == {"Côté^Zoé"}
    in_series = client.retrieve_series(
        study_uid, series_uid, media_types=(("application/dicom", "*"),)
    )
    assert {str(ds.SOPInstanceUID) for ds in in_series} == qido_uids
    # Byte for byte: each object dicomweb-client parsed, written back unchanged, hashes to
    # the sha256 recorded when it was stored (study, series and instance retrieves).
    stored = {
        i.sop_instance_uid: i.sha256
        for i in DicomInstance.objects.filter(study__study_instance_uid=study_uid)
    }
    one = client.retrieve_instance(study_uid, series_uid, first.sop_instance_uid)
    for ds in [*retrieved, *in_series, one]:
        assert sha256_of(ds) == stored[str(ds.SOPInstanceUID)]
    metadata = client.retrieve_instance_metadata(study_uid, series_uid, first.sop_instance_uid)
    assert metadata["00100010"]["Value"] == [{"Alphabetic": "Côté^Zoé"}]
    assert metadata["7FE00010"]["BulkDataURI"].endswith(
        f"/instances/{first.sop_instance_uid}/bulkdata/7FE00010"
    )
    transcode = session.get(
        f"{web_server}/dicomweb/studies/{study_uid}",
        headers={
            "Accept": 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.4.50"
        },
        timeout=10,
    )
    assert transcode.status_code == 406

    # The browser's session searches too; a revoked token no longer does.
    by_session = logged_in_session(web_server).get(f"{web_server}/dicomweb/studies", timeout=10)
    assert by_session.status_code == 200
    call_command("api_token", "revoke", session.headers["Authorization"].split()[1][:12],
                 stdout=StringIO())  # fmt: skip
    revoked = session.get(f"{web_server}/dicomweb/studies", timeout=10)
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["WWW-Authenticate"]


def csrf_session(base: str) -> requests.Session:
    """A logged-in session that sends Django's CSRF token, as a page's script would."""
    session = logged_in_session(base)
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    session.headers["Referer"] = f"{base}/"
    return session


def test_dicomweb_client_stores_then_finds_instances(web_server, practice):
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [
        pydicom.dcmread(
            io.BytesIO(
                dicom_bytes(
                    patient_id="1001",
                    patient_name="Côté^Zoé",
                    study_uid=study_uid,
                    series_uid=series_uid,
                    instance_number=n,
                )  # fmt: skip
            )
        )
        for n in (1, 2)
    ]
    sop_uids = {str(ds.SOPInstanceUID) for ds in datasets}

    without_token = requests.Session()
    without_token.cookies.update(logged_in_session(web_server).cookies)
    refused = DICOMwebClient(f"{web_server}/dicomweb", session=without_token)
    try:
        refused.store_instances(datasets)
        raise AssertionError("a POST without the CSRF token was taken")
    except requests.HTTPError as exc:
        assert exc.response.status_code == 403
    assert not DicomInstance.objects.exists()

    # A token client sends no CSRF token: it needs none.
    client = DICOMwebClient(f"{web_server}/dicomweb", session=token_session(command_token()))
    result = client.store_instances(datasets)
    assert {str(r.ReferencedSOPInstanceUID) for r in result.ReferencedSOPSequence} == sop_uids
    assert "FailedSOPSequence" not in result
    assert str(result.RetrieveURL).endswith(f"/dicomweb/studies/{study_uid}")

    # Durable when answered; the pipeline (a django-q2 worker in production) runs here.
    stored = DicomInstance.objects.filter(sop_instance_uid__in=sop_uids)
    assert stored.count() == 2
    for instance in stored:
        assert process_instance(instance.pk) == "processed"

    found = client.search_for_instances(study_instance_uid=study_uid)
    assert {i["00080018"]["Value"][0] for i in found} == sop_uids
    # A resend, by the session with its CSRF token: stored, no new row.
    browser = DICOMwebClient(f"{web_server}/dicomweb", session=csrf_session(web_server))
    again = browser.store_instances(datasets)
    assert len(again.ReferencedSOPSequence) == 2
    assert DicomInstance.objects.filter(sop_instance_uid__in=sop_uids).count() == 2


def test_dicomweb_client_retrieves_rendered_images_and_a_thumbnail(web_server, practice):
    """WADO-RS rendered (PS3.18 §10.4.1.1.3) through dicomweb-client, and the thumbnail (which
    dicomweb-client has no call for) through its session: images Pillow decodes, sized."""
    from PIL import Image

    from tests.dicom_samples import ingest_dataset, intraoral

    found = ingest_dataset(practice, intraoral(patient_id="1001", patient_name="Côté^Zoé", size=96))
    study, series = found.study.study_instance_uid, found.series.series_instance_uid
    session = token_session(command_token())
    client = DICOMwebClient(f"{web_server}/dicomweb", session=session)

    def decoded(data: bytes, fmt: str) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == fmt
        return image

    jpeg = client.retrieve_instance_rendered(study, series, found.sop_instance_uid)
    assert decoded(jpeg, "JPEG").size == (96, 96)
    png = client.retrieve_instance_rendered(
        study,
        series,
        found.sop_instance_uid,
        media_types=("image/png",),
        params={"viewport": "48,48", "window": "2000,3600,linear"},
    )
    assert decoded(png, "PNG").size == (48, 48)
    frame = client.retrieve_instance_frames_rendered(
        study, series, found.sop_instance_uid, frame_numbers=[1], media_types=("image/png",)
    )
    assert decoded(frame, "PNG").size == (96, 96)
    whole = client.retrieve_series_rendered(study, series)
    assert decoded(whole, "JPEG").size == (96, 96)

    thumb = session.get(
        f"{web_server}/dicomweb/studies/{study}/series/{series}/thumbnail",
        params={"viewport": "64,64"},
        headers={"Accept": "image/png"},
        timeout=10,
    )
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/png"
    assert decoded(thumb.content, "PNG").size == (64, 64)


def test_dicomweb_client_retrieves_frames_as_stored_and_decoded_and_bulk_data(web_server, practice):
    """WADO-RS frames (PS3.18 §10.4.1.1.2) in the stored syntax (a JPEG 2000 object: the
    codestream's bytes) and decoded (native little endian), and a BulkDataURI of the
    metadata, through dicomweb-client with a token."""
    from pathlib import Path

    import numpy as np
    from pydicom.data import get_testdata_file
    from pydicom.encaps import generate_frames
    from pydicom.pixels import pixel_array

    from tests.dicom_samples import ingest_bytes

    path = get_testdata_file("MR_small_jp2klossless.dcm")
    ds = pydicom.dcmread(path)
    found = ingest_bytes(practice, Path(path).read_bytes())
    study, series = found.study.study_instance_uid, found.series.series_instance_uid
    client = DICOMwebClient(f"{web_server}/dicomweb", session=token_session(command_token()))

    [stored] = client.retrieve_instance_frames(
        study, series, found.sop_instance_uid, frame_numbers=[1],
        media_types=(("image/jp2", "1.2.840.10008.1.2.4.90"),),
    )  # fmt: skip
    assert stored == next(generate_frames(ds.PixelData, number_of_frames=1))

    [decoded] = client.retrieve_instance_frames(
        study, series, found.sop_instance_uid, frame_numbers=[1],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
    )  # fmt: skip
    expected = pixel_array(ds, raw=True)
    assert np.array_equal(np.frombuffer(decoded, "<i2").reshape(expected.shape), expected)

    metadata = client.retrieve_instance_metadata(study, series, found.sop_instance_uid)
    bulk = client.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"].replace(
        "http://127.0.0.1/", f"{web_server}/"
    ))  # fmt: skip
    assert bulk == [ds.PixelData]
