from typing import cast

from django import forms
from django.contrib import admin, messages
from django.http import JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from dicomnet.ingest import apikeys, orthanc, review
from dicomnet.ingest.linking import link_study, notify_new_images
from dicomnet.ingest.pipeline import reprocess
from dicomnet.models import (
    ApiKey,
    DicomInstance,
    DicomSeries,
    DicomServer,
    DicomStudy,
    ImageAnnotation,
    OrthancNotification,
    RefusedAssociation,
)
from dicomnet.net import association
from dicomnet.viewer.annotations import as_json
from patients.admin_scoping import PracticeScopedAdmin
from patients.models import Patient
from patients.names import display_person_name


@admin.register(DicomServer)
class DicomServerAdmin(PracticeScopedAdmin):
    list_display = ["name", "ae_title", "host", "port", "is_active", "vendor_profile", "practice"]
    list_filter = ["practice", "is_active", "vendor_profile"]
    search_fields = ["name", "ae_title", "host"]
    actions = ["test_connection"]

    @admin.action(description="Test connection (C-ECHO)")
    def test_connection(self, request, queryset):
        for server in queryset:
            result = association.echo(server)
            if result.ok:
                self.message_user(request, f"{server}: {result.round_trip_ms} ms round trip.")
            else:
                self.message_user(request, f"{server}: {result.error}", messages.ERROR)


class SeriesInline(admin.TabularInline):
    model = DicomSeries
    extra = 0
    fields = ["series_number", "modality", "series_description", "instance_count"]
    readonly_fields = cast(list[str], fields)  # names only: no fieldset groups
    can_delete = False


class LinkPatientForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())


@admin.register(DicomStudy)
class DicomStudyAdmin(PracticeScopedAdmin):
    list_display = [
        "study_date",
        "dicom_patient_name",
        "patient_id",
        "modality",
        "instance_count",
        "patient",
        "appointment",
        "status",
        "practice",
    ]
    list_filter = ["status", "practice", "modality", "study_date", "server"]
    search_fields = [
        "patient_name",
        "patient_id",
        "study_instance_uid",
        "accession_number",
        "patient__family_name",
        "patient__given_name",
    ]
    readonly_fields = ["metadata", "match_candidates", "created_at", "updated_at"]
    raw_id_fields = ["patient", "appointment"]

    @admin.display(description=_("DICOM name"), ordering="patient_name")
    def dicom_patient_name(self, obj: DicomStudy) -> str:
        return display_person_name(obj.patient_name)

    inlines = [SeriesInline]
    actions = ["rerun_matching", "reprocess_study", "link_to_patient_action"]

    @admin.action(description="Re-run matching")
    def rerun_matching(self, request, queryset):
        for study in queryset:
            study.manually_linked = False
            study.save(update_fields=["manually_linked"])
            link_study(study)
            notify_new_images(study)
        self.message_user(request, f"Matching re-run on {queryset.count()} studies.")

    @admin.action(description="Reprocess (previews, analysis, matching)")
    def reprocess_study(self, request, queryset):
        count = 0
        for instance in DicomInstance.objects.filter(study__in=queryset):
            reprocess(instance)
            count += 1
        self.message_user(request, f"{count} instances queued for reprocessing.")

    @admin.action(description="Link to patient…")
    def link_to_patient_action(self, request, queryset):
        practices = set(queryset.values_list("practice_id", flat=True))
        if len(practices) != 1:
            self.message_user(request, "Select studies of one practice.", messages.ERROR)
            return None
        form = LinkPatientForm(request.POST if "apply" in request.POST else None)
        form.fields["patient"].queryset = Patient.objects.filter(practice_id__in=practices)
        if "apply" in request.POST and form.is_valid():
            for study in queryset:
                # Recorded and undoable like the review queue's, its reason replaced.
                review.assign([study], form.cleaned_data["patient"], by=request.user)
            self.message_user(request, f"{queryset.count()} studies linked.")
            return None
        return render(
            request,
            "admin/link_to_patient.html",
            {
                "studies": queryset,
                "form": form,
                "title": "Link to patient",
                **self.admin_site.each_context(request),
            },
        )


@admin.register(DicomSeries)
class DicomSeriesAdmin(PracticeScopedAdmin):
    list_display = ["study", "series_number", "modality", "series_description", "instance_count"]
    list_filter = ["modality", "practice"]
    search_fields = ["series_instance_uid", "study__patient_name"]
    raw_id_fields = ["study"]


