"""PatientName matching of the streamed C-FIND on PostgreSQL: the same names as on SQLite
(``dicomnet/tests/test_qr_answers.py``), accents and case folded, wildcards honoured."""

from __future__ import annotations

import json

import pytest

from dicomnet.tests.test_qr_answers import NAME_MATCHES, NAMES
from tests.fixtures import ManagedProcess

pytestmark = pytest.mark.integration

FIND = """
import json
from pydicom import Dataset
from dicomnet.models import DicomStudy
from dicomnet.qr.scp import answer_find
from patients.models import Practice
mine = Practice.objects.create(name="Mine", ae_title="MINE")
other = Practice.objects.create(name="Other", ae_title="OTHER")
for n, name in enumerate({names!r}):
    for practice in (mine, other):
        DicomStudy.objects.create(practice=practice, study_instance_uid=f"{{practice.pk}}.{{n}}",
                                  patient_name=name, patient_id=f"P{{n}}")
found = {{}}
for pattern in {patterns!r}:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = pattern
    answers = answer_find(lambda: ds, practice_id=mine.pk, patient_root=False,
                          character_set="ISO_IR 192", calling_ae="T", retrieve_ae="N",
                          is_cancelled=lambda: False)
    found[pattern] = sorted(str(a.PatientName) for _, a in answers)
print("FOUND", json.dumps(found))
"""


def test_patient_name_matching_on_postgres(postgres_database, tmp_path):
    env = {"DATABASE_URL": postgres_database, "REDIS_URL": ""}
    done = ManagedProcess(["migrate", "--noinput"], data_dir=tmp_path, env=env).run(timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    script = FIND.format(names=NAMES, patterns=[p for p, _ in NAME_MATCHES])
    done = ManagedProcess(["shell", "-c", script], data_dir=tmp_path, env=env).run()
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("FOUND "))
    found = json.loads(line.removeprefix("FOUND "))
    assert found == {pattern: sorted(expected) for pattern, expected in NAME_MATCHES}
