"""Lanes for processing tasks: interactive first, bulk only when nothing else waits.

A bitewing taken chairside must reach the chart in seconds, even while a 300-slice CBCT or
a batch import is being processed. django-q2 has one FIFO queue per cluster, so the brokers
here read several lanes in order: the cluster's own key, then ``:series``, then ``:bulk``.
An association's first objects are interactive, the rest of a series next, and volumes
(CT-like classes) and long streams last. Workers and tasks are unchanged; only the order
in which work is taken differs.
"""

from __future__ import annotations

import enum
import functools
import time

from django import db
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import OrmQ

from dicomnet.ingest.prepared import insert_values


class Lane(enum.IntEnum):
    """Processing lanes, taken in this order. The value is the lane's rank."""

    INTERACTIVE = 0  # an association's first few objects: a bitewing set, a panoramic
    SERIES = 1  # the rest of a series sent together: a full-mouth series is ~20 images
    BULK = 2  # volumes (CT-like classes) and long streams: recoveries, imports

    @property
    def suffix(self) -> str:
        return ("", ":series", ":bulk")[self]


INTERACTIVE_PER_BATCH = 4
SERIES_PER_BATCH = 20
# Slices of volumes: one study of hundreds of objects nobody looks at one by one.
VOLUME_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2",  # CT
        "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
        "1.2.840.10008.5.1.4.1.1.13.1.1",  # X-Ray 3D Angiographic
        "1.2.840.10008.5.1.4.1.1.13.1.2",  # X-Ray 3D Craniofacial
        "1.2.840.10008.5.1.4.1.1.4",  # MR
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    }
)


def lane_for(*, sop_class_uid: str, position: int) -> Lane:
    """``position`` counts the objects of one association or upload, from 1."""
    if sop_class_uid in VOLUME_SOP_CLASSES or position > SERIES_PER_BATCH:
        return Lane.BULK
    return Lane.INTERACTIVE if position <= INTERACTIVE_PER_BATCH else Lane.SERIES


@functools.cache
def broker(lane: Lane) -> Broker:
    """The (per-process) broker that enqueues into ``lane``."""
    return get_broker(Conf.CLUSTER_NAME + lane.suffix)


class PriorityORM(ORM):
    """The ORM broker, dequeuing its lanes in order (its own key is the interactive lane)."""

    def enqueue(self, task: str) -> int:
        """As ``ORM.enqueue``, with the INSERT prepared once (``prepared.insert_values``): it
        runs for every received object, on the listener's path to its answer."""
        if transaction.get_autocommit(using=Conf.ORM):  # the stock broker's check, as it does
            db.close_old_connections()
        inserted = insert_values(
            OrmQ,
            {"key": self.list_key or Conf.CLUSTER_NAME, "payload": task, "lock": timezone.now()},
            using=Conf.ORM,
        )
        assert inserted is not None, "OrmQ has no unique constraint but its id"
        return inserted[0]

    def _lanes(self):
        return self.get_connection().filter(key__in=[self.list_key + x.suffix for x in Lane])

    def queue_size(self) -> int:
        return self._lanes().filter(lock__lte=timezone.now()).count()

    def lock_size(self) -> int:
        return self._lanes().filter(lock__gt=timezone.now()).count()

    def dequeue(self):
        """As ``ORM.dequeue`` (claim by conditional update of the lock), by lane, then age."""
        rank = Case(
            *[When(key=self.list_key + lane.suffix, then=Value(int(lane))) for lane in Lane],
            output_field=IntegerField(),
        )
        waiting = (
            self._lanes()
            .filter(lock__lt=timezone.now())
            .annotate(rank=rank)
            .order_by("rank", "id")[: Conf.BULK]
        )
        claimed = [
            (task.pk, task.payload)
            for task in waiting
            if self.get_connection()
            .filter(id=task.id, lock=task.lock)
            .update(lock=self.timeout(task))
        ]
        if claimed:
            return claimed
        if not waiting:
            time.sleep(Conf.POLL)  # empty queue: spare the CPU, as the stock broker does
        return None


class PriorityRedis(Redis):
    """The Redis broker; BLPOP takes from the first non-empty list of those it is given."""

    def __init__(self, list_key: str | None = None):
        list_key = list_key or Conf.CLUSTER_NAME
        super().__init__(list_key=list_key)
        self.lane_keys = [f"django_q:{list_key}{lane.suffix}:q" for lane in Lane]

    def dequeue(self):
        task = self.connection.blpop(self.lane_keys, 1)
        if task:
            return [(None, task[1])]

    def queue_size(self) -> int:
        return sum(self.connection.llen(key) for key in self.lane_keys)