@admin.register(DicomInstance)
class DicomInstanceAdmin(PracticeScopedAdmin):
    list_display = [
        "sop_instance_uid",
        "version",
        "conflict",
        "state",
        "calling_ae",
        "peer_address",
        "size",
        "preview_error",
        "received_at",
    ]
    list_filter = ["state", "conflict", "practice", "calling_ae"]
    search_fields = ["sop_instance_uid", "sha256", "study__study_instance_uid"]
    readonly_fields = ["analysis", "sha256", "storage_key", "spool_path", "received_at"]
    raw_id_fields = ["study", "series", "server"]
    actions = ["reprocess_instances"]

    @admin.action(description="Reprocess")
    def reprocess_instances(self, request, queryset):
        for instance in queryset:
            reprocess(instance)
        self.message_user(request, f"{queryset.count()} instances queued for reprocessing.")


@admin.register(ApiKey)
class ApiKeyAdmin(PracticeScopedAdmin):
    """Keys are created here and shown once; only their prefix and hash are kept."""

    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at", "practice"]
    list_filter = ["practice", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["practice", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]

    def save_model(self, request, obj, form, change):
        if not change:
            key = apikeys.new_key()
            obj.prefix, obj.key_hash = key[: apikeys.PREFIX_LENGTH], apikeys.hash_key(key)
            request._nexrel_clear_key = key
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """Show the clear key once, on its own page (never in a message cookie)."""
        return TemplateResponse(
            request,
            "admin/dicomnet/apikey_created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API key created",
                "api_key": obj,
                "clear_key": request._nexrel_clear_key,
                "list_url": reverse("admin:dicomnet_apikey_changelist"),
            },
        )

    @admin.action(description="Revoke")
    def revoke_keys(self, request, queryset):
        revoked = sum(apikeys.revoke(key) for key in queryset)
        self.message_user(request, f"{revoked} API keys revoked.")


@admin.register(OrthancNotification)
class OrthancNotificationAdmin(PracticeScopedAdmin):
    list_display = [
        "orthanc_instance_id",
        "status",
        "attempts",
        "error",
        "server",
        "instance",
        "created_at",
        "practice",
    ]
    list_filter = ["status", "practice"]
    search_fields = ["orthanc_instance_id", "error"]
    readonly_fields = [
        "practice",
        "server",
        "orthanc_instance_id",
        "status",
        "attempts",
        "error",
        "instance",
        "claimed_at",
        "created_at",
        "updated_at",
    ]
    actions = ["retry_fetch"]

    def has_add_permission(self, request, *args):
        return False

    @admin.action(description="Retry the fetch from Orthanc")
    def retry_fetch(self, request, queryset):
        count = 0
        for notification in queryset.filter(status=OrthancNotification.Status.FAILED):
            _, queued = orthanc.record_notification(
                practice=notification.practice,
                orthanc_instance_id=notification.orthanc_instance_id,
            )
            count += queued
        self.message_user(request, f"{count} failed fetches queued again.")


@admin.register(ImageAnnotation)
class ImageAnnotationAdmin(PracticeScopedAdmin):
    list_display = ["kind", "label", "instance", "frame", "author", "updated_at", "practice"]
    list_filter = ["practice", "kind"]
    search_fields = ["label", "instance__sop_instance_uid", "instance__study__patient_name"]
    readonly_fields = ["instance", "frame", "author", "kind", "created_at", "updated_at"]
    actions = ["export_json"]

    def has_add_permission(self, request, *args):
        return False  # drawn in the viewer, on an image

    @admin.action(description="Export as JSON")
    def export_json(self, request, queryset):
        rows = [as_json(a) for a in queryset.select_related("instance", "author")]
        response = JsonResponse({"annotations": rows}, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = 'attachment; filename="annotations.json"'
        return response


REFUSAL_FIELDS = [
    "last_seen",
    "calling_ae",
    "called_ae",
    "peer_address",
    "count",
    "reason",
    "first_seen",
    "practice",
]


@admin.register(RefusedAssociation)
class RefusedAssociationAdmin(PracticeScopedAdmin):
    """Written by the listener (dicomnet.net.access): read and delete only."""

    list_display = tuple(REFUSAL_FIELDS)
    list_filter = ["practice", "called_ae"]
    search_fields = ["calling_ae", "called_ae", "peer_address", "reason"]
    readonly_fields = REFUSAL_FIELDS

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The mount templates and mounts (dicomnet/dental/admin.py).
from dicomnet.dental import admin as dental_admin  # noqa: E402, F401
