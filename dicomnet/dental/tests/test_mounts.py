"""Placing images in mounts (by teeth, by order), choosing the template, and recording every
change a clinician makes."""

from __future__ import annotations

import pytest

from dicomnet.dental import mounts
from dicomnet.dental.mounts import ImageSpec, MountError, SlotSpec, plan
from dicomnet.models import DicomInstance, Mount, MountTemplate
from patients.models import AuditEvent, Patient
from tests import dental_samples, dicom_samples

FMX_TEETH = dental_samples.fmx_teeth()


def fmx_slots() -> list[SlotSpec]:
    views = ["periapical"] * 7 + ["bitewing"] * 4 + ["periapical"] * 7
    return [
        SlotSpec(n, view, frozenset(teeth))
        for n, (view, teeth) in enumerate(zip(views, FMX_TEETH, strict=True), start=1)
    ]


# -- the rule, on plain values -----------------------------------------------------------


def test_images_with_teeth_go_to_the_slot_of_their_teeth_whatever_the_order():
    images = [
        ImageSpec(id=100 + n, teeth=tuple(FMX_TEETH[position - 1]), order=(n,))
        for n, position in enumerate(dental_samples.SEND_ORDER)
    ]
    placed, left = plan(fmx_slots(), images)
    assert left == []
    assert placed == {100 + n: p for n, p in enumerate(dental_samples.SEND_ORDER)}


def test_a_periapical_of_molars_goes_to_the_periapical_slot_not_the_bitewing():
    placed, _ = plan(fmx_slots(), [ImageSpec(1, ("16", "17"))])
    assert placed == {1: 1}
    placed, _ = plan(fmx_slots(), [ImageSpec(1, ("16", "17", "46", "47"))])
    assert placed == {1: 8}  # both jaws: the bitewing


def test_images_without_teeth_fill_free_slots_in_acquisition_order():
    images = [ImageSpec(7, order=("20240102103000",)), ImageSpec(3, order=("20240102101000",))]
    placed, left = plan(fmx_slots(), images, taken=[1])
    assert placed == {3: 2, 7: 3} and left == []


def test_toothed_images_take_their_slots_before_the_others_fill_in():
    images = [ImageSpec(1, order=("1",)), ImageSpec(2, ("18", "17", "16"), order=("2",))]
    placed, _ = plan(fmx_slots(), images)
    assert placed == {2: 1, 1: 2}


def test_images_past_the_last_slot_are_left_over():
    slots = [SlotSpec(1), SlotSpec(2)]
    placed, left = plan(slots, [ImageSpec(n, order=(n,)) for n in range(3)])
    assert placed == {0: 1, 1: 2} and [i.id for i in left] == [2]


# -- on the database, through the pipeline ------------------------------------------------


@pytest.fixture
def patient(practice) -> Patient:
    return Patient.objects.create(
        practice=practice, chart_number="M-1", family_name="Molaire", given_name="Mia"
    )


fmx_appointment = dental_samples.fmx_appointment


def test_an_fmx_appointment_gets_an_fmx_mount_and_every_image_its_slot(practice, patient):
    appointment = fmx_appointment(practice, patient)
    mount = Mount.objects.get(appointment=appointment)
    assert (mount.template.key, mount.expected_images, mount.study) == ("fmx-18", 18, None)
    uid = appointment.worklist_item.study_instance_uid
    for ds in dental_samples.fmx_series(study_uid=uid, patient_id="M-1"):
        dicom_samples.ingest_dataset(practice, ds)
    mount.refresh_from_db()
    assert mount.study.study_instance_uid == uid
    placements = {p.position: p.instance for p in mount.placements.select_related("instance")}
    assert sorted(placements) == list(range(1, 19))
    for position, instance in placements.items():
        assert instance.dental["teeth"] == FMX_TEETH[position - 1]
    assert mount.changes.filter(action="place", user=None).count() == 18


def test_a_study_without_appointment_gets_the_template_of_its_image_count(practice):
    uid = "1.2.826.0.1.3680043.8.498.777"
    first = dicom_samples.ingest_dataset(practice, dicom_samples.intraoral(study_uid=uid))
    mount = Mount.objects.get(study=first.study)
    assert mount.template.key == "free" and mount.placements.count() == 1
    for n in (2, 3, 4):
        dicom_samples.ingest_dataset(
            practice, dicom_samples.intraoral(study_uid=uid, instance_number=n)
        )
    mount.refresh_from_db()
    assert mount.template.key == "bitewings-4"
    by_position = dict(mount.placements.values_list("position", "instance__instance_number"))
    assert by_position == {1: 1, 2: 2, 3: 3, 4: 4}  # no teeth: acquisition order


