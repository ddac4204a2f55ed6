"""The composition root for the API and the CLI: every service built once from ``Settings``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from maestro.api.metrics import Metrics
from maestro.core.apikeys import ApiKeyStore
from maestro.core.approvals import ApprovalStore
from maestro.core.authn import Authenticator
from maestro.core.authorize import Authorizer
from maestro.core.ledger import Ledger, load_signing_key
from maestro.core.oidc import OIDCVerifier
from maestro.core.policy import LazyPolicyEngine, build_policy_engine
from maestro.core.principals import PrincipalStore
from maestro.core.settings import Settings
from maestro.router.factory import build_router, open_state_db
from maestro.router.privacy import PrivacyFilter
from maestro.router.service import ModelRouter
from maestro.router.types import LLMClient
from maestro.tools.pii import PIIGuard, PIIPromptGuard
from maestro.tools.pii.quick import QuickRedactor


@dataclass
class Services:
    """Everything the routes and commands need."""

    settings: Settings
    engine: Engine
    router: ModelRouter
    pii: PIIGuard
    principals: PrincipalStore
    api_keys: ApiKeyStore
    authenticator: Authenticator
    ledger: Ledger
    authorizer: Authorizer
    approvals: ApprovalStore
    metrics: Metrics | None = None


def build_services(
    settings: Settings,
    *,
    engine: Engine | None = None,
    client: LLMClient | None = None,
    metrics: Metrics | None = None,
    eager_policy: bool = True,
) -> Services:
    """Open (and migrate) the state DB and wire the router, stores and authenticator to it."""
    engine = engine if engine is not None else open_state_db(settings)
    api_keys = ApiKeyStore(engine)
    signing_key = load_signing_key(settings)
    pii_key = _derived_key(signing_key, b"maestro-pii-hash")
    guard = PIIGuard(hash_key=pii_key)  # spaCy loads on the first scan, not here
    # Ledger strings are ids and short labels: the regex redactor keeps secrets and contact data out of
    # the evidence without loading an NLP stack on every append.
    ledger = Ledger(engine, signing_key, redact=QuickRedactor(hash_key=pii_key).redact)
    router = build_router(
        settings,
        engine=engine,
        client=client,
        observer=metrics.observe_outcome if metrics is not None else None,
        ledger=ledger,
        privacy=PrivacyFilter(PIIPromptGuard(guard), mode=settings.pii_mode),
    )

    def record(kind: str, payload: dict[str, Any]) -> None:
        actor = payload.get("principal_id") or payload.get("decided_by") or payload.get("requested_by")
        ledger.append(kind, payload, tenant=payload.get("tenant"), actor=actor)

    engine_policy = (
        build_policy_engine(settings)
        if eager_policy
        else LazyPolicyEngine(lambda: build_policy_engine(settings))  # CLI: built only if a command asks
    )
    authorizer = Authorizer(engine_policy, record=record)
    return Services(
        settings=settings,
        engine=engine,
        router=router,
        pii=guard,
        principals=PrincipalStore(engine),
        api_keys=api_keys,
        authenticator=Authenticator(api_keys, OIDCVerifier.from_settings(settings)),
        ledger=ledger,
        authorizer=authorizer,
        approvals=ApprovalStore(engine, authorizer=authorizer, record=record),
        metrics=metrics,
    )


def _derived_key(signing_key: Ed25519PrivateKey, purpose: bytes) -> bytes:
    """A per-purpose secret derived from the deployment's ledger key (stable across processes)."""
    raw = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(purpose + b"\0" + raw).digest()
