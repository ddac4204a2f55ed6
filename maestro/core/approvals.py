"""Approvals: a run asks, a human of the same tenant decides, once.

A workcell that wants to act beyond its authority (open a PR, apply an edit) calls ``request`` and waits;
a human holding ``approve:<workcell>`` in the same tenant calls ``grant`` or ``refuse``. The policy
engine decides who may decide (``approval.decide``: never a bot, never the requester, never another
tenant). A decision is one conditional ``UPDATE ... WHERE status = 'pending'``, so of two concurrent
decisions exactly one wins and the other gets ``ApprovalConflict``; a decided or expired approval never
changes again. Another tenant's approval is reported exactly like one that does not exist.

Every request and decision is recorded (``approval.requested``, ``approval.granted``,
``approval.refused``) with ids only: the free-text ``reason`` and ``note`` stay in the approvals table.
Records are written after the transaction commits (the ledger writes through its own connection).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer, Recorder
from maestro.core.clock import as_utc, utcnow
from maestro.core.errors import ApprovalConflict, InvalidRequest, NotFound
from maestro.core.ids import new_id
from maestro.core.schema import approvals

ApprovalStatus = Literal["pending", "granted", "refused", "expired"]
STATUSES: tuple[ApprovalStatus, ...] = ("pending", "granted", "refused", "expired")
_STATUS_BY_NAME: dict[str, ApprovalStatus] = {status: status for status in STATUSES}
DEFAULT_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval request and, once decided, its decision. Times are aware UTC datetimes."""

    id: str
    tenant: str
    workcell: str
    action: str
    resource: dict[str, Any]
    run_id: str | None
    requested_by: str
    reason: str | None
    status: ApprovalStatus
    decided_by: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the API and CLI."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "workcell": self.workcell,
            "action": self.action,
            "resource": self.resource,
            "run_id": self.run_id,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "status": self.status,
            "decided_by": self.decided_by,
            "decision_note": self.decision_note,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


