"""Old dotted path, kept importable: queued tasks, `Schedule` rows and settings written before
the move to ``dicomnet.qr.retrieve`` still name ``dicomnet.retrieve.run_job``."""

from dicomnet.qr.retrieve import run_job

__all__ = ["run_job"]
