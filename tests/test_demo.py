"""seed_demo's radiographs (nexrel/demo_images.py): each demo practice holds its own images,
received through the ingest path (previews, its patients, mounts placed by tooth codes);
clinician2 sees its practice's and not the first's; seeding again adds nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dicomnet.models import DicomInstance, DicomStudy, Mount, MountPlacement
from nexrel.demo import SECOND_PRACTICE_AE, seed_demo
from patients.models import Notification, Patient, User

pytestmark = pytest.mark.django_db


def _studies(practice) -> dict[tuple[str, str], DicomStudy]:
    """The practice's studies by (chart number, modality)."""
    studies = DicomStudy.objects.for_practice(practice).select_related("patient")
    return {(s.patient.chart_number, s.modality): s for s in studies}


def test_each_practice_has_its_radiographs_linked_to_its_own_patients():
    first = seed_demo()
    second = User.objects.get(username="clinician2").practice
    assert second.ae_title == SECOND_PRACTICE_AE

    for practice, chart in ((first, "1001"), (second, "2001")):
        studies = _studies(practice)
        assert set(studies) == {(chart, "IO"), (chart, "PX")}
        for study in studies.values():
            assert study.patient.practice_id == practice.pk  # matched within the practice
            assert study.status == DicomStudy.Status.PROCESSED
        bitewings, panoramic = studies[(chart, "IO")], studies[(chart, "PX")]
        assert (bitewings.instance_count, panoramic.instance_count) == (4, 1)
        for instance in DicomInstance.objects.filter(study__practice=practice):
            assert instance.state == DicomInstance.State.PROCESSED
            assert instance.thumbnail_key and instance.preview_key, instance.preview_error
            assert instance.analysis["exposure_check"]["verdict"] == "ok"
        pano = panoramic.instances.get()
        assert (pano.sop_class_uid, pano.rows, pano.columns) == (
            "1.2.840.10008.5.1.4.1.1.1.1",
            500,
            1000,
        )

        # The four bitewings in the "4 bitewings" mount, each in the slot of its teeth.
        mount = Mount.objects.get(study=bitewings)
        assert mount.template.key == "bitewings-4"
        slots = {s.position: set(s.teeth) for s in mount.template.slots.all()}
        placements = list(mount.placements.select_related("instance"))
        assert len(placements) == 4
        for placement in placements:
            teeth = set(placement.instance.dental["teeth"])
            assert teeth and teeth <= slots[placement.position], placement.position

    # The second patient's mouth lacks its wisdom teeth: its bitewings do not name them.
    roy = _studies(second)[("2001", "IO")]
    named = {t for i in roy.instances.all() for t in i.dental["teeth"]}
    assert named.isdisjoint({"18", "28", "38", "48"}) and {"16", "46", "26", "36"} <= named


def test_clinician2_sees_its_practices_images_and_not_the_first_practices(client_for):
    first = seed_demo()
    clinician2 = User.objects.get(username="clinician2")
    client = client_for(clinician2)
    own = DicomInstance.objects.filter(study__practice=clinician2.practice)
    others = DicomInstance.objects.filter(study__practice=first)
    assert own.count() == 5 and others.count() == 5

    listed = client.get(reverse("api_dental_studies")).json()
    own_studies = DicomStudy.objects.for_practice(clinician2.practice)
    assert {s["id"] for s in listed["results"]} == set(own_studies.values_list("pk", flat=True))

    roy = Patient.objects.for_practice(clinician2.practice).get(chart_number="2001")
    chart = client.get(reverse("patient_detail", args=[roy.pk]))
    assert chart.status_code == 200
    assert chart.content.count(b'<img class="thumb"') == 5
    for instance in own:
        thumbnail = client.get(reverse("instance_image", args=[instance.pk, "thumbnail"]))
        assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"

    zoe = Patient.objects.for_practice(first).get(chart_number="1001")
    assert client.get(reverse("patient_detail", args=[zoe.pk])).status_code == 404
    for instance in others:
        thumbnail = client.get(reverse("instance_image", args=[instance.pk, "thumbnail"]))
        assert thumbnail.status_code == 404


def test_seeding_again_adds_no_image():
    def state() -> dict:
        instances = DicomInstance.objects.order_by("sop_instance_uid")
        return {
            "instances": list(instances.values_list("sop_instance_uid", "version", "sha256")),
            "studies": DicomStudy.objects.count(),
            "mounts": Mount.objects.filter(study__isnull=False).count(),
            "placements": sorted(MountPlacement.objects.values_list("instance_id", "position")),
            "notices": Notification.objects.filter(study__isnull=False).count(),
        }

    seed_demo()
    before = state()
    assert len(before["instances"]) == 10
    seed_demo()
    assert state() == before
