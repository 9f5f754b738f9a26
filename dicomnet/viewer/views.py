"""The viewer's annotation endpoints (JSON, session-authenticated, CSRF kept): they only
translate HTTP into dicomnet.viewer.annotations and record each access."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from dicomnet.models import DicomInstance, ImageAnnotation
from dicomnet.viewer import annotations as service
from patients import roles
from patients.decorators import PracticeRequest
from patients.services import audit

ACCESS = (roles.VIEW_IMAGES, roles.USE_VIEWER)


def _api(view):
    """Logged in, in a practice and of a role that uses the viewer, or a JSON 401/403 (never
    the login page's HTML). Marked ``nexrel_access`` for the route test."""

    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "not logged in"}, status=401)
        if not getattr(request.user, "practice_id", None):
            return JsonResponse({"error": "this account does not belong to a practice"}, status=403)
        if not request.user.has_perms(ACCESS):
            return JsonResponse({"error": "your role does not use the viewer"}, status=403)
        try:
            return view(request, *args, **kwargs)
        except service.AnnotationError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        except (DicomInstance.DoesNotExist, ImageAnnotation.DoesNotExist):
            return JsonResponse({"error": "no such image or annotation"}, status=404)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    wrapper.nexrel_access = ACCESS
    return wrapper


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise service.AnnotationError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise service.AnnotationError("the body must be a JSON object")
    return body


@_api
@require_http_methods(["GET", "POST"])
def instance_annotations(request: PracticeRequest, sop_instance_uid: str) -> HttpResponse:
    """GET: the image's annotations; POST: a new one ({kind, frame, label, data})."""
    instance = service.instance_for_viewer(request.user.practice_id, sop_instance_uid)
    patient = instance.study.patient if instance.study else None
    if request.method == "GET":
        found = service.annotations_of(instance)
        audit(request.user, action="view_annotations", patient=patient,
              ref=f"instance:{sop_instance_uid}")  # fmt: skip
        return JsonResponse({"annotations": [service.as_json(a) for a in found]})
    body = _body(request)
    created = service.create_annotation(
        instance,
        author=request.user,
        kind=body.get("kind"),
        frame=body.get("frame", 1),
        label=body.get("label", ""),
        data=body.get("data"),
    )
    audit(request.user, action="create_annotation", patient=patient,
          ref=f"annotation:{created.pk}")  # fmt: skip
    return JsonResponse(service.as_json(created), status=201)


@_api
@require_http_methods(["PATCH", "DELETE"])
def annotation(request: PracticeRequest, pk: int) -> HttpResponse:
    """PATCH: change its label or data; DELETE: remove it."""
    found = service.annotation_for(request.user.practice_id, pk)
    study = found.instance.study
    patient = study.patient if study else None
    if request.method == "DELETE":
        found.delete()
        audit(request.user, action="delete_annotation", patient=patient, ref=f"annotation:{pk}")
        return HttpResponse(status=204)
    found = service.update_annotation(found, changes=_body(request))
    audit(request.user, action="update_annotation", patient=patient, ref=f"annotation:{pk}")
    return JsonResponse(service.as_json(found))
