"""The front desk's calendar. Views translate HTTP: reads through worklist.selectors, writes
through patients.services, layout in worklist.calendar."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.models import Appointment
from patients.services import audit, cancel_appointment, create_appointment, move_appointment
from worklist import selectors
from worklist.calendar import BadCalendarQuery, CalendarQuery, day_grid, week_columns
from worklist.forms import AppointmentForm, MoveForm
from worklist.models import ProcedureModality

# The calendar polls its body this often, so new images show within seconds.
REFRESH_SECONDS = 3


@role_required(roles.VIEW_APPOINTMENT)
@require_GET
def calendar(request: PracticeRequest) -> HttpResponse:
    context = _calendar_context(request)
    if isinstance(context, HttpResponse):
        return context
    return render(request, "worklist/calendar.html", context)


@role_required(roles.VIEW_APPOINTMENT)
@require_GET
def calendar_body(request: PracticeRequest) -> HttpResponse:
    """The part of the calendar that the page re-fetches every REFRESH_SECONDS (htmx)."""
    context = _calendar_context(request)
    if isinstance(context, HttpResponse):
        return context
    return render(request, "worklist/_calendar_body.html", context)


def _calendar_context(request: PracticeRequest) -> dict | HttpResponse:
    practice = request.user.practice
    try:
        query = CalendarQuery.from_params(request.GET, today=timezone.localdate())
    except BadCalendarQuery as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    start, end = query.bounds()
    appointments = list(
        selectors.calendar_appointments(
            practice,
            start=start,
            end=end,
            operatory=query.operatory if query.view == "week" else None,
        )
    )
    if query.view == "day" and query.operatory is not None:
        appointments = [a for a in appointments if a.operatory == query.operatory]
    statuses = selectors.imaging_statuses(appointments)
    operatories = selectors.operatories_of(practice, appointments)
    context = {
        "query": query,
        "operatories": operatories,
        "refresh_seconds": REFRESH_SECONDS,
        "body_url": f"{reverse('calendar_body')}?{query.params()}",
        "prev_params": query.params(day=query.step(-1)),
        "next_params": query.params(day=query.step(1)),
        "today_params": query.params(day=timezone.localdate()),
        "day_params": query.params(view="day"),
        "week_params": query.params(view="week"),
        "today": timezone.localdate(),
    }
    if query.view == "day":
        shown = [query.operatory] if query.operatory is not None else operatories
        context["grid"] = day_grid(
            query.day,
            appointments=appointments,
            statuses=statuses,
            operatories=shown,
            no_operatory=_("No operatory"),
        )
    else:
        context["columns"] = week_columns(query.days, appointments, statuses)
    return context


def _appointment_or_404(request: PracticeRequest, pk: int) -> Appointment:
    try:
        return selectors.appointment_detail(request.user.practice, pk)
    except Appointment.DoesNotExist:
        raise Http404("no such appointment in your practice") from None


def _calendar_url(appointment: Appointment) -> str:
    day = timezone.localtime(appointment.start).date().isoformat()
    return f"{reverse('calendar')}?view=day&date={day}"


@role_required(roles.ADD_APPOINTMENT)
@require_http_methods(["GET", "POST"])
def appointment_new(request: PracticeRequest) -> HttpResponse:
    practice = request.user.practice
    operatories = selectors.operatories_of(practice)
    if request.method == "GET":
        initial = {
            "date": request.GET.get("date") or timezone.localdate(),
            "time": request.GET.get("time") or "09:00",
            "operatory": request.GET.get("operatory", ""),
            "duration": 30,
        }
        form = AppointmentForm(initial=initial, practice=practice, operatories=operatories)
        return _render_new(request, form)
    form = AppointmentForm(request.POST, practice=practice, operatories=operatories)
    if form.is_valid():
        data = form.cleaned_data
        try:
            appointment = create_appointment(
                practice=practice,
                patient=data["patient"],
                start=form.start,
                end=form.end,
                operatory=data["operatory"],
                procedure_code=data["procedure_code"],
                procedure_description=data["procedure_description"],
                needs_imaging=data["needs_imaging"],
                provider=data["provider"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect(_calendar_url(appointment))
    return _render_new(request, form, status=400)


def _render_new(request: PracticeRequest, form: AppointmentForm, status: int = 200) -> HttpResponse:
    procedures = ProcedureModality.objects.for_practice(request.user.practice)
    return render(
        request,
        "worklist/appointment_form.html",
        {"form": form, "procedures": procedures},
        status=status,
    )


@role_required(roles.VIEW_APPOINTMENT)
@require_GET
def appointment_detail(request: PracticeRequest, pk: int) -> HttpResponse:
    appointment = _appointment_or_404(request, pk)
    return _render_detail(request, appointment, _move_form(request, appointment))


def _move_form(request: PracticeRequest, appointment: Appointment, data=None) -> MoveForm:
    start = timezone.localtime(appointment.start)
    minutes = int((appointment.end - appointment.start) / dt.timedelta(minutes=1))
    return MoveForm(
        data,
        initial={
            "date": start.date(),
            "time": start.time().replace(second=0, microsecond=0),
            "duration": minutes,
            "operatory": appointment.operatory,
        },
        operatories=selectors.operatories_of(request.user.practice, [appointment]),
    )


def _render_detail(
    request: PracticeRequest,
    appointment: Appointment,
    move_form: MoveForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    imaging = selectors.imaging_status(appointment)
    if imaging.studies:
        audit(
            request.user,
            action="view_patient_images",
            patient=appointment.patient,
            ref=f"appointment:{appointment.pk}",
        )
    return render(
        request,
        "worklist/appointment_detail.html",
        {
            "appointment": appointment,
            "imaging": imaging,
            "item": imaging.item,
            "move_form": move_form,
            "error": error,
            "back_url": _calendar_url(appointment),
        },
        status=status,
    )


@role_required(roles.CHANGE_APPOINTMENT)
@require_POST
def appointment_move(request: PracticeRequest, pk: int) -> HttpResponse:
    appointment = _appointment_or_404(request, pk)
    form = _move_form(request, appointment, data=request.POST)
    if form.is_valid():
        try:
            move_appointment(
                appointment,
                start=form.start,
                end=form.end,
                operatory=form.cleaned_data["operatory"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            appointment.refresh_from_db()
            return redirect(_calendar_url(appointment))
    return _render_detail(request, appointment, form, status=400)


@role_required(roles.CHANGE_APPOINTMENT)
@require_POST
def appointment_cancel(request: PracticeRequest, pk: int) -> HttpResponse:
    appointment = _appointment_or_404(request, pk)
    try:
        cancel_appointment(appointment)
    except ValidationError as exc:
        return _render_detail(
            request,
            appointment,
            _move_form(request, appointment),
            error=" ".join(exc.messages),
            status=400,
        )
    return redirect(_calendar_url(appointment))
