"""QIDO-RS, WADO-RS and STOW-RS over HTTP: the session, the media type, the status codes
and the access log.

The user of the browser session, or of the bearer token (``Authorization: Bearer nxr_…``,
``patients.tokens``), attached to a practice, searches and retrieves that practice's
archive; another practice's studies are never matched, whatever the path (a retrieve of one
is 404, never 403). Without credentials: 401 with ``WWW-Authenticate``, never a redirect to
the login page; with a bad token, 401 with ``error="invalid_token"`` (RFC 6750 §3). Errors are JSON
``{"detail": ...}``. No match of a search is 204 No Content, as PS3.18 §8.3.4.4.1 says.
A retrieve streams the stored objects (``StreamingHttpResponse``, no Content-Length).
A store (``POST studies``, ``POST studies/{study}``) reads the body as a stream, part by
part, each through ``store_instance`` (durable before the answer). A session's POST keeps
Django's CSRF protection (its clients send ``X-CSRFToken``); a token's needs none (no
browser sends the Authorization header on its own).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
from collections.abc import Iterator
from functools import wraps
from typing import IO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from dicomnet.dicomweb import frames as frame_reader
from dicomnet.dicomweb import rendered as rendering
from dicomnet.dicomweb import stow, wado
from dicomnet.dicomweb.qido import (
    RESOURCES,
    BadSearch,
    Page,
    parse_search,
    retrieve_url,
    run_search,
)
from dicomnet.dimse import status
from dicomnet.dimse.uids import is_valid_uid
from dicomnet.ingest.parsing import read_header
from dicomnet.ingest.store import IngestError, store_instance
from dicomnet.models import DicomInstance, DicomStudy
from patients import roles
from patients.decorators import PracticeRequest
from patients.models import Patient
from patients.services import audit
from patients.tokens import authenticate_token

DICOM_JSON = "application/dicom+json"
OCTET = "application/octet-stream"
ACCEPTED = (DICOM_JSON, "application/json")
AUTHENTICATE = 'Bearer realm="Nexrel DICOMweb"'
INVALID_TOKEN = f'{AUTHENTICATE}, error="invalid_token"'

log = logging.getLogger("dicomnet.dicomweb")


def _error(status: int, detail: str, **headers: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status, headers=headers or None)


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, answering the reason of a refusal instead of its page."""

    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason


def _csrf_refusal(request: HttpRequest) -> str | None:
    """Why Django's CSRF protection refuses ``request`` (an unsafe method), or None."""
    check = _CsrfCheck(lambda request: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})  # type: ignore[arg-type,return-value]


def session_practice(*permissions: str):
    """The user of a bearer token or of the session, of a practice, holding ``permissions``
    (patients/roles.py); as JSON otherwise: 401 (with ``WWW-Authenticate``) or 403.

    1. ``Authorization: Bearer <token>``: the token's user, or 401 ``invalid_token`` for a
       token that is unknown, malformed, revoked or expired (never the session instead). No
       CSRF check: a browser never sends the header on its own.
    2. Otherwise the session's user, or 401. A POST (STOW-RS) must pass Django's CSRF
       check (``X-CSRFToken``): the views that take one are ``csrf_exempt`` so that token
       clients get here, and the check is made here instead, for sessions only.
    3. The user must belong to a practice (403), and their role hold ``permissions`` (403):
       a token acts with its user's role.

    The view is marked ``nexrel_access`` (patients/tests/test_route_permissions.py).
    """
    return lambda view: _session_practice(view, permissions)


def _session_practice(view, permissions: tuple[str, ...]):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            user = authenticate_token(credentials.strip())
            if user is None:
                return _error(
                    401,
                    "the bearer token is unknown, malformed, revoked or expired",
                    **{"WWW-Authenticate": INVALID_TOKEN},
                )
            request.user = user
        elif not request.user.is_authenticated:
            return _error(401, "authentication required", **{"WWW-Authenticate": AUTHENTICATE})
        elif request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
            refusal = _csrf_refusal(request)
            if refusal is not None:
                return _error(403, f"CSRF check failed: {refusal}")
        if not getattr(request.user, "practice_id", None):
            return _error(403, "this account does not belong to a practice")
        if not request.user.has_perms(permissions):
            return _error(403, "your role in this practice does not allow DICOM images")
        return view(request, *args, **kwargs)

    wrapper.nexrel_access = permissions  # type: ignore[attr-defined]
    return wrapper


def _ref(request: HttpRequest, transaction: str) -> str:
    """The access log's object: ``qido:studies/1.2.3/series``, ``wado:studies/1.2.3``."""
    root = reverse("dicomweb_studies").removesuffix("studies")  # "/dicomweb/"
    return f"{transaction}:{request.path.removeprefix(root)}"


