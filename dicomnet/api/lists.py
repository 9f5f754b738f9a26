"""The API's lists, paginated (pagination.py), with filters checked by a serializer."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rest_framework import generics, serializers
from rest_framework.request import Request

from dicomnet.api.views import PracticeAPIView, PracticeRequest

if TYPE_CHECKING:
    from patients.models import Practice


def practice_of(request: Request) -> Practice:
    """The practice of a PracticeAPIView's user (InPractice has passed)."""
    return cast(PracticeRequest, request).user.practice


class PracticeListView(PracticeAPIView, generics.ListAPIView):
    """A list whose query string ``filters`` checks: 400 on a bad value. ``get_queryset``
    reads ``filter_values()``, the filters given (blank ones left out)."""

    filters: type[serializers.Serializer]

    def filter_values(self) -> dict:
        params = self.filters(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return {k: v for k, v in params.validated_data.items() if v not in ("", None)}
