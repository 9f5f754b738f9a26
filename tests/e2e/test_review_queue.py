"""In Chromium against the real web server: find a patient on the patient list, and work the
review queue (a candidate in one click, a patient found by the search box for two studies of
one source, undo, a new chart from the DICOM demographics)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dicomnet.models import DicomStudy, StudyAssignment
from patients.models import Patient
from tests.browser import assert_clean
from tests.dicom_samples import ingest_processed
from tests.e2e.test_viewer import login

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"review-{name}.png"), full_page=True)


def test_search_cote_and_open_the_chart(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, web_server, "/patients/")
    page.fill("input[name=q]", "cote")  # htmx searches as one types
    page.wait_for_function("() => document.querySelectorAll('#patient-results tr').length === 2")
    assert "q=cote" in page.url
    shoot(page, "patient-search")
    page.click("#patient-results >> text=Côté, Zoé")
    page.wait_for_selector("#patient-name")
    assert page.inner_text("#patient-name") == "Zoé Côté"
    assert_clean(page, problems)


def test_resolve_studies_from_the_review_queue(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    cote_like = ingest_processed(
        practice, patient_id="", patient_name="COTE^ZOE", birth_date="19880315"
    ).study
    lestrade = [
        ingest_processed(practice, patient_id="X99", patient_name="Lestrade^G", study_date=d).study
        for d in ("20240115", "20240116")
    ]
    newcomer = ingest_processed(
        practice, patient_id="N77", patient_name="NOUVEAU^PAUL", birth_date="20000101"
    ).study
    nameless = ingest_processed(practice, patient_id="", patient_name="").study
    login(page, web_server, "/")
    page.click("nav >> text=Review queue")
    page.wait_for_selector(".review-group")
    assert page.locator(".review-group").count() == 4
    assert page.inner_text(f"#s{nameless.pk} .dicom-name") == "Unknown patient"
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "Lestrade, G" in page.inner_text(f"#s{lestrade[0].pk} .dicom-name")
    shoot(page, "queue")

    # 1. A candidate, one click.
    page.click(f"#s{cote_like.pk} button.candidate >> text=Côté, Zoé")
    page.wait_for_selector(f"#s{cote_like.pk}", state="detached")
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    cote_like.refresh_from_db()
    assert cote_like.patient == cote and cote_like.status == DicomStudy.Status.PROCESSED

    # 2. Two studies of one source, to a patient found by the search box.
    group = page.locator(f"#s{lestrade[0].pk}")
    assert group.locator("input[name=study]").count() == 2
    group.locator("input[name=q]").fill("belanger")
    group.locator(".search-results button.candidate").first.wait_for()
    shoot(page, "queue-search")
    group.locator(".search-results button.candidate >> text=Bélanger, Étienne").click()
    page.wait_for_selector(f"#s{lestrade[0].pk}", state="detached")
    belanger = Patient.objects.get(practice=practice, chart_number="1002")
    assert DicomStudy.objects.filter(pk__in=[s.pk for s in lestrade], patient=belanger).count() == 2

    # 3. Undo it: both wait again.
    page.locator("#recent-assignments tr", has_text="Bélanger").locator("button.undo").click()
    page.wait_for_selector(f"#s{lestrade[0].pk}")
    assert not DicomStudy.objects.filter(pk__in=[s.pk for s in lestrade], patient__isnull=False)

    # 4. A new chart from the images' demographics.
    page.locator(f"#s{newcomer.pk} button.create").click()
    page.wait_for_selector(f"#s{newcomer.pk}", state="detached")
    paul = Patient.objects.get(practice=practice, chart_number="N77")
    assert (paul.family_name, paul.given_name) == ("Nouveau", "Paul")
    assert StudyAssignment.objects.filter(study=newcomer, created_patient=True).exists()
    shoot(page, "queue-after")

    # 5. In French, the practice's language.
    page.click("form.lang button")
    page.wait_for_selector("html[lang=fr]")
    assert page.inner_text("main h1") == "Images à vérifier"
    assert page.inner_text(f"#s{nameless.pk} .dicom-name") == "Patient inconnu"
    shoot(page, "queue-fr")
    assert_clean(page, problems)