def _audit(request: PracticeRequest, page: Page) -> None:
    """One access-log row per patient whose studies were answered (one without a patient
    when none is linked or nothing matched)."""
    ref = _ref(request, "qido")
    linked = DicomStudy.objects.for_practice(request.user.practice).filter(
        study_instance_uid__in=page.study_uids
    )
    patients: list[Patient | None] = list(
        Patient.objects.for_practice(request.user.practice)
        .filter(pk__in=linked.values("patient"))  # "patient_id" is the DICOM PatientID
        .order_by("pk")
    )
    for patient in patients or [None]:
        audit(request.user, action="dicomweb_search", patient=patient, ref=ref)


@require_GET
@session_practice(roles.VIEW_IMAGES)
def search(
    request: PracticeRequest, resource: str, study: str = "", series: str = ""
) -> HttpResponse:
    """Search for studies, series or instances (PS3.18 §10.6)."""
    if not any(request.accepts(media_type) for media_type in ACCEPTED):
        return _error(406, f"this resource answers {DICOM_JSON} (or application/json) only")
    try:
        query = parse_search(
            RESOURCES[resource], dict(request.GET.lists()), study_uid=study, series_uid=series
        )
    except BadSearch as exc:
        return _error(400, str(exc))
    page = run_search(
        query,
        practice_id=request.user.practice_id,
        studies_url=request.build_absolute_uri(reverse("dicomweb_studies")),
    )
    _audit(request, page)
    warnings = []
    if page.not_held:
        names = ", ".join(sorted(page.not_held))
        warnings.append(f'299 Nexrel "Nexrel holds no value for the included fields {names}"')
    if page.more:
        warnings.append('299 Nexrel "There are additional results that can be requested"')
    if not page.answers:
        response = HttpResponse(status=204)
    else:
        body = json.dumps(page.answers, ensure_ascii=False).encode()
        response = HttpResponse(body, content_type=DICOM_JSON)
    if warnings:
        response["Warning"] = ", ".join(warnings)
    response["Cache-Control"] = "private, no-store"
    return response


def _select(
    request: PracticeRequest, study: str, series: str, instance: str
) -> list[DicomInstance] | JsonResponse:
    """The instances a retrieve names (400, 404 as a response otherwise); logged (Law 25)."""
    try:
        target = wado.parse_target(study, series, instance)
        instances = wado.select_instances(target, practice_id=request.user.practice_id)
    except wado.BadRetrieve as exc:
        return _error(400, str(exc))
    except wado.NotFound as exc:
        return _error(404, str(exc))
    return instances


def _audit_retrieve(request: PracticeRequest, instances: list[DicomInstance]) -> None:
    """One access-log row: the study's linked patient, if any (one study per path)."""
    study = instances[0].study
    patient = study.patient if study is not None else None
    audit(request.user, action="dicomweb_retrieve", patient=patient, ref=_ref(request, "wado"))


