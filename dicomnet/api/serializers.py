"""Shapes of the query/retrieve API. Only shape checks here: the rules live in
``dicomnet.qr.selectors`` and ``dicomnet.qr.retrieve``."""

from __future__ import annotations

import re

from rest_framework import serializers

from dicomnet.models import RetrieveJob
from dicomnet.qr.selectors import is_finished

DATE_RANGE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")


class QuerySerializer(serializers.Serializer):
    server = serializers.IntegerField(min_value=1, help_text="DicomServer id")
    patient_name = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="DICOM PN, * and ? allowed"
    )
    patient_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    patient_birth_date = serializers.RegexField(
        r"^\d{8}$", required=False, allow_blank=True, help_text="YYYYMMDD"
    )
    study_date = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=17,
        help_text="YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD",
    )
    modality = serializers.CharField(required=False, allow_blank=True, max_length=16)
    accession_number = serializers.CharField(required=False, allow_blank=True, max_length=16)

    def validate_study_date(self, value: str) -> str:
        value = value.strip()
        if value and (value == "-" or not DATE_RANGE.match(value)):
            raise serializers.ValidationError("Use YYYYMMDD or YYYYMMDD-YYYYMMDD.")
        start, _, end = value.partition("-")
        if start and end and start > end:
            raise serializers.ValidationError("The range must start before it ends.")
        return value


class RemoteStudySerializer(serializers.Serializer):
    """One study as the remote system described it."""

    study_instance_uid = serializers.CharField()
    patient_name = serializers.CharField(allow_blank=True)
    patient_id = serializers.CharField(allow_blank=True)
    patient_birth_date = serializers.CharField(allow_blank=True, allow_null=True)
    study_date = serializers.CharField(allow_blank=True, allow_null=True)
    study_description = serializers.CharField(allow_blank=True)
    accession_number = serializers.CharField(allow_blank=True)
    modalities = serializers.CharField(allow_blank=True)
    series_count = serializers.IntegerField(allow_null=True)
    instance_count = serializers.IntegerField(allow_null=True)
    already_imported = serializers.BooleanField()


class QueryResultSerializer(serializers.Serializer):
    server = serializers.IntegerField()
    count = serializers.IntegerField()
    studies = RemoteStudySerializer(many=True)


class ImportSerializer(serializers.Serializer):
    server = serializers.IntegerField(min_value=1, help_text="DicomServer id")
    study_instance_uids = serializers.ListField(
        child=serializers.RegexField(r"^[0-9.]{1,64}$", max_length=64),
        min_length=1,
        max_length=500,
    )
    patient = serializers.IntegerField(min_value=1, help_text="Patient id (the chart)")
    method = serializers.ChoiceField(
        choices=RetrieveJob.Method.choices, default=RetrieveJob.Method.MOVE
    )


class RetrieveJobSerializer(serializers.ModelSerializer):
    finished = serializers.SerializerMethodField()

    class Meta:
        model = RetrieveJob
        fields = [
            "id",
            "server",
            "patient",
            "method",
            "study_instance_uids",
            "status",
            "completed",
            "failed",
            "warning",
            "remaining",
            "error",
            "cancel_requested",
            "finished",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_finished(self, job: RetrieveJob) -> bool:
        return is_finished(job)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
