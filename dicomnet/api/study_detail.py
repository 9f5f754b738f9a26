"""``GET /api/dental/studies/{id}/``: one study of the caller's practice, with its mount in
FDI numbers. Another practice's study is 404, as in dicomnet.api.views."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from dicomnet.api.views import NOT_FOUND, PracticeAPIView, PracticeRequest
from dicomnet.dental.models import Mount
from dicomnet.dental.selectors import api_mount
from dicomnet.models import DicomStudy
from patients import roles


class MountSlotSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    teeth = serializers.ListField(child=serializers.CharField(), help_text="FDI (ISO 3950)")
    instance = serializers.IntegerField(allow_null=True, help_text="the image's id, or null")


class MountSerializer(serializers.Serializer):
    template = serializers.CharField()
    slots = MountSlotSerializer(many=True)


class StudyDetailSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="linked_patient_id", allow_null=True)
    appointment = serializers.IntegerField(source="appointment_id", allow_null=True)
    mount = serializers.SerializerMethodField()

    class Meta:
        model = DicomStudy
        fields = [
            "id",
            "study_instance_uid",
            "study_date",
            "modality",
            "study_description",
            "status",
            "instance_count",
            "patient",
            "appointment",
            "mount",
        ]

    @extend_schema_field(MountSerializer(allow_null=True))
    def get_mount(self, study: DicomStudy) -> dict | None:
        mount = Mount.objects.filter(study=study).select_related("template").first()
        return api_mount(mount) if mount else None


class StudyDetailView(PracticeAPIView):
    nexrel_access = (roles.VIEW_IMAGES,)

    @extend_schema(
        operation_id="dental_study",
        summary="A study of your practice, with its mount (FDI tooth numbers)",
        responses={200: StudyDetailSerializer, 404: NOT_FOUND},
    )
    def get(self, request: PracticeRequest, pk: int) -> Response:
        study = get_object_or_404(DicomStudy.objects.for_practice(request.user.practice), pk=pk)
        return Response(StudyDetailSerializer(study).data)
