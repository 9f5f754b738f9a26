"""The audit trail (issue 10 §3): events in DICOM's audit vocabulary (PS3.15 A.5), chained
by hashes, checked by ``verify``, searched by the privacy officer's page.

``record`` is the one writer. It takes the chain's lock (PostgreSQL: an advisory lock held
until the caller's transaction ends; SQLite: the IMMEDIATE write transaction), reads the
last row's hash and adds the new row, whose ``hash`` is an HMAC-SHA256 (key
``AUDIT_CHAIN_KEY``) of the previous hash and the row's content: without the key, a row
cannot be changed, inserted or removed without ``verify`` naming it. Rows removed from the
end of the trail leave no gap to find; the exports and syslog keep copies elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from nexrel import logs, metrics
from patients.models import AuditEvent, Patient, User

GENESIS = "0" * 64
# Any constant: the key of PostgreSQL's advisory lock that serialises the chain's writers.
_CHAIN_LOCK = 0x4E5852_41  # "NXR" "A"

# PS3.16 CID 400 (Audit Event ID) and the event type codes (CID 401…) Nexrel writes.
EVENTS = {
    "110100": "Application Activity",
    "110101": "Audit Log Used",
    "110102": "Begin Transferring DICOM Instances",
    "110103": "DICOM Instances Accessed",
    "110104": "DICOM Instances Transferred",
    "110105": "DICOM Study Deleted",
    "110106": "Export",
    "110107": "Import",
    "110108": "Network Entry",
    "110109": "Order Record",
    "110110": "Patient Record",
    "110112": "Query",
    "110113": "Security Alert",
    "110114": "User Authentication",
}
EVENT_TYPES = {
    "110120": "Application Start",
    "110121": "Application Stop",
    "110122": "Login",
    "110123": "Logout",
    "110126": "Node Authentication",
    "110127": "Emergency Override Started",
    "110129": "Security Configuration",
    "110132": "Use of a restricted function",
    "110136": "Security Roles Changed",
    "110137": "User security Attributes Changed",
}

# Nexrel's names of what was done (patients.services.audit's actions), as DICOM events.
ACTIONS: dict[str, tuple[str, str]] = {
    "view_patient": ("110110", "R"),
    "view_patient_images": ("110103", "R"),
    "view_study": ("110103", "R"),
    "view_image": ("110103", "R"),
    "view_thumbnail": ("110103", "R"),
    "view_review_study": ("110103", "R"),
    "view_annotations": ("110103", "R"),
    "create_annotation": ("110103", "C"),
    "update_annotation": ("110103", "U"),
    "delete_annotation": ("110103", "D"),
    "dicomweb_search": ("110112", "E"),
    "dicomweb_retrieve": ("110103", "R"),
    "dicomweb_store": ("110107", "C"),
    "download_dicom": ("110106", "R"),
    "download_study_zip": ("110106", "R"),
    "export_images": ("110106", "R"),
    "export_record": ("110106", "R"),
    "assign_study": ("110110", "U"),
    "undo_assign_study": ("110110", "U"),
    "create_patient_from_study": ("110110", "C"),
    "place": ("110103", "U"),
}
# What the privacy officer's page says of Nexrel's actions (patients/templates' audit pages).
WHAT_LABELS = {
    "view_patient": _("Chart opened (demographics)"),
    "view_patient_images": _("Chart opened, with the images"),
    "view_thumbnail": _("Thumbnail shown"),
    "view_image": _("Image shown"),
    "view_study": _("Study opened in the viewer"),
    "view_review_study": _("Study shown in the review queue"),
    "view_annotations": _("Annotations shown"),
    "create_annotation": _("Annotation added"),
    "update_annotation": _("Annotation changed"),
    "delete_annotation": _("Annotation deleted"),
    "dicomweb_search": _("DICOMweb search"),
    "dicomweb_retrieve": _("DICOMweb retrieval"),
    "dicomweb_store": _("DICOMweb store"),
    "download_dicom": _("DICOM file downloaded"),
    "download_study_zip": _("Study downloaded (zip)"),
    "export_images": _("Images exported"),
    "export_record": _("Patient's copy of the record exported"),
    "assign_study": _("Study assigned to the patient"),
    "undo_assign_study": _("Assignment undone"),
    "create_patient_from_study": _("Patient created from a study"),
    "login": _("Signed in"),
    "logout": _("Signed out"),
    "login_failed": _("Failed sign-in"),
    "login_locked_out": _("Sign-in locked out"),
    "roles_changed": _("Roles or permissions changed"),
    "audit_search": _("Audit trail searched"),
    "audit_export_csv": _("Audit trail exported"),
    "communications": _("Register of communications read"),
    "communications_csv": _("Register of communications exported"),
    "retention_delete": _("Study deleted (retention)"),
}


def what_label(what: str) -> str:
    if what in WHAT_LABELS:
        return str(WHAT_LABELS[what])
    if what.startswith("mount_"):
        return str(_("Mount changed (%(change)s)") % {"change": what.removeprefix("mount_")})
    if what.startswith("http:"):
        return str(_("Page or API request (%(route)s)") % {"route": what.removeprefix("http:")})
    return what


# Events that mean someone saw or took a patient's images: "who saw her X-rays?"
IMAGE_ACCESS_EVENTS = ("110103", "110104", "110106")
# What left the practice (R-22.1's register of communications): exports and downloads,
# transfers to other DICOM systems (C-MOVE, C-GET), and reads by other systems' tokens.
COMMUNICATION_EVENTS = ("110106", "110102", "110104")


@dataclass
class _RequestAudit:
    """The web request being served, and whether it already has its event."""

    request: HttpRequest
    recorded: bool = False
    events: list[int] = field(default_factory=list)


_current: ContextVar[_RequestAudit | None] = ContextVar("nexrel_audit_request", default=None)


def _request_user(request: HttpRequest) -> User | None:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def request_address(request: HttpRequest) -> str:
    """The client's address: django-axes's (behind the proxy, what the proxy saw), else the
    socket's."""
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", "")


