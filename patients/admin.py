from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from patients import tokens
from patients.admin_scoping import PracticeScopedAdmin, is_scoped
from patients.models import (
    AccessLog,
    ApiToken,
    Appointment,
    AuditEvent,
    ConfidentialityIncident,
    Notification,
    Patient,
    Practice,
    User,
)


@admin.register(Practice)
class PracticeAdmin(PracticeScopedAdmin):
    list_display = ["name", "ae_title", "tooth_notation", "retention_years", "created_at"]
    search_fields = ["name", "ae_title"]

    def has_add_permission(self, request):
        return not is_scoped(request) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return not is_scoped(request) and super().has_delete_permission(request, obj)


@admin.register(User)
class NexrelUserAdmin(PracticeScopedAdmin, UserAdmin):
    # A tuple in UserAdmin; the stubs type it as ModelAdmin's (Optional) attribute.
    fieldsets = UserAdmin.fieldsets + (("Practice", {"fields": ["practice"]}),)  # type: ignore[operator]
    list_display = ["username", "email", "practice", "is_staff"]
    list_filter = ["practice", "is_staff", "is_superuser"]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if is_scoped(request):
            # A practice admin must not be able to grant themselves every practice.
            readonly += ["is_superuser", "user_permissions"]
        return readonly


@admin.register(Patient)
class PatientAdmin(PracticeScopedAdmin):
    list_display = ["chart_number", "family_name", "given_name", "birth_date", "sex", "practice"]
    list_filter = ["practice", "sex"]
    search_fields = ["chart_number", "family_name", "given_name", "name_key", "health_card_number"]


@admin.register(Appointment)
class AppointmentAdmin(PracticeScopedAdmin):
    list_display = ["start", "patient", "operatory", "procedure_code", "needs_imaging", "status"]
    list_filter = ["practice", "needs_imaging", "status", "operatory"]
    search_fields = ["patient__family_name", "patient__given_name", "procedure_code"]
    date_hierarchy = "start"
    raw_id_fields = ["patient"]


@admin.register(Notification)
class NotificationAdmin(PracticeScopedAdmin):
    list_display = ["notice", "count", "updated_at", "readers", "practice"]
    list_filter = ["practice"]
    search_fields = ["message"]
    readonly_fields = ["read_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(reader_count=Count("reads"))

    @admin.display(description=_("notification"), ordering="message")
    def notice(self, obj: Notification) -> str:
        return obj.text  # in the admin's language; ``message`` (searched) is the English

    @admin.display(description=_("read by"), ordering="reader_count")
    def readers(self, obj: Notification) -> int:
        return obj.reader_count  # type: ignore[attr-defined]  # get_queryset's annotation

    @admin.display(description=_("read by"))
    def read_by(self, obj: Notification) -> str:
        """Who has read it since its last images, and when (each person's bell is theirs)."""
        marks = obj.reads.select_related("user").order_by("read_at")
        return ", ".join(f"{m.user.get_username()} ({m.read_at:%Y-%m-%d %H:%M})" for m in marks)


@admin.register(AccessLog)
class AccessLogAdmin(PracticeScopedAdmin):
    list_display = ["at", "user", "action", "patient", "object_ref"]
    list_filter = ["practice", "action"]
    search_fields = ["user__username", "object_ref"]

    # An audit trail is read, never written or pruned by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(PracticeScopedAdmin):
    """A token is created here (or by ``manage.py api_token create``) and shown once, on its
    own page; only its prefix and hash are kept, and neither form nor list shows the hash.
    A token is revoked, not deleted, so the list keeps who had one."""

    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "expires_at",
                    "revoked_at"]  # fmt: skip
    list_filter = ["user__practice", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def get_queryset(self, request):
        """A practice admin sees the tokens of their practice's users (a token has no
        practice of its own: it is its user's)."""
        queryset = super().get_queryset(request).select_related("user")
        if is_scoped(request):
            practice_id = getattr(request.user, "practice_id", None)
            if not practice_id:
                return queryset.none()
            return queryset.filter(user__practice_id=practice_id)
        return queryset

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + ["user"] if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        if not change:
            raw = tokens.new_token()
            obj.prefix, obj.token_hash = raw[: tokens.PREFIX_LENGTH], tokens.hash_token(raw)
            request._nexrel_clear_token = raw
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """Show the token once, on its own page (never in a message cookie)."""
        return TemplateResponse(
            request,
            "admin/patients/apitoken_created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API token created",
                "api_token": obj,
                "clear_token": request._nexrel_clear_token,
                "list_url": reverse("admin:patients_apitoken_changelist"),
            },
        )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke")
    def revoke_tokens(self, request, queryset):
        revoked = sum(tokens.revoke(token) for token in queryset)
        self.message_user(request, f"{revoked} API tokens revoked.")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only, for superusers across practices; practice admins use /audit/."""

    list_display = ["at", "event_id", "what", "username", "ae_title", "patient_chart", "outcome"]
    list_filter = ["event_id", "outcome"]
    search_fields = ["username", "ae_title", "patient_chart", "patient_name", "study_uid"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(ConfidentialityIncident)
class ConfidentialityIncidentAdmin(PracticeScopedAdmin):
    """The practice's register of confidentiality incidents (R-22.1, Law 25)."""

    list_display = ["occurred_on", "learned_on", "persons_affected", "risk", "cai_notified_on"]
    list_filter = ["risk"]
    readonly_fields = ["recorded_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)
