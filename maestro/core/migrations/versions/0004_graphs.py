"""The tenant -> graph catalog: which graphs a tenant has and the engine key of each.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graphs",
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(320), nullable=False, unique=True),
        sa.Column("nodes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("relationships", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("graphs")
