"""Refused associations: recorded where refusals are decided (dicomnet.net.access), counted
per peer, and shown to the practice admin with a one-click "add this device" form."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import translation

from dicomnet.models import DicomServer, RefusedAssociation
from dicomnet.net.access import (
    REJECT_CALLED_AE,
    REJECT_CALLING_AE,
    AssociationGrant,
    AssociationRefusal,
    authorise_association,
)


def ask(calling: str, called: str = "NEXREL-CRM", peer: str = "10.0.0.9"):
    return authorise_association(called_ae=called, calling_ae=calling, peer_address=peer)


def test_each_refusal_is_counted_on_one_row_per_peer(practice) -> None:
    for _ in range(5):
        decision = ask("SIRONA2")
        assert isinstance(decision, AssociationRefusal)
        assert decision.reject == REJECT_CALLING_AE
    ask("SIRONA2", peer="10.0.0.10")
    assert isinstance(ask("X", called="NOBODY"), AssociationRefusal)

    rows = {(r.calling_ae, r.peer_address): r for r in RefusedAssociation.objects.all()}
    assert set(rows) == {("SIRONA2", "10.0.0.9"), ("SIRONA2", "10.0.0.10"), ("X", "10.0.0.9")}
    repeated = rows["SIRONA2", "10.0.0.9"]
    assert (repeated.count, repeated.practice, repeated.called_ae) == (5, practice, "NEXREL-CRM")
    assert repeated.reason == (
        f"calling AE 'SIRONA2' is not a registered device of practice {practice.name!r}"
    )
    assert repeated.last_seen >= repeated.first_seen
    assert rows["X", "10.0.0.9"].practice is None
    assert ask("X", called="NOBODY").reject == REJECT_CALLED_AE


def test_granted_associations_are_not_recorded(practice) -> None:
    device = DicomServer.objects.for_practice(practice).filter(is_active=True).first()
    assert isinstance(ask(device.ae_title, peer=device.host), AssociationGrant)
    assert not RefusedAssociation.objects.exists()


def test_deactivated_and_wrong_host_refusals_are_recorded(practice) -> None:
    device = DicomServer.objects.for_practice(practice).first()
    device.check_host = True
    device.host = "10.1.1.1"
    device.save()
    ask(device.ae_title, peer="10.9.9.9")
    device.is_active = False
    device.save()
    ask(device.ae_title, peer="10.9.9.9")
    row = RefusedAssociation.objects.get()
    assert row.count == 2 and "deactivated" in row.reason  # the latest reason


def test_practice_admin_sees_their_refusals_and_adds_the_device(
    client_for, practice_admin, practice, other_practice
) -> None:
    ask("SIRONA2", peer="192.168.1.44")
    ask("SIRONA2", peer="192.168.1.44")
    ask("THEIRS", called=other_practice.practice.ae_title)
    client = client_for(practice_admin)

    devices = client.get(reverse("dicom_servers")).content.decode()
    assert reverse("dicom_refused") in devices

    page = client.get(reverse("dicom_refused"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "SIRONA2" in html and "192.168.1.44" in html and "THEIRS" not in html
    [row] = page.context["refusals"]
    assert row.count == 2
    add = urlparse(row.add_url)
    assert add.path == reverse("dicom_server_add")
    assert parse_qs(add.query) == {
        "ae_title": ["SIRONA2"],
        "host": ["192.168.1.44"],
        "name": ["SIRONA2"],
    }

    form = client.get(row.add_url).content.decode()
    assert 'value="SIRONA2"' in form and 'value="192.168.1.44"' in form

    # Once added, the row says so instead of offering it again.
    response = client.post(
        reverse("dicom_server_add"),
        {
            "name": "Sirona 2",
            "ae_title": "SIRONA2",
            "host": "192.168.1.44",
            "port": 104,
            "is_active": "on",
            "allow_store": "on",
            "vendor_profile": "sirona",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert DicomServer.objects.for_practice(practice).filter(ae_title="SIRONA2").exists()
    html = client.get(reverse("dicom_refused")).content.decode()
    assert 'class="add-device"' not in html


def test_the_page_is_for_practice_admins(client_for, clinician, frontdesk) -> None:
    for user in (clinician, frontdesk):
        assert client_for(user).get(reverse("dicom_refused")).status_code == 403


def test_page_speaks_french(client_for, practice_admin, settings) -> None:
    settings.LANGUAGE_CODE = "fr-ca"
    ask("SIRONA2")
    with translation.override("fr"):
        html = client_for(practice_admin).get(reverse("dicom_refused")).content.decode()
    assert "Connexions refusées" in html and "Ajouter cet appareil" in html


@pytest.mark.parametrize("user", ["practice_admin"])
def test_django_admin_lists_only_the_practices_refusals(
    request, user, client_for, other_practice
) -> None:
    admin_user = request.getfixturevalue(user)
    ask("MINE")
    ask("THEIRS", called=other_practice.practice.ae_title)
    if not admin_user.is_staff:
        pytest.skip("the practice admin has no Django admin access in this setup")
    response = client_for(admin_user).get(reverse("admin:dicomnet_refusedassociation_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "MINE" in html and "THEIRS" not in html
