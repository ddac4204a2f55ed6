"""The decision log: every routing decision and its outcome, persisted in the state DB.

A decision is written once, when it is final (with its outcome, in the same transaction as the budget
settlement); a call in flight is visible as its budget reservation, which carries the decision id.
Prompts are never stored, only their SHA-256; ``maestro route explain`` and ``/v1/router/decisions``
read from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from maestro.core.clock import utcnow
from maestro.core.db import reading, transaction
from maestro.core.errors import NotFound
from maestro.core.ledger import Ledger
from maestro.core.schema import decisions, from_nano
from maestro.router.policy import Decision


@dataclass(frozen=True)
class Outcome:
    """How a routed call ended."""

    status: str  # succeeded | failed
    model_used: str | None
    attempts: list[dict[str, Any]]
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_nano: int | None = None
    usage_estimated: bool = False
    latency_ms: float | None = None
    error_code: str | None = None
    pii: dict[str, Any] | None = None  # entity types found and what was done; never values


_INSERT = decisions.insert()


class DecisionLog:
    """Reads and writes the ``decisions`` table. Writes can join a caller's transaction (``conn``)."""

    def __init__(self, engine: Engine, *, ledger: Ledger | None = None) -> None:
        self._engine = engine
        self._ledger = ledger

    def record(
        self,
        decision: Decision,
        *,
        status: str,
        outcome: Outcome | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Insert a decision once it is final: ``explained`` (dry run), ``refused``, or with its outcome."""
        done = outcome or Outcome(status=status, model_used=None, attempts=[])
        self.record_many([(decision, done, outcome is not None)], conn=conn)

    def record_many(
        self, items: list[tuple[Decision, Outcome, bool]], *, conn: Connection | None = None
    ) -> None:
        """Insert ``(decision, outcome, finished)`` rows in one statement; their evidence under one head."""
        rows = [_row(decision, outcome, finished=finished) for decision, outcome, finished in items]
        if not rows:
            return
        with transaction(self._engine, conn) as tx:
            tx.execute(_INSERT, rows)
            if self._ledger is not None:  # the evidence commits with the records, or neither does
                self._ledger.append_many(
                    [("router.decision", _evidence(row), row["tenant"], row["principal"]) for row in rows],
                    conn=tx,
                )

    def get(self, decision_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """One decision as a JSON-safe dict; another tenant's decision is "not found"."""
        query = sa.select(decisions).where(decisions.c.id == decision_id)
        if tenant is not None:
            query = query.where(decisions.c.tenant == tenant)
        with reading(self._engine) as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"decision '{decision_id}' not found")
        return _public(dict(row))

    def list(self, *, tenant: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = sa.select(decisions).order_by(decisions.c.created_at.desc(), decisions.c.id.desc())
        if tenant is not None:
            query = query.where(decisions.c.tenant == tenant)
        with reading(self._engine) as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [_public(dict(r)) for r in rows]


_EVIDENCE_FIELDS = (
    "id",
    "task",
    "status",
    "chosen",
    "model_used",
    "fallbacks",
    "policy_version",
    "weights_version",
    "override",
    "prompt_sha256",
    "prompt_tokens",
    "completion_tokens",
    "cost_nano",
    "usage_estimated",
    "error_code",
    "pii",
)


def _row(decision: Decision, done: Outcome, *, finished: bool) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": decision.id,
        "created_at": now,
        "tenant": decision.tenant,
        "principal": decision.principal,
        "task": decision.task,
        "chosen": decision.chosen,
        "fallbacks": list(decision.fallbacks),
        "candidates": [c.to_dict() for c in decision.candidates],
        "policy_version": decision.policy_version,
        "weights_version": decision.weights_version,
        "override": decision.override,
        "prompt_sha256": decision.prompt_sha256,
        "prompt_tokens_est": decision.prompt_tokens_est,
        "max_tokens": decision.max_tokens,
        "status": done.status,
        "model_used": done.model_used,
        "attempts": done.attempts,
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "cost_nano": done.cost_nano,
        "usage_estimated": done.usage_estimated,
        "latency_ms": done.latency_ms,
        "error_code": done.error_code,
        "pii": done.pii,
        "finished_at": now if finished else None,
    }


def _evidence(row: dict[str, Any]) -> dict[str, Any]:
    """The ledger entry of a decision: ids, versions, outcome and cost; never the prompt."""
    payload = {key: row[key] for key in _EVIDENCE_FIELDS}
    payload["decision_id"] = payload.pop("id")
    payload["attempts"] = [
        {k: a.get(k) for k in ("model", "status", "error", "status_code")} for a in row["attempts"]
    ]
    return payload


def _public(row: dict[str, Any]) -> dict[str, Any]:
    cost = row.pop("cost_nano")
    row["cost_usd"] = from_nano(cost) if cost is not None else None
    for key in ("created_at", "finished_at"):
        if row.get(key) is not None:
            row[key] = row[key].isoformat()
    return row
