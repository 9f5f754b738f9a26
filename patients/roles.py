"""The three roles of a practice's people, as Django groups with permissions.

- clinician ("Clinicians"): everything clinical, i.e. every model permission of patients,
  dicomnet and worklist except those of the administrative models (``ADMIN_MODELS``), and
  the images, the viewer and the review queue. A model added later is clinical unless it is
  named in ``ADMIN_MODELS``.
- front desk ("Front desk"): the calendar, the patients' demographics, appointments and
  their worklist items, and the review queue read-only; no image, no viewer.
- practice admin ("Practice admins"): the users, the devices, the practice's settings and
  the record of refused associations; the patients' demographics (no image), to find the
  patient whose copy of the record is asked for.
- the patient's copy of their record (``export_record``): clinicians and practice admins.

Superusers use Django admin across practices and need no group. The groups are created by
the data migration ``patients.0005_roles`` and again, idempotently, by ``seed_demo``
(``sync_groups``): a group's permissions are set to exactly those listed here.

Views name the permission they need (``patients.decorators.role_required``); the custom ones
live on ``Practice`` (its ``Meta.permissions``) and are named here once.
"""

from __future__ import annotations

from typing import Any

CLINICIAN = "Clinicians"
FRONT_DESK = "Front desk"
PRACTICE_ADMIN = "Practice admins"
ROLES = (CLINICIAN, FRONT_DESK, PRACTICE_ADMIN)

# The custom permissions (codename, description), declared on patients.Practice.
CUSTOM_PERMISSIONS: list[tuple[str, str | Any]] = [
    ("view_images", "Can view images, previews and DICOM objects"),
    ("use_viewer", "Can open the image viewer"),
    ("manage_devices", "Can manage the practice's DICOM devices"),
    ("work_review_queue", "Can work the review queue (link and confirm studies)"),
    ("view_review_queue", "Can see the review queue"),
    ("view_refused_associations", "Can see the record of refused associations"),
    ("export_record", "Can export a patient's copy of their record (images and summary)"),
]

VIEW_IMAGES = "patients.view_images"
USE_VIEWER = "patients.use_viewer"
MANAGE_DEVICES = "patients.manage_devices"
WORK_REVIEW_QUEUE = "patients.work_review_queue"
VIEW_REVIEW_QUEUE = "patients.view_review_queue"
VIEW_REFUSED_ASSOCIATIONS = "patients.view_refused_associations"
# The patient's copy of their record: a clinician or a practice admin, not the desk.
EXPORT_RECORD = "patients.export_record"

VIEW_PATIENT = "patients.view_patient"
USE_AUDIT_TRAIL = "patients.use_audit_trail"
VIEW_APPOINTMENT = "patients.view_appointment"
ADD_APPOINTMENT = "patients.add_appointment"
CHANGE_APPOINTMENT = "patients.change_appointment"
ADD_WORKLIST_ITEM = "worklist.add_worklistitem"
UPLOAD_IMAGES = "dicomnet.add_dicominstance"
VIEW_RETRIEVE_JOB = "dicomnet.view_retrievejob"
ADD_RETRIEVE_JOB = "dicomnet.add_retrievejob"
CHANGE_RETRIEVE_JOB = "dicomnet.change_retrievejob"

APPS = ("patients", "dicomnet", "worklist")
# Models of the practice's administration, not of its care: no clinician permission.
ADMIN_MODELS = {
    "patients": {
        "practice",
        "user",
        "accesslog",
        "apitoken",
        "auditevent",
        "confidentialityincident",
    },
    "dicomnet": {"dicomserver", "apikey", "orthancnotification", "refusedassociation"},
    "worklist": {"proceduremodality", "operatorystation"},
}
CLINICAL_CUSTOM = (
    "view_images",
    "use_viewer",
    "work_review_queue",
    "view_review_queue",
    "export_record",
)

