"""Monthly budgets per tenant and per principal, with atomic reservations.

The router calls ``reserve`` with the most a call can cost before it runs a model, then ``settle`` with
the provider-reported cost (``release`` when no model ran). Every call is charged to two scopes: its
tenant (``"acme"``) and its principal, whose scope id is namespaced by tenant (``"acme/alice"``) so
that two tenants' principals never share a row.

Correctness under concurrency comes from one conditional ``UPDATE`` per scope, never from a read then a
write: ``reserved_nano`` grows only ``WHERE spent_nano + reserved_nano + :amount <= limit_nano``. SQLite
serialises writers with ``BEGIN IMMEDIATE``; PostgreSQL locks the row and re-checks the condition on the
newest row version (READ COMMITTED), so the guarantee holds across threads and processes. Rows are
locked tenant first, then principal, in every transaction, so reservations cannot deadlock.

Amounts are integer nano-dollars (``maestro.core.schema.to_nano``). A period is a UTC month
(``YYYY-MM``); its row is created on first use with the limit from ``budget_limits`` or the default.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from maestro.core.clock import month_period, utcnow
from maestro.core.db import reading, transaction
from maestro.core.errors import BudgetExceeded, ConfigurationError, InvalidRequest, NotFound
from maestro.core.ids import new_id
from maestro.core.schema import (
    NANO,
    budget_alerts,
    budget_limits,
    budget_periods,
    budget_reservations,
    from_nano,
)

logger = logging.getLogger("maestro.budget")

ScopeKind = Literal["tenant", "principal"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("tenant", "principal")
THRESHOLDS_PCT = (80, 100)
"""Spend alerts fire when a scope's spend reaches these percentages of its limit, once per period."""
MAX_AMOUNT_NANO = 10**18
"""One billion USD: keeps every sum of amounts inside a signed 64-bit column."""
_SCOPE_ID_MAX = 200  # budget_periods.scope_id is VARCHAR(200)

_Insert = Callable[[sa.Table], "postgresql.Insert | sqlite.Insert"]

# Hot-path statements are built once with bind parameters, so each call reuses SQLAlchemy's compiled
# form instead of rebuilding expressions (the router's per-request overhead is benchmarked).
_P = budget_periods.c
_R = budget_reservations.c
_BOTH = (
    # the call's two rows (tenant, principal) of one period; every statement below touches both rows in
    # one statement, so concurrent transactions lock them in the same order and cannot deadlock
    _P.period == sa.bindparam("k_period"),
    sa.or_(
        sa.and_(_P.scope_kind == "tenant", _P.scope_id == sa.bindparam("k_tenant")),
        sa.and_(_P.scope_kind == "principal", _P.scope_id == sa.bindparam("k_principal")),
    ),
)
_AMOUNT = sa.bindparam("k_amount", type_=sa.BigInteger)
_HELD = sa.bindparam("k_held", type_=sa.BigInteger)
_HOLD = (
    sa.update(budget_periods)
    .where(*_BOTH, _P.spent_nano + _P.reserved_nano + _AMOUNT <= _P.limit_nano)
    .values(reserved_nano=_P.reserved_nano + _AMOUNT)
    .returning(_P.scope_kind)
)
_UNHOLD = sa.update(budget_periods).where(*_BOTH).values(reserved_nano=_P.reserved_nano - _HELD)
_UNHOLD_ONE = (
    sa.update(budget_periods)
    .where(*_BOTH, _P.scope_kind == sa.bindparam("k_kind"))
    .values(reserved_nano=_P.reserved_nano - _HELD)
)
_CHARGE = (
    sa.update(budget_periods)
    .where(*_BOTH)
    .values(
        reserved_nano=_P.reserved_nano - _HELD,
        spent_nano=_P.spent_nano + sa.bindparam("k_actual", type_=sa.BigInteger),
    )
    .returning(_P.scope_kind, _P.scope_id, _P.spent_nano, _P.limit_nano)
)
_READ = sa.select(_P.scope_kind, _P.limit_nano, _P.spent_nano, _P.reserved_nano).where(*_BOTH)
_CLOSE_RETURNING = (_R.id, _R.tenant, _R.principal, _R.period, _R.reserved_nano)
_CLOSE_SETTLED = (
    sa.update(budget_reservations)
    .where(_R.id == sa.bindparam("k_id"), _R.status == sa.bindparam("k_from"))
    .values(
        status="settled",
        settled_nano=sa.bindparam("k_actual", type_=sa.BigInteger),
        estimated=sa.bindparam("k_estimated", type_=sa.Boolean),
        settled_at=sa.bindparam("k_at", type_=sa.DateTime(timezone=True)),
    )
    .returning(*_CLOSE_RETURNING)
)
_CLOSE_RELEASED = (
    sa.update(budget_reservations)
    .where(_R.id == sa.bindparam("k_id"), _R.status == sa.bindparam("k_from"))
    .values(status="released", settled_at=sa.bindparam("k_at", type_=sa.DateTime(timezone=True)))
    .returning(*_CLOSE_RETURNING)
)
_INSERT_RESERVATION = sa.insert(budget_reservations)