class ApprovalStore:
    """Approvals in the state DB, with decisions checked by the policy engine (through ``authorizer``).

    ``ttl`` is how long a request stays pending before it expires (``None``: never).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        authorizer: Authorizer,
        record: Recorder | None = None,
        clock: Callable[[], datetime] = utcnow,
        ttl: timedelta | None = DEFAULT_TTL,
    ) -> None:
        self._engine = engine
        self._authorizer = authorizer
        self._record = record
        self._clock = clock
        self._ttl = ttl

    # -- asking --------------------------------------------------------------------------------------------

    def request(
        self,
        authority: Authority,
        *,
        workcell: str,
        action: str,
        resource: Mapping[str, Any],
        reason: str | None = None,
        ttl: timedelta | None = None,
    ) -> Approval:
        """Open a pending approval for ``action`` on ``resource`` in ``authority``'s tenant and run.

        ``resource`` must be JSON-serialisable and, if it names a tenant, name the requester's.
        ``ttl`` overrides the store's default expiry for this request.
        """
        _check_text(workcell, "workcell", 64)
        _check_text(action, "action", 128)
        stored = _json_object(resource)
        self._authorizer.authorize(
            authority,
            "approval.request",
            {"kind": "approval", "tenant": stored.get("tenant", authority.tenant), "workcell": workcell},
        )
        now = self._now()
        lifetime = ttl if ttl is not None else self._ttl
        if lifetime is not None and lifetime <= timedelta(0):
            raise InvalidRequest(f"approval ttl must be positive, got {lifetime}")
        approval = Approval(
            id=new_id("apr"),
            tenant=authority.tenant,
            workcell=workcell,
            action=action,
            resource=stored,
            run_id=authority.run_id,
            requested_by=authority.principal.id,
            reason=reason,
            status="pending",
            decided_by=None,
            decision_note=None,
            created_at=now,
            decided_at=None,
            expires_at=now + lifetime if lifetime is not None else None,
        )
        with self._engine.begin() as conn:
            conn.execute(
                approvals.insert().values(
                    id=approval.id,
                    tenant=approval.tenant,
                    workcell=approval.workcell,
                    action=approval.action,
                    resource=approval.resource,
                    run_id=approval.run_id,
                    requested_by=approval.requested_by,
                    reason=approval.reason,
                    status=approval.status,
                    created_at=approval.created_at,
                    expires_at=approval.expires_at,
                )
            )
        self._emit("approval.requested", approval)
        return approval

    # -- deciding ------------------------------------------------------------------------------------------

    def grant(self, approval_id: str, approver: Authority, note: str | None = None) -> Approval:
        """Grant a pending approval. ``PolicyDenied`` unless ``approver`` may decide it (see module doc);
        ``NotFound`` for an unknown or another tenant's id; ``ApprovalConflict`` once decided or expired."""
        return self._decide(approval_id, approver, "granted", note)

    def refuse(self, approval_id: str, approver: Authority, note: str | None = None) -> Approval:
        """Refuse a pending approval; same rules as ``grant``."""
        return self._decide(approval_id, approver, "refused", note)

    def _decide(
        self, approval_id: str, approver: Authority, outcome: ApprovalStatus, note: str | None
    ) -> Approval:
        current = self.get(approval_id, tenant=approver.tenant)
        # The policy runs before the state is looked at: a caller who may not decide learns nothing more.
        self._authorizer.authorize(
            approver,
            "approval.decide",
            {
                "kind": "approval",
                "id": current.id,
                "tenant": current.tenant,
                "workcell": current.workcell,
                "requested_by": current.requested_by,
            },
        )
        now = self._now()
        with self._engine.begin() as conn:
            won = conn.execute(
                approvals.update()
                .where(
                    approvals.c.id == current.id,
                    approvals.c.tenant == current.tenant,
                    approvals.c.status == "pending",
                    sa.or_(approvals.c.expires_at.is_(None), approvals.c.expires_at > now),
                )
                .values(status=outcome, decided_by=approver.principal.id, decision_note=note, decided_at=now)
            ).rowcount
        if won != 1:
            self._expire(now, approval_id=current.id)
            latest = self.get(current.id, tenant=current.tenant)
            if latest.status == "expired":
                raise ApprovalConflict(
                    f"approval {current.id!r} expired at {_iso(latest.expires_at)}: the run must ask again",
                    approval_id=current.id,
                    status=latest.status,
                )
            raise ApprovalConflict(
                f"approval {current.id!r} was already {latest.status} by {latest.decided_by!r}: "
                "a decision is final",
                approval_id=current.id,
                status=latest.status,
            )
        decided = self.get(current.id, tenant=current.tenant)
        self._emit(f"approval.{outcome}", decided)
        return decided

    # -- reading -------------------------------------------------------------------------------------------

    def get(self, approval_id: str, *, tenant: str) -> Approval:
        """The approval ``approval_id`` of ``tenant``; ``NotFound`` if it does not exist *in that tenant*."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(approvals).where(approvals.c.id == approval_id, approvals.c.tenant == tenant)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"approval {approval_id!r} not found", approval_id=approval_id)
        return _from_row(row, self._now())

    def list(
        self, tenant: str, status: ApprovalStatus | None = None, *, limit: int = 100
    ) -> builtins.list[Approval]:
        """``tenant``'s approvals, oldest first, optionally only those with ``status``.

        A pending approval past its expiry is listed (and filtered) as ``expired``.
        """
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"unknown approval status {status!r}: use one of {', '.join(STATUSES)}")
        if limit < 1:
            raise InvalidRequest(f"limit must be at least 1, got {limit}")
        now = self._now()
        query = sa.select(approvals).where(approvals.c.tenant == tenant)
        overdue = sa.and_(
            approvals.c.status == "pending",
            approvals.c.expires_at.is_not(None),
            approvals.c.expires_at <= now,
        )
        if status == "pending":
            query = query.where(approvals.c.status == "pending", sa.not_(overdue))
        elif status == "expired":
            query = query.where(sa.or_(approvals.c.status == "expired", overdue))
        elif status is not None:
            query = query.where(approvals.c.status == status)
        query = query.order_by(approvals.c.created_at, approvals.c.id).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_from_row(row, now) for row in rows]

    # -- expiry --------------------------------------------------------------------------------------------

    def expire_due(self) -> int:
        """Mark every pending approval past its expiry as ``expired``; return how many (for a beat task)."""
        return self._expire(self._now())

    def _expire(self, now: datetime, *, approval_id: str | None = None) -> int:
        statement = approvals.update().where(
            approvals.c.status == "pending",
            approvals.c.expires_at.is_not(None),
            approvals.c.expires_at <= now,
        )
        if approval_id is not None:
            statement = statement.where(approvals.c.id == approval_id)
        with self._engine.begin() as conn:
            return int(conn.execute(statement.values(status="expired")).rowcount)

    # -- helpers -------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return _utc(self._clock())

    def _emit(self, kind: str, approval: Approval) -> None:
        if self._record is None:
            return
        payload: dict[str, Any] = {
            "approval_id": approval.id,
            "tenant": approval.tenant,
            "workcell": approval.workcell,
            "action": approval.action,
            "resource_kind": approval.resource.get("kind"),
            "run_id": approval.run_id,
            "requested_by": approval.requested_by,
        }
        if approval.status == "pending":
            payload["expires_at"] = _iso(approval.expires_at)
        else:
            payload["decided_by"] = approval.decided_by
            payload["decided_at"] = _iso(approval.decided_at)
        self._record(kind, payload)


def _from_row(row: sa.RowMapping, now: datetime) -> Approval:
    expires_at = _utc_or_none(row["expires_at"])
    status = _STATUS_BY_NAME.get(str(row["status"]))
    if status is None:
        raise InvalidRequest(
            f"approval {row['id']!r} has an unknown status {row['status']!r} in the state DB"
        )
    if status == "pending" and expires_at is not None and expires_at <= now:
        status = "expired"
    resource = row["resource"]
    return Approval(
        id=str(row["id"]),
        tenant=str(row["tenant"]),
        workcell=str(row["workcell"]),
        action=str(row["action"]),
        resource=dict(resource) if isinstance(resource, Mapping) else {},
        run_id=row["run_id"],
        requested_by=str(row["requested_by"]),
        reason=row["reason"],
        status=status,
        decided_by=row["decided_by"],
        decision_note=row["decision_note"],
        created_at=_utc(row["created_at"]),
        decided_at=_utc_or_none(row["decided_at"]),
        expires_at=expires_at,
    )


def _check_text(value: object, what: str, max_len: int) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidRequest(f"approval {what} must be a non-empty string of at most {max_len} characters")


def _json_object(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON round-trip copy of ``resource``; ``InvalidRequest`` if it is not a JSON object."""
    try:
        copied = json.loads(json.dumps(dict(resource)))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"approval resource must be JSON-serialisable: {exc}") from exc
    if not isinstance(copied, dict):
        raise InvalidRequest("approval resource must be a JSON object")
    return copied


_utc = as_utc


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return _utc(moment) if moment is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
