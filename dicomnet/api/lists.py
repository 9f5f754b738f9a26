"""The API's lists, paginated (pagination.py), with filters checked by a serializer."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.request import Request

from dicomnet.api.views import PracticeAPIView, PracticeRequest

if TYPE_CHECKING:
    from patients.decorators import PracticeUser
    from patients.models import Practice

QuerySetT = TypeVar("QuerySetT", bound=QuerySet)


def practice_of(request: Request) -> Practice:
    """The practice of a PracticeAPIView's user (InPractice has passed)."""
    return cast(PracticeRequest, request).user.practice


def user_of(request: Request) -> PracticeUser:
    """The user of a PracticeAPIView (InPractice has passed): a notice's read state is theirs."""
    return cast(PracticeRequest, request).user


class PracticeListView(PracticeAPIView, generics.ListAPIView):
    """A list whose query string ``filters`` checks: 400 on a bad value. ``get_queryset``
    reads ``filter_values()``, the filters given (blank ones left out)."""

    filters: type[serializers.Serializer]
    # filter name -> the ORM lookup its value is matched with (``filtered``)
    lookups: dict[str, str] = {}

    def filter_values(self) -> dict:
        params = self.filters(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return {k: v for k, v in params.validated_data.items() if v not in ("", None)}

    def filtered(self, queryset: QuerySetT, values: dict) -> QuerySetT:
        """``queryset`` narrowed by each filter given that ``lookups`` names."""
        given = {self.lookups[k]: v for k, v in values.items() if k in self.lookups}
        return queryset.filter(**given) if given else queryset
