"""Query/retrieve over REST. Each view translates HTTP into one call: ``remote.find`` (C-FIND),
``retrieve.start_import``, ``retrieve.cancel_job``; reads go through ``qr.selectors`` and
``for_practice``.

Another practice's servers, patients and jobs are 404: they do not exist for the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dicomnet.api.serializers import (
    ErrorSerializer,
    ImportSerializer,
    QueryResultSerializer,
    QuerySerializer,
    RetrieveJobSerializer,
)
from dicomnet.models import DeviceService, DicomServer
from dicomnet.qr import remote, retrieve
from dicomnet.qr.selectors import jobs_of
from patients import roles
from patients.models import Patient

if TYPE_CHECKING:
    from patients.decorators import PracticeUser

BAD_INPUT = OpenApiResponse(ErrorSerializer, description="invalid input, or not allowed")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="no such object in your practice")
REMOTE_FAILED = OpenApiResponse(
    ErrorSerializer, description="the remote system failed: refused, timeout, rejected"
)


class InPractice(BasePermission):
    """Logged in and attached to a practice: every read below is scoped to it."""

    message = "This account does not belong to a practice."

    def has_permission(self, request: Request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.practice_id)


class HasRole(BasePermission):
    """The user's role holds the view's ``nexrel_access`` permissions (patients/roles.py);
    a view that names none is refused (fail closed: every API view says what it needs)."""

    message = "Your role in this practice does not allow this."

    def has_permission(self, request: Request, view) -> bool:
        needed = getattr(view, "nexrel_access", None)
        return needed is not None and request.user.has_perms(needed)


class PracticeRequest(Request):
    """The type of the request a PracticeAPIView's handler is given, once InPractice passed."""

    user: PracticeUser


class PracticeAPIView(APIView):
    """A subclass names the permissions it needs: ``nexrel_access = (roles.X, ...)``."""

    permission_classes = [IsAuthenticated, InPractice, HasRole]


class QueryView(PracticeAPIView):
    nexrel_access = (roles.ADD_RETRIEVE_JOB,)

    @extend_schema(
        operation_id="dicom_query",
        summary="Search a remote DICOM system for studies (C-FIND)",
        parameters=[QuerySerializer],
        responses={200: QueryResultSerializer, 400: BAD_INPUT, 404: NOT_FOUND, 502: REMOTE_FAILED},
    )
    def get(self, request: PracticeRequest) -> Response:
        params = QuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = dict(params.validated_data)
        server = get_object_or_404(
            DicomServer.objects.for_practice(request.user.practice), pk=filters.pop("server")
        )
        refusal = server.refusal(DeviceService.FIND)
        if refusal:
            return Response({"detail": refusal}, status=status.HTTP_400_BAD_REQUEST)
        try:
            studies = remote.find(server, **filters)
        except remote.RemoteError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_502_BAD_GATEWAY)
        body = {"server": server.pk, "count": len(studies), "studies": studies}
        return Response(QueryResultSerializer(body).data)


class ImportView(PracticeAPIView):
    nexrel_access = (roles.ADD_RETRIEVE_JOB,)

    @extend_schema(
        operation_id="dicom_import",
        summary="Import remote studies into a patient's chart (C-MOVE or C-GET job)",
        request=ImportSerializer,
        responses={201: RetrieveJobSerializer, 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def post(self, request: PracticeRequest) -> Response:
        body = ImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        practice = request.user.practice
        server = get_object_or_404(DicomServer.objects.for_practice(practice), pk=data["server"])
        patient = get_object_or_404(Patient.objects.for_practice(practice), pk=data["patient"])
        try:
            job = retrieve.start_import(
                practice,
                server=server,
                study_uids=data["study_instance_uids"],
                patient=patient,
                method=data["method"],
                user=request.user,
            )
        except retrieve.ImportRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RetrieveJobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobView(PracticeAPIView):
    nexrel_access = (roles.VIEW_RETRIEVE_JOB,)

    @extend_schema(
        operation_id="dicom_job",
        summary="Progress of an import job",
        responses={200: RetrieveJobSerializer, 404: NOT_FOUND},
    )
    def get(self, request: PracticeRequest, pk: int) -> Response:
        job = get_object_or_404(jobs_of(request.user.practice), pk=pk)
        return Response(RetrieveJobSerializer(job).data)


class JobCancelView(PracticeAPIView):
    nexrel_access = (roles.CHANGE_RETRIEVE_JOB,)

    @extend_schema(
        operation_id="dicom_job_cancel",
        summary="Cancel an import job",
        request=None,
        responses={200: RetrieveJobSerializer, 404: NOT_FOUND},
    )
    def post(self, request: PracticeRequest, pk: int) -> Response:
        job = get_object_or_404(jobs_of(request.user.practice), pk=pk)
        job = retrieve.cancel_job(job)
        return Response(RetrieveJobSerializer(job).data)
