"""The principals table: users and bots, each in one tenant, with roles.

Principals are never deleted (API keys and ledger entries refer to them); ``disable`` makes every
credential of the principal fail authentication. Another tenant's principal is reported exactly like a
principal that does not exist, so ids cannot be probed across tenants (RELIABILITY.md #2).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.authority import Principal, PrincipalKind
from maestro.core.clock import utcnow
from maestro.core.errors import InvalidRequest, NotFound
from maestro.core.ids import new_id
from maestro.core.roles import check_roles, scopes_for
from maestro.core.schema import principals

AUTHENTICATION_FAILED = (
    "authentication failed: send a valid, unexpired API key or OIDC token as 'Authorization: Bearer <token>'"
)
"""The one message every authentication failure carries, whatever the reason (no oracle)."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:|-]{0,199}$")
_KINDS: frozenset[str] = frozenset({"user", "bot"})


def check_name(value: str, *, what: str) -> str:
    """``value`` if it is a valid tenant or principal name, else ``InvalidRequest`` saying why."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidRequest(
            f"{what} {value!r} is not valid: use 1-200 characters from letters, digits and . _ @ + : | - "
            "starting with a letter or digit",
        )
    return value


def check_kind(kind: str) -> PrincipalKind:
    """``kind`` if it is ``"user"`` or ``"bot"``, else ``InvalidRequest``."""
    if kind == "user":
        return "user"
    if kind == "bot":
        return "bot"
    raise InvalidRequest(f"principal kind {kind!r} is not valid: use 'user' or 'bot'")


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands back naive values, stored in UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def oidc_principal_id(issuer: str, tenant: str, subject: str) -> str:
    """A stable id for a principal known only from OIDC tokens (not stored in the principals table)."""
    digest = hashlib.sha256(f"{issuer}\x00{tenant}\x00{subject}".encode()).hexdigest()
    return f"oidc_{digest[:32]}"


def principal_from_row(row: Mapping[Any, Any]) -> Principal:
    """A ``Principal`` from a principals row; scopes are recomputed from the roles (bots stripped)."""
    kind = check_kind(str(row["kind"]))
    roles = check_roles(row["roles"] or ())
    return Principal(
        id=str(row["id"]),
        tenant=str(row["tenant"]),
        name=str(row["name"]),
        kind=kind,
        roles=roles,
        scopes=scopes_for(roles, kind=kind),
    )


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    """A principal with its lifecycle, as listed to administrators."""

    principal: Principal
    created_at: datetime
    disabled_at: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the CLI's ``--json`` output and the API."""
        p = self.principal
        return {
            "id": p.id,
            "tenant": p.tenant,
            "name": p.name,
            "kind": p.kind,
            "roles": list(p.roles),
            "scopes": sorted(p.scopes),
            "created_at": self.created_at.isoformat(),
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


class PrincipalStore:
    """Creates, reads and disables principals in the state DB."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self, tenant: str, name: str, *, roles: Iterable[str], kind: PrincipalKind = "user"
    ) -> Principal:
        """Create a principal; ``InvalidRequest`` for an unknown role or kind or a taken (tenant, name).

        A bot given the ``admin`` role is created, but never holds human-only scopes (see
        ``maestro.core.roles.scopes_for``).
        """
        check_name(tenant, what="tenant")
        check_name(name, what="principal name")
        checked_kind = check_kind(kind)
        checked_roles = check_roles(roles)
        row = {
            "id": new_id("prn"),
            "tenant": tenant,
            "name": name,
            "kind": checked_kind,
            "roles": list(checked_roles),
            "created_at": utcnow(),
            "disabled_at": None,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(principals.insert(), row)
        except sa.exc.IntegrityError as exc:
            raise InvalidRequest(
                f"principal '{tenant}/{name}' already exists: pick another name or reuse it"
            ) from exc
        return principal_from_row(row)

    def get(self, principal_id: str, *, tenant: str | None = None) -> Principal:
        """An enabled principal by id; ``NotFound`` if missing, disabled or (with ``tenant``) elsewhere."""
        query = sa.select(principals).where(
            principals.c.id == principal_id, principals.c.disabled_at.is_(None)
        )
        if tenant is not None:
            query = query.where(principals.c.tenant == tenant)
        return principal_from_row(self._one(query, f"principal '{principal_id}' not found"))

    def get_by_name(self, tenant: str, name: str) -> Principal:
        """An enabled principal by (tenant, name); ``NotFound`` if missing or disabled."""
        query = sa.select(principals).where(
            principals.c.tenant == tenant, principals.c.name == name, principals.c.disabled_at.is_(None)
        )
        return principal_from_row(self._one(query, f"principal '{tenant}/{name}' not found"))

    def list(self, tenant: str, *, include_disabled: bool = False) -> list[PrincipalInfo]:
        """The tenant's principals, oldest first."""
        query = sa.select(principals).where(principals.c.tenant == tenant)
        if not include_disabled:
            query = query.where(principals.c.disabled_at.is_(None))
        query = query.order_by(principals.c.created_at, principals.c.id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            PrincipalInfo(
                principal=principal_from_row(r),
                created_at=aware(r["created_at"]),
                disabled_at=aware(r["disabled_at"]) if r["disabled_at"] is not None else None,
            )
            for r in rows
        ]

    def disable(self, principal_id: str, *, tenant: str) -> None:
        """Disable a principal of ``tenant`` (idempotent); its API keys stop working at once.

        ``NotFound`` when the id does not exist in ``tenant``, whether or not it exists elsewhere.
        """
        with self._engine.begin() as conn:
            found = conn.execute(
                sa.select(principals.c.id).where(
                    principals.c.id == principal_id, principals.c.tenant == tenant
                )
            ).first()
            if found is None:
                raise NotFound(f"principal '{principal_id}' not found")
            conn.execute(
                principals.update()
                .where(principals.c.id == principal_id, principals.c.disabled_at.is_(None))
                .values(disabled_at=utcnow())
            )

    def _one(self, query: sa.Select[Any], missing: str) -> Mapping[Any, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(missing)
        return row
