"""Fitting a per-prompt router from per-item outcomes (scikit-learn, cross-validated on the outcomes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from maestro.core.errors import ConfigurationError
from maestro.evals.prompt_fit import CANDIDATES, FitCandidate, ItemOutcome, fit_prompt_router, read_outcomes
from maestro.router.prompt_router import ConstantPredictor, LogisticPredictor, load_prompt_router


def embed(texts: Sequence[str]) -> list[tuple[float, ...]]:
    """4 dims: a 'proof' axis, an 'easy' axis and two fixed noise dims per text (deterministic)."""
    out = []
    for text in texts:
        rng = np.random.default_rng(sum(map(ord, text)))
        hard = 1.0 if "proof" in text else 0.0
        vector = np.array([hard, 1.0 - hard, *rng.normal(scale=0.3, size=2)])
        out.append(tuple(vector / np.linalg.norm(vector)))
    return out


def outcomes(n: int = 160) -> list[ItemOutcome]:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        hard = i % 2 == 0
        prompt = f"{'Write a proof for lemma' if hard else 'Rename variable'} {i}"
        rows.append(ItemOutcome(prompt, "codegen.edit", "cheap", bool(rng.random() < (0.2 if hard else 0.9))))
        rows.append(ItemOutcome(prompt, "codegen.edit", "pricey", bool(rng.random() < 0.95)))
        rows.append(ItemOutcome(prompt, "codegen.edit", "onprem", True))
    return rows


def test_the_fitted_router_separates_hard_and_easy_prompts(tmp_path: Path) -> None:
    fitted = fit_prompt_router(outcomes(), embed=embed, embedder="test-embed", dim=4, version="fit-1")
    router = fitted.router
    assert router.models("codegen.edit") == ("cheap", "onprem", "pricey")
    assert isinstance(router.task_classes["codegen.edit"]["onprem"], ConstantPredictor)  # never failed
    hard = router.predict(
        "codegen.edit", embed(["Write a proof for lemma 999"])[0], "Write a proof for lemma 999"
    )
    easy = router.predict("codegen.edit", embed(["Rename variable 999"])[0], "Rename variable 999")
    assert hard["cheap"] < 0.4 and easy["cheap"] > 0.7
    assert hard["pricey"] > 0.8
    summary = fitted.summary()["codegen.edit"]
    assert summary["chosen"] in {c.name for c in CANDIDATES}
    assert set(summary["cv_auc"]) == {c.name for c in CANDIDATES}
    assert summary["models"]["cheap"]["samples"] == 160
    oof = fitted.models["codegen.edit"]["cheap"].out_of_fold
    assert oof.shape == (160,) and ((0 < oof) & (oof < 1)).all()

    path = tmp_path / "router.json"
    router.write(path)
    loaded = load_prompt_router(path, known_models={"cheap", "pricey", "onprem"})
    assert loaded.version == "fit-1" and loaded.embedder == "test-embed"
    assert loaded.fit is not None and loaded.fit["codegen.edit"]["chosen"] == summary["chosen"]
    again = loaded.predict("codegen.edit", embed(["Rename variable 999"])[0], "Rename variable 999")
    assert again["cheap"] == pytest.approx(easy["cheap"])


def test_logistic_predictions_are_calibrated_on_out_of_fold_scores() -> None:
    only_logistic = [FitCandidate("logistic", 1.0)]
    fitted = fit_prompt_router(
        outcomes(400), embed=embed, embedder="e", dim=4, version="v", candidates=only_logistic
    )
    predictor = fitted.router.task_classes["codegen.edit"]["cheap"]
    assert isinstance(predictor, LogisticPredictor)
    hard = fitted.router.predict(
        "codegen.edit", embed(["Write a proof for lemma 1"])[0], "Write a proof for lemma 1"
    )
    easy = fitted.router.predict("codegen.edit", embed(["Rename variable 1"])[0], "Rename variable 1")
    assert hard["cheap"] == pytest.approx(0.2, abs=0.1)  # the true success rates of the simulation
    assert easy["cheap"] == pytest.approx(0.9, abs=0.1)


def test_groups_keep_cross_validation_folds_apart() -> None:
    grouped = [
        ItemOutcome(o.prompt, o.task, o.model, o.success, group=f"g{i % 7}")
        for i, o in enumerate(outcomes(80))
    ]
    fitted = fit_prompt_router(grouped, embed=embed, embedder="e", dim=4, version="v")
    assert fitted.chosen["codegen.edit"] in {c.name for c in CANDIDATES}


def test_bad_inputs_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no outcomes"):
        fit_prompt_router([], embed=embed, embedder="e", dim=4, version="v")
    with pytest.raises(ConfigurationError, match="unknown task class"):
        fit_prompt_router(
            [ItemOutcome("p", "poetry", "m", True)], embed=embed, embedder="e", dim=4, version="v"
        )
    with pytest.raises(ConfigurationError, match="expected \\(1, 8\\)"):
        fit_prompt_router(
            [ItemOutcome("p", "chat", "m", True)], embed=embed, embedder="e", dim=8, version="v"
        )


def test_reading_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    lines = [
        {"prompt": "a", "task": "chat", "model": "cheap", "success": True, "group": "x"},
        {"prompt": "b", "task": "chat", "model": "cheap", "success": 0},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    rows = read_outcomes(path)
    assert rows == [ItemOutcome("a", "chat", "cheap", True, "x"), ItemOutcome("b", "chat", "cheap", False)]
    path.write_text('{"prompt": "a", "task": "chat", "model": "cheap", "success": "yes"}\n')
    with pytest.raises(ConfigurationError, match="line 1: not an outcome"):
        read_outcomes(path)
    with pytest.raises(ConfigurationError, match="not found"):
        read_outcomes(tmp_path / "missing.jsonl")
