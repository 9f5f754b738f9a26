"""The prepared INSERT of the listener's hot rows (``dicomnet.ingest.prepared``), on SQLite
and, in the PostgreSQL run, on PostgreSQL: the same row as the ORM's ``create``."""

from __future__ import annotations

import pytest
from django.db import connection, models, transaction
from django.db.models.signals import post_save, pre_save
from django.forms.models import model_to_dict
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from dicomnet.ingest import queues
from dicomnet.ingest.prepared import insert_row, insert_values, prepared_insert
from dicomnet.models import DicomInstance

UID = "1.2.826.0.1.3680043.8.498.1"


def instance_values(practice, **changes) -> dict:
    values = dict(
        practice_id=practice.pk,
        sop_instance_uid=UID,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        version=1,
        size=524_800,
        sha256="ab" * 32,
        calling_ae="CBCT_SIRONA",
        peer_address="192.0.2.7",
        spool_path="/spool/1/x.dcm",
    )
    return {**values, **changes}


def columns(instance: models.Model) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_row_is_the_one_create_writes(practice):
    started = timezone.now()
    inserted = insert_row(DicomInstance, instance_values(practice))
    by_orm = DicomInstance.objects.create(**instance_values(practice, sop_instance_uid=UID + "2"))

    assert inserted is not None and inserted.pk and not inserted._state.adding
    read_back = DicomInstance.objects.get(pk=inserted.pk)
    expected = columns(DicomInstance.objects.get(pk=by_orm.pk))
    expected.update(id=inserted.pk, sop_instance_uid=UID, received_at=read_back.received_at)
    assert columns(read_back) == expected  # defaults (state, JSON, counters) as create() has them
    assert read_back.state == DicomInstance.State.RECEIVED and read_back.dental == {}
    assert started <= read_back.received_at <= timezone.now()
    assert columns(inserted) == columns(read_back)  # what the caller holds is what was saved


def test_a_unique_conflict_is_none_and_the_transaction_goes_on(practice):
    with transaction.atomic():
        first = insert_row(DicomInstance, instance_values(practice))
        again = insert_row(DicomInstance, instance_values(practice, sha256="cd" * 32))
        # No error was raised: PostgreSQL would refuse this next statement in an aborted one.
        second_version = insert_row(DicomInstance, instance_values(practice, version=2))

    assert first is not None and again is None and second_version is not None
    rows = DicomInstance.objects.filter(sop_instance_uid=UID).order_by("version")
    assert [(r.version, r.sha256) for r in rows] == [(1, "ab" * 32), (2, "ab" * 32)]


def test_a_column_the_model_lacks_is_refused(practice):
    with pytest.raises(TypeError, match="no column for \\['practice'\\]"):
        insert_values(DicomInstance, {**instance_values(practice), "practice": practice})
    assert not DicomInstance.objects.exists()


def test_the_statement_is_built_once_and_quotes_every_column(db):
    prepared = prepared_insert(DicomInstance, "default")
    assert prepared is prepared_insert(DicomInstance, "default")
    quote = connection.ops.quote_name
    assert prepared.sql.startswith(f"INSERT INTO {quote('dicomnet_dicominstance')} (")
    assert prepared.sql.endswith(f"ON CONFLICT DO NOTHING RETURNING {quote('id')}")
    assert all(quote(f.column) in prepared.sql for f in prepared.fields)
    assert "id" not in prepared.attnames


def test_nothing_listens_to_the_saves_it_skips():
    # insert_row sends no pre_save/post_save: a receiver added for these models would be
    # skipped on the listener's path without a word, so it must be noticed here.
    for model in (DicomInstance, OrmQ):
        assert not pre_save.has_listeners(model), model
        assert not post_save.has_listeners(model), model


def test_the_broker_queues_what_the_stock_broker_would(db):
    task_id = async_task("math.floor", 2.5, broker=queues.broker(queues.Lane.BULK))

    row = OrmQ.objects.get()
    assert row.key == "nexrel:bulk"
    assert SignedPackage.loads(row.payload)["id"] == task_id
    assert row.lock <= timezone.now()  # available to a worker at once
    assert model_to_dict(row).keys() == {"id", "key", "payload", "lock"}
    worker_broker = queues.PriorityORM(list_key="nexrel")
    (claimed,) = worker_broker.dequeue()
    assert claimed[0] == row.pk and SignedPackage.loads(claimed[1])["args"] == (2.5,)
