"""A pynetdicom SCU for the fault tests: what the listener answered to each object sent.

Unlike storescu's log, the answer of every object is a value: its DIMSE status, or None when
none came (the association was rejected, aborted or timed out before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

CALLED_AE = "NEXREL-CRM"
TIMEOUT = 15  # seconds, for the ACSE and DIMSE timeouts
IDLE_TIMEOUT = 60  # seconds an association may stay idle (one is held through an outage)


@dataclass
class Sent:
    statuses: list[int | None] = field(default_factory=list)
    # (result, source, reason) of an A-ASSOCIATE-RJ; None when accepted or never answered
    rejected: tuple[int, int, int] | None = None


def _ae(calling_ae: str, sop_classes: set[str]) -> AE:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = TIMEOUT
    ae.network_timeout = IDLE_TIMEOUT
    ae.add_requested_context(Verification)
    for sop_class in sorted(sop_classes):
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    return ae


def associate(
    port: int, sop_classes: set[str], *, calling_ae: str = "CARESTREAM"
) -> tuple[Association, Sent]:
    assoc = _ae(calling_ae, sop_classes).associate("127.0.0.1", port, ae_title=CALLED_AE)
    sent = Sent()
    if assoc.is_rejected and assoc.acceptor.primitive is not None:
        rj = assoc.acceptor.primitive
        sent.rejected = (int(rj.result), int(rj.result_source), int(rj.diagnostic))
    return assoc, sent


def store_on(assoc: Association, datasets: Sequence[Dataset], sent: Sent) -> Sent:
    """C-STORE each data set on an open association, noting each answer."""
    for ds in datasets:
        if not assoc.is_established:
            sent.statuses.append(None)
            continue
        response = assoc.send_c_store(ds)
        sent.statuses.append(int(response.Status) if response and "Status" in response else None)
    return sent


def store(port: int, datasets: Sequence[Dataset], *, calling_ae: str = "CARESTREAM") -> Sent:
    """One association, each data set in turn, then release."""
    assoc, sent = associate(port, {str(ds.SOPClassUID) for ds in datasets}, calling_ae=calling_ae)
    store_on(assoc, datasets, sent)
    if assoc.is_established:
        assoc.release()
    return sent


def echo(port: int, *, calling_ae: str = "CARESTREAM") -> int | None:
    assoc, _ = associate(port, set(), calling_ae=calling_ae)
    if not assoc.is_established:
        return None
    response = assoc.send_c_echo()
    assoc.release()
    return int(response.Status) if response and "Status" in response else None
