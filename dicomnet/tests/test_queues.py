"""The interactive and bulk lanes: what goes where, and that interactive work is taken first."""

from __future__ import annotations

import pytest
import redis
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from dicomnet.ingest import queues
from dicomnet.ingest.store import enqueue_processing, store_instance
from tests import dicom_samples

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
INTRAORAL = "1.2.840.10008.5.1.4.1.1.1.3"


def test_lanes_by_position_in_the_batch_and_sop_class():
    lane = queues.lane_for
    assert lane(sop_class_uid=INTRAORAL, position=1) == queues.Lane.INTERACTIVE
    assert lane(sop_class_uid=INTRAORAL, position=4) == queues.Lane.INTERACTIVE
    assert lane(sop_class_uid=INTRAORAL, position=5) == queues.Lane.SERIES
    assert lane(sop_class_uid=INTRAORAL, position=20) == queues.Lane.SERIES
    assert lane(sop_class_uid=INTRAORAL, position=21) == queues.Lane.BULK
    assert lane(sop_class_uid=CT_IMAGE, position=1) == queues.Lane.BULK


def queued_lanes() -> list[str]:
    return list(OrmQ.objects.order_by("id").values_list("key", flat=True))


def test_stored_objects_are_queued_in_their_lane(practice, tmp_path):
    early = dicom_samples.write(dicom_samples.intraoral(seed=1), tmp_path / "a.dcm")
    late = dicom_samples.write(dicom_samples.intraoral(seed=2), tmp_path / "b.dcm")
    middle = dicom_samples.write(dicom_samples.intraoral(seed=3), tmp_path / "c.dcm")
    store_instance(early, practice=practice, server=None, position=1)
    store_instance(late, practice=practice, server=None, position=21)
    store_instance(middle, practice=practice, server=None, position=5)
    assert queued_lanes() == ["nexrel", "nexrel:bulk", "nexrel:series"]


def instance_ids(tasks) -> list[int]:
    return [SignedPackage.loads(payload)["args"][0] for _, payload in tasks]


def test_orm_broker_takes_interactive_work_before_older_bulk_work(db):
    for instance_id in (1, 2):
        enqueue_processing(instance_id, lane=queues.Lane.BULK)
    enqueue_processing(3, lane=queues.Lane.SERIES)
    enqueue_processing(4)
    worker_broker = queues.PriorityORM(list_key="nexrel")  # what qcluster builds

    taken = [instance_ids(worker_broker.dequeue()) for _ in range(4)]

    assert taken == [[4], [3], [1], [2]]
    assert worker_broker.dequeue() is None  # everything is claimed (locked), nothing left
    assert worker_broker.lock_size() == 4


@pytest.mark.integration
def test_redis_broker_takes_interactive_work_before_older_bulk_work(redis_server):
    from django_q.conf import Conf

    previous = Conf.REDIS
    Conf.REDIS = redis_server
    try:
        interactive = queues.PriorityRedis(list_key="nexrel-test")
        bulk = queues.PriorityRedis(list_key="nexrel-test" + queues.Lane.BULK.suffix)
        series = queues.PriorityRedis(list_key="nexrel-test" + queues.Lane.SERIES.suffix)
        for instance_id in (1, 2):
            bulk.enqueue(SignedPackage.dumps({"args": (instance_id,)}))
        series.enqueue(SignedPackage.dumps({"args": (3,)}))
        interactive.enqueue(SignedPackage.dumps({"args": (4,)}))
        assert interactive.queue_size() == 4

        taken = [instance_ids(interactive.dequeue()) for _ in range(4)]

        assert taken == [[4], [3], [1], [2]]
        assert interactive.dequeue() is None
    finally:
        redis.Redis.from_url(redis_server).flushdb()
        Conf.REDIS = previous
