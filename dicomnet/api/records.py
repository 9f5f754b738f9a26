"""The practice's records over REST: patients, appointments and notifications. Each view
reads through ``for_practice`` (or ``patients.selectors``) and writes through
``patients.services``; filters are checked by a serializer (400 on a bad value).

Another practice's patients and notices are 404: they do not exist for the caller.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.response import Response

from dicomnet.api.lists import PracticeListView, practice_of, user_of
from dicomnet.api.views import NOT_FOUND, PracticeAPIView, PracticeRequest
from patients import roles
from patients.models import Appointment, Notification, Patient
from patients.selectors import notifications_for, search_patients
from patients.services import audit, mark_notification_read, mark_notifications_read_all

# Patients ------------------------------------------------------------------------------------


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = [
            "id",
            "chart_number",
            "family_name",
            "given_name",
            "birth_date",
            "sex",
            "health_card_number",
            "created_at",
        ]
        read_only_fields = fields


class PatientFilters(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="a name, a chart number, a date of birth or a RAMQ number (the front "
        "desk's search)",
    )
    chart_number = serializers.CharField(required=False, allow_blank=True, max_length=64)


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_patients",
        summary="The practice's patients: the front desk's search, or a chart number",
        parameters=[PatientFilters],
    )
)
class PatientList(PracticeListView):
    nexrel_access = (roles.VIEW_PATIENT,)
    serializer_class = PatientSerializer
    filters = PatientFilters

    def get_queryset(self) -> QuerySet[Patient]:
        values = self.filter_values()
        patients = search_patients(practice_of(self.request), values.get("q", ""))
        if "chart_number" in values:
            patients = patients.filter(chart_number=values["chart_number"].strip())
        return patients.order_by("name_key", "chart_number", "pk")


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_patient",
        summary="A patient of your practice",
        responses={200: PatientSerializer, 404: NOT_FOUND},
    )
)
class PatientDetail(PracticeAPIView, generics.RetrieveAPIView):
    nexrel_access = (roles.VIEW_PATIENT,)
    serializer_class = PatientSerializer

    def get_queryset(self) -> QuerySet[Patient]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, for {id}'s type
            return Patient.objects.none()
        return Patient.objects.for_practice(practice_of(self.request))

    def retrieve(self, request, *args, **kwargs) -> Response:
        """The patient, recorded in the access log as the chart page records it."""
        patient = self.get_object()
        audit(request.user, action="view_patient", patient=patient, ref=f"patient:{patient.pk}")
        return Response(self.get_serializer(patient).data)


# Appointments --------------------------------------------------------------------------------


class AppointmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "start",
            "end",
            "operatory",
            "procedure_code",
            "procedure_description",
            "needs_imaging",
            "provider",
            "status",
        ]
        read_only_fields = fields


class AppointmentFilters(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="from this day on (its start)")
    date_to = serializers.DateField(required=False, help_text="up to this day, included")
    patient = serializers.IntegerField(required=False, min_value=1, help_text="Patient id")


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_appointments",
        summary="The practice's appointments, by start; filtered by days and patient",
        parameters=[AppointmentFilters],
    )
)
class AppointmentList(PracticeListView):
    nexrel_access = (roles.VIEW_APPOINTMENT,)
    serializer_class = AppointmentSerializer
    filters = AppointmentFilters
    lookups = {
        "date_from": "start__date__gte",
        "date_to": "start__date__lte",
        "patient": "patient_id",
    }

    def get_queryset(self) -> QuerySet[Appointment]:
        appointments = Appointment.objects.for_practice(practice_of(self.request))
        appointments = self.filtered(appointments, self.filter_values())
        return appointments.order_by("start", "pk")


# Notifications -------------------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    text = serializers.CharField(read_only=True, help_text="in the reader's language")
    # From patients.selectors.notifications_for: read state is each person's.
    read_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="when you read it; null while unread for you"
    )

    class Meta:
        model = Notification
        fields = ["id", "patient", "study", "text", "count", "created_at", "updated_at", "read_at"]
        read_only_fields = fields


class NotificationFilters(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False, default=False, help_text="only the notices you have not read"
    )


class ReadCountSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many notices were marked read")


# As the pages' bell (patients/context_processors.py): clinicians and the front desk.
VIEW_NOTIFICATION = "patients.view_notification"


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_notifications",
        summary="The practice's notifications, newest first (all, or those unread by you)",
        parameters=[NotificationFilters],
    )
)
class NotificationList(PracticeListView):
    nexrel_access = (VIEW_NOTIFICATION,)
    serializer_class = NotificationSerializer
    filters = NotificationFilters

    def get_queryset(self) -> QuerySet[Notification]:
        values = self.filter_values()
        notices = notifications_for(user_of(self.request), unread=values.get("unread", False))
        return notices.select_related("patient").order_by("-updated_at", "-pk")


class NotificationRead(PracticeAPIView):
    nexrel_access = (VIEW_NOTIFICATION,)

    @extend_schema(
        operation_id="dental_notification_read",
        summary="Mark a notification read for you (the others of the practice keep it unread)",
        request=None,
        responses={200: NotificationSerializer, 404: NOT_FOUND},
    )
    def post(self, request: PracticeRequest, pk: int) -> Response:
        notices = notifications_for(request.user).select_related("patient")
        get_object_or_404(notices, pk=pk)
        mark_notification_read(request.user, pk)
        return Response(NotificationSerializer(notices.get(pk=pk)).data)


class NotificationsRead(PracticeAPIView):
    nexrel_access = (VIEW_NOTIFICATION,)

    @extend_schema(
        operation_id="dental_notifications_read",
        summary="Mark every notification of the practice read for you",
        request=None,
        responses={200: ReadCountSerializer},
    )
    def post(self, request: PracticeRequest) -> Response:
        return Response({"marked": mark_notifications_read_all(request.user)})
