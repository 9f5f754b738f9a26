"""Objects Nexrel makes itself (the demo's radiographs): received through the same durable
store as a C-STORE or an upload, then processed here and now rather than by a worker."""

from __future__ import annotations

import contextlib
import io
import os

from dicomnet.ingest.pipeline import process_instance
from dicomnet.ingest.storage import copy_into_spool_tmp
from dicomnet.ingest.store import IngestError, store_instance
from dicomnet.models import DicomInstance, DicomServer
from patients.models import Practice


def ingest_now(
    practice: Practice,
    data: bytes,
    *,
    server: DicomServer | None = None,
    calling_ae: str = "",
    position: int = 1,
) -> DicomInstance:
    """Store ``data`` (a DICOM file) for ``practice`` and run its pipeline in this process.

    1. ``store_instance`` makes it durable and records it, as for any received object; its
       task is queued too, and a worker running it later finds the instance processed.
    2. The pipeline runs now (``process_instance``: previews, patient, appointment, mount),
       unless identical bytes were already stored and processed.
    Raises ``IngestError`` when the store refuses the object or the pipeline fails.
    """
    tmp = copy_into_spool_tmp(io.BytesIO(data))
    try:
        outcome = store_instance(
            tmp, practice=practice, server=server, calling_ae=calling_ae, position=position
        )
    finally:
        with contextlib.suppress(OSError):  # consumed (renamed) on success
            os.unlink(tmp)
    instance = outcome.instance
    if instance.state != DicomInstance.State.PROCESSED:
        result = process_instance(instance.pk)
        if result not in ("processed", "already processed"):
            raise IngestError(f"instance {instance.sop_instance_uid}: {result}")
    return DicomInstance.objects.select_related("study", "series").get(pk=instance.pk)
