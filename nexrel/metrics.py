"""Nexrel's Prometheus metrics (issue 11 §1), shared by the web, listener and worker
processes through prometheus-client's multiprocess mode: each process writes its samples
under ``PROMETHEUS_MULTIPROC_DIR`` (set before this module is first imported; the
supervisor and the systemd units set it and wipe the directory at start), and ``/metrics``
sums them (``scrape_registry``). Without the variable (tests, a one-off command) the
samples stay in the process.

This module imports no app: every app may count, and the gauges read at scrape time
(queue depth, storage) are added by the view (nexrel/ops.py).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

IMAGES_RECEIVED = Counter(
    "dicom_images_received_total",
    "Images received and processed, by practice, modality and calling AE title.",
    ["practice", "modality", "calling_ae"],
)
ASSOCIATIONS = Counter(
    "dicom_associations_total",
    "DICOM associations, accepted or rejected (by A-ASSOCIATE-RJ result-source-reason).",
    ["outcome", "reason"],
)
PIPELINE_SECONDS = Histogram(
    "nexrel_pipeline_stage_seconds",
    "Time spent in each stage of the ingest pipeline.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PIPELINE_FAILURES = Counter(
    "nexrel_pipeline_failures_total", "Failures of the ingest pipeline, by stage.", ["stage"]
)
WORKLIST_QUERIES = Counter(
    "dicom_worklist_queries_total", "Modality worklist C-FINDs answered, by final status.",
    ["status"],
)  # fmt: skip
RETRIEVE_JOBS = Counter(
    "nexrel_retrieve_jobs_total", "Imports from remote systems finished, by status.", ["status"]
)
DICOMWEB_REQUESTS = Counter(
    "dicomweb_requests_total", "DICOMweb requests, by route and HTTP status.",
    ["route", "status"],
)  # fmt: skip
AUDIT_EVENTS = Counter(
    "nexrel_audit_events_total", "Audit events written, by DICOM event ID.", ["event_id"]
)


def multiproc_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV, "")
    return Path(value) if value else None


def prepare_multiproc_dir(path: Path) -> None:
    """An empty directory for a fresh start: samples of processes that are gone would be
    summed in otherwise (prometheus-client's multiprocess mode keeps them)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def scrape_registry(extra: list | None = None) -> CollectorRegistry:
    """The registry ``/metrics`` renders: every process's samples (multiprocess mode) or
    this one's, plus the scrape-time collectors in ``extra``."""
    directory = multiproc_dir()
    if directory is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))
    else:
        registry = REGISTRY
    if extra:
        registry = _with(registry, extra)
    return registry


def _with(base: CollectorRegistry, extra: list) -> CollectorRegistry:
    """A registry of ``base``'s samples and ``extra``'s, leaving ``base`` as it was."""
    combined = CollectorRegistry()
    combined.register(_Proxy(base))
    for collector in extra:
        combined.register(collector)
    return combined


class _Proxy:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator:
        return iter(self.registry.collect())


@contextmanager
def stage(name: str, *, expected: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Time a pipeline stage; count its failure if it raises (but not the ``expected``
    outcomes, such as an image that has no preview)."""
    started = time.perf_counter()
    try:
        yield
    except expected:
        raise
    except BaseException:
        PIPELINE_FAILURES.labels(stage=name).inc()
        raise
    finally:
        PIPELINE_SECONDS.labels(stage=name).observe(time.perf_counter() - started)


class MetricsMiddleware:
    """Counts DICOMweb requests by route and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/dicomweb/"):
            match = request.resolver_match
            route = match.url_name if match is not None and match.url_name else "unrouted"
            DICOMWEB_REQUESTS.labels(route=route, status=str(response.status_code)).inc()
        return response
