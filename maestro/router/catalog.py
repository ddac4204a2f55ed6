"""The model catalog (``router/catalog.yaml``): deployments, prices, limits, clearance, tenant allow-lists.

Loading is strict: unknown fields, unknown or cyclic fallbacks, and deployments without a price are
refused with a ``ConfigurationError`` naming the file and the key. Prices come from LiteLLM's bundled
cost map (read from the JSON file inside the litellm package, without importing litellm or touching the
network) unless the catalog sets them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maestro.core.configfile import describe_validation_error, load_yaml_text
from maestro.core.errors import ConfigurationError, UnknownModel
from maestro.router.types import Deployment

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "cohere": "COHERE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
}
"""The environment variable that holds a provider's key when the catalog does not name one."""


class _DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    supports_tools: bool | None = None
    supports_json_schema: bool | None = None
    pii_allowed: bool = False
    region: str = "unknown"
    tags: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _has_provider(cls, value: str) -> str:
        if "/" not in value:
            raise ValueError(f"'{value}' needs a provider prefix, e.g. 'openai/{value}'")
        return value


class _TenantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)


class _CatalogSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    deployments: list[_DeploymentSpec] = Field(min_length=1)
    tenants: dict[str, _TenantSpec] = Field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """The loaded catalog. ``version`` is a short hash of the file's content."""

    path: str
    version: str
    deployments: Mapping[str, Deployment]
    tenants: Mapping[str, tuple[frozenset[str] | None, frozenset[str]]]

    def get(self, name: str) -> Deployment:
        try:
            return self.deployments[name]
        except KeyError:
            known = ", ".join(sorted(self.deployments))
            raise UnknownModel(
                f"unknown model '{name}': the catalog ({self.path}) has {known}", model=name
            ) from None

    def all(self) -> list[Deployment]:
        """Every deployment, in catalog order."""
        return list(self.deployments.values())

    def tenant_allows(self, tenant: str, name: str) -> bool:
        """Whether the tenant's allow/deny lists admit the deployment (no entry: everything allowed)."""
        allow, deny = self.tenants.get(tenant, (None, frozenset()))
        return name not in deny and (allow is None or name in allow)

    @staticmethod
    def credentials_missing(deployment: Deployment, environ: Mapping[str, str] | None = None) -> str | None:
        """The name of the missing key variable, or None when the deployment can be called."""
        env = os.environ if environ is None else environ
        if deployment.api_key_env and not env.get(deployment.api_key_env):
            return deployment.api_key_env
        return None


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file; every problem is a ConfigurationError naming file and key."""
    raw = path.read_bytes() if path.exists() else None
    if raw is None:
        raise ConfigurationError(f"{path}: catalog file not found (set MAESTRO_CATALOG_PATH)")
    return parse_catalog(raw.decode("utf-8"), source=str(path))


def parse_catalog(text: str, *, source: str = "catalog.yaml") -> Catalog:
    """Validate catalog YAML text; ``source`` names it in errors."""
    data = load_yaml_text(text, source)
    try:
        spec = _CatalogSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc, source, data)) from None
    names = [d.name for d in spec.deployments]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"{source}: deployments: duplicate name(s) {', '.join(duplicates)}")
    _check_fallbacks(spec, source)
    _check_tenants(spec, source)
    deployments = {d.name: _resolve(d, index, source) for index, d in enumerate(spec.deployments)}
    tenants = {
        name: (frozenset(t.allow) if t.allow is not None else None, frozenset(t.deny))
        for name, t in spec.tenants.items()
    }
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Catalog(path=source, version=version, deployments=deployments, tenants=tenants)


def _check_fallbacks(spec: _CatalogSpec, source: str) -> None:
    graph = {d.name: list(d.fallbacks) for d in spec.deployments}
    for index, d in enumerate(spec.deployments):
        for target in d.fallbacks:
            if target not in graph:
                raise ConfigurationError(
                    f"{source}: deployments[{index}] ('{d.name}').fallbacks: unknown deployment '{target}'"
                )
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise ConfigurationError(f"{source}: fallbacks form a cycle: {cycle}")
        state[name] = 1
        for target in graph[name]:
            visit(target, [*path, name])
        state[name] = 2

    for name in graph:
        visit(name, [])


def _check_tenants(spec: _CatalogSpec, source: str) -> None:
    known = {d.name for d in spec.deployments}
    for tenant, policy in spec.tenants.items():
        for field, names in (("allow", policy.allow or []), ("deny", policy.deny)):
            for name in names:
                if name not in known:
                    raise ConfigurationError(
                        f"{source}: tenants.{tenant}.{field}: unknown deployment '{name}'"
                    )


def _resolve(spec: _DeploymentSpec, index: int, source: str) -> Deployment:
    provider = spec.model.split("/", 1)[0]
    info = litellm_model_info(spec.model)
    where = f"{source}: deployments[{index}] ('{spec.name}')"
    input_cost = spec.input_cost_per_token
    output_cost = spec.output_cost_per_token
    if input_cost is None:
        input_cost = info.get("input_cost_per_token")
    if output_cost is None:
        output_cost = info.get("output_cost_per_token")
    if input_cost is None or output_cost is None:
        raise ConfigurationError(
            f"{where}: no price: '{spec.model}' is not in LiteLLM's bundled cost map; set "
            "input_cost_per_token and output_cost_per_token (0 for a self-hosted model)"
        )
    context = spec.context_window or info.get("max_input_tokens") or info.get("max_tokens")
    if not context:
        raise ConfigurationError(f"{where}: context_window is unknown for '{spec.model}'; set it")
    max_out = spec.max_output_tokens or info.get("max_output_tokens") or min(int(context), 4096)
    key_env = spec.api_key_env
    if key_env is None and spec.api_base is None:
        key_env = DEFAULT_KEY_ENV.get(provider)
    return Deployment(
        name=spec.name,
        model=spec.model,
        provider=provider,
        input_cost_per_token=float(input_cost),
        output_cost_per_token=float(output_cost),
        context_window=int(context),
        max_output_tokens=int(max_out),
        supports_tools=bool(
            spec.supports_tools if spec.supports_tools is not None else info.get("supports_function_calling")
        ),
        supports_json_schema=bool(
            spec.supports_json_schema
            if spec.supports_json_schema is not None
            else info.get("supports_response_schema")
        ),
        pii_allowed=spec.pii_allowed,
        region=spec.region,
        tags=tuple(spec.tags),
        fallbacks=tuple(spec.fallbacks),
        api_base=spec.api_base,
        api_key_env=key_env,
        params=tuple(sorted(spec.params.items())),
    )


@lru_cache(maxsize=1)
def _cost_map() -> dict[str, dict[str, Any]]:
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def litellm_model_info(model: str) -> dict[str, Any]:
    """Price and limits for a LiteLLM model string from the bundled cost map ({} if unknown)."""
    costs = _cost_map()
    bare = model.split("/", 1)[1] if "/" in model else model
    for key in (model, bare):
        if key in costs:
            return costs[key]
    return {}
