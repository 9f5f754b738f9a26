"""The practice admin's operations dashboard (issue 11 §3): the last 30 days of images by
modality, processing time (p50, p95), error rate and storage growth, each as server-drawn
SVG bars; the devices' last contact, last error and refusals; the recent failures.
Plain reads over one practice; the page (dicomnet/ops_views.py) only draws them."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dicomnet.models import DicomInstance, DicomServer, RefusedAssociation
from patients.models import Practice

DAYS = 30
# One colour per modality family, the rest grey (the chart's legend says which).
COLOURS = {"IO": "#2b6cb0", "PX": "#2f855a", "DX": "#38a169", "CT": "#c05621", "XC": "#805ad5"}
OTHER = "#a0aec0"


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Chart:
    """Bars ready for an <svg viewBox="0 0 width height">, with the largest value."""

    title: Any
    unit: str
    width: int = 600
    height: int = 160
    bars: list[Bar] = field(default_factory=list)
    peak: float = 0.0
    legend: list[tuple[str, str]] = field(default_factory=list)
    first_day: str = ""
    last_day: str = ""


def _days(today: dt.date) -> list[dt.date]:
    return [today - dt.timedelta(days=DAYS - 1 - n) for n in range(DAYS)]


def _chart(
    title: Any, unit: str, days: list[dt.date], stacks: dict[dt.date, list[tuple[str, float]]]
) -> Chart:
    """Stacked bars: for each day, its (label, value) parts bottom up."""
    chart = Chart(title, unit, first_day=days[0].isoformat(), last_day=days[-1].isoformat())
    chart.peak = max((sum(v for _, v in stacks.get(d, [])) for d in days), default=0.0)
    slot = chart.width / len(days)
    scale = (chart.height - 4) / chart.peak if chart.peak else 0.0
    labels: dict[str, str] = {}
    for n, day in enumerate(days):
        bottom = float(chart.height)
        for label, value in stacks.get(day, []):
            colour = COLOURS.get(label, OTHER) if unit == "images" else "#2b6cb0"
            labels[label] = colour
            height = value * scale
            bottom -= height
            chart.bars.append(
                Bar(n * slot + 1, bottom, slot - 2, height, colour, f"{day}: {label} {value:g}")
            )
    chart.legend = sorted(labels.items())
    return chart


def _instances(practice: Practice, since: dt.datetime):
    return DicomInstance.objects.filter(practice=practice, received_at__gte=since)


def images_per_day(practice: Practice, today: dt.date) -> Chart:
    days = _days(today)
    since = timezone.make_aware(dt.datetime.combine(days[0], dt.time.min))
    counts: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = _instances(practice, since).values_list("received_at", "study__modality").iterator(2000)
    for received, modality in rows:
        counts[timezone.localtime(received).date()][(modality or "OT").split("\\")[0]] += 1
    stacks = {d: sorted((m, float(n)) for m, n in counts[d].items()) for d in counts}
    return _chart(_("Images per day, by modality"), "images", days, stacks)


def processing_time(practice: Practice, today: dt.date) -> tuple[Chart, Chart]:
    """p50 and p95, per day, of the time from reception to processed."""
    days = _days(today)
    since = timezone.make_aware(dt.datetime.combine(days[0], dt.time.min))
    waits: dict[dt.date, list[float]] = defaultdict(list)
    rows = (
        _instances(practice, since)
        .exclude(processed_at=None)
        .values_list("received_at", "processed_at")
        .iterator(2000)
    )
    for received, processed in rows:
        waits[timezone.localtime(received).date()].append((processed - received).total_seconds())
    p50, p95 = {}, {}
    for day, values in waits.items():
        p50[day] = [("p50", statistics.median(values))]
        p95[day] = [("p95", _percentile(values, 95))]
    return (
        _chart(_("Processing time, median (s)"), "s", days, p50),
        _chart(_("Processing time, 95th percentile (s)"), "s", days, p95),
    )


def _percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def error_rate(practice: Practice, today: dt.date) -> Chart:
    days = _days(today)
    since = timezone.make_aware(dt.datetime.combine(days[0], dt.time.min))
    totals: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for received, state in _instances(practice, since).values_list("received_at", "state"):
        entry = totals[timezone.localtime(received).date()]
        entry[0] += 1
        entry[1] += state == DicomInstance.State.ERROR
    stacks = {d: [("errors %", 100.0 * e / n)] for d, (n, e) in totals.items() if n}
    return _chart(_("Error rate (%)"), "%", days, stacks)


def storage_growth(practice: Practice, today: dt.date) -> Chart:
    """The practice's stored bytes at the end of each day (GB)."""
    days = _days(today)
    since = timezone.make_aware(dt.datetime.combine(days[0], dt.time.min))
    before = (
        DicomInstance.objects.filter(practice=practice, received_at__lt=since)
        .exclude(storage_key="")
        .values_list("size", flat=True)
    )
    total = float(sum(before))
    added: dict[dt.date, float] = defaultdict(float)
    rows = _instances(practice, since).exclude(storage_key="").values_list("received_at", "size")
    for received, size in rows:
        added[timezone.localtime(received).date()] += size
    totals = {}
    for day in days:
        total += added.get(day, 0.0)
        totals[day] = total
    # A clinic's first weeks are megabytes: GB would show 0.00.
    unit, scale = ("GB", 1024**3) if total >= 1024**3 else ("MB", 1024**2)
    stacks = {day: [(unit, value / scale)] for day, value in totals.items()}
    title = _("Storage (GB)") if unit == "GB" else _("Storage (MB)")
    return _chart(title, unit, days, stacks)


@dataclass
class DeviceRow:
    device: DicomServer
    last_contact: dt.datetime | None
    last_error: str
    last_error_at: dt.datetime | None
    refused: int


def devices(practice: Practice) -> list[DeviceRow]:
    servers = list(DicomServer.objects.for_practice(practice).order_by("name"))
    contact = dict(
        DicomInstance.objects.filter(practice=practice, server__isnull=False)
        .values_list("server")
        .annotate(last=Max("received_at"))
    )
    refused = dict(
        RefusedAssociation.objects.filter(practice=practice)
        .values_list("calling_ae")
        .annotate(n=Sum("count"))
    )
    rows = []
    for server in servers:
        failed = (
            DicomInstance.objects.filter(practice=practice, server=server)
            .filter(Q(state=DicomInstance.State.ERROR))
            .order_by("-received_at")
            .values_list("error", "received_at")
            .first()
        )
        rows.append(
            DeviceRow(
                server,
                contact.get(server.pk),
                failed[0] if failed else "",
                failed[1] if failed else None,
                refused.get(server.ae_title, 0),
            )
        )
    return rows


def recent_failures(practice: Practice, limit: int = 20):
    return (
        DicomInstance.objects.filter(practice=practice, state=DicomInstance.State.ERROR)
        .select_related("server", "study")
        .order_by("-received_at")[:limit]
    )
