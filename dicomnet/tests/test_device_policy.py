"""One device policy: ``DicomServer.refusal(service)`` and ``.allowing(service)``.

Every SCP handler, SCU, API view, page and command asks these, so each refusal has one
wording (in the user's language; in English in the listener's log).
"""

from __future__ import annotations

import pytest
from django.utils import translation

from dicomnet.models import DeviceService, DicomServer
from dicomnet.net.access import device_refusal


@pytest.fixture
def carestream(practice) -> DicomServer:
    return DicomServer.objects.for_practice(practice).get(ae_title="CARESTREAM")


@pytest.mark.parametrize(
    ("service", "switch", "wording"),
    [
        (DeviceService.STORE, "allow_store", "Storing images (C-STORE) is not allowed"),
        (DeviceService.FIND, "allow_find", "Querying (C-FIND) is not allowed"),
        (DeviceService.MOVE, "allow_move", "Retrieving by C-MOVE is not allowed"),
        (DeviceService.GET, "allow_get", "Retrieving by C-GET is not allowed"),
        (DeviceService.WORKLIST, "allow_find", "The modality worklist (MWL C-FIND) is not"),
        (DeviceService.MPPS, "allow_store", "Procedure step reports (MPPS) is not allowed"),
    ],
)
def test_each_service_has_its_switch_and_one_wording(carestream, service, switch, wording):
    assert carestream.refusal(service) is None
    setattr(carestream, switch, False)
    refusal = carestream.refusal(service)
    assert refusal.startswith(wording)
    label = switch.replace("_", " ")
    assert refusal.endswith(f"DICOM device “Carestream CS 8100” (CARESTREAM): {label} is off.")


def test_a_deactivated_device_is_refused_everything(carestream):
    carestream.is_active = False
    expected = "DICOM device “Carestream CS 8100” (CARESTREAM) is deactivated."
    assert carestream.refusal() == expected
    assert {carestream.refusal(s) for s in DeviceService} == {expected}


def test_refusals_speak_french_by_default(carestream, settings):
    carestream.allow_move = False
    with translation.override("fr"):
        assert carestream.refusal(DeviceService.MOVE) == (
            "Récupération par C-MOVE : non autorisé pour l'appareil DICOM "
            "« Carestream CS 8100 » (CARESTREAM), autoriser le C-MOVE est désactivé."
        )


def test_log_lines_are_in_english_whatever_the_language(carestream):
    carestream.allow_store = False
    with translation.override("fr"):
        assert device_refusal(carestream, DeviceService.STORE).startswith("Storing images")
    assert device_refusal(None, DeviceService.FIND) == "the calling device was deleted from Nexrel"
    carestream.allow_store = True
    assert device_refusal(carestream, DeviceService.STORE) is None


def test_allowing_lists_the_active_devices_with_the_switch_on(practice, carestream):
    devices = DicomServer.objects.for_practice(practice)
    assert devices.allowing(DeviceService.MOVE).filter(pk=carestream.pk).exists()
    carestream.allow_move = False
    carestream.save()
    assert not devices.allowing(DeviceService.MOVE).filter(pk=carestream.pk).exists()
    assert devices.allowing(DeviceService.MOVE, DeviceService.GET).filter(pk=carestream.pk).exists()
    carestream.is_active = False
    carestream.save()
    assert not devices.allowing(DeviceService.GET).filter(pk=carestream.pk).exists()


def test_for_practice_scopes_to_one_practice(practice, other_practice):
    mine = DicomServer.objects.for_practice(practice)
    assert mine.exists()
    assert not mine.filter(practice=other_practice.practice).exists()
    assert DicomServer.objects.for_practice(other_practice.practice).get().ae_title == "PACSB"
    assert set(DicomServer.objects.for_practice(practice.pk)) == set(mine)
    assert not DicomServer.objects.for_practice(None).exists()