def test_ct_images_get_no_mount(practice):
    instance = dicom_samples.ingest_processed(practice, patient_id="X", patient_name="X^Y")
    assert not Mount.objects.filter(study=instance.study).exists()


# -- clinicians' changes -----------------------------------------------------------------


@pytest.fixture
def bitewings(practice):
    uid = "1.2.826.0.1.3680043.8.498.778"
    for n in (1, 2, 3, 4):
        dicom_samples.ingest_dataset(
            practice, dicom_samples.intraoral(study_uid=uid, instance_number=n)
        )
    return Mount.objects.get(study__study_instance_uid=uid)


def _at(mount: Mount) -> dict[int, int]:
    return dict(mount.placements.values_list("position", "instance__instance_number"))


def test_every_change_is_recorded_with_who_and_when(bitewings, practice_admin):
    mount = bitewings
    first, second = (
        DicomInstance.objects.get(study=mount.study, instance_number=n) for n in (1, 2)
    )
    mounts.move(mount, first.pk, 2, user=practice_admin)  # onto the second: they swap
    assert _at(mount) == {1: 2, 2: 1, 3: 3, 4: 4}
    mounts.rotate(mount, first.pk, 90, user=practice_admin)
    mounts.rotate(mount, first.pk, 270, user=practice_admin)
    mounts.flip(mount, second.pk, user=practice_admin)
    mounts.remove(mount, second.pk, user=practice_admin)
    assert _at(mount) == {2: 1, 3: 3, 4: 4}
    mounts.move(mount, second.pk, 1, user=practice_admin)  # back in, from outside
    changes = list(mount.changes.exclude(user=None))
    assert [(c.action, c.instance_id, c.from_position, c.to_position) for c in changes] == [
        ("swap", first.pk, 1, 2),
        ("rotate", first.pk, 2, 2),
        ("rotate", first.pk, 2, 2),
        ("flip", second.pk, 1, 1),
        ("remove", second.pk, 1, None),
        ("move", second.pk, None, 1),
    ]
    assert all(c.user == practice_admin and c.at is not None for c in changes)
    assert changes[2].detail == {"from": 90, "to": 0}
    mount.refresh_from_db()
    assert mount.edited
    # And in the audit trail, with the patient and the study.
    events = AuditEvent.objects.filter(what__startswith="mount_").order_by("id")
    assert [e.what for e in events] == [f"mount_{c.action}" for c in changes]
    assert {(e.user_id, e.patient_id, e.study_uid) for e in events} == {
        (
            practice_admin.pk,
            getattr(mount.study.patient, "pk", None),
            mount.study.study_instance_uid,
        )
    }


def test_an_image_taken_out_stays_out_and_an_edited_mount_keeps_its_template(
    bitewings, practice, practice_admin
):
    mount = bitewings
    third = DicomInstance.objects.get(study=mount.study, instance_number=3)
    mounts.remove(mount, third.pk, user=practice_admin)
    dicom_samples.ingest_dataset(
        practice,
        dicom_samples.intraoral(study_uid=mount.study.study_instance_uid, instance_number=5),
    )
    mount.refresh_from_db()
    assert mount.template.key == "bitewings-4"  # edited: five images don't re-pick it
    assert _at(mount) == {1: 1, 2: 2, 3: 5, 4: 4}


def test_changes_the_mount_cannot_take_are_refused(bitewings, practice_admin):
    first = DicomInstance.objects.get(study=bitewings.study, instance_number=1)
    with pytest.raises(MountError):
        mounts.move(bitewings, first.pk, 9, user=practice_admin)
    with pytest.raises(MountError):
        mounts.rotate(bitewings, first.pk, 45, user=practice_admin)
    assert not bitewings.changes.exclude(user=None).exists()


def test_the_seeded_templates(db):
    counts = {t.key: t.slots.count() for t in MountTemplate.objects.all()}
    assert counts == {
        "fmx-18": 18,
        "fmx-20": 20,
        "bitewings-4": 4,
        "bitewings-2": 2,
        "vertical-bitewings-4": 4,
        "anterior-periapicals": 6,
        "comparison": 2,
        "photo-grid": 9,
        "free": 0,
    }
