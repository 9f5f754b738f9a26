"""Pages for query/retrieve: find a patient's prior studies on another DICOM system and
import them with live progress, and the practice admin's list of DICOM devices with a
"Test connection" button. Views only translate HTTP: the DICOM work is ``qr.remote``, the
reads ``qr.selectors`` and ``for_practice``."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from dicomnet.models import DeviceService, DicomServer, RetrieveJob
from dicomnet.qr import remote, retrieve
from dicomnet.qr.selectors import is_finished, jobs_of
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.models import Patient, Practice
from patients.widgets import IsoDateInput

SERVER_FIELDS = [
    "name",
    "ae_title",
    "host",
    "port",
    "is_active",
    "check_host",
    "allow_store",
    "allow_find",
    "allow_move",
    "allow_get",
    "vendor_profile",
    "use_tls",
    "tls_ca_certificates",
    "tls_certificate_subject",
    "tls_certificate_sha256",
]


def dicom_name(patient: Patient) -> str:
    """The chart's name as a DICOM PN with a trailing wildcard: ``Family^Given*``."""
    if not patient.given_name:
        return f"{patient.family_name}*"
    return f"{patient.family_name}^{patient.given_name}*"


class FindForm(forms.Form):
    server: forms.ModelChoiceField[DicomServer] = forms.ModelChoiceField(
        queryset=None, label=_("DICOM system")
    )
    patient_name = forms.CharField(label=_("Patient name"), max_length=64, required=False)
    patient_birth_date = forms.DateField(
        label=_("Date of birth"), required=False, widget=IsoDateInput()
    )
    patient_id = forms.CharField(label=_("Patient ID"), max_length=64, required=False)
    date_from = forms.DateField(label=_("Studies from"), required=False, widget=IsoDateInput())
    date_to = forms.DateField(label=_("to"), required=False, widget=IsoDateInput())
    modality = forms.CharField(label=_("Modality"), max_length=16, required=False)

    def __init__(self, *args, practice: Practice, **kwargs):
        super().__init__(*args, **kwargs)
        cast(
            forms.ModelChoiceField, self.fields["server"]
        ).queryset = DicomServer.objects.for_practice(practice).allowing(DeviceService.FIND)

    def clean(self) -> dict:
        data = cast(dict[str, Any], super().clean())  # Form.clean: the cleaned_data dict
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The range must start before it ends."))
        if not any(data.get(k) for k in ("patient_name", "patient_id", "patient_birth_date")):
            raise forms.ValidationError(_("Give a name, a patient ID or a date of birth."))
        return data

    def filters(self) -> dict:
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        study_date = ""
        if start or end:
            study_date = "-".join(d.strftime("%Y%m%d") if d else "" for d in (start, end))
        birth = data.get("patient_birth_date")
        return {
            "patient_name": data.get("patient_name", ""),
            "patient_id": data.get("patient_id", ""),
            "patient_birth_date": birth.strftime("%Y%m%d") if birth else "",
            "study_date": study_date,
            "modality": data.get("modality", ""),
        }


class ImportForm(forms.Form):
    server: forms.ModelChoiceField[DicomServer] = forms.ModelChoiceField(queryset=None)
    study_instance_uids = forms.MultipleChoiceField(label=_("Studies"))
    method = forms.ChoiceField(label=_("Method"), choices=RetrieveJob.Method.choices)

    def __init__(self, *args, practice: Practice, **kwargs):
        super().__init__(*args, **kwargs)
        servers = DicomServer.objects.for_practice(practice)
        cast(forms.ModelChoiceField, self.fields["server"]).queryset = servers.allowing(
            DeviceService.MOVE, DeviceService.GET
        )
        uids = cast(QueryDict, self.data).getlist("study_instance_uids") if self.data else []
        uid_field = cast(forms.MultipleChoiceField, self.fields["study_instance_uids"])
        uid_field.choices = [(uid, uid) for uid in uids]


class DicomServerForm(forms.ModelForm):
    class Meta:
        model = DicomServer
        fields = SERVER_FIELDS

    def clean_ae_title(self) -> str:
        ae_title = self.cleaned_data["ae_title"].strip()
        taken = DicomServer.objects.for_practice(self.instance.practice).filter(ae_title=ae_title)
        if taken.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another device of this practice has this AE title."))
        return ae_title


