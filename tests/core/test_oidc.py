"""OIDC JWT verification against real RSA-2048 and EC P-256 keys generated here (RELIABILITY.md #1).

Attack cases: alg none, HS256 signed with the RSA public key as secret, wrong aud/iss, expired, nbf in
the future, missing exp, unknown kid, kid of an EC key under an RS256 header, tampered payload, keys named
or embedded by the token. JWKS from a dict, a file and a URL (httpx.MockTransport: no network).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from maestro.core.apikeys import ApiKeyStore
from maestro.core.authn import Authenticator
from maestro.core.errors import ConfigurationError, Unauthenticated
from maestro.core.oidc import OIDCVerifier, load_jwks_file
from maestro.core.principals import AUTHENTICATION_FAILED
from maestro.core.roles import HUMAN_ONLY_SCOPES, scopes_for
from maestro.core.settings import Settings

NOW = 1_900_000_000.0
ISSUER = "https://idp.example.com"
AUDIENCE = "maestro-api"
JWKS_URL = "https://idp.example.com/.well-known/jwks.json"
DROP = object()  # claims(..., exp=DROP) removes the claim

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# -- keys and tokens ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private: PrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(rsa_key, "rsa-1"), public_jwk(ec_key, "ec-1")]}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@acme.io",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "maestro_tenant": "acme",
        "maestro_roles": ["engineer"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not DROP}


def sign(payload: dict[str, Any], key: PrivateKey, alg: str, kid: str | None, **headers: Any) -> str:
    extra = {"kid": kid, **headers} if kid is not None else headers
    return jwt.encode(payload, key, algorithm=alg, headers=extra)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_token(header: dict[str, Any], payload: dict[str, Any], sign_with: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign_with(signing_input.encode()))}"


class Clock:
    """Unix seconds the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def verifier(jwks: dict[str, Any]) -> OIDCVerifier:
    return OIDCVerifier(ISSUER, AUDIENCE, jwks=jwks, clock=Clock())


def rejected(verifier: OIDCVerifier, token: str) -> str:
    """Assert the token is refused with the generic message; return the logged reason."""
    with pytest.raises(Unauthenticated) as exc:
        verifier.verify(token)
    assert exc.value.message == AUTHENTICATION_FAILED
    body = json.dumps(exc.value.to_dict())
    assert "acme" not in body and "alice" not in body  # nothing about the tenant or subject
    return str(exc.value.details["reason"])


# -- accepted -------------------------------------------------------------------------------------------


