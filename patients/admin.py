from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from patients.admin_scoping import PracticeScopedAdmin, is_scoped
from patients.models import AccessLog, Appointment, Notification, Patient, Practice, User


@admin.register(Practice)
class PracticeAdmin(PracticeScopedAdmin):
    list_display = ["name", "ae_title", "created_at"]
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
    list_display = ["message", "count", "updated_at", "read_at", "practice"]
    list_filter = ["practice"]
    search_fields = ["message"]


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
