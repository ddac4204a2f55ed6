"""Runs, their effect log and their event stream, in the state DB (SQLite or PostgreSQL).

* A run's status moves by conditional updates (``UPDATE ... WHERE status IN (...)``), so of two
  processes resuming the same run exactly one wins.
* The effect log is keyed by ``(run, node, effect key)``: the first writer's result is kept and every
  replay (a node re-run on resume, a redelivered task) reads it back instead of acting again.
* Events are numbered per run; readers page with ``after=seq`` (the SSE stream and ``runs show``).
* ``attempts`` counts the deliveries of the run's current step: a claim (``queued``/``running`` ->
  ``running``) adds one, a recorded decision (``waiting`` -> ``queued``) resets it. A broker redelivery
  after a killed worker therefore shows up as ``attempts > 1`` (RELIABILITY #25: dead-lettered past
  ``MAESTRO_MAX_REDELIVERIES``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.clock import as_utc, utcnow
from maestro.core.errors import ApprovalConflict, NotFound
from maestro.core.ids import new_id
from maestro.core.schema import from_nano, run_effects, run_events, runs, to_nano

__all__ = ["ACTIVE", "SETTLED", "RunRecord", "RunStatus", "RunStore"]

RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "rejected"]
ACTIVE: frozenset[str] = frozenset({"queued", "running", "waiting"})
SETTLED: frozenset[str] = frozenset({"waiting", "succeeded", "failed", "rejected"})
"""Statuses in which nothing runs until someone acts (an approval) or ever again (the end states)."""
_MISSING = object()


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

    # -- runs ------------------------------------------------------------------------------------------

    def create(
        self,
        *,
        workcell: str,
        authority: Mapping[str, Any],
        input: Mapping[str, Any],
        thread_id: str | None,
        run_id: str | None = None,
    ) -> RunRecord:
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
            "status": "queued",
            "input": dict(input),
            "cost_nano": 0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        with self._engine.begin() as conn:
            conn.execute(runs.insert().values(**row))
        return self.get(run_id, tenant=tenant)

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
    ) -> RunRecord:
        """Move the run to ``to`` if it is in one of ``expect``; else ``ApprovalConflict`` (409).

        ``attempt`` counts one more delivery of the current step; ``reset_attempts`` starts a new step.
        """
        values: dict[str, Any] = {"status": to, "updated_at": self._clock()}
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
        with self._engine.begin() as conn:
            done = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.tenant == tenant, runs.c.status.in_(sorted(expect)))
                .values(**values)
            )
        if done.rowcount != 1:
            current = self.get(run_id, tenant=tenant)
            raise ApprovalConflict(
                f"run {run_id} is {current.status}, not {' or '.join(sorted(expect))}: it cannot become {to}",
                run_id=run_id,
                status=current.status,
            )
        return self.get(run_id, tenant=tenant)

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
        """Append an event with the next sequence number (retrying on a concurrent writer's number)."""
        for _ in range(20):
            with self._engine.connect() as conn:
                last = conn.execute(
                    sa.select(sa.func.max(run_events.c.seq)).where(run_events.c.run_id == run_id)
                ).scalar()
            seq = int(last or 0) + 1
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        run_events.insert().values(
                            run_id=run_id, seq=seq, kind=kind, payload=dict(payload), created_at=self._clock()
                        )
                    )
            except sa.exc.IntegrityError:
                continue
            return seq
        raise RuntimeError(f"could not append an event to run {run_id}: too much contention")

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
