"""Tasks queued, and schedules saved, before dicomnet moved into sub-packages still run.

django-q2 stores the function's dotted path in each queued task and ``Schedule`` row; the
old paths (``dicomnet.pipeline.process_instance``...) are kept importable. A real cluster
(ORM broker) runs a task queued under the old name, and a schedule saved under it.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from dicomnet.models import DicomInstance
from tests.dicom_samples import dicom_bytes, store_bytes
from tests.fixtures import wait_until

pytestmark = pytest.mark.integration

OLD_TO_NEW = {
    "dicomnet.pipeline.process_instance": "dicomnet.ingest.pipeline.process_instance",
    "dicomnet.retrieve.run_job": "dicomnet.qr.retrieve.run_job",
    "dicomnet.orthanc.fetch_notification": "dicomnet.ingest.orthanc.fetch_notification",
    "dicomnet.analysis.exposure_check": "dicomnet.ingest.analysis.exposure_check",
}


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW.items())
def test_every_old_task_path_names_the_moved_function(old, new):
    assert import_string(old) is import_string(new)


def stored_without_task(practice, **kwargs) -> DicomInstance:
    """An instance made durable, with the task ``store_instance`` queued (new path) removed."""
    outcome = store_bytes(practice, dicom_bytes(**kwargs))
    OrmQ.objects.all().delete()
    return outcome.instance


def processed(instance: DicomInstance) -> bool:
    instance.refresh_from_db()
    return instance.state == DicomInstance.State.PROCESSED


def test_a_task_queued_under_the_old_path_runs(practice, worker):
    instance = stored_without_task(practice, patient_id="1001", patient_name="Côté^Zoé")
    async_task("dicomnet.pipeline.process_instance", instance.pk)
    assert OrmQ.objects.get().task["func"] == "dicomnet.pipeline.process_instance"
    wait_until(lambda: processed(instance), timeout=60)
    assert instance.preview_key


def test_a_schedule_saved_under_the_old_path_runs(practice, worker):
    instance = stored_without_task(practice, patient_id="1002", patient_name="Bélanger^Étienne")
    Schedule.objects.create(
        func="dicomnet.pipeline.process_instance",
        args=str(instance.pk),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now(),
    )
    wait_until(lambda: processed(instance), timeout=90)
