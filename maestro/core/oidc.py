"""OIDC bearer tokens: verify an IdP's JWT and map its claims to a ``Principal``.

Only RS256 and ES256 are accepted, and only with a key of the matching type taken by ``kid`` from the
configured JWKS (a dict, a file, or the IdP's JWKS URL): an RSA key verifies RS256 only, an EC P-256 key
ES256 only. That refuses ``alg: none``, HS256 (including HS256 "signed" with the RSA public key as the
HMAC secret: the algorithm-confusion attack) and any key the token itself names or carries
(``jku``/``x5u`` pointing anywhere but the configured URL, ``jwk``/``x5c`` embedded keys). ``exp``,
``iss``, ``aud`` and ``sub`` are required; ``exp``/``nbf``/``iat`` are checked against ``clock`` with
``leeway_s``. An unknown ``kid`` refetches the JWKS URL once (at most every ``refetch_interval_s``).

Claims map to a principal: ``sub`` -> name, ``maestro_tenant`` -> tenant, ``maestro_roles`` -> roles ->
scopes (``maestro.core.roles``), ``maestro_kind: bot`` -> a bot (human-only scopes stripped). Every
failure is ``Unauthenticated`` with one generic message; ``details["reason"]`` is a fixed token (never a
value from the token) for logs and the audit trail only: it must not be sent to the client.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from maestro.core.authority import Principal, PrincipalKind
from maestro.core.errors import ConfigurationError, InvalidRequest, Unauthenticated
from maestro.core.principals import AUTHENTICATION_FAILED, check_name, oidc_principal_id
from maestro.core.roles import check_roles, scopes_for
from maestro.core.settings import Settings

ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
"""The only JWS algorithms accepted; each needs a JWKS key of the matching type."""

_MAX_TOKEN_CHARS = 16_384
_MAX_JWKS_BYTES = 1_000_000
_MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_EMBEDDED_KEY_HEADERS = ("jwk", "x5c")
_KEY_URL_HEADERS = ("jku", "x5u")

logger = logging.getLogger("maestro.oidc")


def _fail(reason: str) -> Unauthenticated:
    return Unauthenticated(AUTHENTICATION_FAILED, reason=reason)


@dataclass(frozen=True, slots=True)
class _VerificationKey:
    kid: str
    alg: str
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _parse_jwk(jwk: Any) -> _VerificationKey:
    """One JWK -> a verification key; ``ValueError`` saying why it cannot be used."""
    if not isinstance(jwk, dict):
        raise ValueError("is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("has no 'kid'")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise ValueError(f"{kid!r} holds private or symmetric key material: publish public keys only")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"{kid!r} is not a signing key (use={jwk.get('use')!r})")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError(f"{kid!r} does not allow 'verify' in key_ops")
    kty = jwk.get("kty")
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    try:
        if kty == "RSA":
            alg = "RS256"
            loaded_rsa = RSAAlgorithm.from_jwk(jwk)
            if not isinstance(loaded_rsa, rsa.RSAPublicKey) or loaded_rsa.key_size < _MIN_RSA_BITS:
                raise ValueError(f"{kid!r} is not an RSA public key of at least {_MIN_RSA_BITS} bits")
            key = loaded_rsa
        elif kty == "EC":
            alg = "ES256"
            if jwk.get("crv") != "P-256":
                raise ValueError(f"{kid!r} is on curve {jwk.get('crv')!r}, only P-256 is accepted")
            loaded_ec = ECAlgorithm.from_jwk(jwk)
            if not isinstance(loaded_ec, ec.EllipticCurvePublicKey) or not isinstance(
                loaded_ec.curve, ec.SECP256R1
            ):
                raise ValueError(f"{kid!r} is not an EC P-256 public key")
            key = loaded_ec
        else:
            raise ValueError(f"{kid!r} has kty {kty!r}: only RSA and EC keys are accepted")
    except jwt.PyJWTError as exc:
        raise ValueError(f"{kid!r} is not a valid JWK ({exc})") from exc
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise ValueError(f"{kid!r} declares alg {declared!r}; a {kty} key here may only be used for {alg}")
    return _VerificationKey(kid=kid, alg=alg, key=key)


def _parse_jwks(document: Any) -> tuple[dict[str, _VerificationKey], list[str]]:
    """Usable keys by kid, and why each other key was skipped. ``ValueError`` if not a JWKS at all."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS is a JSON object with a "keys" list')
    keys: dict[str, _VerificationKey] = {}
    skipped: list[str] = []
    for index, jwk in enumerate(document["keys"]):
        try:
            parsed = _parse_jwk(jwk)
        except ValueError as exc:
            skipped.append(f"key #{index} {exc}")
            continue
        if parsed.kid in keys:
            skipped.append(f"key #{index} repeats kid {parsed.kid!r}")
            continue
        keys[parsed.kid] = parsed
    return keys, skipped


