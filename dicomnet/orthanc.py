"""Old dotted path, kept importable: queued tasks, `Schedule` rows and settings written before
the move to ``dicomnet.ingest.orthanc`` still name ``dicomnet.orthanc.fetch_notification``."""

from dicomnet.ingest.orthanc import fetch_notification

__all__ = ["fetch_notification"]
