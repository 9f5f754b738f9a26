"""Old dotted path, kept importable: queued tasks, `Schedule` rows and settings written before
the move to ``dicomnet.ingest.analysis`` still name ``dicomnet.analysis.exposure_check``."""

from dicomnet.ingest.analysis import exposure_check

__all__ = ["exposure_check"]
