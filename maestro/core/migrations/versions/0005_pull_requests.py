"""Pull requests opened through the PR port (git and github backends), one per idempotency key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("repo", sa.String(500), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("base", sa.String(255), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reviews", sa.JSON, nullable=False),
        sa.Column("head_sha", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=True),
        sa.Column("ledger_ids", sa.JSON, nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("merged_by", sa.String(200), nullable=True),
        sa.Column("merge_sha", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_pull_requests_key"),
    )
    op.create_index("ix_pull_requests_tenant_state", "pull_requests", ["tenant", "state"])


def downgrade() -> None:
    op.drop_index("ix_pull_requests_tenant_state", table_name="pull_requests")
    op.drop_table("pull_requests")