FRONT_DESK_PERMISSIONS = {
    "patients.view_patient",
    "patients.add_patient",
    "patients.change_patient",
    "patients.view_appointment",
    "patients.add_appointment",
    "patients.change_appointment",
    "patients.delete_appointment",
    "patients.view_notification",
    "worklist.view_worklistitem",
    "worklist.add_worklistitem",
    "worklist.change_worklistitem",
    VIEW_REVIEW_QUEUE,
}

PRACTICE_ADMIN_PERMISSIONS = {
    "patients.view_practice",
    "patients.change_practice",
    "patients.view_user",
    "patients.add_user",
    "patients.change_user",
    "patients.view_accesslog",
    # The bell, for the operations alerts meant for them (patients.selectors.for_audience).
    "patients.view_notification",
    # The privacy officer's page (patients/audit_views.py): search and export the trail.
    "patients.view_auditevent",
    USE_AUDIT_TRAIL,
    # The register of confidentiality incidents (R-22.1, Law 25).
    "patients.view_confidentialityincident",
    "patients.add_confidentialityincident",
    "patients.change_confidentialityincident",
    "patients.view_apitoken",
    "patients.add_apitoken",
    "patients.change_apitoken",
    "patients.delete_apitoken",
    "dicomnet.view_dicomserver",
    "dicomnet.add_dicomserver",
    "dicomnet.change_dicomserver",
    "dicomnet.delete_dicomserver",
    "dicomnet.view_apikey",
    "dicomnet.add_apikey",
    "dicomnet.change_apikey",
    "dicomnet.delete_apikey",
    "dicomnet.view_orthancnotification",
    "dicomnet.view_refusedassociation",
    "worklist.view_proceduremodality",
    "worklist.add_proceduremodality",
    "worklist.change_proceduremodality",
    "worklist.delete_proceduremodality",
    "worklist.view_operatorystation",
    "worklist.add_operatorystation",
    "worklist.change_operatorystation",
    "worklist.delete_operatorystation",
    MANAGE_DEVICES,
    VIEW_REFUSED_ASSOCIATIONS,
    # The patient's copy of their record is often the privacy officer's (Law 25) to give:
    # the chart's demographics and its export link, not its images.
    "patients.view_patient",
    EXPORT_RECORD,
}


def _name(permission: Any) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def _is_clinical(permission: Any) -> bool:
    app, model = permission.content_type.app_label, permission.content_type.model
    if app == "patients" and model == "practice":
        return permission.codename in CLINICAL_CUSTOM
    return model not in ADMIN_MODELS.get(app, set())


def role_permissions(permissions: Any) -> dict[str, list[Any]]:
    """Each role's share of ``permissions`` (a queryset of the apps' Permission rows)."""
    rows = list(permissions.filter(content_type__app_label__in=APPS).select_related("content_type"))
    return {
        CLINICIAN: [p for p in rows if _is_clinical(p)],
        FRONT_DESK: [p for p in rows if _name(p) in FRONT_DESK_PERMISSIONS],
        PRACTICE_ADMIN: [p for p in rows if _name(p) in PRACTICE_ADMIN_PERMISSIONS],
    }


def sync_groups(group_model: Any, permission_model: Any) -> dict[str, Any]:
    """Create the three groups and set their permissions; returns them by name.

    Takes the models so that the data migration can pass its historical ones.
    """
    groups = {}
    for name, permissions in role_permissions(permission_model.objects.all()).items():
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.set(permissions)
        groups[name] = group
    return groups


def permissions_of(role: str) -> set[str]:
    """The ``app.codename`` permissions a role's group holds (for tests and docs)."""
    from django.contrib.auth.models import Permission

    return {_name(p) for p in role_permissions(Permission.objects.all())[role]}


def migrate_groups(apps: Any, schema_editor: Any) -> None:
    """A migration's RunPython when the roles' permissions change: the Permission rows of
    models and Meta.permissions added by the migrations so far (Django makes them only
    after ``migrate``), then each group set to exactly its permissions."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
