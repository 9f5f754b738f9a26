"""The mount templates in the admin: each with its slots (position, expected view, teeth in
FDI, rotation, place in the grid). Registered by dicomnet.admin."""

from __future__ import annotations

from django.contrib import admin

from dicomnet.dental.models import Mount, MountChange, MountSlot, MountTemplate


class MountSlotInline(admin.TabularInline):
    model = MountSlot
    extra = 0
    fields = ["position", "row", "column", "view", "teeth", "rotation"]


@admin.register(MountTemplate)
class MountTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "columns", "pick_by_count", "grows", "sort"]
    inlines = [MountSlotInline]


class MountChangeInline(admin.TabularInline):
    model = MountChange
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "at",
        "user",
        "action",
        "instance",
        "from_position",
        "to_position",
        "detail",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Mount)
class MountAdmin(admin.ModelAdmin):
    list_display = ["id", "template", "study", "appointment", "edited", "created_at"]
    list_filter = ["template"]
    raw_id_fields = ["study", "appointment"]
    inlines = [MountChangeInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        practice_id = getattr(request.user, "practice_id", None)
        if not request.user.is_superuser:
            return queryset.filter(practice_id=practice_id)
        return queryset
