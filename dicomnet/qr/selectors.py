"""Reads for query/retrieve, scoped to a practice, and the rules on what a peer allows.

Both the REST API and the pages use these, so that one practice never queries through, or
sees, another's servers or jobs.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from dicomnet.models import DicomServer, RetrieveJob
from patients.models import Practice

FINISHED = {
    RetrieveJob.Status.COMPLETED,
    RetrieveJob.Status.WARNING,
    RetrieveJob.Status.FAILED,
    RetrieveJob.Status.CANCELLED,
}


def servers_of(practice: Practice) -> QuerySet[DicomServer]:
    return DicomServer.objects.filter(practice=practice)


def query_servers(practice: Practice) -> QuerySet[DicomServer]:
    """Active peers we may send C-FIND to."""
    return servers_of(practice).filter(is_active=True, allow_find=True)


def retrieve_servers(practice: Practice) -> QuerySet[DicomServer]:
    """Active peers we may retrieve from, by C-MOVE or C-GET."""
    return (
        servers_of(practice).filter(is_active=True).filter(Q(allow_move=True) | Q(allow_get=True))
    )


def jobs_of(practice: Practice) -> QuerySet[RetrieveJob]:
    return RetrieveJob.objects.filter(practice=practice).select_related("server", "patient")


def query_refusal(server: DicomServer) -> str:
    """Why this peer may not be queried, or an empty string."""
    if not server.is_active:
        return _("DICOM server “%(name)s” is not active.") % {"name": server.name}
    if not server.allow_find:
        return _("DICOM server “%(name)s” does not allow queries (allow find is off).") % {
            "name": server.name
        }
    return ""


def retrieve_refusal(server: DicomServer, method: str) -> str:
    """Why this peer may not be retrieved from with ``method`` (move or get), or ''."""
    if not server.is_active:
        return _("DICOM server “%(name)s” is not active.") % {"name": server.name}
    if method == RetrieveJob.Method.MOVE and not server.allow_move:
        return _("DICOM server “%(name)s” does not allow C-MOVE (allow move is off).") % {
            "name": server.name
        }
    if method == RetrieveJob.Method.GET and not server.allow_get:
        return _("DICOM server “%(name)s” does not allow C-GET (allow get is off).") % {
            "name": server.name
        }
    return ""


def is_finished(job: RetrieveJob) -> bool:
    return job.status in FINISHED
