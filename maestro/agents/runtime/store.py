"""Runs, their effect log and their event stream, in the state DB (SQLite or PostgreSQL).

* A run's status moves by conditional updates (``UPDATE ... WHERE status IN (...)``), so of two
  processes resuming the same run exactly one wins.
* The effect log is keyed by ``(run, node, effect key)``: the first writer's result is kept and every
  replay (a node re-run on resume, a redelivered task) reads it back instead of acting again.
* Events are numbered per run, gap-free (``seq`` from 1); readers page with ``after=seq`` (the SSE stream
  and ``runs show``). ``append_events`` writes a batch in one transaction, numbered after the run's last
  event; ``transition`` can write the run's last events (and the cost not yet added) in the same
  transaction as the status change, so a settled run's final event is there as soon as its status is.
  A writer that knows the run's last number (the runner does, having written it) passes it as
  ``after`` and saves the read of the last number; a stale ``after`` collides with the stored number
  (unique ``(run, seq)``) and the batch is written again numbered after the stored last event.
* ``create`` and ``transition`` take ``within``: called with the transaction's connection and the
  written run before it commits (the runner writes the run's ledger entry there, so the run's status
  and its evidence commit together or not at all).
* ``attempts`` counts the deliveries of the run's current step: a claim (``queued``/``running`` ->
  ``running``) adds one, a recorded decision (``waiting`` -> ``queued``) resets it. A broker redelivery
  after a killed worker therefore shows up as ``attempts > 1`` (RELIABILITY #25: dead-lettered past
  ``MAESTRO_MAX_REDELIVERIES``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from maestro.core.clock import as_utc, utcnow
from maestro.core.errors import ApprovalConflict, NotFound
from maestro.core.ids import new_id
from maestro.core.schema import from_nano, run_effects, run_events, runs, to_nano

__all__ = ["ACTIVE", "SETTLED", "PendingEvent", "RunRecord", "RunStatus", "RunStore", "Within"]

RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "rejected"]
ACTIVE: frozenset[str] = frozenset({"queued", "running", "waiting"})
SETTLED: frozenset[str] = frozenset({"waiting", "succeeded", "failed", "rejected"})
"""Statuses in which nothing runs until someone acts (an approval) or ever again (the end states)."""
_MISSING = object()


Within = Callable[[Connection, "RunRecord"], None]
"""Called inside a run write's transaction, before it commits, with its connection and the written run."""


class PendingEvent(NamedTuple):
    """An event not yet stored: its kind, payload and the time it happened."""

    kind: str
    payload: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True)
