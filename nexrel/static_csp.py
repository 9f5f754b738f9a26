"""Static files with the pages' Content-Security-Policy header.

A worker obeys the CSP of its own script's response, not the page's, and Django's static
serving (staticfiles' handler under ``runserver --insecure``, how ``make run`` and the
browser tests serve them) bypasses the middleware, so the viewer's decode worker would run
with no policy at all. ``CSPStaticFilesHandler`` adds exactly the header
``ContentSecurityPolicyMiddleware`` gives a page (no nonce: a static file has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.http import HttpResponseBase
from django.utils.csp import CSP, build_policy


def add_csp_headers(response: HttpResponseBase) -> HttpResponseBase:
    for header, config in (
        (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
        (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
    ):
        if config and header not in response:
            response.headers[str(header)] = build_policy(cast(Mapping[str, Any], config))
    return response


class CSPStaticFilesHandler(StaticFilesHandler):
    def serve(self, request):
        return add_csp_headers(super().serve(request))
