"""DRF authentication by personal API token: `Authorization: Bearer cnc_…` (or `Token cnc_…`)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions

from .models import ApiToken
from .throttles import FailedTokenThrottle
from .tokens import api_token_authenticate


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    """First in the list, so an unauthenticated API request gets 401 with this WWW-Authenticate header."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode("latin-1") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give one token after the keyword.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the token is ASCII.") from None
        token = (
            api_token_authenticate(secret=secret, ip=request.META.get("REMOTE_ADDR"))
            if secret.startswith(ApiToken.PREFIX)
            else None
        )
        if token is None:
            throttle = FailedTokenThrottle()
            if not throttle.allow_request(request, None):
                raise exceptions.Throttled(throttle.wait())
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer token in the OpenAPI schema (Swagger UI's Authorize button uses it)."""

    target_class = "accounts.authentication.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