def test_valid_rs256_token_maps_to_a_principal(verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    principal = verifier.verify(sign(claims(), rsa_key, "RS256", "rsa-1"))
    assert principal.name == "alice@acme.io"
    assert principal.tenant == "acme"
    assert principal.kind == "user"
    assert principal.roles == ("engineer",)
    assert principal.scopes == scopes_for(["engineer"])
    assert principal.id.startswith("oidc_")
    again = verifier.verify(sign(claims(), rsa_key, "RS256", "rsa-1"))
    other_tenant = verifier.verify(sign(claims(maestro_tenant="globex"), rsa_key, "RS256", "rsa-1"))
    assert again.id == principal.id != other_tenant.id


def test_valid_es256_token_is_accepted(verifier: OIDCVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    principal = verifier.verify(sign(claims(maestro_roles=["mlops"]), ec_key, "ES256", "ec-1"))
    assert principal.scopes == scopes_for(["mlops"])


def test_audience_list_leeway_and_optional_claims(verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    ok = [
        claims(aud=["other", AUDIENCE]),
        claims(exp=int(NOW) - 20),  # inside the 30 s leeway
        claims(nbf=int(NOW) + 20),
        claims(iat=DROP, maestro_roles=DROP),  # no roles: no scopes
    ]
    for payload in ok:
        verifier.verify(sign(payload, rsa_key, "RS256", "rsa-1"))
    assert verifier.verify(sign(claims(maestro_roles=DROP), rsa_key, "RS256", "rsa-1")).scopes == frozenset()


def test_bot_claim_makes_a_bot_without_human_only_scopes(
    verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(claims(maestro_kind="bot", maestro_roles=["admin"]), rsa_key, "RS256", "rsa-1")
    principal = verifier.verify(token)
    assert principal.kind == "bot"
    assert not principal.scopes & HUMAN_ONLY_SCOPES
    assert "rag:ingest" in principal.scopes


def test_claim_names_are_configurable(jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = OIDCVerifier(
        ISSUER, AUDIENCE, jwks=jwks, clock=Clock(), tenant_claim="org", roles_claim="groups", kind_claim="typ"
    )
    token = sign(claims(org="initech", groups=["viewer"], typ="bot"), rsa_key, "RS256", "rsa-1")
    principal = verifier.verify(token)
    assert (principal.tenant, principal.roles, principal.kind) == ("initech", ("viewer",), "bot")


# -- refused --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(verifier: OIDCVerifier, alg: str) -> None:
    token = raw_token({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims(), lambda _: b"")
    assert rejected(verifier, token) == "algorithm_not_allowed"
    assert rejected(verifier, token.rstrip(".") + ".") == "algorithm_not_allowed"


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The classic algorithm-confusion attack: the public key PEM used as an HMAC secret."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    admin = claims(maestro_roles=["admin"])

    def hmac_with_pem(data: bytes) -> bytes:
        return hmac.new(pem, data, hashlib.sha256).digest()

    assert rejected(verifier, raw_token({"alg": "HS256", "kid": "rsa-1"}, admin, hmac_with_pem)) == (
        "algorithm_not_allowed"
    )
    # the same HMAC under an RS256 header is just a bad signature
    assert rejected(verifier, raw_token({"alg": "RS256", "kid": "rsa-1"}, admin, hmac_with_pem)) == (
        "bad_signature"
    )
    for alg in ("HS384", "HS512", "RS512", "PS256", "ES384", "EdDSA"):
        assert rejected(verifier, raw_token({"alg": alg, "kid": "rsa-1"}, admin, hmac_with_pem)) == (
            "algorithm_not_allowed"
        )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(aud="someone-else"), "wrong_audience"),
        (claims(aud=["someone-else", "x"]), "wrong_audience"),
        (claims(aud=DROP), "missing_claim_aud"),
        (claims(iss="https://evil.example.com"), "wrong_issuer"),
        (claims(iss=ISSUER + ".evil.io"), "wrong_issuer"),
        (claims(iss=ISSUER[:-4]), "wrong_issuer"),
        (claims(iss=DROP), "missing_claim_iss"),
        (claims(exp=int(NOW) - 31), "expired"),
        (claims(exp=int(NOW) - 86_400), "expired"),
        (claims(exp=DROP), "missing_claim_exp"),
        (claims(exp="tomorrow"), "bad_exp"),
        (claims(nbf=int(NOW) + 100), "not_yet_valid"),
        (claims(iat=int(NOW) + 100), "issued_in_future"),
        (claims(sub=DROP), "missing_claim_sub"),
        (claims(maestro_tenant=DROP), "missing_tenant"),
        (claims(maestro_tenant="../globex"), "bad_tenant_or_roles_claim"),
        (claims(maestro_tenant=["acme", "globex"]), "bad_tenant_or_roles_claim"),
        (claims(maestro_roles=["engineer", "root"]), "bad_tenant_or_roles_claim"),
        (claims(maestro_roles="admin"), "bad_roles_claim"),
        (claims(maestro_kind="superuser"), "bad_kind_claim"),
    ],
)
def test_bad_claims_are_refused(
    verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey, payload: dict[str, Any], reason: str
) -> None:
    assert rejected(verifier, sign(payload, rsa_key, "RS256", "rsa-1")) == reason


def test_unknown_or_missing_kid_is_refused(verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    assert rejected(verifier, sign(claims(), rsa_key, "RS256", "rsa-2")) == "unknown_kid"
    assert rejected(verifier, sign(claims(), rsa_key, "RS256", None)) == "missing_kid"


def test_key_type_must_match_the_algorithm(
    verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    # kid of the EC key under an RS256 header (signed with the RSA key): refused before any verification
    assert rejected(verifier, sign(claims(), rsa_key, "RS256", "ec-1")) == "algorithm_key_mismatch"
    # and the reverse: kid of the RSA key under an ES256 header
    assert rejected(verifier, sign(claims(), ec_key, "ES256", "rsa-1")) == "algorithm_key_mismatch"


def test_tampered_payload_or_signature_is_refused(verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    header, _, signature = sign(claims(), rsa_key, "RS256", "rsa-1").split(".")
    forged = b64url(json.dumps(claims(maestro_roles=["admin"])).encode())
    assert rejected(verifier, f"{header}.{forged}.{signature}") == "bad_signature"
    _, payload, _ = sign(claims(), rsa_key, "RS256", "rsa-1").split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert rejected(verifier, f"{header}.{payload}.{flipped}") == "bad_signature"


def test_keys_named_or_embedded_by_the_token_are_not_trusted(
    verifier: OIDCVerifier, attacker_key: rsa.RSAPrivateKey
) -> None:
    evil_jwk = public_jwk(attacker_key, "rsa-1")
    assert rejected(verifier, sign(claims(), attacker_key, "RS256", "rsa-1", jwk=evil_jwk)) == (
        "embedded_key_header"
    )
    assert rejected(verifier, sign(claims(), attacker_key, "RS256", "rsa-1", x5c=["MIIB..."])) == (
        "embedded_key_header"
    )
    for name in ("jku", "x5u"):
        token = sign(claims(), attacker_key, "RS256", "rsa-1", **{name: "https://evil.example/jwks.json"})
        assert rejected(verifier, token) == "foreign_key_url_header"
    # signed by the attacker with our kid and no tricks: the signature does not verify
    assert rejected(verifier, sign(claims(), attacker_key, "RS256", "rsa-1")) == "bad_signature"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9..."])
def test_garbage_is_malformed(verifier: OIDCVerifier, token: str) -> None:
    assert rejected(verifier, token) == "malformed"


def test_critical_headers_are_refused(verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    unknown_extension = sign(claims(), rsa_key, "RS256", "rsa-1", crit=["exp"], exp=1)
    assert rejected(verifier, unknown_extension) == "malformed"  # PyJWT refuses unknown extensions
    unencoded_payload = sign(claims(), rsa_key, "RS256", "rsa-1", crit=["b64"], b64=False)
    assert rejected(verifier, unencoded_payload) == "unsupported_critical_header"


# -- JWKS sources and configuration ---------------------------------------------------------------------


def test_jwks_from_a_file_and_from_settings(
    tmp_path: Path, jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks), encoding="utf-8")
    token = sign(claims(), rsa_key, "RS256", "rsa-1")
    from_file = OIDCVerifier(ISSUER, AUDIENCE, jwks=load_jwks_file(path), clock=Clock())
    assert from_file.verify(token).name == "alice@acme.io"

    settings = Settings(
        data_dir=tmp_path, oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks_path=path, _env_file=None
    )
    configured = OIDCVerifier.from_settings(settings)
    assert configured is not None
    with pytest.raises(Unauthenticated) as exc:
        configured.verify(token)  # real clock: NOW is in the future, so iat is too
    assert exc.value.details["reason"] == "issued_in_future"


def test_from_settings_without_oidc_is_none_and_half_configs_are_refused(tmp_path: Path) -> None:
    def make(**kw: Any) -> Settings:
        return Settings(data_dir=tmp_path, _env_file=None, **kw)

    assert OIDCVerifier.from_settings(make()) is None
    for bad in (
        {"oidc_audience": AUDIENCE},
        {"oidc_issuer": ISSUER, "oidc_jwks_url": JWKS_URL},
        {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE},
        {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_url": JWKS_URL, "oidc_jwks_path": "x"},
        {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_path": tmp_path / "missing.json"},
    ):
        with pytest.raises(ConfigurationError):
            OIDCVerifier.from_settings(make(**bad))


def test_bad_static_jwks_are_configuration_errors(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_jwk = {**RSAAlgorithm.to_jwk(rsa_key, as_dict=True), "kid": "priv"}
    cases: list[Any] = [
        {},
        {"keys": "nope"},
        {"keys": []},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]},
        {"keys": [private_jwk]},
        {"keys": [public_jwk(weak, "weak")]},
        {"keys": [{**public_jwk(rsa_key, "r"), "alg": "HS256"}]},
        {"keys": [{**public_jwk(rsa_key, "r"), "use": "enc"}]},
        {"keys": [{k: v for k, v in public_jwk(rsa_key, "r").items() if k != "kid"}]},
        {"keys": [public_jwk(rsa_key, "dup"), public_jwk(rsa_key, "dup")]},
    ]
    for bad in cases:
        with pytest.raises(ConfigurationError):
            OIDCVerifier(ISSUER, AUDIENCE, jwks=bad)
    with pytest.raises(ConfigurationError):
        OIDCVerifier(ISSUER, AUDIENCE)
    with pytest.raises(ConfigurationError):
        OIDCVerifier(ISSUER, AUDIENCE, jwks=jwks, jwks_url=JWKS_URL)
    with pytest.raises(ConfigurationError):
        OIDCVerifier(ISSUER, "", jwks=jwks)
    with pytest.raises(ConfigurationError):
        OIDCVerifier(ISSUER, AUDIENCE, jwks_url="http://idp.example.com/jwks")
    OIDCVerifier(ISSUER, AUDIENCE, jwks_url="http://127.0.0.1:8080/jwks")  # loopback http is fine
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="bad.json"):
        load_jwks_file(tmp_path / "bad.json")


class JwksServer:
    """An IdP's JWKS endpoint behind httpx.MockTransport; counts requests."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200
        self.down = False
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        assert str(request.url) == JWKS_URL
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(self.status, json=self.document)


@pytest.fixture
def http() -> Iterator[Callable[[JwksServer], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(server: JwksServer) -> httpx.Client:
        clients.append(httpx.Client(transport=httpx.MockTransport(server)))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_jwks_url_is_fetched_lazily_and_refetched_once_for_an_unknown_kid(
    http: Callable[[JwksServer], httpx.Client],
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    server = JwksServer({"keys": [public_jwk(rsa_key, "rsa-1")]})
    clock = Clock()
    verifier = OIDCVerifier(ISSUER, AUDIENCE, jwks_url=JWKS_URL, clock=clock, http_client=http(server))
    assert server.calls == 0  # nothing fetched at construction
    verifier.verify(sign(claims(), rsa_key, "RS256", "rsa-1"))
    verifier.verify(sign(claims(), rsa_key, "RS256", "rsa-1"))
    assert server.calls == 1

    # the IdP rotates in an EC key: the unknown kid triggers one refetch
    server.document = {"keys": [public_jwk(rsa_key, "rsa-1"), public_jwk(ec_key, "ec-1")]}
    clock.now += 61
    verifier.verify(sign(claims(iat=int(clock.now), exp=int(clock.now) + 60), ec_key, "ES256", "ec-1"))
    assert server.calls == 2

    # a flood of unknown kids right after: rate-limited, no request
    ghost = sign(claims(iat=int(clock.now), exp=int(clock.now) + 60), rsa_key, "RS256", "ghost")
    for _ in range(5):
        assert rejected(verifier, ghost) == "unknown_kid"
    assert server.calls == 2
    clock.now += 61
    assert rejected(verifier, ghost) == "unknown_kid"
    assert server.calls == 3

    # after the TTL the keys are refreshed even for a known kid
    clock.now += 3600
    verifier.verify(sign(claims(iat=int(clock.now), exp=int(clock.now) + 60), rsa_key, "RS256", "rsa-1"))
    assert server.calls == 4


def test_jwks_url_failures(http: Callable[[JwksServer], httpx.Client], rsa_key: rsa.RSAPrivateKey) -> None:
    server = JwksServer({"keys": [public_jwk(rsa_key, "rsa-1")]})
    server.status = 500
    clock = Clock()
    verifier = OIDCVerifier(ISSUER, AUDIENCE, jwks_url=JWKS_URL, clock=clock, http_client=http(server))
    token = sign(claims(exp=int(NOW) + 86_400), rsa_key, "RS256", "rsa-1")
    assert rejected(verifier, token) == "jwks_unavailable"
    server.status = 200
    clock.now += 61
    assert verifier.verify(token).name == "alice@acme.io"
    # the IdP goes down after the TTL: the cached keys stay in use
    server.down = True
    clock.now += 3600
    assert verifier.verify(token).name == "alice@acme.io"
    assert server.calls == 3
    # a document that is not a JWKS is a failed fetch too
    server.down = False
    server.document = {"not": "a jwks"}
    clock.now += 3600
    assert verifier.verify(token).name == "alice@acme.io"


def test_authenticator_routes_jwts_to_oidc(
    sqlite_engine: Any, verifier: OIDCVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    auth = Authenticator(ApiKeyStore(sqlite_engine), oidc=verifier)
    token = sign(claims(), rsa_key, "RS256", "rsa-1")
    assert auth.authenticate(f"Bearer {token}").tenant == "acme"
    with pytest.raises(Unauthenticated) as exc:
        auth.authenticate(f"Bearer {sign(claims(aud='x'), rsa_key, 'RS256', 'rsa-1')}")
    assert exc.value.details["reason"] == "wrong_audience"
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Basic {token}")