def _pair(tenant: str, principal: str, period: str) -> dict[str, Any]:
    """Bind parameters selecting a call's two budget rows."""
    (_, tenant_id), (_, principal_id) = _scopes(tenant, principal)
    return {"k_period": period, "k_tenant": tenant_id, "k_principal": principal_id}


@dataclass(frozen=True)
class Reservation:
    """Money held for one model call; pass it to ``BudgetStore.settle`` or ``BudgetStore.release``."""

    id: str
    tenant: str
    principal: str
    period: str
    amount_nano: int


@dataclass(frozen=True)
class BudgetEvent:
    """A scope's spend reached ``threshold_pct`` percent of its limit in ``period``."""

    scope_kind: str
    scope_id: str
    period: str
    threshold_pct: int
    used_nano: int
    limit_nano: int


@dataclass(frozen=True)
class BudgetStatus:
    """One scope's budget in the current period, in USD."""

    scope_kind: str
    scope_id: str
    period: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    remaining_usd: float


def principal_scope(tenant: str, principal: str) -> str:
    """The scope id of ``principal`` inside ``tenant``: ``"acme/alice"``."""
    _check_tenant(tenant)
    if not principal:
        raise InvalidRequest("the principal id is empty: pass the caller's principal id", principal=principal)
    return _check_length(f"{tenant}/{principal}")


