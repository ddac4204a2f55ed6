"""Initial schema: budgets, reservations, budget alerts, router decisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_limits",
        sa.Column("scope_kind", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.String(200), primary_key=True),
        sa.Column("limit_nano", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "budget_periods",
        sa.Column("scope_kind", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("limit_nano", sa.BigInteger, nullable=False),
        sa.Column("reserved_nano", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("spent_nano", sa.BigInteger, nullable=False, server_default="0"),
        sa.CheckConstraint("reserved_nano >= 0", name="ck_budget_reserved_nonneg"),
        sa.CheckConstraint("spent_nano >= 0", name="ck_budget_spent_nonneg"),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("reserved_nano", sa.BigInteger, nullable=False),
        sa.Column("settled_nano", sa.BigInteger, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.Column("decision_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_budget_reservations_decision_id", "budget_reservations", ["decision_id"])
    op.create_table(
        "budget_alerts",
        sa.Column("scope_kind", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("threshold_pct", sa.Integer, primary_key=True),
        sa.Column("used_nano", sa.BigInteger, nullable=False),
        sa.Column("limit_nano", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("chosen", sa.String(200), nullable=True),
        sa.Column("fallbacks", sa.JSON, nullable=False),
        sa.Column("candidates", sa.JSON, nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("weights_version", sa.String(64), nullable=False),
        sa.Column("override", sa.JSON, nullable=True),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("prompt_tokens_est", sa.Integer, nullable=False),
        sa.Column("max_tokens", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_used", sa.String(200), nullable=True),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=True),
        sa.Column("completion_tokens", sa.Integer, nullable=True),
        sa.Column("cost_nano", sa.BigInteger, nullable=True),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_decisions_created_at", "decisions", ["created_at"])
    op.create_index("ix_decisions_tenant", "decisions", ["tenant"])


def downgrade() -> None:
    op.drop_table("decisions")
    op.drop_table("budget_alerts")
    op.drop_table("budget_reservations")
    op.drop_table("budget_limits")
    op.drop_table("budget_periods")
