"""Catalog and weights loading: strict validation with messages that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro.core.errors import ConfigurationError, UnknownModel
from maestro.core.settings import Settings
from maestro.router.catalog import load_catalog, parse_catalog
from maestro.router.factory import load_routing_config
from maestro.router.weights import parse_weights

PRICED = "input_cost_per_token: 0.000001\n    output_cost_per_token: 0.000002\n    context_window: 8000"


def catalog(*deployments: str, extra: str = "") -> str:
    body = "".join(f"\n  - {d}" for d in deployments)
    return f"version: 1\ndeployments:{body}\n{extra}"


def test_shipped_catalog_and_weights_load() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    cat, weights = load_routing_config(settings)
    assert "local/smollm2-135m" in cat.deployments
    local = cat.get("local/smollm2-135m")
    assert local.pii_allowed and local.input_cost_per_token == 0 and local.api_key_env is None
    # hosted prices come from LiteLLM's bundled cost map, not from the catalog file
    mini = cat.get("gpt-4o-mini")
    assert mini.input_cost_per_token > 0 and mini.context_window >= 100_000
    assert mini.api_key_env == "OPENAI_API_KEY"
    assert weights.floor("chat") > 0


def test_unknown_field_is_refused_with_file_and_key() -> None:
    text = catalog(f"name: a\n    model: openai/a\n    {PRICED}\n    pricee: 3")
    with pytest.raises(ConfigurationError) as info:
        parse_catalog(text, source="router/catalog.yaml")
    assert "router/catalog.yaml: deployments[0] ('a').pricee: Extra inputs are not permitted" in str(
        info.value
    )


def test_unknown_top_level_field() -> None:
    with pytest.raises(ConfigurationError, match=r"catalog.yaml: routes: Extra inputs"):
        parse_catalog(catalog(f"name: a\n    model: openai/a\n    {PRICED}", extra="routes: []"))


def test_cyclic_fallbacks_are_refused() -> None:
    text = catalog(
        f"name: a\n    model: openai/a\n    {PRICED}\n    fallbacks: [b]",
        f"name: b\n    model: openai/b\n    {PRICED}\n    fallbacks: [c]",
        f"name: c\n    model: openai/c\n    {PRICED}\n    fallbacks: [a]",
    )
    with pytest.raises(ConfigurationError, match=r"fallbacks form a cycle: a -> b -> c -> a"):
        parse_catalog(text)


def test_self_fallback_is_a_cycle() -> None:
    with pytest.raises(ConfigurationError, match="cycle: a -> a"):
        parse_catalog(catalog(f"name: a\n    model: openai/a\n    {PRICED}\n    fallbacks: [a]"))


def test_unknown_fallback_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"deployments\[0\] \('a'\).fallbacks: unknown deployment 'zz'"
    ):
        parse_catalog(catalog(f"name: a\n    model: openai/a\n    {PRICED}\n    fallbacks: [zz]"))


def test_unpriced_deployment_is_refused() -> None:
    text = catalog("name: mine\n    model: openai/my-private-finetune\n    context_window: 8000")
    with pytest.raises(ConfigurationError) as info:
        parse_catalog(text, source="cat.yaml")
    message = str(info.value)
    assert "cat.yaml: deployments[0] ('mine'): no price" in message
    assert "input_cost_per_token" in message


def test_known_model_is_priced_from_litellm_cost_map() -> None:
    cat = parse_catalog(catalog("name: mini\n    model: openai/gpt-4o-mini"))
    assert cat.get("mini").input_cost_per_token == pytest.approx(1.5e-7)


def test_catalog_price_overrides_the_cost_map() -> None:
    cat = parse_catalog(catalog("name: mini\n    model: openai/gpt-4o-mini\n    input_cost_per_token: 0.5"))
    assert cat.get("mini").input_cost_per_token == 0.5


def test_duplicate_names_and_missing_provider_prefix() -> None:
    with pytest.raises(ConfigurationError, match="duplicate name"):
        parse_catalog(
            catalog(
                f"name: a\n    model: openai/a\n    {PRICED}", f"name: a\n    model: openai/b\n    {PRICED}"
            )
        )
    with pytest.raises(ConfigurationError, match="provider prefix"):
        parse_catalog(catalog(f"name: a\n    model: gpt-4o\n    {PRICED}"))


def test_malformed_yaml_names_line() -> None:
    with pytest.raises(ConfigurationError, match=r"x.yaml: line \d+, column \d+: not valid YAML"):
        parse_catalog("version: 1\ndeployments:\n  - name: [unclosed\n", source="x.yaml")


def test_negative_price_and_empty_catalog() -> None:
    with pytest.raises(
        ConfigurationError, match="input_cost_per_token: Input should be greater than or equal to 0"
    ):
        parse_catalog(
            catalog(
                "name: a\n    model: openai/a\n    input_cost_per_token: -1\n    output_cost_per_token: 0"
            )
        )
    with pytest.raises(ConfigurationError, match="deployments"):
        parse_catalog("version: 1\ndeployments: []\n")


def test_tenant_lists_must_name_deployments() -> None:
    with pytest.raises(ConfigurationError, match="tenants.acme.allow: unknown deployment 'zz'"):
        parse_catalog(
            catalog(f"name: a\n    model: openai/a\n    {PRICED}", extra="tenants: {acme: {allow: [zz]}}")
        )


def test_missing_file_and_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.yaml")
    cat = parse_catalog(catalog(f"name: a\n    model: openai/a\n    {PRICED}"))
    with pytest.raises(UnknownModel, match="unknown model 'b'"):
        cat.get("b")


def test_weights_validation() -> None:
    good = (
        'version: "1"\ntask_classes:\n  chat:\n    floor: 0.5\n    models:\n'
        "      a: {quality: 0.7, samples: 3, interval: [0.6, 0.8]}\n"
    )
    assert parse_weights(good, known_models={"a"}).estimate("chat", "a").samples == 3
    assert parse_weights(good).estimate("chat", "zz").quality == 0.5  # the prior
    with pytest.raises(ConfigurationError, match="task_classes.chat.models.a: not a deployment"):
        parse_weights(good, known_models={"b"})
    with pytest.raises(ConfigurationError, match="task_classes.chatt: unknown task class"):
        parse_weights(good.replace("chat:", "chatt:"))
    with pytest.raises(ConfigurationError, match="interval"):
        parse_weights(good.replace("[0.6, 0.8]", "[0.75, 0.8]"))
    with pytest.raises(ConfigurationError, match="floor: Input should be less than or equal to 1"):
        parse_weights(good.replace("floor: 0.5", "floor: 5"))