def load_jwks_file(path: Path) -> dict[str, Any]:
    """A JWKS document read from a JSON file; ``ConfigurationError`` naming the file if unreadable."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot read the JWKS file {str(path)!r} (MAESTRO_OIDC_JWKS_PATH): {exc}; "
            "export the IdP's JWKS as JSON there"
        ) from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f'the JWKS file {str(path)!r} is not a JSON object with a "keys" list')
    return document


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise ConfigurationError(
        f"OIDC JWKS URL {url!r} must be https (plain http only for localhost): fix MAESTRO_OIDC_JWKS_URL"
    )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong_audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong_issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing_claim_{exc.claim}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad_signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm_not_allowed"
    if isinstance(exc, jwt.DecodeError):
        return "malformed"
    return "invalid_token"


class OIDCVerifier:
    """Verifies OIDC JWTs from one issuer for one audience and maps them to principals.

    Exactly one of ``jwks`` (a JWKS document, e.g. from ``load_jwks_file``) and ``jwks_url`` is given.
    The URL is fetched lazily with ``http_client`` (or a short-lived ``httpx.Client`` with
    ``http_timeout_s``), cached for ``jwks_ttl_s``, and refetched when a token names an unknown ``kid``,
    at most once per ``refetch_interval_s``. If a refetch fails the cached keys stay in use.
    ``clock`` returns Unix seconds.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        *,
        leeway_s: float = 30,
        http_timeout_s: float = 5,
        clock: Callable[[], float] = time.time,
        http_client: httpx.Client | None = None,
        tenant_claim: str = "maestro_tenant",
        roles_claim: str = "maestro_roles",
        kind_claim: str = "maestro_kind",
        refetch_interval_s: float = 60,
        jwks_ttl_s: float = 3600,
    ) -> None:
        if not issuer or not audience:
            raise ConfigurationError(
                "OIDC needs both an issuer and an audience: set MAESTRO_OIDC_ISSUER and MAESTRO_OIDC_AUDIENCE"
            )
        if (jwks is None) == (jwks_url is None):
            raise ConfigurationError(
                "OIDC needs exactly one JWKS source: a JWKS document/file or a JWKS URL, not both or neither"
            )
        if not 0 <= leeway_s <= 300:
            raise ConfigurationError(f"OIDC leeway_s={leeway_s} is out of range: use 0-300 seconds")
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url
        self._leeway = float(leeway_s)
        self._timeout = http_timeout_s
        self._clock = clock
        self._http = http_client
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim
        self._kind_claim = kind_claim
        self._refetch_interval = refetch_interval_s
        self._ttl = jwks_ttl_s
        self._lock = threading.Lock()
        self._keys: dict[str, _VerificationKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        if jwks_url is not None:
            _check_jwks_url(jwks_url)
        else:
            self._keys = self._static_keys(jwks)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, http_client: httpx.Client | None = None
    ) -> OIDCVerifier | None:
        """The verifier ``settings`` describe, or None when OIDC is not configured (no issuer)."""
        if not settings.oidc_issuer:
            if settings.oidc_audience or settings.oidc_jwks_url or settings.oidc_jwks_path:
                raise ConfigurationError(
                    "MAESTRO_OIDC_AUDIENCE/JWKS_URL/JWKS_PATH are set but MAESTRO_OIDC_ISSUER is not: "
                    "set the issuer or unset the others"
                )
            return None
        if not settings.oidc_audience:
            raise ConfigurationError("MAESTRO_OIDC_ISSUER is set but MAESTRO_OIDC_AUDIENCE is not: set it")
        if settings.oidc_jwks_url and settings.oidc_jwks_path:
            raise ConfigurationError("set MAESTRO_OIDC_JWKS_URL or MAESTRO_OIDC_JWKS_PATH, not both")
        if not settings.oidc_jwks_url and not settings.oidc_jwks_path:
            raise ConfigurationError(
                "MAESTRO_OIDC_ISSUER is set but no keys are: "
                "set MAESTRO_OIDC_JWKS_URL or MAESTRO_OIDC_JWKS_PATH"
            )
        jwks = load_jwks_file(settings.oidc_jwks_path) if settings.oidc_jwks_path else None
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            jwks=jwks,
            jwks_url=settings.oidc_jwks_url,
            http_client=http_client,
        )

    @staticmethod
    def _static_keys(jwks: Mapping[str, Any] | None) -> dict[str, _VerificationKey]:
        try:
            keys, skipped = _parse_jwks(dict(jwks or {}))
        except ValueError as exc:
            raise ConfigurationError(f"the configured JWKS is invalid: {exc}") from exc
        if skipped:
            raise ConfigurationError(f"the configured JWKS has unusable keys: {'; '.join(skipped)}")
        if not keys:
            raise ConfigurationError("the configured JWKS has no keys: add the IdP's RS256/ES256 public keys")
        return keys

    def verify(self, token: str) -> Principal:
        """The principal a valid token stands for; ``Unauthenticated`` for any invalid token."""
        return self._principal(self._verified_claims(token))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            raise _fail("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError) as exc:
            raise _fail("malformed") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _fail("algorithm_not_allowed")
        self._check_header(header)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _fail("missing_kid")
        key = self._key(kid)
        if key.alg != alg:
            raise _fail("algorithm_key_mismatch")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_nbf": False,
                    "verify_iat": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            raise _fail(_reason(exc)) from exc
        self._check_claims(claims)
        return claims

    def _check_header(self, header: Mapping[str, Any]) -> None:
        if any(name in header for name in _EMBEDDED_KEY_HEADERS):
            raise _fail("embedded_key_header")
        for name in _KEY_URL_HEADERS:
            if name in header and header[name] != self._jwks_url:
                raise _fail("foreign_key_url_header")
        if "crit" in header or "b64" in header:
            raise _fail("unsupported_critical_header")

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self._issuer:
            raise _fail("wrong_issuer")
        aud = claims.get("aud")
        if not (aud == self._audience or (isinstance(aud, list) and self._audience in aud)):
            raise _fail("wrong_audience")
        now = self._clock()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise _fail("bad_exp")
        if exp <= now - self._leeway:
            raise _fail("expired")
        for name, reason in (("nbf", "not_yet_valid"), ("iat", "issued_in_future")):
            value = claims.get(name)
            if value is None:
                continue
            if not _is_number(value):
                raise _fail(f"bad_{name}")
            if value > now + self._leeway:
                raise _fail(reason)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= 200 or not subject.isprintable():
            raise _fail("bad_subject")
        tenant = claims.get(self._tenant_claim)
        if tenant is None:
            raise _fail("missing_tenant")
        roles_claim = claims.get(self._roles_claim, [])
        if not isinstance(roles_claim, list) or not all(isinstance(r, str) for r in roles_claim):
            raise _fail("bad_roles_claim")
        kind_claim = claims.get(self._kind_claim, "user")
        if kind_claim not in ("user", "bot"):
            raise _fail("bad_kind_claim")
        kind: PrincipalKind = "bot" if kind_claim == "bot" else "user"
        try:
            check_name(tenant, what="tenant")
            roles = check_roles(roles_claim)
        except InvalidRequest as exc:
            raise _fail("bad_tenant_or_roles_claim") from exc
        return Principal(
            id=oidc_principal_id(self._issuer, tenant, subject),
            tenant=tenant,
            name=subject,
            kind=kind,
            roles=roles,
            scopes=scopes_for(roles, kind=kind),
        )

    # -- JWKS ----------------------------------------------------------------------------------------

    def _key(self, kid: str) -> _VerificationKey:
        key = self._keys.get(kid)
        if self._jwks_url is None:
            if key is None:
                raise _fail("unknown_kid")
            return key
        fetched_at = self._fetched_at
        if key is not None and fetched_at is not None and self._clock() - fetched_at < self._ttl:
            return key  # fast path: a known kid in a fresh cache needs no lock
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            allowed = self._attempted_at is None or now - self._attempted_at >= self._refetch_interval
            if (kid not in self._keys or stale) and allowed:
                self._refresh(now)
            key = self._keys.get(kid)
        if key is None:
            raise _fail("unknown_kid" if self._fetched_at is not None else "jwks_unavailable")
        return key

    def _refresh(self, now: float) -> None:
        """Fetch the JWKS URL; keep the cached keys when the fetch fails. Caller holds the lock."""
        self._attempted_at = now
        try:
            document = self._fetch()
            keys, skipped = _parse_jwks(document)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning(
                "fetching the OIDC JWKS from %s failed (%s); keeping %d cached keys",
                self._jwks_url,
                exc,
                len(self._keys),
            )
            return
        if skipped:
            logger.info("OIDC JWKS from %s: skipped %s", self._jwks_url, "; ".join(skipped))
        self._keys = keys
        self._fetched_at = now

    def _fetch(self) -> Any:
        assert self._jwks_url is not None
        client = self._http or httpx.Client(timeout=self._timeout, follow_redirects=False)
        try:
            response = client.get(self._jwks_url, headers={"Accept": "application/json"})
        finally:
            if self._http is None:
                client.close()
        if response.status_code != 200:
            raise ValueError(f"JWKS URL answered {response.status_code}")
        if len(response.content) > _MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        return response.json()
