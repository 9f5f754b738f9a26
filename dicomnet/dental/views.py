"""The mount page (/dicom/mounts/<id>/), its changes (POST) and its PDF. Each view turns the
request into one call of dicomnet.dental.mounts or .selectors."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dicomnet.dental import mounts
from dicomnet.dental.models import Mount
from dicomnet.dental.pdf import mount_pdf
from dicomnet.dental.selectors import mount_view, mounts_of
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.services import audit


def _mount_or_404(request: PracticeRequest, pk: int) -> Mount:
    mount = mounts_of(request.user.practice).filter(pk=pk).first()
    if mount is None:
        raise Http404("no such mount")
    return mount


def _context(request: PracticeRequest, mount: Mount) -> dict:
    view = mount_view(mount, request.user.practice.tooth_notation)
    return {
        "view": view,
        "mount": mount,
        "study": mount.study,
        "patient": mount.study.patient if mount.study else None,
        "can_edit": request.user.has_perm(roles.USE_VIEWER) and mount.study_id is not None,
        "viewer_url": reverse("viewer", args=[mount.study.study_instance_uid])
        if mount.study
        else "",
    }


@role_required(roles.VIEW_IMAGES)
@require_GET
def mount_page(request: PracticeRequest, pk: int) -> HttpResponse:
    mount = _mount_or_404(request, pk)
    context = _context(request, mount)
    audit(
        request.user,
        action="view_patient_images",
        patient=context["patient"],
        ref=f"mount:{mount.pk}",
    )
    return render(request, "dicomnet/mount.html", context)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@role_required(roles.VIEW_IMAGES, roles.USE_VIEWER)
@require_POST
def mount_change(request: PracticeRequest, pk: int) -> HttpResponse:
    """One change: ``action`` move (``instance``, ``position``), rotate (``instance``,
    ``degrees``), flip or remove (``instance``). Answers the mount's grid to the script
    (X-Requested-With: fetch), a redirect to the page to a plain form."""
    mount = _mount_or_404(request, pk)
    action = request.POST.get("action", "")
    instance = _int(request.POST.get("instance"))
    error = ""
    try:
        if instance is None:
            raise mounts.MountError(_("Which image?"))
        if action == "move":
            position = _int(request.POST.get("position"))
            if position is None:
                raise mounts.MountError(_("Which slot?"))
            mounts.move(mount, instance, position, user=request.user)
        elif action == "rotate":
            mounts.rotate(
                mount, instance, _int(request.POST.get("degrees")) or 0, user=request.user
            )
        elif action == "flip":
            mounts.flip(mount, instance, user=request.user)
        elif action == "remove":
            mounts.remove(mount, instance, user=request.user)
        else:
            raise mounts.MountError(_("Unknown change “%(action)s”.") % {"action": action})
    except mounts.MountError as exc:
        error = str(exc)
    if request.headers.get("X-Requested-With") == "fetch":
        context = {**_context(request, mount), "error": error}
        return render(request, "dicomnet/_mount_grid.html", context, status=400 if error else 200)
    if error:
        context = {**_context(request, mount), "error": error}
        return render(request, "dicomnet/mount.html", context, status=400)
    return redirect("mount_page", pk=mount.pk)


@role_required(roles.VIEW_IMAGES)
@require_GET
def mount_pdf_view(request: PracticeRequest, pk: int) -> HttpResponse:
    mount = _mount_or_404(request, pk)
    view = mount_view(mount, request.user.practice.tooth_notation)
    patient = mount.study.patient if mount.study else None
    audit(request.user, action="export_images", patient=patient, ref=f"mount-pdf:{mount.pk}")
    response = HttpResponse(
        mount_pdf(view, practice=request.user.practice), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'inline; filename="mount-{mount.pk}.pdf"'
    return response
