"""The API's pages (``REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]``): ``?page=2&page_size=100``,
at most ``max_page_size``, answered as ``{"count", "next", "previous", "results"}``.

Alone in its module: DRF imports it while ``rest_framework.generics`` is being imported, so
it must import no view.
"""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
