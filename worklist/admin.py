from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from patients.admin_scoping import PracticeScopedAdmin
from patients.names import display_person_name
from worklist.models import (
    OperatoryStation,
    PerformedProcedureStep,
    ProcedureModality,
    WorklistItem,
    WorklistQuery,
)


@admin.register(WorklistItem)
class WorklistItemAdmin(PracticeScopedAdmin):
    list_display = [
        "scheduled_start",
        "dicom_patient_name",
        "modality",
        "scheduled_station_ae_title",
        "accession_number",
        "status",
        "first_fetched_at",
        "practice",
    ]
    list_filter = ["status", "modality", "scheduled_station_ae_title", "practice"]
    search_fields = [
        "patient_name",
        "patient_name_key",
        "patient_id",
        "accession_number",
        "study_instance_uid",
    ]
    date_hierarchy = "scheduled_start"
    raw_id_fields = ["appointment", "patient"]
    readonly_fields = ["patient_name_key", "first_fetched_at", "last_fetched_at", "fetched_by"]

    @admin.display(description=_("DICOM name"), ordering="patient_name")
    def dicom_patient_name(self, obj: WorklistItem) -> str:
        return display_person_name(obj.patient_name)


@admin.register(WorklistQuery)
class WorklistQueryAdmin(PracticeScopedAdmin):
    list_display = ["at", "calling_ae", "result_count", "status", "duration_ms", "practice"]
    list_filter = ["calling_ae", "practice"]
    readonly_fields = ["practice", "device", "calling_ae", "query", "result_count", "status"]

    def has_add_permission(self, request) -> bool:
        return False  # a record of what devices asked


@admin.register(PerformedProcedureStep)
class PerformedProcedureStepAdmin(PracticeScopedAdmin):
    list_display = ["created_at", "calling_ae", "status", "worklist_item", "sop_instance_uid"]
    list_filter = ["status", "calling_ae"]
    raw_id_fields = ["worklist_item"]


@admin.register(ProcedureModality)
class ProcedureModalityAdmin(PracticeScopedAdmin):
    list_display = [
        "procedure_code",
        "modality",
        "description",
        "mount_template",
        "expected_images",
        "practice",
    ]
    list_filter = ["modality", "practice"]
    search_fields = ["procedure_code", "description"]


@admin.register(OperatoryStation)
class OperatoryStationAdmin(PracticeScopedAdmin):
    list_display = ["operatory", "device", "practice"]
    list_filter = ["practice"]
