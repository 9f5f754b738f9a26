"""The practice's images over REST: the list of studies, an image's record, its WebP
preview and its stored DICOM object. Every view needs ``view_images`` (the front desk has
none: 403); another practice's images are 404.

The preview and the file are bytes, not JSON: their views answer whatever the client
accepts (``AnyAccept``), and an error is JSON.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from dicomnet.api.lists import PracticeListView, practice_of
from dicomnet.api.views import NOT_FOUND, PracticeAPIView, PracticeRequest
from dicomnet.ingest.previews import IMAGE_CONTENT_TYPE
from dicomnet.models import DicomInstance, DicomStudy
from patients import roles
from patients.services import audit

log = logging.getLogger("dicomnet.api")

DICOM_CONTENT_TYPE = "application/dicom"


# Studies -------------------------------------------------------------------------------------


class StudySerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="linked_patient_id", allow_null=True)
    appointment = serializers.IntegerField(source="appointment_id", allow_null=True)

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
        ]
        read_only_fields = fields


class StudyFilters(serializers.Serializer):
    patient = serializers.IntegerField(required=False, min_value=1, help_text="Patient id")
    status = serializers.ChoiceField(required=False, choices=DicomStudy.Status.choices)
    date_from = serializers.DateField(required=False, help_text="study date from this day on")
    date_to = serializers.DateField(required=False, help_text="study date up to this day")


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_studies",
        summary="The practice's studies, newest first; by patient, status and study date",
        parameters=[StudyFilters],
    )
)
class StudyList(PracticeListView):
    nexrel_access = (roles.VIEW_IMAGES,)
    serializer_class = StudySerializer
    filters = StudyFilters
    lookups = {
        "patient": "patient_id",
        "status": "status",
        "date_from": "study_date__gte",
        "date_to": "study_date__lte",
    }

    def get_queryset(self) -> QuerySet[DicomStudy]:
        studies = DicomStudy.objects.for_practice(practice_of(self.request))
        studies = self.filtered(studies, self.filter_values())
        return studies.order_by("-study_date", "-created_at", "-pk")


# Instances -----------------------------------------------------------------------------------


class InstanceSerializer(serializers.ModelSerializer):
    preview = serializers.SerializerMethodField(help_text="whether a WebP preview exists")

    class Meta:
        model = DicomInstance
        fields = [
            "id",
            "study",
            "series",
            "sop_instance_uid",
            "sop_class_uid",
            "transfer_syntax_uid",
            "instance_number",
            "version",
            "rows",
            "columns",
            "frames",
            "size",
            "state",
            "dental",
            "preview",
            "preview_error",
            "received_at",
        ]
        read_only_fields = fields

    def get_preview(self, instance: DicomInstance) -> bool:
        return bool(instance.preview_key)


def practice_instances(request: Request) -> QuerySet[DicomInstance]:
    return DicomInstance.objects.for_practice(practice_of(request)).select_related("study")


@extend_schema_view(
    get=extend_schema(
        operation_id="dental_instance",
        summary="An image of your practice",
        responses={200: InstanceSerializer, 404: NOT_FOUND},
    )
)
class InstanceDetail(PracticeAPIView, generics.RetrieveAPIView):
    nexrel_access = (roles.VIEW_IMAGES,)
    serializer_class = InstanceSerializer

    def get_queryset(self) -> QuerySet[DicomInstance]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, for {id}'s type
            return DicomInstance.objects.none()
        return practice_instances(self.request)


class AnyAccept(DefaultContentNegotiation):
    """Bytes whatever the Accept header says (no 406); an error is rendered as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class BytesView(PracticeAPIView):
    nexrel_access = (roles.VIEW_IMAGES,)
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept


def _open(key: str, instance: DicomInstance) -> IO[bytes]:
    """``key`` from the storage; a row whose object is gone is logged and 404."""
    try:
        return default_storage.open(key, "rb")
    except FileNotFoundError:
        log.error("instance %s: %s is missing from storage", instance.pk, key)
        raise NotFound("the stored object is missing") from None


class InstancePreview(BytesView):
    @extend_schema(
        operation_id="dental_instance_preview",
        summary="An image's preview (WebP)",
        responses={(200, IMAGE_CONTENT_TYPE): OpenApiTypes.BINARY, 404: NOT_FOUND},
    )
    def get(self, request: PracticeRequest, pk: int) -> FileResponse:
        instance = get_object_or_404(practice_instances(request), pk=pk)
        if not instance.preview_key:
            raise NotFound(instance.preview_error or "no preview for this image")
        stream = _open(instance.preview_key, instance)
        audit(
            request.user,
            action="view_image",
            patient=instance.study.patient if instance.study else None,
            ref=f"instance:{pk}",
        )
        response = FileResponse(stream, content_type=IMAGE_CONTENT_TYPE)
        response["Cache-Control"] = "private, max-age=3600"
        return response


class InstanceFile(BytesView):
    @extend_schema(
        operation_id="dental_instance_file",
        summary="An image's DICOM object, as stored (Part 10), streamed",
        responses={(200, DICOM_CONTENT_TYPE): OpenApiTypes.BINARY, 404: NOT_FOUND},
    )
    def get(self, request: PracticeRequest, pk: int) -> FileResponse:
        """The stored object, else (not yet processed) its spool file; recorded as a
        download in the access log."""
        instance = get_object_or_404(practice_instances(request), pk=pk)
        if instance.storage_key:
            stream = _open(instance.storage_key, instance)
        elif instance.spool_path:
            try:
                stream = Path(instance.spool_path).open("rb")
            except FileNotFoundError:  # stored meanwhile: the row now names its key
                raise NotFound("this image is being stored: try again") from None
        else:
            raise NotFound("this image has no stored object")
        audit(
            request.user,
            action="download_dicom",
            patient=instance.study.patient if instance.study else None,
            ref=f"instance:{pk}",
        )
        response = FileResponse(
            stream,
            content_type=DICOM_CONTENT_TYPE,
            as_attachment=True,
            filename=f"{instance.sop_instance_uid}.dcm",
        )
        response["Cache-Control"] = "private, no-store"
        return response
