"""Eval runs and their per-item results (one row per run, dataset, item and model).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("suite", sa.String(100), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_eval_runs_tenant_started", "eval_runs", ["tenant", "started_at"])
    op.create_table(
        "eval_results",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("dataset", sa.String(100), primary_key=True),
        sa.Column("item_id", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("task_class", sa.String(40), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("cost_nano", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("latency_s", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
    op.drop_index("ix_eval_runs_tenant_started", table_name="eval_runs")
    op.drop_table("eval_runs")