class BudgetStore:
    """Budgets, reservations and spend alerts in the state DB (SQLite or PostgreSQL).

    ``tenant_default_usd`` and ``principal_default_usd`` are the monthly limits of scopes that have no
    limit of their own (``set_limit``). ``clock`` decides the current period; tests inject one.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        tenant_default_usd: float,
        principal_default_usd: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._insert = _dialect_insert(engine)
        self._defaults: dict[str, int] = {
            "tenant": _default_nano("MAESTRO_TENANT_BUDGET_USD", tenant_default_usd),
            "principal": _default_nano("MAESTRO_PRINCIPAL_BUDGET_USD", principal_default_usd),
        }
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._engine

    def current_period(self) -> str:
        """The budget period (``YYYY-MM``, UTC) that reservations made now are charged to."""
        return month_period(self._clock())

    def set_limit(self, scope_kind: ScopeKind, scope_id: str, usd: float) -> None:
        """Set a scope's monthly limit, for this period (its row is updated) and every later one.

        Principal scope ids are namespaced by tenant: ``set_limit("principal", "acme/alice", 5)``.
        """
        kind = _check_scope(scope_kind, scope_id)
        if not math.isfinite(usd) or usd < 0 or usd * NANO > MAX_AMOUNT_NANO:
            raise InvalidRequest(
                f"a budget limit must be between $0 and ${MAX_AMOUNT_NANO // NANO:,}, got {usd!r}",
                scope=kind,
                scope_id=scope_id,
                usd=usd,
            )
        limit_nano = round(usd * NANO)
        now = self._clock()
        period = month_period(now)
        key = _period_key(kind, scope_id, period)
        with self._engine.begin() as conn:
            upsert = self._insert(budget_limits).values(
                scope_kind=kind, scope_id=scope_id, limit_nano=limit_nano, updated_at=now
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[budget_limits.c.scope_kind, budget_limits.c.scope_id],
                    set_={"limit_nano": limit_nano, "updated_at": now},
                )
            )
            # Create the row with the new limit, so a concurrent first reservation cannot create it
            # with the old one after this transaction's UPDATE found nothing to update.
            self._ensure_period(conn, kind, scope_id, period, limit_nano=limit_nano)
            conn.execute(sa.update(budget_periods).where(*key).values(limit_nano=limit_nano))
        logger.info("budget limit set: %s %r = $%s from %s", kind, scope_id, _usd(limit_nano), period)

    def status(self, scope_kind: ScopeKind, scope_id: str) -> BudgetStatus:
        """A scope's limit, spend, holds and what is left in the current period (nothing is written)."""
        kind = _check_scope(scope_kind, scope_id)
        period = self.current_period()
        with reading(self._engine) as conn:
            limit_nano, spent_nano, reserved_nano = self._read_period(conn, kind, scope_id, period)
        return BudgetStatus(
            scope_kind=kind,
            scope_id=scope_id,
            period=period,
            limit_usd=from_nano(limit_nano),
            spent_usd=from_nano(spent_nano),
            reserved_usd=from_nano(reserved_nano),
            remaining_usd=from_nano(max(0, limit_nano - spent_nano - reserved_nano)),
        )

    def remaining_nano(self, *, tenant: str, principal: str) -> int:
        """What a call by ``principal`` of ``tenant`` could still reserve now: the smaller of both scopes."""
        period = self.current_period()
        (_, tenant_id), (_, principal_id) = _scopes(tenant, principal)
        with reading(self._engine) as conn:
            rows = {row.scope_kind: row for row in conn.execute(_READ, _pair(tenant, principal, period))}
            remaining = []
            for kind, scope_id in (("tenant", tenant_id), ("principal", principal_id)):
                row = rows.get(kind)
                if row is None:
                    remaining.append(self._configured_limit(conn, kind, scope_id))
                else:
                    remaining.append(
                        max(0, int(row.limit_nano) - int(row.spent_nano) - int(row.reserved_nano))
                    )
        return min(remaining)

    def reserve(
        self,
        *,
        tenant: str,
        principal: str,
        amount_nano: int,
        decision_id: str | None = None,
        conn: Connection | None = None,
    ) -> Reservation:
        """Hold ``amount_nano`` against both the tenant's and the principal's budget, atomically.

        Raises ``BudgetExceeded`` (and holds nothing) when either scope has less than ``amount_nano``
        left; the error names the scope, what is left and how to raise the limit. With ``conn`` the
        writes join the caller's transaction (which then rolls back as a whole on BudgetExceeded).
        """
        _check_amount("amount_nano", amount_nano)
        scopes = _scopes(tenant, principal)
        period = self.current_period()
        reservation = Reservation(
            id=new_id("res"), tenant=tenant, principal=principal, period=period, amount_nano=amount_nano
        )
        params = {**_pair(tenant, principal, period), "k_amount": amount_nano}
        with transaction(self._engine, conn) as tx:
            if not self._hold(tx, params):
                # first use of a row this period, or too little left: undo any half hold, create the
                # missing rows, try once more, then name the scope that is short
                for kind, scope_id in scopes:
                    self._ensure_period(tx, kind, scope_id, period)
                if not self._hold(tx, params):
                    short = next(
                        (k, i) for k, i in scopes if self._remaining_in(tx, k, i, period) < amount_nano
                    )
                    raise self._exceeded(tx, *short, period, amount_nano)  # rolls back
            tx.execute(
                _INSERT_RESERVATION,
                {
                    "id": reservation.id,
                    "tenant": tenant,
                    "principal": principal,
                    "period": period,
                    "reserved_nano": amount_nano,
                    "status": "reserved",
                    "estimated": False,
                    "decision_id": decision_id,
                    "created_at": self._clock(),
                },
            )
        return reservation

    @staticmethod
    def _hold(tx: Connection, params: dict[str, Any]) -> bool:
        """Hold the amount on both rows in one statement; on a partial hold, undo it and say False."""
        held = [row.scope_kind for row in tx.execute(_HOLD, params)]
        if len(held) == 2:
            return True
        for kind in held:
            tx.execute(_UNHOLD_ONE, {**params, "k_kind": kind, "k_held": params["k_amount"]})
        return False

    def _remaining_in(self, conn: Connection, kind: str, scope_id: str, period: str) -> int:
        limit_nano, spent_nano, reserved_nano = self._read_period(conn, kind, scope_id, period)
        return limit_nano - spent_nano - reserved_nano

    def settle(
        self,
        reservation: Reservation,
        *,
        actual_nano: int,
        estimated: bool = False,
        conn: Connection | None = None,
    ) -> list[BudgetEvent]:
        """Charge ``actual_nano`` (the provider-reported cost) and return the reservation's hold.

        ``actual_nano`` may exceed the reservation: spend always equals reported usage. Pass
        ``estimated=True`` when usage was missing and the cost is a conservative estimate. Settling twice
        is a no-op returning ``[]``; settling a released reservation (usage reported late) charges the
        spend. Returns the alerts this spend newly triggered (80 % and 100 % of a limit).
        """
        _check_amount("actual_nano", actual_nano)
        closing = {"k_actual": actual_nano, "k_estimated": estimated}
        with transaction(self._engine, conn) as tx:
            row = self._close(tx, reservation, "reserved", _CLOSE_SETTLED, closing)
            late = row is None
            if late:
                row = self._close(tx, reservation, "released", _CLOSE_SETTLED, closing)
            if row is None:
                return []
            params = {
                **_pair(row.tenant, row.principal, row.period),
                "k_held": 0 if late else row.reserved_nano,
                "k_actual": actual_nano,
            }
            charged = sorted(tx.execute(_CHARGE, params), key=lambda r: SCOPE_KINDS.index(r.scope_kind))
            events = []
            for r in charged:
                events += self._record_alerts(
                    tx, r.scope_kind, r.scope_id, row.period, r.spent_nano, r.limit_nano
                )
        if late:
            logger.warning(
                "reservation %s was settled after its release: charged $%s", row.id, _usd(actual_nano)
            )
        if estimated:
            logger.warning(
                "reservation %s charged an estimated $%s (usage missing)", row.id, _usd(actual_nano)
            )
        for event in events:
            logger.warning(
                "budget alert: %s %r reached %d%% of its %s budget ($%s of $%s)",
                event.scope_kind,
                event.scope_id,
                event.threshold_pct,
                event.period,
                _usd(event.used_nano),
                _usd(event.limit_nano),
            )
        return events

    def release(self, reservation: Reservation, *, conn: Connection | None = None) -> None:
        """Return a reservation's hold unspent (no model ran).

        Releasing twice, or after settling, is a no-op.
        """
        with transaction(self._engine, conn) as tx:
            row = self._close(tx, reservation, "reserved", _CLOSE_RELEASED, {})
            if row is None:
                return
            tx.execute(_UNHOLD, {**_pair(row.tenant, row.principal, row.period), "k_held": row.reserved_nano})

    def reap_stale(self, *, older_than: timedelta) -> list[Reservation]:
        """Charge reservations left ``reserved`` for longer than ``older_than`` at their reserved maximum.

        A process that died between its model call and the settlement leaves such a reservation; the
        provider may have charged for the call, so it is settled (flagged as estimated) at the most the
        call could have cost rather than released. Returns what was charged.
        """
        cutoff = self._clock() - older_than
        res = budget_reservations.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                sa.select(res.id, res.tenant, res.principal, res.period, res.reserved_nano).where(
                    res.status == "reserved", res.created_at < cutoff
                )
            ).all()
        reaped = []
        for row in rows:
            reservation = Reservation(
                id=row.id,
                tenant=row.tenant,
                principal=row.principal,
                period=row.period,
                amount_nano=row.reserved_nano,
            )
            self.settle(reservation, actual_nano=row.reserved_nano, estimated=True)
            reaped.append(reservation)
        if reaped:
            logger.warning("charged %d stale reservation(s) at their reserved maximum", len(reaped))
        return reaped

    def events(self, *, scope_kind: str | None = None, scope_id: str | None = None) -> list[BudgetEvent]:
        """Alerts recorded so far, oldest first, optionally for one scope kind and/or scope id."""
        alerts = budget_alerts.c
        query = sa.select(
            alerts.scope_kind,
            alerts.scope_id,
            alerts.period,
            alerts.threshold_pct,
            alerts.used_nano,
            alerts.limit_nano,
        ).order_by(alerts.period, alerts.created_at, alerts.threshold_pct, alerts.scope_kind, alerts.scope_id)
        if scope_kind is not None:
            query = query.where(alerts.scope_kind == _check_kind(scope_kind))
        if scope_id is not None:
            query = query.where(alerts.scope_id == scope_id)
        with self._engine.connect() as conn:
            return [BudgetEvent(**row._asdict()) for row in conn.execute(query)]

    # -- internals -------------------------------------------------------------------------------------

    def _configured_limit(self, conn: Connection, kind: str, scope_id: str) -> int:
        limit = conn.execute(
            sa.select(budget_limits.c.limit_nano).where(
                budget_limits.c.scope_kind == kind, budget_limits.c.scope_id == scope_id
            )
        ).scalar_one_or_none()
        return self._defaults[kind] if limit is None else int(limit)

    def _ensure_period(
        self, conn: Connection, kind: str, scope_id: str, period: str, *, limit_nano: int | None = None
    ) -> None:
        """Create the period's row if it is missing (a no-op when it exists; never overwrites)."""
        if limit_nano is None:
            limit_nano = self._configured_limit(conn, kind, scope_id)
        insert = self._insert(budget_periods).values(
            scope_kind=kind,
            scope_id=scope_id,
            period=period,
            limit_nano=limit_nano,
            reserved_nano=0,
            spent_nano=0,
        )
        conn.execute(insert.on_conflict_do_nothing())

    def _read_period(self, conn: Connection, kind: str, scope_id: str, period: str) -> tuple[int, int, int]:
        """(limit, spent, reserved) of a period; a period not used yet reads as its configured limit."""
        cols = budget_periods.c
        row = conn.execute(
            sa.select(cols.limit_nano, cols.spent_nano, cols.reserved_nano).where(
                *_period_key(kind, scope_id, period)
            )
        ).one_or_none()
        if row is None:
            return self._configured_limit(conn, kind, scope_id), 0, 0
        return int(row.limit_nano), int(row.spent_nano), int(row.reserved_nano)

    def _close(
        self,
        conn: Connection,
        reservation: Reservation,
        from_status: str,
        statement: sa.UpdateBase,
        params: dict[str, Any],
    ) -> sa.Row[Any] | None:
        """Move a reservation out of ``from_status``; None when it is not in it (the idempotency guard).

        Raises ``NotFound`` for an id the store never issued.
        """
        res = budget_reservations.c
        row = conn.execute(
            statement, {"k_id": reservation.id, "k_from": from_status, "k_at": self._clock(), **params}
        ).one_or_none()
        if row is None:
            exists = conn.execute(sa.select(res.id).where(res.id == reservation.id)).first()
            if exists is None:
                raise NotFound(
                    f"budget reservation {reservation.id!r} does not exist in this state DB: "
                    "pass the Reservation returned by BudgetStore.reserve",
                    reservation_id=reservation.id,
                )
        return row

    def _record_alerts(
        self, conn: Connection, kind: str, scope_id: str, period: str, spent_nano: int, limit_nano: int
    ) -> list[BudgetEvent]:
        """Insert the alerts ``spent_nano`` has reached; return only those not recorded before."""
        events = []
        for pct in THRESHOLDS_PCT:
            if spent_nano <= 0 or spent_nano * 100 < limit_nano * pct:
                continue
            inserted = conn.execute(
                self._insert(budget_alerts)
                .values(
                    scope_kind=kind,
                    scope_id=scope_id,
                    period=period,
                    threshold_pct=pct,
                    used_nano=spent_nano,
                    limit_nano=limit_nano,
                    created_at=self._clock(),
                )
                .on_conflict_do_nothing()
                .returning(budget_alerts.c.threshold_pct)  # a row only when this call inserted it
            ).first()
            if inserted is not None:
                events.append(BudgetEvent(kind, scope_id, period, pct, spent_nano, limit_nano))
        return events

    def _exceeded(
        self, conn: Connection, kind: str, scope_id: str, period: str, amount_nano: int
    ) -> BudgetExceeded:
        limit_nano, spent_nano, reserved_nano = self._read_period(conn, kind, scope_id, period)
        remaining = max(0, limit_nano - spent_nano - reserved_nano)
        suggested = max(1, math.ceil(max(2 * limit_nano, spent_nano + reserved_nano + amount_nano) / NANO))
        tenant, _, principal = scope_id.partition("/")
        flags = f"--tenant {tenant}" + (f" --principal {principal}" if kind == "principal" else "")
        return BudgetExceeded(
            f"the {period} budget of {kind} {scope_id!r} has ${_usd(remaining)} left of ${_usd(limit_nano)} "
            f"and this request needs up to ${_usd(amount_nano)}: raise it with "
            f"`maestro budget set {flags} --usd {suggested}` or wait for next month (UTC)",
            scope=kind,
            scope_id=scope_id,
            period=period,
            remaining_usd=from_nano(remaining),
            requested_usd=from_nano(amount_nano),
            limit_usd=from_nano(limit_nano),
        )


