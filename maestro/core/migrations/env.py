"""Alembic environment: migrations run on the connection Maestro passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from maestro.core.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Maestro always passes a connection
    raise RuntimeError("run migrations through maestro.core.db.migrate(engine)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
