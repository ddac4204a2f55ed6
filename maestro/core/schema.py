"""The state DB's tables (SQLAlchemy Core). Alembic migrations in ``core/migrations`` create them.

Money is stored as integer nano-dollars (1e-9 USD) so that sums are exact and comparisons atomic.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

NANO = 1_000_000_000


def to_nano(usd: float) -> int:
    """USD to integer nano-dollars, rounding up so estimates never undercount."""
    nano = usd * NANO
    whole = int(nano)
    return whole if whole == nano else whole + (1 if nano > 0 else 0)


def from_nano(nano: int) -> float:
    return nano / NANO


budget_limits = sa.Table(
    "budget_limits",
    metadata,
    sa.Column("scope_kind", sa.String(16), primary_key=True),  # "tenant" | "principal"
    sa.Column("scope_id", sa.String(200), primary_key=True),
    sa.Column("limit_nano", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

budget_periods = sa.Table(
    "budget_periods",
    metadata,
    sa.Column("scope_kind", sa.String(16), primary_key=True),
    sa.Column("scope_id", sa.String(200), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),  # YYYY-MM
    sa.Column("limit_nano", sa.BigInteger, nullable=False),
    sa.Column("reserved_nano", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("spent_nano", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("reserved_nano >= 0", name="ck_budget_reserved_nonneg"),
    sa.CheckConstraint("spent_nano >= 0", name="ck_budget_spent_nonneg"),
)

budget_reservations = sa.Table(
    "budget_reservations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("principal", sa.String(200), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("reserved_nano", sa.BigInteger, nullable=False),
    sa.Column("settled_nano", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # reserved | settled | released
    sa.Column("estimated", sa.Boolean, nullable=False, default=False),
    sa.Column("decision_id", sa.String(40), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
)

budget_alerts = sa.Table(
    "budget_alerts",
    metadata,
    sa.Column("scope_kind", sa.String(16), primary_key=True),
    sa.Column("scope_id", sa.String(200), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("threshold_pct", sa.Integer, primary_key=True),
    sa.Column("used_nano", sa.BigInteger, nullable=False),
    sa.Column("limit_nano", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("tenant", sa.String(200), nullable=False, index=True),
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
    sa.Column("status", sa.String(16), nullable=False),  # explained | running | succeeded | failed
    sa.Column("model_used", sa.String(200), nullable=True),
    sa.Column("attempts", sa.JSON, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=True),
    sa.Column("completion_tokens", sa.Integer, nullable=True),
    sa.Column("cost_nano", sa.BigInteger, nullable=True),
    sa.Column("usage_estimated", sa.Boolean, nullable=False, default=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("pii", sa.JSON, nullable=True),  # added in 0002: PII entity types found and the action taken
)

# -- authority (issue 3) -----------------------------------------------------------------------------

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # user | bot
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("tenant", "name", name="uq_principals_tenant_name"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("principal_id", sa.String(40), sa.ForeignKey("principals.id"), nullable=False, index=True),
    sa.Column("tenant", sa.String(200), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),  # shown to users; not secret
    sa.Column("secret_hash", sa.String(128), nullable=False),  # never the key itself
    sa.Column("scopes", sa.JSON, nullable=True),  # optional narrowing of the principal's scopes
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False, index=True),
    sa.Column("workcell", sa.String(64), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("resource", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(40), nullable=True, index=True),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | granted | refused | expired
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decision_note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
)

# -- ledger (issue 3) --------------------------------------------------------------------------------

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),  # 0, 1, 2, ... no gaps
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("tenant", sa.String(200), nullable=True, index=True),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),  # canonical JSON: exactly the bytes that are hashed
    sa.Column("leaf_hash", sa.String(64), nullable=False),
)

ledger_heads = sa.Table(
    "ledger_heads",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # base64 Ed25519 over the head's canonical bytes
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("frontier", sa.JSON, nullable=False),  # RFC 6962 compact range: O(log n) appends
)

# -- workcell runs (issue 5) ---------------------------------------------------------------------------

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("workcell", sa.String(64), nullable=False),
    sa.Column("tenant", sa.String(200), nullable=False, index=True),
    sa.Column("principal_id", sa.String(200), nullable=False),
    sa.Column("authority", sa.JSON, nullable=False),  # the requester's authority, to resume under it
    sa.Column("thread_id", sa.String(80), nullable=False),
    # queued | running | waiting | succeeded | failed | rejected
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", sa.JSON, nullable=False),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("approval_id", sa.String(40), nullable=True),
    sa.Column("cost_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

run_effects = sa.Table(
    "run_effects",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("node", sa.String(128), primary_key=True),
    sa.Column("effect_key", sa.String(200), primary_key=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# -- graphs (issue 5) ----------------------------------------------------------------------------------

graphs = sa.Table(
    "graphs",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),  # the tenant's name: [A-Za-z0-9_-]{1,64}
    sa.Column("key", sa.String(320), nullable=False, unique=True),  # the engine's graph key
    sa.Column("nodes", sa.BigInteger, nullable=False, default=0),
    sa.Column("relationships", sa.BigInteger, nullable=False, default=0),
    sa.Column("source", sa.Text, nullable=True),  # the file(s) last loaded
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# -- pull requests (issue 6) -----------------------------------------------------------------------------

pull_requests = sa.Table(
    "pull_requests",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),  # git | github
    sa.Column("repo", sa.String(500), nullable=False),  # git: the remote URL (no credentials); github: o/r
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("base", sa.String(255), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | merged | closed
    sa.Column("reviews", sa.JSON, nullable=False),
    sa.Column("head_sha", sa.String(64), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("opened_by", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("ledger_ids", sa.JSON, nullable=False),
    sa.Column("number", sa.Integer, nullable=True),  # github: the PR number
    sa.Column("url", sa.Text, nullable=True),  # github: html_url
    sa.Column("merged_by", sa.String(200), nullable=True),
    sa.Column("merge_sha", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    # one PR per effect: a retried or concurrent open with the same key finds this row
    sa.UniqueConstraint("tenant", "idempotency_key", name="uq_pull_requests_key"),
    sa.Index("ix_pull_requests_tenant_state", "tenant", "state"),
)

eval_runs = sa.Table(
    "eval_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("suite", sa.String(100), nullable=False),
    sa.Column("models", sa.JSON, nullable=False),  # [deployment name]
    sa.Column(
        "datasets", sa.JSON, nullable=False
    ),  # {dataset: {"version": str, "sha256": str, "items": int}}
    sa.Column("status", sa.String(16), nullable=False),  # running | finished | failed
    sa.Column("started_by", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_eval_runs_tenant_started", "tenant", "started_at"),
)

eval_results = sa.Table(
    "eval_results",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("dataset", sa.String(100), primary_key=True),
    sa.Column("item_id", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("task_class", sa.String(40), nullable=False),
    sa.Column("score", sa.Float, nullable=True),  # None: unmeasured (a failed judge, NaN), never a zero
    sa.Column("metrics", sa.JSON, nullable=False),  # {metric: float | None}
    sa.Column("cost_nano", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("latency_s", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