def _dialect_insert(engine: Engine) -> _Insert:
    if engine.dialect.name == "postgresql":
        return postgresql.insert
    if engine.dialect.name == "sqlite":
        return sqlite.insert
    raise ConfigurationError(
        f"budgets need SQLite or PostgreSQL as the state DB, got {engine.dialect.name!r}: "
        "set MAESTRO_DATABASE_URL to a sqlite:/// or postgresql:// URL"
    )


def _default_nano(setting: str, usd: float) -> int:
    if not math.isfinite(usd) or usd < 0 or usd * NANO > MAX_AMOUNT_NANO:
        raise ConfigurationError(f"{setting} must be a number of USD >= 0, got {usd!r}")
    return round(usd * NANO)


def _scopes(tenant: str, principal: str) -> tuple[tuple[ScopeKind, str], tuple[ScopeKind, str]]:
    """The two scopes a call is charged to, in lock order: tenant, then principal."""
    _check_tenant(tenant)
    return ("tenant", tenant), ("principal", principal_scope(tenant, principal))


def _period_key(kind: str, scope_id: str, period: str) -> tuple[sa.ColumnElement[bool], ...]:
    cols = budget_periods.c
    return cols.scope_kind == kind, cols.scope_id == scope_id, cols.period == period


def _check_kind(scope_kind: str) -> ScopeKind:
    for kind in SCOPE_KINDS:
        if scope_kind == kind:
            return kind
    raise InvalidRequest(
        f"unknown budget scope {scope_kind!r}: use 'tenant' or 'principal'", scope=scope_kind
    )


