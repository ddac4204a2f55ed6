"""Eval runs and per-item results in the state DB (``eval_runs``, ``eval_results``; SQLite or PostgreSQL).

A result is written the moment its item finishes, keyed ``(run, dataset, item, model)``: a run that was
interrupted resumes by skipping the keys already there, and writing the same key twice keeps the first
(a retried item never counts twice). Every read is scoped to a tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.clock import as_utc, utcnow
from maestro.core.errors import InvalidRequest, NotFound
from maestro.core.ids import new_id
from maestro.core.schema import eval_results, eval_runs, from_nano, to_nano
from maestro.evals.types import ItemOutcome, ResultRow

__all__ = ["EvalRun", "EvalStore", "RunStatus"]

RunStatus = Literal["running", "finished", "failed"]


@dataclass(frozen=True)
class EvalRun:
    id: str
    tenant: str
    suite: str
    models: tuple[str, ...]
    datasets: Mapping[str, Mapping[str, Any]]
    status: RunStatus
    started_by: str
    note: str | None
    started_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "suite": self.suite,
            "models": list(self.models),
            "datasets": {k: dict(v) for k, v in self.datasets.items()},
            "status": self.status,
            "started_by": self.started_by,
            "note": self.note,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class EvalStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- runs --------------------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        tenant: str,
        suite: str,
        models: Sequence[str],
        datasets: Mapping[str, Mapping[str, Any]],
        started_by: str,
        note: str | None = None,
    ) -> EvalRun:
        row = {
            "id": new_id("eval"),
            "tenant": tenant,
            "suite": suite,
            "models": list(models),
            "datasets": {k: dict(v) for k, v in datasets.items()},
            "status": "running",
            "started_by": started_by,
            "note": note,
            "started_at": utcnow(),
            "finished_at": None,
        }
        with self._engine.begin() as conn:
            conn.execute(sa.insert(eval_runs).values(**row))
        return self.get_run(tenant, str(row["id"]))

    def get_run(self, tenant: str, run_id: str) -> EvalRun:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(eval_runs).where(eval_runs.c.id == run_id, eval_runs.c.tenant == tenant)
            ).first()
        if row is None:
            raise NotFound(f"no eval run '{run_id}' for tenant '{tenant}'", run_id=run_id)
        return _run(row._mapping)

    def list_runs(self, tenant: str, *, suite: str | None = None, limit: int = 50) -> list[EvalRun]:
        """The tenant's eval runs, newest first."""
        query = sa.select(eval_runs).where(eval_runs.c.tenant == tenant)
        if suite is not None:
            query = query.where(eval_runs.c.suite == suite)
        query = query.order_by(eval_runs.c.started_at.desc(), eval_runs.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_run(r._mapping) for r in conn.execute(query)]

    def previous_finished(self, tenant: str, before: EvalRun) -> EvalRun | None:
        """The newest finished run of the same suite that started before ``before``."""
        query = (
            sa.select(eval_runs)
            .where(
                eval_runs.c.tenant == tenant,
                eval_runs.c.suite == before.suite,
                eval_runs.c.status == "finished",
                eval_runs.c.id != before.id,
                eval_runs.c.started_at <= before.started_at,
            )
            .order_by(eval_runs.c.started_at.desc(), eval_runs.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _run(row._mapping) if row is not None else None

    def latest_finished(self, tenant: str, suite: str | None = None) -> EvalRun | None:
        query = sa.select(eval_runs).where(eval_runs.c.tenant == tenant, eval_runs.c.status == "finished")
        if suite is not None:
            query = query.where(eval_runs.c.suite == suite)
        query = query.order_by(eval_runs.c.finished_at.desc(), eval_runs.c.id.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _run(row._mapping) if row is not None else None

    def run_or_latest(self, tenant: str, run_id: str | None) -> EvalRun:
        """Run ``run_id``, or without one the tenant's latest finished run; NotFound when there is none."""
        if run_id:
            return self.get_run(tenant, run_id)
        run = self.latest_finished(tenant)
        if run is None:
            raise NotFound(f"tenant {tenant!r} has no finished eval run: run `maestro eval run` first")
        return run

    def finish(self, tenant: str, run_id: str, status: RunStatus, note: str | None = None) -> EvalRun:
        values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
        if note is not None:
            values["note"] = note
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(eval_runs)
                .where(eval_runs.c.id == run_id, eval_runs.c.tenant == tenant)
                .values(**values)
            )
        return self.get_run(tenant, run_id)

    def reopen(self, tenant: str, run_id: str) -> EvalRun:
        """Mark a run ``running`` again to resume it (a finished run is complete: refused)."""
        run = self.get_run(tenant, run_id)
        if run.status == "finished":
            raise InvalidRequest(f"eval run {run_id} is finished: start a new run instead", run_id=run_id)
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(eval_runs)
                .where(eval_runs.c.id == run_id)
                .values(status="running", finished_at=None)
            )
        return self.get_run(tenant, run_id)

    # -- results -----------------------------------------------------------------------------------------

    def done_keys(self, run_id: str) -> set[tuple[str, str, str]]:
        """``(dataset, item, model)`` of every result the run already has."""
        query = sa.select(eval_results.c.dataset, eval_results.c.item_id, eval_results.c.model).where(
            eval_results.c.run_id == run_id
        )
        with self._engine.connect() as conn:
            return {(r.dataset, r.item_id, r.model) for r in conn.execute(query)}

    def record(
        self, run_id: str, *, dataset: str, item_id: str, model: str, task_class: str, outcome: ItemOutcome
    ) -> bool:
        """Store one item's outcome; False when the key was already there (the first one stays)."""
        row = {
            "run_id": run_id,
            "dataset": dataset,
            "item_id": item_id,
            "model": model,
            "task_class": task_class,
            "score": outcome.score,
            "metrics": dict(outcome.metrics),
            "cost_nano": to_nano(max(outcome.cost_usd, 0.0)),
            "latency_s": outcome.latency_s,
            "error": outcome.error[:2000] if outcome.error else None,
            "created_at": utcnow(),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(eval_results).values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def results(self, tenant: str, run_id: str) -> list[ResultRow]:
        """The run's results (after checking the run is the tenant's), in a stable order."""
        self.get_run(tenant, run_id)
        query = (
            sa.select(eval_results)
            .where(eval_results.c.run_id == run_id)
            .order_by(eval_results.c.dataset, eval_results.c.model, eval_results.c.item_id)
        )
        with self._engine.connect() as conn:
            return [_result(r._mapping) for r in conn.execute(query)]

    def results_of(self, tenant: str, run_ids: Iterable[str]) -> list[ResultRow]:
        rows: list[ResultRow] = []
        for run_id in run_ids:
            rows.extend(self.results(tenant, run_id))
        return rows


def _run(row: Any) -> EvalRun:
    return EvalRun(
        id=row["id"],
        tenant=row["tenant"],
        suite=row["suite"],
        models=tuple(row["models"]),
        datasets=row["datasets"],
        status=row["status"],
        started_by=row["started_by"],
        note=row["note"],
        started_at=as_utc(row["started_at"]),
        finished_at=as_utc(row["finished_at"]) if row["finished_at"] is not None else None,
    )


def _result(row: Any) -> ResultRow:
    return ResultRow(
        run_id=row["run_id"],
        dataset=row["dataset"],
        item_id=row["item_id"],
        model=row["model"],
        task_class=row["task_class"],
        score=row["score"],
        metrics=row["metrics"] or {},
        cost_usd=from_nano(int(row["cost_nano"])),
        latency_s=row["latency_s"],
        error=row["error"],
    )