@require_GET
@session_practice(roles.VIEW_IMAGES)
def retrieve(
    request: PracticeRequest, study: str, series: str = "", instance: str = ""
) -> HttpResponse | StreamingHttpResponse:
    """Retrieve a study, a series or an instance (PS3.18 §10.4): the stored objects as
    ``multipart/related; type="application/dicom"``, streamed."""
    selected = _select(request, study, series, instance)
    if isinstance(selected, JsonResponse):
        return selected
    refusal = wado.negotiate(
        request.headers.get("Accept", ""), {i.transfer_syntax_uid for i in selected}
    )
    if refusal is not None:
        return _error(406, refusal)
    _audit_retrieve(request, selected)
    boundary = wado.new_boundary()
    response = StreamingHttpResponse(
        wado.multipart_body(selected, boundary),
        content_type=wado.multipart_content_type(boundary),
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@session_practice(roles.VIEW_IMAGES)
def metadata(
    request: PracticeRequest, study: str, series: str = "", instance: str = ""
) -> HttpResponse:
    """Retrieve the metadata of a study, a series or an instance (PS3.18 §10.4): a DICOM JSON
    array, one object per instance, large values as BulkDataURIs."""
    if not any(request.accepts(media_type) for media_type in ACCEPTED):
        return _error(406, f"this resource answers {DICOM_JSON} (or application/json) only")
    selected = _select(request, study, series, instance)
    if isinstance(selected, JsonResponse):
        return selected
    _audit_retrieve(request, selected)
    studies_url = request.build_absolute_uri(reverse("dicomweb_studies"))
    answers = []
    for found in selected:
        uids = {
            "StudyInstanceUID": study,
            "SeriesInstanceUID": found.series.series_instance_uid if found.series else "",
            "SOPInstanceUID": found.sop_instance_uid,
        }
        answers.append(wado.instance_metadata(found, retrieve_url(studies_url, uids, "IMAGE")))
    body = json.dumps(answers, ensure_ascii=False).encode()
    response = HttpResponse(body, content_type=DICOM_JSON)
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------- frames, bulk data


def _streamed(chunks: Iterator[bytes], stored: IO[bytes]) -> Iterator[bytes]:
    """``chunks``, then the stored object closed (also when the client goes away)."""
    try:
        yield from chunks
    finally:
        stored.close()


def _instance_stream(
    request: PracticeRequest, study: str, series: str, instance: str
) -> tuple[DicomInstance, IO[bytes]] | JsonResponse:
    selected = _select(request, study, series, instance)
    if isinstance(selected, JsonResponse):
        return selected
    try:
        return selected[0], wado.open_stored(selected[0])
    except FileNotFoundError:
        log.error("instance %s: stored object missing", selected[0].pk)
        return _error(404, "the stored object is missing")


@require_GET
@session_practice(roles.VIEW_IMAGES)
def frames(
    request: PracticeRequest, study: str, series: str, instance: str, frame_list: str
) -> HttpResponse | StreamingHttpResponse:
    """Retrieve frames of an instance (PS3.18 §10.4.1.1.2): as stored or decoded, one part
    per frame, in the order asked."""
    try:
        numbers = frame_reader.parse_frame_list(frame_list)
    except wado.BadRetrieve as exc:
        return _error(400, str(exc))
    opened = _instance_stream(request, study, series, instance)
    if isinstance(opened, JsonResponse):
        return opened
    found, stored = opened
    answer = frame_reader.negotiate_frames(
        request.headers.get("Accept", ""), found.transfer_syntax_uid
    )
    if isinstance(answer, str):
        stored.close()
        return _error(406, answer)
    parts = frame_reader.read_frames(stored, numbers, answer)
    try:
        first = next(parts)  # a frame number past the last, or undecodable: said before 200
    except wado.NotFound as exc:
        stored.close()
        return _error(404, str(exc))
    except Exception as exc:
        stored.close()
        log.warning("instance %s: frames %s not readable: %s", found.pk, frame_list, exc)
        return _error(406 if answer.decoded else 500, f"the frames cannot be read: {exc}")
    _audit_retrieve(request, [found])
    boundary = wado.new_boundary()
    body = wado.related_body(
        ((answer.part_type, data) for data in itertools.chain([first], parts)), boundary
    )
    response = StreamingHttpResponse(
        _streamed(body, stored),
        content_type=f'multipart/related; type="{answer.part_type.split(";")[0]}"; '
        f"boundary={boundary}",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@session_practice(roles.VIEW_IMAGES)
def bulkdata(
    request: PracticeRequest, study: str, series: str, instance: str, path: str
) -> HttpResponse:
    """Retrieve one bulk data value a metadata BulkDataURI names (PS3.18 §10.4.1.1.4)."""
    accepts = [m for m, _ in wado.media_ranges(request.headers.get("Accept", "") or "*/*")]
    if not {"*/*", "multipart/*", "multipart/related"} & set(accepts):
        return _error(406, f'bulk data is answered as multipart/related; type="{OCTET}" only')
    opened = _instance_stream(request, study, series, instance)
    if isinstance(opened, JsonResponse):
        return opened
    found, stored = opened
    try:
        with stored:
            value, syntax = frame_reader.read_bulkdata(stored, path)
    except wado.BadRetrieve as exc:
        return _error(400, str(exc))
    except wado.NotFound as exc:
        return _error(404, str(exc))
    _audit_retrieve(request, [found])
    boundary = wado.new_boundary()
    body = b"".join(wado.related_body([(f"{OCTET}; transfer-syntax={syntax}", value)], boundary))
    response = HttpResponse(
        body, content_type=f'multipart/related; type="{OCTET}"; boundary={boundary}'
    )
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------- rendered, thumbnail


@require_GET
@session_practice(roles.VIEW_IMAGES)
def rendered(
    request: PracticeRequest,
    study: str,
    series: str = "",
    instance: str = "",
    frame_list: str = "",
    kind: str = "rendered",
) -> HttpResponse:
    """A study, series, instance or frames as consumer images (PS3.18 §10.4.1.1.3; §9.5 for
    ``kind="thumbnail"``): JPEG, PNG or WebP by ``Accept``, with ``window``, ``viewport`` and
    ``quality``. A study or series gives its first instance; several frames, one image a
    part of a ``multipart/related`` answer."""
    thumbnail = kind == "thumbnail"
    try:
        numbers = rendering.parse_frames(frame_list) if frame_list else []
        parameters = rendering.parse_parameters(dict(request.GET.lists()))
    except rendering.BadRendering as exc:
        return _error(400, str(exc))
    multipart = len(numbers) > 1
    media_type = rendering.choose_media_type(request.headers.get("Accept", ""), multipart=multipart)
    if media_type is None:
        kinds = ", ".join(rendering.FORMATS)
        return _error(406, f"this resource answers {kinds} only")
    selected = _select(request, study, series, instance)
    if isinstance(selected, JsonResponse):
        return selected
    found = selected[0]
    try:
        images = rendering.render_instance(
            found, frames=numbers, parameters=parameters, thumbnail=thumbnail
        )
    except rendering.FrameNotFound as exc:
        return _error(404, str(exc))
    except FileNotFoundError:
        log.error("instance %s: stored object missing", found.pk)
        return _error(404, "the stored object is missing")
    except rendering.NotAnImage as exc:
        return _error(406, f"{exc}: it can't be rendered as an image")
    except Exception as exc:
        log.warning("instance %s: cannot render: %s: %s", found.pk, type(exc).__name__, exc)
        return _error(500, f"the instance cannot be rendered: {type(exc).__name__}: {exc}")
    _audit_retrieve(request, selected)
    bodies = [rendering.encode(i, media_type, quality=parameters.quality) for i in images]
    if multipart:
        boundary = wado.new_boundary()
        response = HttpResponse(
            b"".join(wado.related_body(((media_type, b) for b in bodies), boundary)),
            content_type=f'multipart/related; type="{media_type}"; boundary={boundary}',
        )
    else:
        response = HttpResponse(bodies[0], content_type=media_type)
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------- STOW-RS


@csrf_exempt  # for token clients; session_practice checks a session's POST
@require_http_methods(["GET", "POST"])
def studies(request: HttpRequest, resource: str = "studies") -> HttpResponse:
    """``/dicomweb/studies``: GET searches (QIDO-RS), POST stores (STOW-RS)."""
    if request.method == "POST":
        return store(request)
    return search(request, resource=resource)


studies.nexrel_access = (roles.VIEW_IMAGES,)  # type: ignore[attr-defined]  # search's, store's


@csrf_exempt  # for token clients; session_practice checks a session's POST
@require_http_methods(["GET", "POST"])
def study(request: HttpRequest, study: str) -> HttpResponse | StreamingHttpResponse:
    """``/dicomweb/studies/{study}``: GET retrieves (WADO-RS), POST stores (STOW-RS)."""
    if request.method == "POST":
        return store(request, study=study)
    return retrieve(request, study=study)


study.nexrel_access = (roles.VIEW_IMAGES,)  # type: ignore[attr-defined]  # retrieve's, store's


def _store_part(
    request: PracticeRequest, part: stow.Part, *, study: str, studies_url: str
) -> tuple[stow.Stored | None, stow.Failed | None, str]:
    """Store one part (its temp file is removed in every case); (stored, failed, study)."""
    sop_class = sop_instance = study_uid = ""
    try:
        if part.path is None:
            log.info("STOW-RS part %d refused: %s", part.index, part.error)
            reason = status.OUT_OF_RESOURCES if part.out_of_resources else status.CANNOT_UNDERSTAND
            return None, stow.Failed("", "", reason), ""
        if part.content_type and not stow.is_dicom_part(part.content_type):
            return None, stow.Failed("", "", status.CANNOT_UNDERSTAND), ""
        try:
            header = read_header(part.path)  # bounded: a deflate bomb is refused unread
            sop_class = str(header.get("SOPClassUID", "") or "")
            sop_instance = str(header.get("SOPInstanceUID", "") or "")
            study_uid = str(header.get("StudyInstanceUID", "") or "")
            series_uid = str(header.get("SeriesInstanceUID", "") or "")
        except Exception as exc:
            log.info("STOW-RS part %d refused: %s", part.index, exc)
            return None, stow.Failed("", "", status.CANNOT_UNDERSTAND), ""
        failed = stow.Failed(sop_class, sop_instance, status.DATASET_DOES_NOT_MATCH_SOP_CLASS)
        if study and study_uid != study:
            return None, failed, ""
        if not (is_valid_uid(study_uid) and is_valid_uid(series_uid)):
            return None, failed, ""
        try:
            outcome = store_instance(
                part.path,
                practice=request.user.practice,
                server=None,
                calling_ae="",
                peer_address=request.META.get("REMOTE_ADDR", ""),
                position=part.index,
            )
        except IngestError as exc:
            log.info("STOW-RS part %d refused: %s", part.index, exc)
            return None, stow.Failed(sop_class, sop_instance, exc.status), ""
        except Exception:
            log.exception("STOW-RS part %d: unexpected error", part.index)
            return None, stow.Failed(sop_class, sop_instance, status.PROCESSING_FAILURE), ""
        uids = {
            "StudyInstanceUID": study_uid,
            "SeriesInstanceUID": series_uid,
            "SOPInstanceUID": outcome.instance.sop_instance_uid,
        }
        stored = stow.Stored(
            outcome.instance.sop_class_uid,
            outcome.instance.sop_instance_uid,
            retrieve_url(studies_url, uids, "IMAGE"),
        )
        return stored, None, study_uid
    finally:
        if part.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(part.path)


@session_practice(roles.VIEW_IMAGES, roles.UPLOAD_IMAGES)
def store(request: PracticeRequest, study: str = "") -> HttpResponse:
    """Store instances (PS3.18 §10.5): a ``multipart/related; type="application/dicom"``
    body, one instance per part. Answered once every part is durable (or has failed): 200
    all stored, 202 some failed, 409 all failed, with the store response in DICOM JSON.

    A body over ``DICOMWEB_MAX_STOW_BYTES`` is 413: refused before reading when its
    Content-Length says so; otherwise reading stops at the limit, the part being read is
    dropped, and the parts stored before it stay stored (durable, already answered for
    in the access log), listed in the 413's JSON as ``stored``. A body whose multipart
    framing breaks (no boundary, a part cut short, no closing delimiter, a part without
    the blank line after its headers) is 400 in the same way: nothing of the broken part
    is kept, the parts before it stay stored and are listed."""
    try:
        boundary = stow.boundary_of(request.headers.get("Content-Type", ""))
    except stow.UnsupportedMedia as exc:
        return _error(415, str(exc))
    except stow.MalformedBody as exc:
        return _error(400, str(exc))
    if study and not is_valid_uid(study):
        return _error(400, f"the study UID {study!r} of the path is not a UID")
    limit = settings.DICOMWEB_MAX_STOW_BYTES
    try:
        stow.check_length(request.headers.get("Content-Length", ""), limit)
    except stow.BodyTooLarge as exc:
        return _error(413, str(exc))
    studies_url = request.build_absolute_uri(reverse("dicomweb_studies"))
    stored: list[stow.Stored] = []
    failed: list[stow.Failed] = []
    stored_studies: list[str] = []
    refusal: tuple[int, str] | None = None  # (413 or 400, why reading stopped)
    try:
        for part in stow.iter_parts(stow.read_chunks(request, limit=limit), boundary):
            if part.malformed:  # the last part: the framing is broken from here on
                refusal = (400, f"the multipart body is malformed: {part.error}")
                break
            done, refused, study_uid = _store_part(
                request, part, study=study, studies_url=studies_url
            )
            if done is not None:
                stored.append(done)
                if study_uid not in stored_studies:
                    stored_studies.append(study_uid)
            if refused is not None:
                failed.append(refused)
    except stow.BodyTooLarge as exc:
        refusal = (413, str(exc))
    if refusal is not None:
        log.info("STOW-RS body refused after %d stored part(s): %s", len(stored), refusal[1])
    if not stored and not failed and refusal is None:
        return _error(400, "the body holds no part")
    for uid in stored_studies:
        linked = (
            DicomStudy.objects.for_practice(request.user.practice)
            .filter(study_instance_uid=uid)
            .select_related("patient")
            .first()
        )
        patient = linked.patient if linked is not None else None
        audit(request.user, action="dicomweb_store", patient=patient, ref=f"stow:{uid}")
    if refusal is not None:
        code, reason = refusal
        refused_body = JsonResponse(
            {
                "detail": f"{reason}; reading stopped there, the parts before it "
                f"({len(stored)}) are stored",
                "stored": [s.sop_instance_uid for s in stored],
            },
            status=code,
        )
        refused_body["Cache-Control"] = "private, no-store"
        return refused_body
    study_url = (study or stored_studies[0]) if len(stored_studies) == 1 else ""
    body = stow.response_dataset(
        study_url=f"{studies_url}/{study_url}" if study_url else "",
        stored=stored,
        failed=failed,
    )
    code = 409 if not stored else 202 if failed else 200
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False).encode(), content_type=DICOM_JSON, status=code
    )
    response["Cache-Control"] = "private, no-store"
    return response
