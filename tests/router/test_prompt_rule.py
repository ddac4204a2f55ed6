"""Choosing a prompt router's decision rule on training outcomes (``maestro.evals.prompt_fit.choose_rule``)
and carrying it in the file the router loads.

Synthetic outcomes with known structure: "easy" prompts both models solve, "hard" ones only the strong
model solves and "lost" ones neither does. A floor on P(weak) cannot tell hard from lost prompts when the
weak model looks equally hopeless on both; the gain P(strong) - P(weak) can.
"""

from __future__ import annotations

import numpy as np
import pytest

from maestro.core.errors import ConfigurationError
from maestro.evals.prompt_fit import ItemOutcome, choose_rule, fit_prompt_router
from maestro.router.prompt_router import MarginRule, parse_prompt_router

PRICES = {"weak": 1.0, "strong": 10.0}


def outcomes_by_kind(kinds: list[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """P(success) as a fitted model would predict it, and the outcomes, per kind of prompt."""
    predicted = {"easy": (0.9, 0.95), "hard": (0.3, 0.9), "lost": (0.25, 0.3)}
    solved = {"easy": (1.0, 1.0), "hard": (0.0, 1.0), "lost": (0.0, 0.0)}
    rng = np.random.default_rng(0)
    p_weak = np.array([predicted[k][0] for k in kinds]) + rng.normal(scale=0.01, size=len(kinds))
    p_strong = np.array([predicted[k][1] for k in kinds]) + rng.normal(scale=0.01, size=len(kinds))
    return (
        {"weak": p_weak, "strong": p_strong},
        {"weak": np.array([solved[k][0] for k in kinds]), "strong": np.array([solved[k][1] for k in kinds])},
    )


def test_the_margin_rule_is_chosen_when_it_reaches_the_target_cheaper() -> None:
    kinds = ["easy"] * 60 + ["hard"] * 20 + ["lost"] * 20
    predicted, labels = outcomes_by_kind(kinds)
    choice = choose_rule(predicted, labels, PRICES)
    # strong solves 80 %; the target is 95 % of that, 76 %: 16 of the 20 hard prompts must go to it. The
    # margin rule sends hard ones first (gain 0.6, against 0.05 for easy and lost prompts); the floor rule
    # reaches them (P(weak) 0.3) only after the 20 lost ones (0.25).
    assert choice.target == pytest.approx(0.95 * 0.8)
    assert isinstance(choice.rule, MarginRule) and 0.05 < choice.rule.margin < 0.65
    assert choice.margin_cost == pytest.approx((84 * 1 + 16 * 10) / 100)
    assert choice.floor_cost == pytest.approx((64 * 1 + 36 * 10) / 100)
    summary = choice.summary()
    assert summary["kind"] == "margin" and summary["cost_vs_best_model"]["margin"] == pytest.approx(0.244)


def test_the_floor_rule_stays_unless_the_margin_rule_is_strictly_cheaper() -> None:
    kinds = ["easy"] * 60 + ["hard"] * 20 + ["lost"] * 20
    predicted, labels = outcomes_by_kind(kinds)
    flat = {"weak": predicted["weak"], "strong": np.full(len(kinds), 0.99)}  # the gain ranks as P(weak) does
    choice = choose_rule(flat, labels, PRICES)
    assert choice.rule is None and choice.margin_cost == choice.floor_cost
    assert choice.summary()["kind"] == "floor"


def test_more_than_two_models_and_a_missing_price() -> None:
    kinds = ["easy"] * 60 + ["hard"] * 20 + ["lost"] * 20
    predicted, labels = outcomes_by_kind(kinds)
    predicted["pricier"], labels["pricier"] = predicted["strong"] - 0.01, labels["strong"]
    choice = choose_rule(predicted, labels, {**PRICES, "pricier": 30.0})
    assert isinstance(choice.rule, MarginRule) and choice.margin_cost == pytest.approx(2.44)
    with pytest.raises(ConfigurationError, match="no price or no outcomes"):
        choose_rule(predicted, labels, PRICES)


def test_fit_prompt_router_writes_the_chosen_rule_into_the_file() -> None:
    rows: list[ItemOutcome] = []
    kinds = ["easy", "hard", "lost"]
    for i in range(240):
        kind = kinds[i % 3]
        prompt = f"{kind} problem number {i}"
        weak, strong = {"easy": (True, True), "hard": (False, True), "lost": (False, False)}[kind]
        rows += [
            ItemOutcome(prompt, "chat", "weak", weak if i % 20 else not weak),
            ItemOutcome(prompt, "chat", "strong", strong if i % 25 else not strong),
        ]

    def embed(texts: object) -> list[list[float]]:  # the kind of prompt, as one-hot
        return [[float(t.startswith(k)) for k in kinds] + [0.0] for t in texts]  # type: ignore[attr-defined]

    priced = fit_prompt_router(rows, embed=embed, embedder="kind-test", dim=4, version="r1", costs=PRICES)
    rule = priced.router.rule("chat")
    assert isinstance(rule, MarginRule)
    assert priced.summary()["chat"]["rule"]["kind"] == "margin"
    loaded = parse_prompt_router(priced.router.to_dict())
    assert loaded.rule("chat") == rule
    unpriced = fit_prompt_router(rows, embed=embed, embedder="kind-test", dim=4, version="r2")
    assert unpriced.router.rule("chat") is None and "rules" not in unpriced.router.to_dict()