class RunRecord:
    id: str
    workcell: str
    tenant: str
    principal_id: str
    authority: dict[str, Any]
    thread_id: str
    status: RunStatus
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    approval_id: str | None
    cost_usd: float
    attempts: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workcell": self.workcell,
            "tenant": self.tenant,
            "principal_id": self.principal_id,
            "thread_id": self.thread_id,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "approval_id": self.approval_id,
            "cost_usd": self.cost_usd,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class RunStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def now(self) -> datetime:
        """The store's clock (events are stamped with it when they happen, not when they are written)."""
        return self._clock()

    # -- runs ------------------------------------------------------------------------------------------

    def create(
        self,
        *,
        workcell: str,
        authority: Mapping[str, Any],
        input: Mapping[str, Any],
        thread_id: str | None,
        run_id: str | None = None,
        claimed: bool = False,
        within: Within | None = None,
    ) -> RunRecord:
        """Record a ``queued`` run; ``claimed``: ``running`` with its first delivery counted (the process
        that creates it drives it at once). ``within``: see the module docstring."""
        now = self._clock()
        run_id = run_id or new_id("run")
        tenant = str(authority["tenant"])
        row = {
            "id": run_id,
            "workcell": workcell,
            "tenant": tenant,
            "principal_id": str(authority["principal_id"]),
            "authority": dict(authority),
            "thread_id": thread_id or run_id,
            "status": "running" if claimed else "queued",
            "input": dict(input),
            "cost_nano": 0,
            "attempts": 1 if claimed else 0,
            "created_at": now,
            "updated_at": now,
        }
        with self._engine.begin() as conn:
            created = _record(conn.execute(runs.insert().values(**row).returning(*runs.c)).mappings().one())
            if within is not None:
                within(conn, created)
        return created

    def get(self, run_id: str, *, tenant: str) -> RunRecord:
        """The run; ``NotFound`` for an unknown id or another tenant's run (the same answer)."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(sa.select(runs).where(runs.c.id == run_id, runs.c.tenant == tenant))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no run {run_id!r} in this tenant", run_id=run_id)
        return _record(row)

    def list(
        self,
        *,
        tenant: str,
        status: str | None = None,
        thread_id: str | None = None,
        workcell: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[RunRecord]:
        """The tenant's runs, newest first (``offset``/``limit`` page through them)."""
        query = (
            sa.select(runs)
            .where(runs.c.tenant == tenant)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            query = query.where(runs.c.status == status)
        if thread_id is not None:
            query = query.where(runs.c.thread_id == thread_id)
        if workcell is not None:
            query = query.where(runs.c.workcell == workcell)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def transition(
        self,
        run_id: str,
        *,
        tenant: str,
        to: RunStatus,
        expect: frozenset[str] | set[str],
        output: Any = _MISSING,
        error: Any = _MISSING,
        approval_id: Any = _MISSING,
        attempt: bool = False,
        reset_attempts: bool = False,
        stale_for_s: float | None = None,
        events: Sequence[PendingEvent] = (),
        add_cost_usd: float = 0.0,
        after: int | None = None,
        within: Within | None = None,
    ) -> RunRecord:
        """Move the run to ``to`` if it is in one of ``expect``; else ``ApprovalConflict`` (409).

        ``attempt`` counts one more delivery of the current step; ``reset_attempts`` starts a new step.
        ``stale_for_s``: only if the run was last updated longer ago than that (a recovery's claim: of
        two recoverers, the first one's claim refreshes the run and the second one's fails). ``events``
        and ``add_cost_usd`` are written in the same transaction (nothing is written on a conflict);
        ``after``: the run's last event number if the caller knows it; ``within``: see the module
        docstring.
        """
        now = self._clock()
        values: dict[str, Any] = {"status": to, "updated_at": now}
        if output is not _MISSING:
            values["output"] = output
        if error is not _MISSING:
            values["error"] = error
        if approval_id is not _MISSING:
            values["approval_id"] = approval_id
        if attempt:
            values["attempts"] = runs.c.attempts + 1
        elif reset_attempts:
            values["attempts"] = 0
        if add_cost_usd:
            values["cost_nano"] = runs.c.cost_nano + to_nano(add_cost_usd)
        where = [runs.c.id == run_id, runs.c.tenant == tenant, runs.c.status.in_(sorted(expect))]
        if stale_for_s is not None:
            where.append(runs.c.updated_at < now - timedelta(seconds=stale_for_s))
        try:
            try:
                changed = self._transition(run_id, where, values, events, after, within)
            except sa.exc.IntegrityError:
                if after is None or not events:
                    raise
                changed = self._transition(run_id, where, values, events, None, within)  # stale ``after``
        except _NoChange:
            current = self.get(run_id, tenant=tenant)
            raise ApprovalConflict(
                f"run {run_id} is {current.status}, not {' or '.join(sorted(expect))}: it cannot become {to}",
                run_id=run_id,
                status=current.status,
            ) from None
        return changed

    def _transition(
        self,
        run_id: str,
        where: builtins.list[Any],
        values: dict[str, Any],
        events: Sequence[PendingEvent],
        after: int | None,
        within: Within | None,
    ) -> RunRecord:
        with self._engine.begin() as conn:
            row = conn.execute(runs.update().where(*where).values(**values).returning(*runs.c)).mappings()
            found = row.first()
            if found is None:
                raise _NoChange
            changed = _record(found)
            if events:
                self._insert_events(conn, run_id, events, after=after)
            if within is not None:
                within(conn, changed)
        return changed

    def stale(self, *, status: RunStatus, older_than_s: float, limit: int = 100) -> builtins.list[RunRecord]:
        """Runs of every tenant in ``status`` last updated more than ``older_than_s`` ago, oldest first."""
        cutoff = self._clock() - timedelta(seconds=older_than_s)
        query = (
            sa.select(runs)
            .where(runs.c.status == status, runs.c.updated_at < cutoff)
            .order_by(runs.c.updated_at, runs.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def add_cost(self, run_id: str, usd: float) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                runs.update().where(runs.c.id == run_id).values(cost_nano=runs.c.cost_nano + to_nano(usd))
            )

    # -- effects ---------------------------------------------------------------------------------------

    def effect(self, run_id: str, node: str, key: str) -> tuple[bool, Any]:
        """``(True, result)`` if the effect was already recorded, else ``(False, None)``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(run_effects.c.result).where(
                    run_effects.c.run_id == run_id,
                    run_effects.c.node == node,
                    run_effects.c.effect_key == key,
                )
            ).first()
        return (True, row[0]) if row is not None else (False, None)

    def record_effect(self, run_id: str, node: str, key: str, result: Any) -> Any:
        """Record an effect's result; if another writer got there first, return theirs."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    run_effects.insert().values(
                        run_id=run_id, node=node, effect_key=key, result=result, created_at=self._clock()
                    )
                )
        except sa.exc.IntegrityError:
            return self.effect(run_id, node, key)[1]
        return result

    # -- events ----------------------------------------------------------------------------------------

    def append_event(self, run_id: str, kind: str, payload: Mapping[str, Any]) -> int:
        """Append one event with the next sequence number; returns it."""
        return self.append_events(run_id, [PendingEvent(kind, payload, self._clock())])

    def append_events(
        self,
        run_id: str,
        events: Sequence[PendingEvent],
        *,
        add_cost_usd: float = 0.0,
        after: int | None = None,
    ) -> int:
        """Append ``events`` in one transaction, numbered after the run's last event (and add
        ``add_cost_usd`` to the run in it); returns the last number. ``after``: the run's last number if
        the caller knows it (not read then). A concurrent writer that took the same numbers first (or a
        stale ``after``) makes this retry, reading the last number."""
        for _ in range(20):
            try:
                with self._engine.begin() as conn:
                    if add_cost_usd:
                        conn.execute(
                            runs.update()
                            .where(runs.c.id == run_id)
                            .values(cost_nano=runs.c.cost_nano + to_nano(add_cost_usd))
                        )
                    return self._insert_events(conn, run_id, events, after=after)
            except sa.exc.IntegrityError:
                after = None
                continue
        raise RuntimeError(f"could not append events to run {run_id}: too much contention")

    @staticmethod
    def _insert_events(
        conn: Connection, run_id: str, events: Sequence[PendingEvent], *, after: int | None = None
    ) -> int:
        if after is None:
            after = conn.execute(
                sa.select(sa.func.max(run_events.c.seq)).where(run_events.c.run_id == run_id)
            ).scalar()
        seq = int(after or 0)
        if not events:
            return seq
        rows = []
        for event in events:
            seq += 1
            rows.append(
                {
                    "run_id": run_id,
                    "seq": seq,
                    "kind": event.kind,
                    "payload": dict(event.payload),
                    "created_at": event.at,
                }
            )
        conn.execute(run_events.insert(), rows)
        return seq

    def events(self, run_id: str, *, after: int = 0, limit: int = 1000) -> builtins.list[dict[str, Any]]:
        """The run's events with ``seq > after``, in order (``{"seq", "kind", "payload", "at"}``)."""
        query = (
            sa.select(run_events)
            .where(run_events.c.run_id == run_id, run_events.c.seq > after)
            .order_by(run_events.c.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                {
                    "seq": r["seq"],
                    "kind": r["kind"],
                    "payload": r["payload"],
                    "at": r["created_at"].isoformat(),
                }
                for r in conn.execute(query).mappings()
            ]


class _NoChange(Exception):
    """Inside ``transition``: the conditional update matched no row (rolls the transaction back)."""


def _record(row: sa.RowMapping) -> RunRecord:
    return RunRecord(
        id=row["id"],
        workcell=row["workcell"],
        tenant=row["tenant"],
        principal_id=row["principal_id"],
        authority=row["authority"] or {},
        thread_id=row["thread_id"],
        status=row["status"],
        input=row["input"] or {},
        output=row["output"],
        error=row["error"],
        approval_id=row["approval_id"],
        cost_usd=from_nano(int(row["cost_nano"] or 0)),
        attempts=int(row["attempts"] or 0),
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )
