"""The review queue over REST, read-only: the practice's studies waiting for a person to say
whose images they are, oldest first, as its page shows them (dicomnet/ingest/review_views.py):
the DICOM demographics, why they wait, where they came from and the patients proposed.
The decisions are review_actions.py's. Each study listed is recorded in the access log, as
the page records it.
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from dicomnet.api.lists import PracticeListView, practice_of
from dicomnet.api.views import PracticeRequest
from dicomnet.ingest import review
from dicomnet.models import DicomStudy
from patients import roles
from patients.models import Patient
from patients.names import display_person_name
from patients.reasons import render_reason
from patients.services import audit


class SourceSerializer(serializers.Serializer):
    device = serializers.IntegerField(
        allow_null=True, help_text="the DicomServer (registered device) that sent it"
    )
    device_name = serializers.CharField(allow_blank=True)
    calling_ae = serializers.CharField(allow_blank=True, help_text="as the device called")
    peer_address = serializers.CharField(
        allow_blank=True, help_text="the sender's address, or who uploaded it"
    )


class CandidateSerializer(serializers.Serializer):
    patient = serializers.IntegerField(help_text="Patient id")
    chart_number = serializers.CharField()
    name = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    why = serializers.CharField(help_text="why this patient is proposed, in your language")
    why_code = serializers.CharField(allow_blank=True)


class WaitingStudySerializer(serializers.ModelSerializer):
    patient_name = serializers.CharField(help_text="DICOM PatientName (PN), as received")
    display_name = serializers.SerializerMethodField(help_text="PatientName as people read it")
    reason = serializers.CharField(source="reason_text", help_text="in your language")
    reason_code = serializers.SerializerMethodField()
    # Named as Field.source is: the serializer's metaclass takes fields off the class.
    source = serializers.SerializerMethodField()  # type: ignore[assignment]
    candidates = serializers.SerializerMethodField(
        help_text="the patients proposed, whose charts still exist"
    )
    received_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = DicomStudy
        fields = [
            "id",
            "study_instance_uid",
            "study_date",
            "modality",
            "study_description",
            "instance_count",
            "patient_name",
            "display_name",
            "patient_id",
            "patient_birth_date",
            "patient_sex",
            "reason",
            "reason_code",
            "source",
            "candidates",
            "received_at",
        ]
        read_only_fields = fields

    def get_display_name(self, study: DicomStudy) -> str:
        return display_person_name(study.patient_name)

    def get_reason_code(self, study: DicomStudy) -> str:
        return str((study.status_reason_params or {}).get("code", ""))

    @extend_schema_field(SourceSerializer)
    def get_source(self, study: DicomStudy) -> dict[str, Any]:
        """The device and calling AE of its images (the first that names one)."""
        instances = list(study.instances.all())  # prefetched by review.review_queue
        calling_ae = next((i.calling_ae for i in instances if i.calling_ae), "")
        peer = next((i.peer_address for i in instances if i.peer_address), "")
        server = study.server
        return {
            "device": server.pk if server else None,
            "device_name": server.name if server else "",
            "calling_ae": calling_ae,
            "peer_address": peer,
        }

    @extend_schema_field(CandidateSerializer(many=True))
    def get_candidates(self, study: DicomStudy) -> list[dict[str, Any]]:
        patients: dict[int, Patient] = self.context["patients"]
        found = []
        for proposed in study.match_candidates or []:
            patient = patients.get(proposed.get("id"))
            if patient is None:
                continue
            why = render_reason(
                proposed.get("why_code", ""), proposed.get("why_params"), proposed.get("why", "")
            )
            found.append(
                {
                    "patient": patient.pk,
                    "chart_number": patient.chart_number,
                    "name": patient.full_name,
                    "birth_date": patient.birth_date,
                    "why": why,
                    "why_code": proposed.get("why_code", ""),
                }
            )
        return found


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_review_queue",
        summary="The studies waiting for review (whose images are these?), oldest first",
    )
)
class ReviewQueueList(PracticeListView):
    nexrel_access = (roles.VIEW_REVIEW_QUEUE,)
    serializer_class = WaitingStudySerializer
    filters = serializers.Serializer  # none: the whole queue, by pages

    def get_queryset(self) -> QuerySet[DicomStudy]:
        return review.review_queue(practice_of(self.request))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One page of the queue; each study on it in the access log, its candidates read
        in one query."""
        user = cast(PracticeRequest, request).user
        page = self.paginate_queryset(self.get_queryset()) or []
        for study in page:
            audit(user, action="view_review_study", ref=f"study:{study.pk}")
        ids = {c.get("id") for s in page for c in s.match_candidates or []}
        patients = Patient.objects.for_practice(user.practice).in_bulk(
            [i for i in ids if isinstance(i, int)]
        )
        context = {**self.get_serializer_context(), "patients": patients}
        data = WaitingStudySerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)