@role_required(roles.ADD_RETRIEVE_JOB)
@require_http_methods(["GET"])
def find_prior(request: PracticeRequest, pk: int) -> HttpResponse:
    """The form, pre-filled from the chart; with a server chosen, the remote's studies."""
    practice = request.user.practice
    patient = get_object_or_404(Patient.objects.for_practice(practice), pk=pk)
    servers = DicomServer.objects.for_practice(practice).allowing(DeviceService.FIND)
    initial = {
        "patient_name": dicom_name(patient),
        "patient_birth_date": patient.birth_date,
        "server": servers.first(),
    }
    data = request.GET if "server" in request.GET else None
    form = FindForm(data, practice=practice, initial=initial)
    context: dict = {"patient": patient, "form": form, "studies": None, "error": ""}
    status = 200
    if data is not None and form.is_valid():
        server = form.cleaned_data["server"]
        context["server"] = server
        context["methods"] = [
            (value, label)
            for value, label in RetrieveJob.Method.choices
            if server.refusal(DeviceService(value)) is None
        ]
        try:
            context["studies"] = remote.find(server, **form.filters())
        except remote.RemoteError as exc:
            context["error"], status = str(exc), 502
    elif data is not None:
        status = 400
    return render(request, "dicomnet/qr_find.html", context, status=status)


@role_required(roles.ADD_RETRIEVE_JOB)
@require_POST
def import_studies(request: PracticeRequest, pk: int) -> HttpResponse:
    practice = request.user.practice
    patient = get_object_or_404(Patient.objects.for_practice(practice), pk=pk)
    form = ImportForm(request.POST, practice=practice)
    if not form.is_valid():
        return render(
            request,
            "dicomnet/qr_import_error.html",
            {"patient": patient, "errors": form.errors},
            status=400,
        )
    try:
        job = retrieve.start_import(
            practice,
            server=form.cleaned_data["server"],
            study_uids=form.cleaned_data["study_instance_uids"],
            patient=patient,
            method=form.cleaned_data["method"],
            user=request.user,
        )
    except retrieve.ImportRefused as exc:
        return render(
            request,
            "dicomnet/qr_import_error.html",
            {"patient": patient, "errors": {"method": [str(exc)]}},
            status=400,
        )
    return redirect("qr_job", pk=job.pk)


@role_required(roles.VIEW_RETRIEVE_JOB)
def job_page(request: PracticeRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(jobs_of(request.user.practice), pk=pk)
    return render(request, "dicomnet/qr_job.html", {"job": job, "finished": is_finished(job)})


@role_required(roles.VIEW_RETRIEVE_JOB)
def job_partial(request: PracticeRequest, pk: int) -> HttpResponse:
    """What the job page polls: the progress, with the polling trigger until it finishes."""
    job = get_object_or_404(jobs_of(request.user.practice), pk=pk)
    return render(
        request, "dicomnet/qr_job_progress.html", {"job": job, "finished": is_finished(job)}
    )


@role_required(roles.CHANGE_RETRIEVE_JOB)
@require_POST
def job_cancel(request: PracticeRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(jobs_of(request.user.practice), pk=pk)
    retrieve.cancel_job(job)
    if request.htmx:
        return job_partial(request, pk)
    return redirect("qr_job", pk=job.pk)


def _require(request: PracticeRequest, action: str) -> None:
    """Practice admins only: the group grants the dicomnet model permissions."""
    if not request.user.has_perm(f"dicomnet.{action}_dicomserver"):
        raise PermissionDenied("managing DICOM devices is for practice admins")


@role_required(roles.MANAGE_DEVICES)
def server_list(request: PracticeRequest) -> HttpResponse:
    _require(request, "view")
    servers = DicomServer.objects.for_practice(request.user.practice)
    return render(request, "dicomnet/qr_servers.html", {"servers": servers})


@role_required(roles.MANAGE_DEVICES)
@require_http_methods(["GET", "POST"])
def server_edit(request: PracticeRequest, pk: int | None = None) -> HttpResponse:
    practice = request.user.practice
    if pk is None:
        _require(request, "add")
        server = DicomServer(practice=practice)
    else:
        _require(request, "change")
        server = get_object_or_404(DicomServer.objects.for_practice(practice), pk=pk)
    # "Add this device" on the refused connections page prefills the form.
    initial = {
        k: request.GET[k] for k in ("name", "ae_title", "host") if pk is None and k in request.GET
    }
    form = DicomServerForm(request.POST or None, instance=server, initial=initial)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("dicom_servers")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "dicomnet/qr_server_form.html", {"form": form, "server": server}, status=status
    )


@role_required(roles.MANAGE_DEVICES)
@require_POST
def server_test(request: PracticeRequest, pk: int) -> HttpResponse:
    """C-ECHO: the round-trip time, or why it failed."""
    _require(request, "view")
    server = get_object_or_404(DicomServer.objects.for_practice(request.user.practice), pk=pk)
    result = {"server": server, "echo": remote.echo(server)}
    if request.htmx:
        return render(request, "dicomnet/qr_echo_result.html", result)
    servers = DicomServer.objects.for_practice(request.user.practice)
    return render(request, "dicomnet/qr_servers.html", {"servers": servers, **result})
