"""Django admin scoped to the practice (the tenant).

A superuser sees every practice. Any other staff user is a practice admin: every list,
object page, action, filter and foreign-key choice is limited to rows of their own practice,
and a row they create gets their practice. A staff user without a practice sees nothing.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from patients.models import Practice, PracticeQuerySet, User


def is_scoped(request: HttpRequest) -> bool:
    return not request.user.is_superuser


def _practice_id(request: HttpRequest) -> int | None:
    """The practice of the admin's user: the admin site lets only logged-in staff in."""
    return cast(User, request.user).practice_id


def practice_lookup(model: type[models.Model]) -> str | None:
    """The lookup from ``model`` to its practice id, or None for a model not owned by one."""
    if issubclass(model, Practice):
        return "pk"
    try:
        field = model._meta.get_field("practice")
    except FieldDoesNotExist:
        return None
    if field.related_model is not None and issubclass(field.related_model, Practice):
        return "practice"
    return None


def scope_to_practice(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    """Limit ``queryset`` to the request user's practice (no-op for superusers)."""
    lookup = practice_lookup(queryset.model)
    if lookup is None or not is_scoped(request):
        return queryset
    if not _practice_id(request):
        return queryset.none()
    if isinstance(queryset, PracticeQuerySet):
        return queryset.for_practice(_practice_id(request))
    return queryset.filter(**{lookup: _practice_id(request)})  # Practice itself: by pk


class PracticeScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows, choices, filters and new objects follow the user's practice."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_to_practice(super().get_queryset(request), request)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        related = db_field.remote_field.model
        if is_scoped(request) and practice_lookup(related) is not None:
            if "queryset" not in kwargs:
                db = kwargs.get("using")
                queryset = self.get_field_queryset(db, db_field, request)
                if queryset is None:
                    queryset = related._default_manager.using(db).all()
                kwargs["queryset"] = queryset
            kwargs["queryset"] = scope_to_practice(kwargs["queryset"], request)
            if db_field.name == "practice":
                # Set for them (see get_form): shown, not editable.
                kwargs.update(disabled=True, empty_label=None)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs: Any):
        """On a practice admin's add form, the disabled practice field holds their practice.

        It stays a form field, rather than being excluded, so that constraints such as a
        unique chart number per practice are validated as form errors.
        """
        form = super().get_form(request, obj, change=change, **kwargs)
        if not is_scoped(request) or "practice" not in form.base_fields:
            return form
        practice_id = _practice_id(request)

        class PracticeForm(form):  # type: ignore[valid-type,misc]  # of the admin's own form
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                if self.instance._state.adding:
                    self.initial["practice"] = practice_id

        PracticeForm.__name__ = form.__name__
        return PracticeForm

    def get_list_filter(self, request: HttpRequest) -> list:
        """Practice admins get no practice filter, and related filters list only their rows."""
        filters = list(super().get_list_filter(request))
        if not is_scoped(request):
            return filters
        scoped: list[Any] = []
        for item in filters:
            if not isinstance(item, str):
                scoped.append(item)
                continue
            path = get_fields_from_path(self.model, item)
            if any(issubclass(f.related_model or object, Practice) for f in path):
                continue
            if path[-1].is_relation:
                item = (item, admin.RelatedOnlyFieldListFilter)
            scoped.append(item)
        return scoped

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if is_scoped(request) and practice_lookup(self.model) == "practice":
            obj.practice_id = _practice_id(request)
        super().save_model(request, obj, form, change)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        if is_scoped(request) and not _practice_id(request):
            return False
        return super().has_add_permission(request, *args)
