"""The listener's heartbeat (issue 11 §2): each listener process writes, every
``DICOM_HEARTBEAT_SECONDS``, a small JSON file under ``DATA_DIR/heartbeats/`` (its pid, the
time, its open associations), atomically (temp file, then rename). ``/health/`` and the
metrics read them: a listener whose file is older than ``NEXREL_HEALTH_LISTENER_STALE_SECONDS``
is down. Files of processes long gone are removed when read."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

log = logging.getLogger("dicomnet.net.heartbeat")

FORGET_AFTER_SECONDS = 24 * 3600


def heartbeat_dir() -> Path:
    return Path(settings.DATA_DIR) / "heartbeats"


@dataclass(frozen=True)
class Heartbeat:
    pid: int
    at: float
    associations: int

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)

    @property
    def fresh(self) -> bool:
        return self.age <= settings.NEXREL_HEALTH_LISTENER_STALE_SECONDS


def write_heartbeat(associations: int, *, directory: Path | None = None) -> Path:
    directory = directory or heartbeat_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"listener-{os.getpid()}.json"
    temp = path.with_suffix(".tmp")
    temp.write_text(
        json.dumps({"pid": os.getpid(), "at": time.time(), "associations": associations})
    )
    os.replace(temp, path)
    return path


def read_heartbeats(*, directory: Path | None = None) -> list[Heartbeat]:
    beats = []
    for path in sorted((directory or heartbeat_dir()).glob("listener-*.json")):
        try:
            data = json.loads(path.read_text())
            beat = Heartbeat(int(data["pid"]), float(data["at"]), int(data["associations"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if beat.age > FORGET_AFTER_SECONDS:
            path.unlink(missing_ok=True)
            continue
        beats.append(beat)
    return beats


def start_heartbeat(stop: threading.Event, associations: Callable[[], int]) -> threading.Thread:
    """Beat until ``stop`` is set; the file is removed on a clean stop (a crash leaves it
    to go stale, which is what /health/ must see)."""

    def beat() -> None:
        path = None
        while True:
            try:
                path = write_heartbeat(associations())
            except OSError as exc:
                log.warning("heartbeat not written: %s", exc)
            if stop.wait(settings.DICOM_HEARTBEAT_SECONDS):
                break
        if path is not None:
            path.unlink(missing_ok=True)

    thread = threading.Thread(target=beat, name="dicom-heartbeat", daemon=True)
    thread.start()
    return thread
