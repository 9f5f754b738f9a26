"""Who may associate with the running listener: DCMTK echoscu and a pynetdicom SCU as peers."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from dicomnet.models import DicomServer, RefusedAssociation
from tests.fixtures import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("echoscu"), reason="DCMTK not installed"),
]

PERMANENT, SERVICE_USER = 0x01, 0x01
CALLING_AE_NOT_RECOGNISED, CALLED_AE_NOT_RECOGNISED = 0x03, 0x07


def echoscu(port: int, *, calling: str, called: str = "NEXREL-CRM") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["echoscu", "-v", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def associate(port: int, *, calling: str, called: str = "NEXREL-CRM"):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = 10
    return ae.associate("127.0.0.1", port, ae_title=called)


def reject_of(assoc) -> tuple[int, int, int]:
    assert assoc.is_rejected, "association was not rejected"
    rj = assoc.acceptor.primitive
    return rj.result, rj.result_source, rj.diagnostic


def test_registered_device_echoes(listener):
    proc, port = listener
    result = echoscu(port, calling="PLANMECA")
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr
    assert "rejected" not in proc.output()


def test_unknown_calling_ae_is_rejected_1_1_3_and_logged(listener):
    proc, port = listener
    assert echoscu(port, calling="INTRUDER").returncode != 0

    assoc = associate(port, calling="INTRUDER")
    assert reject_of(assoc) == (PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    wait_until(
        lambda: "calling AE 'INTRUDER' is not a registered device of practice" in proc.output(),
        timeout=5,
    )


def test_wrong_called_ae_is_rejected_1_1_7_and_logged(listener):
    proc, port = listener
    assoc = associate(port, calling="CARESTREAM", called="OTHER-CLINIC")
    assert reject_of(assoc) == (PERMANENT, SERVICE_USER, CALLED_AE_NOT_RECOGNISED)
    wait_until(lambda: "called AE 'OTHER-CLINIC' is not the AE title" in proc.output(), timeout=5)


def test_deactivated_device_is_rejected(listener):
    proc, port = listener
    assert echoscu(port, calling="SIRONA").returncode == 0  # active: accepted
    DicomServer.objects.filter(ae_title="SIRONA").update(is_active=False)

    assert echoscu(port, calling="SIRONA").returncode != 0
    assoc = associate(port, calling="SIRONA")
    assert reject_of(assoc) == (PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    expected = "calling AE 'SIRONA': DICOM device “Sirona Orthophos” (SIRONA) is deactivated."
    wait_until(lambda: expected in proc.output(), 5)


def test_host_check_rejects_other_addresses_and_accepts_the_registered_one(listener):
    proc, port = listener
    DicomServer.objects.filter(ae_title="VATECH").update(check_host=True, host="10.20.30.40")
    assoc = associate(port, calling="VATECH")
    assert reject_of(assoc) == (PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    wait_until(lambda: "registered at 10.20.30.40" in proc.output(), timeout=5)

    DicomServer.objects.filter(ae_title="VATECH").update(host="127.0.0.1")
    assoc = associate(port, calling="VATECH")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_refusals_are_recorded_once_per_peer_and_counted(listener, practice):
    """Each refusal the listener decides is counted on one row per (called, calling, peer)."""
    _, port = listener
    for _ in range(3):
        assert reject_of(associate(port, calling="INTRUDER"))[2] == CALLING_AE_NOT_RECOGNISED
    assert reject_of(associate(port, calling="CARESTREAM", called="OTHER-CLINIC"))
    wait_until(lambda: RefusedAssociation.objects.count() == 2, timeout=5)
    intruder = RefusedAssociation.objects.get(calling_ae="INTRUDER")
    assert (intruder.practice, intruder.called_ae, intruder.peer_address) == (
        practice,
        "NEXREL-CRM",
        "127.0.0.1",
    )
    assert intruder.count == 3
    assert "is not a registered device of practice" in intruder.reason
    unknown = RefusedAssociation.objects.get(called_ae="OTHER-CLINIC")
    assert unknown.practice is None and unknown.count == 1
