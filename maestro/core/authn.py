"""Authentication: an ``Authorization`` header -> the ``Principal`` it proves.

``Bearer mk_...`` is an API key (``ApiKeyStore.verify``); any other bearer token is an OIDC JWT
(``OIDCVerifier.verify``, when OIDC is configured). A missing header, another scheme or a bad credential
is ``Unauthenticated`` with one generic message; ``details["reason"]`` says why, for logs only.
"""

from __future__ import annotations

from maestro.core.apikeys import KEY_PREFIX, ApiKeyStore
from maestro.core.authority import Principal
from maestro.core.errors import Unauthenticated
from maestro.core.oidc import OIDCVerifier
from maestro.core.principals import AUTHENTICATION_FAILED

_MAX_HEADER_CHARS = 16_384


class Authenticator:
    """Turns an ``Authorization`` header into a principal, by API key or OIDC token."""

    def __init__(self, api_keys: ApiKeyStore, oidc: OIDCVerifier | None) -> None:
        self._api_keys = api_keys
        self._oidc = oidc

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The principal behind ``Authorization: Bearer <credential>``; ``Unauthenticated`` otherwise."""
        if not authorization_header:
            raise Unauthenticated(AUTHENTICATION_FAILED, reason="missing_credentials")
        if len(authorization_header) > _MAX_HEADER_CHARS:
            raise Unauthenticated(AUTHENTICATION_FAILED, reason="malformed_header")
        scheme, _, credential = authorization_header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer":
            raise Unauthenticated(AUTHENTICATION_FAILED, reason="unsupported_scheme")
        if not credential or any(ch.isspace() for ch in credential):
            raise Unauthenticated(AUTHENTICATION_FAILED, reason="malformed_header")
        if credential.startswith(KEY_PREFIX):
            return self._api_keys.verify(credential)
        if self._oidc is None:
            raise Unauthenticated(AUTHENTICATION_FAILED, reason="oidc_not_configured")
        return self._oidc.verify(credential)
