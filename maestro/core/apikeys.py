"""API keys: ``mk_<prefix>_<secret>``, shown once, stored only as a hash.

The prefix (8 base32 characters, random) names the key in listings and logs; the secret is 256 random
bits. The table keeps the prefix and the SHA-256 of the whole key, never the key itself: with a 256-bit
random secret a fast hash is enough (there is nothing to brute-force), and the digest is compared with
``hmac.compare_digest``. Every verification failure (malformed, unknown, revoked, expired key, disabled
principal) raises ``Unauthenticated`` with the same message; the specific reason is in
``details["reason"]`` for logs only. A key's own scopes can only narrow its principal's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.authority import Principal
from maestro.core.clock import utcnow
from maestro.core.errors import InvalidRequest, MaestroError, NotFound, Unauthenticated
from maestro.core.ids import new_id
from maestro.core.principals import (
    AUTHENTICATION_FAILED,
    aware,
    check_name,
    principal_from_row,
)
from maestro.core.roles import check_scopes
from maestro.core.schema import api_keys, principals

KEY_PREFIX = "mk_"
_KEY_RE = re.compile(r"^mk_([a-z2-7]{8})_([a-z2-7]{52})$")
_REF_RE = re.compile(r"^(?:mk_)?([a-z2-7]{8})(?:_.*)?$")
_DUMMY_HASH = hashlib.sha256(b"mk_dummy").hexdigest()
_TOUCH_EVERY = timedelta(minutes=1)
_CREATE_ATTEMPTS = 3


def _b32(nbytes: int) -> str:
    return base64.b32encode(secrets.token_bytes(nbytes)).decode("ascii").rstrip("=").lower()


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _fail(reason: str) -> Unauthenticated:
    return Unauthenticated(AUTHENTICATION_FAILED, reason=reason)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown about a key: never its secret or hash."""

    id: str
    tenant: str
    principal_id: str
    name: str
    prefix: str
    scopes: frozenset[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def display(self) -> str:
        """How the key is shown in listings: ``mk_<prefix>_…``."""
        return f"{KEY_PREFIX}{self.prefix}_…"

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the CLI's ``--json`` output and the API."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "id": self.id,
            "tenant": self.tenant,
            "principal_id": self.principal_id,
            "name": self.name,
            "prefix": self.prefix,
            "display": self.display,
            "scopes": sorted(self.scopes) if self.scopes is not None else None,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


def _optional_time(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None


def _info(row: Mapping[Any, Any]) -> ApiKeyInfo:
    scopes = row["scopes"]
    return ApiKeyInfo(
        id=row["id"],
        tenant=row["tenant"],
        principal_id=row["principal_id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=frozenset(scopes) if scopes is not None else None,
        created_at=aware(row["created_at"]),
        expires_at=_optional_time(row["expires_at"]),
        revoked_at=_optional_time(row["revoked_at"]),
        last_used_at=_optional_time(row["last_used_at"]),
    )


_PUBLIC_COLUMNS = tuple(c for c in api_keys.c if c.name != "secret_hash")


class ApiKeyStore:
    """Creates, lists, revokes and verifies API keys. ``clock`` is injectable for tests."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def create(
        self,
        principal_id: str,
        name: str,
        *,
        scopes: Iterable[str] | None = None,
        expires_at: datetime | None = None,
        tenant: str | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """A new key for an enabled principal: ``(plaintext, info)``. The plaintext is never shown again.

        ``scopes`` narrows the principal's scopes (``InvalidRequest`` if it asks for one the principal
        lacks); ``expires_at`` must be timezone-aware and in the future. With ``tenant``, a principal of
        another tenant is ``NotFound``.
        """
        check_name(name, what="API key name")
        now = self._clock()
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidRequest("expires_at must be timezone-aware (e.g. 2030-01-01T00:00:00+00:00)")
            if aware(expires_at) <= now:
                raise InvalidRequest(f"expires_at {expires_at.isoformat()} is in the past: pick a later time")
        query = sa.select(principals).where(
            principals.c.id == principal_id, principals.c.disabled_at.is_(None)
        )
        if tenant is not None:
            query = query.where(principals.c.tenant == tenant)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"principal '{principal_id}' not found")
        principal = principal_from_row(row)
        narrowed = self._narrow(principal, scopes)
        for attempt in range(_CREATE_ATTEMPTS):
            prefix = _b32(5)
            plaintext = f"{KEY_PREFIX}{prefix}_{_b32(32)}"
            values = {
                "id": new_id("key"),
                "principal_id": principal.id,
                "tenant": principal.tenant,
                "name": name,
                "prefix": prefix,
                "secret_hash": _hash(plaintext),
                "scopes": sorted(narrowed) if narrowed is not None else None,
                "created_at": now,
                "expires_at": aware(expires_at) if expires_at is not None else None,
                "revoked_at": None,
                "last_used_at": None,
            }
            try:
                with self._engine.begin() as conn:
                    conn.execute(api_keys.insert(), values)
            except sa.exc.IntegrityError:  # prefix collision (2^-40 per pair): draw another one
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
                continue
            return plaintext, _info(values)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _narrow(principal: Principal, scopes: Iterable[str] | None) -> frozenset[str] | None:
        if scopes is None:
            return None
        wanted = check_scopes(scopes)
        missing = sorted(wanted - principal.scopes)
        if missing:
            raise InvalidRequest(
                f"principal '{principal.qualified_name}' does not hold {', '.join(missing)}: "
                "a key's scopes can only narrow its principal's",
                scopes=missing,
            )
        return wanted

    def list(self, tenant: str, *, principal_id: str | None = None) -> list[ApiKeyInfo]:
        """The tenant's keys (revoked and expired included), oldest first; never secrets or hashes."""
        query = sa.select(*_PUBLIC_COLUMNS).where(api_keys.c.tenant == tenant)
        if principal_id is not None:
            query = query.where(api_keys.c.principal_id == principal_id)
        query = query.order_by(api_keys.c.created_at, api_keys.c.id)
        with self._engine.connect() as conn:
            return [_info(r) for r in conn.execute(query).mappings().all()]

    def revoke(self, key: str, *, tenant: str) -> ApiKeyInfo:
        """Revoke a key of ``tenant`` by id or prefix (``abcd2345``, ``mk_abcd2345``); idempotent.

        ``NotFound`` when no such key exists in ``tenant``, whether or not it exists in another one.
        """
        match = _REF_RE.fullmatch(key)
        ref = api_keys.c.id == key
        if match is not None:
            ref = sa.or_(ref, api_keys.c.prefix == match.group(1))
        where = sa.and_(ref, api_keys.c.tenant == tenant)
        with self._engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(where, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = conn.execute(sa.select(*_PUBLIC_COLUMNS).where(where)).mappings().first()
        if row is None:
            # never echo the argument: a full key pasted here must not come back in an error body
            raise NotFound("API key not found in this tenant: pass its id (key_...) or prefix")
        return _info(row)

    def verify(self, plaintext: str) -> Principal:
        """The principal a key acts as, with the key's narrowed scopes; ``Unauthenticated`` otherwise.

        Malformed, unknown, revoked and expired keys and disabled principals all fail with the same
        message. Records ``last_used_at`` at most once a minute per key.
        """
        match = _KEY_RE.fullmatch(plaintext) if isinstance(plaintext, str) else None
        if match is None:
            raise _fail("malformed_key")
        presented = _hash(plaintext)
        row = self._lookup(match.group(1))
        stored = row["secret_hash"] if row is not None else _DUMMY_HASH
        same = hmac.compare_digest(presented.encode("ascii"), str(stored).encode("ascii"))
        if row is None:
            raise _fail("unknown_key")
        if not same:
            raise _fail("wrong_secret")
        now = self._clock()
        principal = self._check_usable(row, now)
        self._touch(row["id"], row["last_used_at"], now)
        return principal

    def _lookup(self, prefix: str) -> Mapping[Any, Any] | None:
        query = (
            sa.select(
                api_keys.c.id,
                api_keys.c.tenant.label("key_tenant"),
                api_keys.c.secret_hash,
                api_keys.c.scopes.label("key_scopes"),
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
                api_keys.c.last_used_at,
                principals.c.id.label("principal_id"),
                principals.c.tenant,
                principals.c.name,
                principals.c.kind,
                principals.c.roles,
                principals.c.disabled_at,
            )
            .join(principals, principals.c.id == api_keys.c.principal_id)
            .where(api_keys.c.prefix == prefix)
        )
        with self._engine.connect() as conn:
            return conn.execute(query).mappings().first()

    @staticmethod
    def _check_usable(row: Mapping[Any, Any], now: datetime) -> Principal:
        if row["revoked_at"] is not None:
            raise _fail("revoked")
        if row["expires_at"] is not None and now >= aware(row["expires_at"]):
            raise _fail("expired")
        if row["disabled_at"] is not None:
            raise _fail("principal_disabled")
        if row["key_tenant"] != row["tenant"]:
            raise _fail("tenant_mismatch")
        try:
            principal = principal_from_row({**row, "id": row["principal_id"]})
        except MaestroError as exc:  # a role removed from roles.py since: fail closed
            raise _fail("invalid_principal") from exc
        key_scopes = row["key_scopes"]
        if key_scopes is None:
            return principal
        return Principal(
            id=principal.id,
            tenant=principal.tenant,
            name=principal.name,
            kind=principal.kind,
            roles=principal.roles,
            scopes=principal.scopes & frozenset(key_scopes),
        )

    def _touch(self, key_id: str, last_used_at: datetime | None, now: datetime) -> None:
        if last_used_at is not None and now - aware(last_used_at) < _TOUCH_EVERY:
            return
        cutoff = now - _TOUCH_EVERY
        with self._engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(
                    api_keys.c.id == key_id,
                    sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < cutoff),
                )
                .values(last_used_at=now)
            )
