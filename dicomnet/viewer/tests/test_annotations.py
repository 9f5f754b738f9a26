"""The viewer's annotations: the plain module (validation, one calibration per frame) and its
JSON endpoints (practice scoping, CSRF, audit), over real ingested instances."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from dicomnet.models import ImageAnnotation
from dicomnet.viewer import annotations as service
from dicomnet.viewer.selectors import viewer_series
from patients.models import AccessLog
from tests.dicom_samples import ingest_dataset, intraoral

LINE = {"toolName": "Length", "points": [[0, 0, 0], [10, 0, 0]], "length": 10.0, "unit": "mm"}


@pytest.fixture
def xray(practice, isolated_data):
    return ingest_dataset(practice, intraoral(PixelSpacing=[0.1, 0.1]))


def url(instance) -> str:
    return f"/viewer/api/instances/{instance.sop_instance_uid}/annotations"


def post(client: Client, path: str, body: dict, **extra):
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def test_create_rejects_what_cannot_be_drawn_again(xray, clinician):
    made = service.create_annotation(xray, author=clinician, kind="length", data=LINE)
    assert (made.practice_id, made.frame, made.data) == (xray.practice_id, 1, LINE)
    for bad, message in [
        ({"kind": "circle"}, "unknown kind"),
        ({"kind": "length", "frame": 2}, "frame must be a number from 1 to 1"),
        ({"kind": "length", "label": "x" * 201}, "label"),
        ({"kind": "length", "data": []}, "data must be a JSON object"),
        ({"kind": "length", "data": {"p": "x" * 20_000}}, "larger than"),
        ({"kind": "calibration", "data": {"mm_per_px": 0}}, "mm_per_px"),
    ]:
        with pytest.raises(service.AnnotationError, match=message):
            service.create_annotation(xray, author=clinician, **bad)


def test_a_frame_keeps_one_calibration(xray, clinician):
    for mm in (0.1, 0.12):
        service.create_annotation(
            xray, author=clinician, kind="calibration", data={"mm_per_px": mm}
        )
    [kept] = ImageAnnotation.objects.filter(kind="calibration")
    assert kept.data == {"mm_per_px": 0.12}


def test_update_changes_only_label_and_data(xray, clinician):
    made = service.create_annotation(xray, author=clinician, kind="arrow", label="a")
    service.update_annotation(made, changes={"label": "carie 36", "data": LINE})
    made.refresh_from_db()
    assert (made.label, made.data) == ("carie 36", LINE)
    with pytest.raises(service.AnnotationError, match="only label and data"):
        service.update_annotation(made, changes={"kind": "angle"})


def test_endpoints_create_list_change_and_delete(xray, clinician_client):
    created = post(clinician_client, url(xray), {"kind": "length", "label": "", "data": LINE})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    listed = clinician_client.get(url(xray)).json()["annotations"]
    assert [(a["id"], a["kind"], a["data"], a["author"]) for a in listed] == [
        (pk, "length", LINE, "clinician")
    ]
    changed = clinician_client.patch(
        f"/viewer/api/annotations/{pk}", json.dumps({"label": "36 MD"}), "application/json"
    )
    assert changed.json()["label"] == "36 MD"
    assert clinician_client.delete(f"/viewer/api/annotations/{pk}").status_code == 204
    assert not ImageAnnotation.objects.exists()
    actions = set(
        AccessLog.objects.filter(user__username="clinician").values_list("action", flat=True)
    )
    assert {
        "create_annotation",
        "view_annotations",
        "update_annotation",
        "delete_annotation",
    } <= actions


def test_a_bad_body_is_a_400_the_user_can_read(xray, clinician_client):
    response = post(clinician_client, url(xray), {"kind": "circle"})
    assert response.status_code == 400
    assert "unknown kind 'circle'" in response.json()["error"]
    bad_json = clinician_client.post(url(xray), "{", content_type="application/json")
    assert bad_json.json() == {"error": "the body is not JSON"}


def test_another_practice_sees_404(xray, clinician, other_practice, client_for):
    made = service.create_annotation(xray, author=clinician, kind="length", data=LINE)
    other = client_for(other_practice.user)
    assert other.get(url(xray)).status_code == 404
    assert other.get(url(xray)).json() == {"error": "no such image or annotation"}
    assert post(other, url(xray), {"kind": "length", "data": LINE}).status_code == 404
    patch = other.patch(f"/viewer/api/annotations/{made.pk}", "{}", "application/json")
    assert patch.status_code == 404
    assert other.delete(f"/viewer/api/annotations/{made.pk}").status_code == 404
    assert ImageAnnotation.objects.count() == 1


def test_login_and_csrf_are_required(xray, clinician):
    assert Client().get(url(xray)).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(clinician)
    assert post(strict, url(xray), {"kind": "length", "data": LINE}).status_code == 403
    strict.get("/")  # sets the csrftoken cookie, as the viewer page does
    token = strict.cookies["csrftoken"].value
    ok = post(strict, url(xray), {"kind": "length", "data": LINE}, HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 201


def test_the_viewer_page_describes_the_study_without_inline_script(xray, clinician_client):
    study = xray.study
    response = clinician_client.get(
        f"/viewer/studies/{study.study_instance_uid}/?instance={xray.sop_instance_uid}"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert '<script type="module" src="/static/viewer/dist/boot.js">' in html
    # No inline script: every script is a file of ours or the json_script data.
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    tags = re.findall(r"<script[^>]*>", html)
    assert all('src="/static/' in t or 'type="application/json"' in t for t in tags), tags
    assert [body for body, tag in zip(scripts, tags, strict=True) if "src=" in tag] == [
        "" for tag in tags if "src=" in tag
    ]
    config = response.context["viewer_config"]
    assert config["open"] == {
        "series": xray.series.series_instance_uid,
        "instance": xray.sop_instance_uid,
    }
    assert [s.series.pk for s in viewer_series(study)] == [xray.series.pk]
    assert AccessLog.objects.filter(action="view_study").exists()


def test_the_viewer_page_of_another_practice_is_404(xray, other_practice, client_for):
    other = client_for(other_practice.user)
    assert other.get(f"/viewer/studies/{xray.study.study_instance_uid}/").status_code == 404


def test_the_header_says_who_and_what_without_dangling_separators(practice, isolated_data):
    from nexrel.viewer import _header
    from patients.models import Patient

    bare = ingest_dataset(practice, intraoral(study_date="")).study
    assert _header(bare) == {
        "patient": {"name": "", "chart": ""},
        "linked": False,
        "details": ["IO"],
    }
    named = ingest_dataset(practice, intraoral(patient_name="Tremblay^Marie")).study
    named.modality, named.study_description = "CT\\IO", "Bitewings"
    assert _header(named)["patient"]["name"] == "Marie Tremblay"
    assert _header(named)["details"] == ["CT, IO", "Bitewings"]
    named.patient = Patient.objects.get(practice=practice, chart_number="1004")
    assert _header(named)["patient"] == {"name": "François Saint-Pierre", "chart": "1004"}
    assert _header(named)["linked"]
