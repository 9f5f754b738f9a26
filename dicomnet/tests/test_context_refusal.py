"""Per-device services refused at association time (dicomnet.net.access.refused_syntaxes):
the contexts of every service the device may not use, and only those."""

from __future__ import annotations

from pynetdicom.sop_class import (
    CTImageStorage,
    DigitalIntraOralXRayImageStorageForPresentation,
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from dicomnet.models import DeviceService, DicomServer
from dicomnet.net.access import refused_syntaxes, services_of_context

ALL = [
    str(uid)
    for uid in (
        Verification,
        DigitalIntraOralXRayImageStorageForPresentation,
        CTImageStorage,
        ModalityWorklistInformationFind,
        ModalityPerformedProcedureStep,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
        PatientRootQueryRetrieveInformationModelGet,
    )
]


def test_each_context_names_its_service():
    assert services_of_context(str(Verification)) == set()
    assert services_of_context(str(CTImageStorage)) == {DeviceService.STORE, DeviceService.GET}
    assert services_of_context(str(ModalityWorklistInformationFind)) == {DeviceService.WORKLIST}
    assert services_of_context(str(StudyRootQueryRetrieveInformationModelMove)) == {
        DeviceService.MOVE
    }


def test_a_sensor_that_only_stores(practice):
    sensor = DicomServer(
        practice=practice,
        name="Capteur",
        ae_title="SENSOR",
        allow_store=True,
        allow_find=False,
        allow_move=False,
        allow_get=False,
    )
    refused = refused_syntaxes(sensor, ALL)
    assert set(refused) == {
        str(ModalityWorklistInformationFind),
        str(StudyRootQueryRetrieveInformationModelFind),
        str(StudyRootQueryRetrieveInformationModelMove),
        str(PatientRootQueryRetrieveInformationModelGet),
    }
    assert "allow move is off" in refused[str(StudyRootQueryRetrieveInformationModelMove)]


def test_storage_contexts_stay_for_a_device_that_may_only_c_get(practice):
    viewer = DicomServer(
        practice=practice, name="Poste", ae_title="VIEWER", allow_store=False, allow_get=True
    )
    refused = refused_syntaxes(viewer, ALL)
    assert str(CTImageStorage) not in refused  # its C-GET's C-STOREs come back on them
    assert str(PatientRootQueryRetrieveInformationModelGet) not in refused
    assert str(ModalityPerformedProcedureStep) in refused  # MPPS goes with allow store


def test_a_deactivated_device_keeps_only_verification(practice):
    gone = DicomServer(practice=practice, name="Vieux", ae_title="OLD", is_active=False)
    assert set(refused_syntaxes(gone, ALL)) == set(ALL) - {str(Verification)}
