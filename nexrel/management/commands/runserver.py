"""staticfiles' runserver, whose static files carry the pages' CSP header
(nexrel/static_csp.py): what ``make run`` serves and the browser tests test."""

from __future__ import annotations

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver

from nexrel.static_csp import CSPStaticFilesHandler


class Command(StaticRunserver):
    def get_handler(self, *args, **options):
        handler = super().get_handler(*args, **options)
        if isinstance(handler, StaticFilesHandler):
            return CSPStaticFilesHandler(handler.application)
        return handler
