"""A user's bearer token (``Authorization: Bearer nxr_…``, patients/tokens.py) for the REST
API, beside the session (nexrel/settings.py ``REST_FRAMEWORK``).

A request without the header falls through to the session. A bearer token that is unknown,
malformed, revoked or expired is a 401, never the session instead, as in DICOMweb. A token
acts with its user's role; DRF makes no CSRF check for it (a browser never sends the
header on its own).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from patients.models import User
from patients.tokens import authenticate_token

REALM = 'Bearer realm="Nexrel API"'


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, None] | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        user = authenticate_token(credentials.strip())
        if user is None:
            raise exceptions.AuthenticationFailed(
                "the bearer token is unknown, malformed, revoked or expired"
            )
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return REALM


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "a user's token: manage.py api_token create --user NAME",
        }