def chain_key() -> bytes:
    return settings.AUDIT_CHAIN_KEY.encode()


def _content(event: AuditEvent) -> dict[str, Any]:
    """What the hash covers: every field but the id and the hashes themselves."""
    return {
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "event_id": event.event_id,
        "event_type": event.event_type,
        "action": event.action,
        "outcome": int(event.outcome),
        "outcome_text": event.outcome_text,
        "what": event.what,
        "practice_id": event.practice_id,
        "user_id": event.user_id,
        "username": event.username,
        "ae_title": event.ae_title,
        "address": event.address,
        "patient_id": event.patient_id,
        "patient_chart": event.patient_chart,
        "patient_name": event.patient_name,
        "study_uid": event.study_uid,
        "object_ref": event.object_ref,
        "detail": event.detail,
    }


def chain_hash(event: AuditEvent, previous_hash: str) -> str:
    body = json.dumps(_content(event), sort_keys=True, separators=(",", ":"), default=str)
    message = f"{previous_hash}\n{body}".encode()
    return hmac.new(chain_key(), message, hashlib.sha256).hexdigest()


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])


def record(
    event_id: str,
    *,
    action: str,
    what: str,
    outcome: int = AuditEvent.Outcome.SUCCESS,
    outcome_text: str = "",
    event_type: str = "",
    user: User | None = None,
    username: str = "",
    practice_id: int | None = None,
    ae_title: str = "",
    address: str = "",
    patient: Patient | None = None,
    study_uid: str = "",
    object_ref: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to the trail. ``user`` (a person) or ``ae_title``/``address`` (a
    device) says who, else the person of the web request being served; the practice is the
    user's or the patient's unless given."""
    if event_id not in EVENTS:
        raise ValueError(f"not a DICOM audit event ID: {event_id!r}")
    serving = _current.get()
    if serving is not None:
        serving.recorded = True
        if user is None and not ae_title and not username:
            user = _request_user(serving.request)
        address = address or request_address(serving.request)
        if serving.request.headers.get("Authorization", "").lower().startswith("bearer "):
            # Another system, by a token (the register of communications lists its reads).
            detail = {**(detail or {}), "via": "token"}
    if user is not None and not isinstance(user, User):
        # Not a person: a webhook's API key (dicomnet.api.receive.ApiKeyUser) and the like.
        username = username or str(user)
        practice_id = practice_id if practice_id is not None else getattr(user, "practice_id", None)
        user = None
    authenticated = user is not None and user.is_authenticated
    if practice_id is None:
        practice_id = (
            patient.practice_id
            if patient is not None
            else (user.practice_id if authenticated else None)  # type: ignore[union-attr]
        )
    ids = logs.bound_ids()  # the request's or association's: the log lines' ids
    if ids:
        detail = {**ids, **(detail or {})}
    event = AuditEvent(
        at=timezone.now(),
        event_id=event_id,
        event_type=event_type,
        action=action,
        outcome=outcome,
        outcome_text=outcome_text[:500],
        what=what[:60],
        practice_id=practice_id,
        user_id=user.pk if authenticated else None,  # type: ignore[union-attr]
        username=(user.get_username() if authenticated else username)[:150],  # type: ignore[union-attr]
        ae_title=ae_title[:16],
        address=address[:64],
        patient_id=patient.pk if patient is not None else None,
        patient_chart=patient.chart_number if patient is not None else "",
        patient_name=patient.full_name[:220] if patient is not None else "",
        study_uid=study_uid[:64],
        object_ref=object_ref[:255],
        detail=detail or {},
    )
    with transaction.atomic():
        _lock_chain()
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event.previous_hash = previous or GENESIS
        event.hash = chain_hash(event, event.previous_hash)
        event.save(force_insert=True)
    if serving is not None:
        serving.events.append(event.pk)
    metrics.AUDIT_EVENTS.labels(event_id=event_id).inc()
    return event


def record_action(
    user: User, *, action: str, patient: Patient | None, ref: str, study_uid: str = ""
) -> AuditEvent:
    """An action of patients.services.audit, as its DICOM event."""
    event_id, code = ACTIONS.get(action, ("110110", "R"))
    return record(
        event_id,
        action=code,
        what=action,
        user=user,
        patient=patient,
        object_ref=ref,
        study_uid=study_uid,
    )


@dataclass(frozen=True)
class ChainProblem:
    event_id: int  # the row's id
    kind: str  # "changed" (or inserted) | "gap" (rows deleted before it)
    message: str


def verify(events: Iterable[AuditEvent] | None = None) -> Iterator[ChainProblem]:
    """Every break of the chain, in order: a row whose hash does not match its content (it
    was changed, or inserted without the key), and a row whose predecessor is not the row
    that precedes it (rows were deleted in between, or it was inserted)."""
    rows = events if events is not None else AuditEvent.objects.order_by("id").iterator(2000)
    expected_previous, previous_id = GENESIS, None
    for event in rows:
        own_ok = hmac.compare_digest(chain_hash(event, event.previous_hash), event.hash)
        if not own_ok:
            yield ChainProblem(
                event.pk,
                "changed",
                f"audit event {event.pk} was changed or inserted: its hash does not match "
                "its content",
            )
        elif event.previous_hash != expected_previous:
            after = f"after event {previous_id}" if previous_id else "at the start"
            yield ChainProblem(
                event.pk,
                "gap",
                f"audit event {event.pk} does not follow the row before it ({after}): rows "
                "were deleted before it",
            )
        expected_previous, previous_id = event.hash, event.pk


def describe(event: AuditEvent) -> str:
    return EVENTS.get(event.event_id, event.event_id)


# Requests that are not a person's reading: polling, the login page, the language switch.
UNAUDITED_ROUTES = frozenset(
    {"notification_bell", "qr_job_progress", "login", "set_language", "javascript-catalog"}
)


def _generic_event(request: HttpRequest, response: HttpResponse) -> tuple[str, str, str, int]:
    """(event ID, event type, action, outcome) of a request no view recorded itself."""
    status = response.status_code
    if status in (401, 403):
        return "110113", "110132", "E", AuditEvent.Outcome.MINOR_FAILURE
    action = {"GET": "R", "HEAD": "R", "DELETE": "D", "POST": "U", "PUT": "U", "PATCH": "U"}
    outcome = AuditEvent.Outcome.SUCCESS if status < 400 else AuditEvent.Outcome.MINOR_FAILURE
    return "110110", "", action.get(request.method or "GET", "E"), outcome


class AuditMiddleware:
    """Every request of a person or a token gets its event: the view's own (patients.services
    .audit and the like), else a generic one naming the route, its method and its status
    (a refused one is a Security Alert, "use of a restricted function")."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The id of this request's log lines and audit events (nexrel/logs.py).
        request_id = uuid.uuid4().hex[:16]
        with logs.bound(request_id=request_id):
            return self._serve(request)

    def _serve(self, request: HttpRequest) -> HttpResponse:
        serving = _RequestAudit(request)
        token = _current.set(serving)
        try:
            response = self.get_response(request)
            match = request.resolver_match
            route = match.view_name if match is not None else ""
            user = _request_user(request)
            if (
                not serving.recorded
                and user is not None
                and (match is None or match.url_name not in UNAUDITED_ROUTES)
            ):
                event_id, event_type, action, outcome = _generic_event(request, response)
                record(
                    event_id,
                    action=action,
                    event_type=event_type,
                    what=f"http:{route or 'unrouted'}"[:60],
                    outcome=outcome,
                    outcome_text=f"HTTP {response.status_code}",
                    user=user,
                    object_ref=f"{request.method} {request.path}",
                )
            return response
        finally:
            _current.reset(token)
