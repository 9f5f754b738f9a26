"""Old dotted path, kept importable: queued tasks, `Schedule` rows and settings written before
the move to ``dicomnet.ingest.pipeline`` still name ``dicomnet.pipeline.process_instance``."""

from dicomnet.ingest.pipeline import process_instance

__all__ = ["process_instance"]
