"""What both the health report (nexrel/ops.py) and the alerts (dicomnet/alerts.py) read of
the installation's state: the images waiting to be processed, and the spool disk's space."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from dicomnet.models import DicomInstance


def _waiting():
    return DicomInstance.objects.filter(state=DicomInstance.State.RECEIVED)


def queue_depth() -> int:
    return _waiting().count()


def oldest_waiting_seconds(now: dt.datetime | None = None) -> float | None:
    """Age of the oldest image received and not yet processed (its task waits)."""
    oldest = _waiting().aggregate(at=Min("received_at"))["at"]
    return None if oldest is None else ((now or timezone.now()) - oldest).total_seconds()


@dataclass(frozen=True)
class SpoolSpace:
    free_bytes: int
    free_percent: float

    @property
    def refusing(self) -> bool:
        """Below the C-STORE headroom (NEXREL_SPOOL_MIN_FREE_MB): new objects get 0xA700."""
        return self.free_bytes < settings.NEXREL_SPOOL_MIN_FREE_MB * 1024 * 1024

    @property
    def near_refusing(self) -> bool:
        """Within twice the headroom: refusals are near, whatever the percentage says."""
        return self.free_bytes < 2 * settings.NEXREL_SPOOL_MIN_FREE_MB * 1024 * 1024


def spool_space() -> SpoolSpace:
    """The spool disk's free space; a spool not made yet is on its nearest existing parent's."""
    path = Path(settings.SPOOL_DIR)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    percent = 100.0 * usage.free / usage.total if usage.total else 0.0
    return SpoolSpace(usage.free, percent)
