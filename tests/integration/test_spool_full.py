"""The spool's disk full under a running listener (issue 11, fault tests).

The spool is a tmpfs of a few MB, so the disk really runs out. An object that does not fit
while it arrives (ENOSPC), and one that fits but leaves less than ``NEXREL_SPOOL_MIN_FREE_MB``,
are both answered 0xA700 with the reason in the log, and leave no byte behind. The listener
goes on: C-ECHO, and the same association's next C-STORE once space is freed. The spool_low
alert opens and tells the practice admins, and resolves once space is back.
"""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from dicomnet import alerts
from dicomnet.dimse import status
from dicomnet.models import DicomInstance, OpsAlert
from nexrel.ops import check_spool
from patients.models import Notification
from tests.dicom_samples import intraoral
from tests.integration import scu

pytestmark = [pytest.mark.integration]

SPOOL_MB = 12  # the big object stored, still more than twice the headroom free
MIN_FREE_MB = 2
MiB = 1024 * 1024


def _fill(path, leave_bytes: int) -> None:
    """Write a filler file until ``leave_bytes`` are free on the spool's disk."""
    import shutil

    free = shutil.disk_usage(path.parent).free
    with open(path, "wb") as out:
        out.write(b"\0" * (free - leave_bytes))


def _files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def test_full_spool_refuses_with_a700_and_the_listener_carries_on(
    small_spool, listener_factory, settings, practice
):
    spool = small_spool(SPOOL_MB)
    listener, port = listener_factory(env={"NEXREL_SPOOL_MIN_FREE_MB": str(MIN_FREE_MB)})
    settings.NEXREL_SPOOL_MIN_FREE_MB = MIN_FREE_MB  # the alerts and /health/, here
    study = generate_uid()
    big = intraoral(patient_id="1001", study_uid=study, size=1448, seed=1)  # 4 MiB of pixels
    small = intraoral(patient_id="1001", study_uid=study, size=724, seed=2)  # 1 MiB
    filler = spool / "filler"
    _fill(filler, leave_bytes=int(2.6 * MiB))

    # 1. One association: the big object runs out of disk while it arrives, the small one
    #    fits but would leave less than the headroom. Both 0xA700, nothing kept.
    held, sent = scu.associate(port, {str(big.SOPClassUID)})
    assert held.is_established
    assert scu.store_on(held, [big, small], sent).statuses == [status.OUT_OF_RESOURCES] * 2
    output = listener.output()
    assert "refused with 0xA700: disk full while receiving" in output
    assert f"below NEXREL_SPOOL_MIN_FREE_MB={MIN_FREE_MB}" in output
    assert _files(spool / "tmp") == []  # no partial file
    assert _files(spool / "objects") == []
    assert not DicomInstance.objects.exists()

    # 2. The listener carries on: it answers C-ECHO.
    assert scu.echo(port) == status.SUCCESS
    assert listener.proc is not None and listener.proc.poll() is None

    # 3. Fuller still, below the alert's NEXREL_ALERT_SPOOL_FREE_PERCENT (10): the alert
    #    opens and the practice admins are told; /health/ fails its spool check.
    _fill(spool / "filler-2", leave_bytes=int(0.4 * MiB))
    settings.NEXREL_ALERTS_ENABLED = True
    assert not check_spool().ok
    assert alerts.evaluate()["opened"] >= 1
    alert = OpsAlert.objects.get(rule="spool_low", resolved_at=None)
    assert "spool disk" in alert.message and alert.values["percent"] < 10
    notice = Notification.objects.get(practice=practice, params__alert="spool_low")
    assert notice.for_admins and notice.params["state"] == "firing"

    # 4. Space freed: the same association stores the big object; the alert resolves.
    filler.unlink()
    (spool / "filler-2").unlink()
    assert scu.store_on(held, [big], scu.Sent()).statuses == [status.SUCCESS]
    held.release()
    assert DicomInstance.objects.get().sop_instance_uid == str(big.SOPInstanceUID)
    assert len(_files(spool / "objects")) == 1
    assert alerts.evaluate()["resolved"] >= 1
    assert OpsAlert.objects.get(rule="spool_low").resolved_at is not None
