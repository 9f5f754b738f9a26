"""Operations endpoints (issue 11 §1–2): ``/metrics`` for Prometheus (bearer
``METRICS_TOKEN``) and ``/health/`` for load balancers and monitors (200 or 503, with the
details as JSON). The checks are plain functions; the views only translate HTTP."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily

from dicomnet.models import DicomInstance
from dicomnet.net.heartbeat import read_heartbeats
from dicomnet.ops_status import oldest_waiting_seconds, queue_depth, spool_space
from nexrel.metrics import scrape_registry


class ScrapeTimeCollector:
    """Gauges read from the database and the disk when Prometheus scrapes."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("nexrel_queue_depth", "Images waiting to be processed.")
        depth.add_metric([], queue_depth())
        yield depth
        age = GaugeMetricFamily(
            "nexrel_queue_oldest_seconds", "Age of the oldest image waiting to be processed."
        )
        age.add_metric([], oldest_waiting_seconds() or 0.0)
        yield age
        stored = GaugeMetricFamily(
            "nexrel_storage_bytes",
            "Bytes of DICOM objects stored, by practice.",
            labels=["practice"],
        )
        rows = DicomInstance.objects.values_list("practice_id").annotate(total=Sum("size"))
        for practice_id, total in rows:
            stored.add_metric([str(practice_id)], float(total or 0))
        yield stored
        free = GaugeMetricFamily("nexrel_spool_free_bytes", "Free bytes on the spool's disk.")
        free.add_metric([], float(spool_space().free_bytes))
        yield free
        beats = read_heartbeats()
        seen = GaugeMetricFamily(
            "dicom_listener_heartbeat_age_seconds", "Seconds since the freshest listener heartbeat."
        )
        seen.add_metric([], min((b.age for b in beats), default=float("inf")))
        yield seen
        open_ = GaugeMetricFamily(
            "dicom_associations_open", "Associations open now, over the live listeners."
        )
        open_.add_metric([], float(sum(b.associations for b in beats if b.fresh)))
        yield open_


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. 401 without a bearer token, 403 with a wrong one or when
    METRICS_TOKEN is not set (the endpoint is then off)."""
    given = _bearer(request)
    if not given:
        return HttpResponse(
            "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="Nexrel metrics"'},
        )
    expected = settings.METRICS_TOKEN
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return HttpResponse("wrong metrics token\n", status=403, content_type="text/plain")
    body = generate_latest(scrape_registry([ScrapeTimeCollector()]))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@dataclass
class Check:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Check(False, {"error": f"{type(exc).__name__}: {exc}"})
    return Check(True, {"vendor": connection.vendor})


def check_storage() -> Check:
    """A probe written, read back and deleted: the storage takes writes (local or S3)."""
    key = f"health/probe-{uuid.uuid4().hex}"
    try:
        name = default_storage.save(key, ContentFile(b"ok"))
        with default_storage.open(name, "rb") as probe:
            ok = probe.read() == b"ok"
        default_storage.delete(name)
    except Exception as exc:
        return Check(False, {"error": f"{type(exc).__name__}: {exc}"})
    return Check(ok, {"backend": type(default_storage._wrapped).__name__})  # type: ignore[attr-defined]


def check_listener() -> Check:
    beats = read_heartbeats()
    fresh = [b for b in beats if b.fresh]
    freshest = min((b.age for b in beats), default=None)
    return Check(
        bool(fresh),
        {
            "processes": len(fresh),
            "last_seen_seconds_ago": None if freshest is None else round(freshest, 1),
            "associations_open": sum(b.associations for b in fresh),
        },
    )


def check_queue() -> Check:
    age = oldest_waiting_seconds()
    return Check(
        age is None or age <= settings.NEXREL_HEALTH_QUEUE_STALE_SECONDS,
        {"depth": queue_depth(), "oldest_seconds": None if age is None else round(age, 1)},
    )


def check_spool() -> Check:
    space = spool_space()
    return Check(
        space.free_percent >= settings.NEXREL_HEALTH_SPOOL_MIN_FREE_PERCENT and not space.refusing,
        {
            "free_bytes": space.free_bytes,
            "free_percent": round(space.free_percent, 1),
            "refusing_stores": space.refusing,
        },
    )


CHECKS = {
    "database": check_database,
    "storage": check_storage,
    "listener": check_listener,
    "queue": check_queue,
    "spool": check_spool,
}


def health_report() -> tuple[bool, dict[str, Any]]:
    started = time.monotonic()
    report: dict[str, Any] = {}
    healthy = True
    for name, check in CHECKS.items():
        try:
            result = check()
        except Exception as exc:  # a check that breaks is a failed check, not a 500
            result = Check(False, {"error": f"{type(exc).__name__}: {exc}"})
        report[name] = asdict(result)
        healthy &= result.ok
    report["seconds"] = round(time.monotonic() - started, 3)
    return healthy, report


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    healthy, report = health_report()
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", **report},
        status=200 if healthy else 503,
        json_dumps_params={"indent": 1},
    )
