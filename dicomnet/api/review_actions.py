"""The review queue's decisions over REST, as on its pages (dicomnet/ingest/review_views.py):
each view checks the body and calls ``dicomnet.ingest.review``: ``assign``,
``create_patient_and_assign``, ``undo``. A study that is not of the practice or not waiting
for review is 404, as is another practice's patient or batch; a decision the rules refuse
is 400 with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from dicomnet.api.views import BAD_INPUT, NOT_FOUND, PracticeAPIView, PracticeRequest
from dicomnet.ingest import review
from dicomnet.models import DicomStudy, StudyAssignment
from patients import roles
from patients.models import Patient

ADD_PATIENT = "patients.add_patient"
MAX_ID = 2**63 - 1


class StudiesSerializer(serializers.Serializer):
    studies = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=500,
        help_text="DicomStudy ids waiting for review, all from one source",
    )


class AssignSerializer(StudiesSerializer):
    patient = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Patient id")


class CreatePatientSerializer(StudiesSerializer):
    chart_number = serializers.CharField(max_length=64, help_text="the new chart's number")


class DecisionSerializer(serializers.Serializer):
    batch = serializers.UUIDField(help_text="undo it at review/batches/{batch}/undo")
    patient = serializers.IntegerField()
    studies = serializers.ListField(child=serializers.IntegerField())


class UndoneSerializer(serializers.Serializer):
    studies = serializers.ListField(child=serializers.IntegerField(), help_text="restored")


def waiting_studies(request: PracticeRequest, ids: Sequence[int]) -> list[DicomStudy]:
    """The studies ``ids`` names: all of the practice and waiting for review, or 404."""
    wanted = set(ids)
    studies = list(
        DicomStudy.objects.for_practice(request.user.practice)
        .filter(pk__in=wanted, status=DicomStudy.Status.NEEDS_REVIEW)
        .order_by("created_at", "id")
    )
    if len(studies) != len(wanted):
        raise NotFound("no such study waiting for review")
    return studies


def _decision(assignments: list[StudyAssignment], patient: Patient) -> dict:
    return {
        "batch": assignments[0].batch,
        "patient": patient.pk,
        "studies": [a.study_id for a in assignments],
    }


class AssignView(PracticeAPIView):
    nexrel_access = (roles.WORK_REVIEW_QUEUE,)

    @extend_schema(
        operation_id="dental_review_assign",
        summary="Assign studies waiting for review (one source) to a patient",
        request=AssignSerializer,
        responses={200: DecisionSerializer, 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def post(self, request: PracticeRequest) -> Response:
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        studies = waiting_studies(request, body.validated_data["studies"])
        patient = get_object_or_404(
            Patient.objects.for_practice(request.user.practice), pk=body.validated_data["patient"]
        )
        try:
            assignments = review.assign(studies, patient, by=request.user)
        except review.ReviewError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DecisionSerializer(_decision(assignments, patient)).data)


class CreatePatientView(PracticeAPIView):
    nexrel_access = (roles.WORK_REVIEW_QUEUE, ADD_PATIENT)

    @extend_schema(
        operation_id="dental_review_create_patient",
        summary="A new chart from the studies' DICOM demographics, and the studies assigned",
        request=CreatePatientSerializer,
        responses={201: DecisionSerializer, 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def post(self, request: PracticeRequest) -> Response:
        body = CreatePatientSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        studies = waiting_studies(request, body.validated_data["studies"])
        try:
            patient, assignments = review.create_patient_and_assign(
                studies, chart_number=body.validated_data["chart_number"], by=request.user
            )
        except review.ReviewError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            DecisionSerializer(_decision(assignments, patient)).data,
            status=status.HTTP_201_CREATED,
        )


class UndoView(PracticeAPIView):
    nexrel_access = (roles.WORK_REVIEW_QUEUE,)

    @extend_schema(
        operation_id="dental_review_undo",
        summary="Take back a batch of assignments: each study's link before is restored",
        request=None,
        responses={200: UndoneSerializer, 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def post(self, request: PracticeRequest, batch: uuid.UUID) -> Response:
        try:
            restored = review.undo(batch, practice=request.user.practice, by=request.user)
        except StudyAssignment.DoesNotExist:
            raise NotFound("no such assignment") from None
        except review.ReviewError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"studies": [s.pk for s in restored]})