def _check_scope(scope_kind: str, scope_id: str) -> ScopeKind:
    kind = _check_kind(scope_kind)
    if kind == "tenant":
        _check_tenant(scope_id)
    else:
        tenant, _, principal = scope_id.partition("/")
        if not principal:
            raise InvalidRequest(
                f"principal budgets are per tenant: use '<tenant>/<principal>' "
                f"(e.g. 'acme/{scope_id or 'alice'}'), got {scope_id!r}",
                scope=kind,
                scope_id=scope_id,
            )
        principal_scope(tenant, principal)
    return kind


def _check_tenant(tenant: str) -> None:
    if not tenant or "/" in tenant:
        raise InvalidRequest(
            f"tenant id {tenant!r} is invalid: it must be non-empty and contain no '/'", tenant=tenant
        )
    _check_length(tenant)


def _check_length(scope_id: str) -> str:
    if len(scope_id) > _SCOPE_ID_MAX:
        raise InvalidRequest(
            f"budget scope id is {len(scope_id)} characters, the limit is {_SCOPE_ID_MAX}: use shorter ids",
            scope_id=scope_id[:_SCOPE_ID_MAX],
        )
    return scope_id


def _check_amount(name: str, amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(f"{name} must be an integer number of nano-dollars, got {amount!r}")
    if amount < 0 or amount > MAX_AMOUNT_NANO:
        raise InvalidRequest(
            f"{name} must be between 0 and {MAX_AMOUNT_NANO} nano-dollars, got {amount}", **{name: amount}
        )


def _usd(nano: int) -> str:
    """``12.5``, ``0.004``: at most 9 decimals, no trailing zeros."""
    whole, frac = divmod(abs(nano), NANO)
    text = f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
    return f"-{text}" if nano < 0 else text
