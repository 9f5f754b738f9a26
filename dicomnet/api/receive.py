"""``POST /api/dental/dicom/receive``: the webhook Orthanc calls for each stored instance.

Authenticated by an API key (``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``); the
key's practice owns the notification. The view only translates HTTP into
``orthanc.record_notification``: a resend answers 200 and creates nothing.
"""

from __future__ import annotations

from typing import cast

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dicomnet.ingest import apikeys
from dicomnet.ingest.orthanc import INSTANCE_ID, record_notification
from dicomnet.models import ApiKey


class ApiKeyUser:
    """The caller behind an API key: authenticated, but not a person with a session."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.practice_id = api_key.practice_id

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}…"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):
        key = request.headers.get("X-Api-Key", "")
        header = request.headers.get("Authorization", "")
        if not key and header.lower().startswith("bearer "):
            key = header[7:].strip()
        if not key:
            return None
        api_key = apikeys.authenticate(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="nexrel"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "an API key from the admin"}


class HasApiKey(permissions.BasePermission):
    message = "an API key is required (Authorization: Bearer <key> or X-Api-Key)"

    def has_permission(self, request: Request, view) -> bool:
        return isinstance(request.auth, ApiKey)


class ReceiveSerializer(serializers.Serializer):
    """Orthanc's instance ID (``ID`` as Orthanc names it is also accepted)."""

    instance_id = serializers.CharField(max_length=64, required=False)
    ID = serializers.CharField(max_length=64, required=False)
    remote_aet = serializers.CharField(max_length=16, required=False, allow_blank=True)
    RemoteAET = serializers.CharField(max_length=16, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        instance_id = (attrs.get("instance_id") or attrs.get("ID") or "").strip().lower()
        if not instance_id:
            raise serializers.ValidationError({"instance_id": "Orthanc's instance ID is required"})
        if not INSTANCE_ID.match(instance_id):
            raise serializers.ValidationError(
                {"instance_id": f"not an Orthanc instance ID: {instance_id[:64]!r}"}
            )
        remote_aet = (attrs.get("remote_aet") or attrs.get("RemoteAET") or "").strip()
        return {"instance_id": instance_id, "remote_aet": remote_aet}


class AnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    instance_id = serializers.CharField()
    status = serializers.CharField()
    queued = serializers.BooleanField()


class ReceiveView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]

    @extend_schema(
        request=ReceiveSerializer,
        responses={202: AnswerSerializer, 200: AnswerSerializer},
        summary="Orthanc stored an instance (webhook): 202 queued, 200 already known",
    )
    def post(self, request: Request) -> Response:
        serializer = ReceiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        notification, queued = record_notification(
            practice=cast(ApiKey, request.auth).practice,  # HasApiKey checked it
            orthanc_instance_id=data["instance_id"],
            remote_aet=data["remote_aet"],
        )
        body = {
            "id": notification.pk,
            "instance_id": notification.orthanc_instance_id,
            "status": notification.status,
            "queued": queued,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK)
