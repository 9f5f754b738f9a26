from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from patients.models import AccessLog, Appointment, Notification, Patient, Practice, User


@admin.register(Practice)
class PracticeAdmin(admin.ModelAdmin):
    list_display = ["name", "ae_title", "created_at"]
    search_fields = ["name", "ae_title"]


@admin.register(User)
class NexrelUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("Practice", {"fields": ["practice"]}),)
    list_display = ["username", "email", "practice", "is_staff"]
    list_filter = ["practice", "is_staff", "is_superuser"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["chart_number", "family_name", "given_name", "birth_date", "sex", "practice"]
    list_filter = ["practice", "sex"]
    search_fields = ["chart_number", "family_name", "given_name", "name_key", "health_card_number"]


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = ["start", "patient", "operatory", "procedure_code", "needs_imaging", "status"]
    list_filter = ["practice", "needs_imaging", "status", "operatory"]
    search_fields = ["patient__family_name", "patient__given_name", "procedure_code"]
    date_hierarchy = "start"
    raw_id_fields = ["patient"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["message", "count", "updated_at", "read_at", "practice"]
    list_filter = ["practice"]
    search_fields = ["message"]


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin):
    list_display = ["at", "user", "action", "patient", "object_ref"]
    list_filter = ["practice", "action"]
    search_fields = ["user__username", "object_ref"]
