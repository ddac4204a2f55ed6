"""Composition: build a ``ModelRouter`` (and its state DB) from ``Settings``. Called by entry points."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Engine

from maestro.core.db import create_db_engine, migrate
from maestro.core.errors import ConfigurationError
from maestro.core.ledger import Ledger
from maestro.core.settings import Settings
from maestro.router.budget import BudgetStore
from maestro.router.catalog import Catalog, load_catalog
from maestro.router.decisions import DecisionLog
from maestro.router.health import HealthTracker
from maestro.router.privacy import PrivacyFilter
from maestro.router.prompt_router import PromptEmbedder, PromptRouter, PromptRouterFile, load_prompt_router
from maestro.router.service import ModelRouter, Observer, RouterLimits
from maestro.router.types import LLMClient, LocalModelOptions
from maestro.router.weights import TASK_CLASSES, Weights, WeightsFile, load_weights


def open_state_db(settings: Settings) -> Engine:
    """The state DB engine, migrated to the newest schema."""
    engine = create_db_engine(settings.resolved_database_url)
    migrate(engine)
    return engine


def load_routing_config(settings: Settings) -> tuple[Catalog, Weights]:
    """The catalog and the weights, cross-checked (weights may only name catalog deployments)."""
    catalog = load_catalog(settings.catalog_path)
    weights = load_weights(settings.weights_path, known_models=set(catalog.deployments))
    return catalog, weights


def load_configured_prompt_router(
    settings: Settings, catalog: Catalog, embedder: PromptEmbedder | None
) -> PromptRouter | None:
    """The prompt router at MAESTRO_PROMPT_ROUTER_PATH (None when unset), checked against the catalog's
    deployments, the task classes and ``embedder`` (it must be the embedder the file was fitted with)."""
    path = settings.prompt_router_path
    if path is None:
        return None
    router = load_prompt_router(path, known_models=set(catalog.deployments), known_tasks=TASK_CLASSES)
    if embedder is None:
        raise ConfigurationError(
            f"MAESTRO_PROMPT_ROUTER_PATH is set ({path}) but this router was built without an embedder to "
            "embed prompts: build it through maestro.api.container.build_services, or unset the variable"
        )
    router.check_embedder(embedder, source=str(path))
    return router


def limits_from(settings: Settings) -> RouterLimits:
    return RouterLimits(
        max_prompt_bytes=settings.max_prompt_bytes,
        max_messages=settings.max_messages,
        max_tokens_limit=settings.max_tokens_limit,
        default_max_tokens=settings.default_max_tokens,
        deadline_s=settings.request_deadline_s,
        max_fallbacks=settings.max_fallbacks,
        budget_view_s=settings.budget_view_s,
        write_behind=settings.write_behind,
    )


def budget_store(settings: Settings, engine: Engine | None = None) -> BudgetStore:
    """The budget store on the state DB, with the default monthly limits from settings."""
    return BudgetStore(
        engine if engine is not None else open_state_db(settings),
        tenant_default_usd=settings.tenant_budget_usd,
        principal_default_usd=settings.principal_budget_usd,
    )


def build_router(
    settings: Settings,
    *,
    engine: Engine | None = None,
    client: LLMClient | None = None,
    environ: Mapping[str, str] | None = None,
    observer: Observer | None = None,
    ledger: Ledger | None = None,
    privacy: PrivacyFilter | None = None,
    prompt_embedder: PromptEmbedder | None = None,
) -> ModelRouter:
    """A ready router. ``client`` defaults to ``LiteLLMClient`` (litellm is imported on first call);
    ``prompt_embedder`` embeds prompts for the prompt router (needed if MAESTRO_PROMPT_ROUTER_PATH is set)."""
    catalog, weights = load_routing_config(settings)
    prompt_router = load_configured_prompt_router(settings, catalog, prompt_embedder)
    engine = engine if engine is not None else open_state_db(settings)
    if client is None:
        from maestro.router.litellm_client import LiteLLMClient

        client = LiteLLMClient(
            catalog.all(),
            num_retries=settings.num_retries,
            local=LocalModelOptions(
                model_path=str(settings.local_model_path) if settings.local_model_path else None,
                n_ctx=settings.local_context,
                n_threads=settings.local_threads,
            ),
        )
    return ModelRouter(
        catalog=catalog,
        weights=weights,
        client=client,
        budgets=budget_store(settings, engine),
        decisions=DecisionLog(engine, ledger=ledger),
        health=HealthTracker(allowed_fails=settings.allowed_fails, cooldown_s=settings.cooldown_s),
        limits=limits_from(settings),
        environ=environ,
        observer=observer,
        privacy=privacy,
        prompt_router=prompt_router,
        prompt_embedder=prompt_embedder if prompt_router is not None else None,
        prompt_router_file=(
            PromptRouterFile(
                settings.prompt_router_path,
                prompt_router,
                embedder=prompt_embedder,
                known_models=set(catalog.deployments),
                known_tasks=TASK_CLASSES,
                check_s=settings.weights_reload_s,
            )
            if prompt_router is not None and settings.prompt_router_path is not None
            else None
        ),
        weights_file=WeightsFile(
            settings.weights_path,
            weights,
            known_models=set(catalog.deployments),
            check_s=settings.weights_reload_s,
        ),
    )
