"""The per-prompt router: its file, its checks, and how ``decide`` uses its predictions.

Prompts are embedded by a deterministic test embedder (no model): a prompt that mentions "proof" or
"integral" points along one axis, any other along another, so a hand-written logistic predictor can mark
the first kind hard for the cheap model.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings
from maestro.router.factory import build_router
from maestro.router.policy import RouteRequest
from maestro.router.prompt_router import (
    FEATURES,
    ConstantPredictor,
    LogisticPredictor,
    MarginRule,
    NeighboursPredictor,
    PromptRouter,
    PromptRouterFile,
    design_matrix,
    load_prompt_router,
    parse_prompt_router,
    prompt_features,
    prompt_text,
)
from maestro.router.service import ModelRouter
from maestro.router.testing import ScriptedLLM

ENVIRON = {"TEST_KEY": "sk-test"}
HARD_WORDS = ("proof", "integral")


class KeywordEmbedder:
    """4 dims: [hard, easy, 0, 0] (unit length), from keywords; counts its calls."""

    name = "keyword-test"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed_query(self, text: str) -> tuple[float, ...]:
        self.calls.append(text)
        hard = any(word in text.lower() for word in HARD_WORDS)
        return (1.0, 0.0, 0.0, 0.0) if hard else (0.0, 1.0, 0.0, 0.0)


def logistic(hard: float, easy: float) -> LogisticPredictor:
    """P = sigmoid(hard * x0 + easy * x1), ignoring the text features."""
    coef = np.zeros(KeywordEmbedder.dim + len(FEATURES))
    coef[0], coef[1] = hard, easy
    return LogisticPredictor(coef, 0.0)


def codegen_router(version: str = "pr-test") -> PromptRouter:
    """codegen.edit (floor 0.8 in the test weights): cheap is good on easy prompts only; pricey on both."""
    return PromptRouter(
        version=version,
        embedder=KeywordEmbedder.name,
        dim=KeywordEmbedder.dim,
        task_classes={
            "codegen.edit": {
                "cheap": logistic(hard=-2.0, easy=3.0),  # P(hard) 0.12, P(easy) 0.95
                "mid": logistic(hard=-1.0, easy=2.0),  # P(hard) 0.27, P(easy) 0.88
                "pricey": ConstantPredictor(0.97),
            }
        },
    )


def request(prompt: str, task: str = "codegen.edit", **kw: Any) -> RouteRequest:
    return RouteRequest(
        task=task, messages=[{"role": "user", "content": prompt}], tenant="acme", principal="alice", **kw
    )


@pytest.fixture
def router_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompt-router.json"
    codegen_router().write(path)
    return path


def make(
    settings: Settings, engine: Engine, *, path: Path | None, embedder: KeywordEmbedder | None = None
) -> ModelRouter:
    configured = settings.model_copy(update={"prompt_router_path": path})
    return build_router(
        configured, engine=engine, client=ScriptedLLM(["ok"] * 5), environ=ENVIRON, prompt_embedder=embedder
    )


# -- decide with and without the prompt router ---------------------------------------------------------


def test_a_hard_prompt_goes_to_the_strong_model_and_an_easy_one_to_the_cheap_one(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    embedder = KeywordEmbedder()
    router = make(router_settings, sqlite_engine, path=router_file, embedder=embedder)
    easy = router.decide(request("Rename the variable x to count in utils.py"))
    hard = router.decide(request("Write a proof that the integral converges, as a doctest"))
    assert easy.chosen == "cheap"
    assert hard.chosen == "pricey"  # cheap 0.12 and mid 0.27 are below the floor 0.8
    assert hard.candidate("cheap").predicted_quality == pytest.approx(1 / (1 + np.exp(2.0)))
    assert hard.candidate("pricey").predicted_quality == pytest.approx(0.97)
    assert "quality 0.95 (prompt router pr-test) >= floor 0.80" in easy.candidate("cheap").reasons
    assert any("(prompt router pr-test)" in r for r in hard.candidate("mid").reasons)
    assert embedder.calls == [
        "Rename the variable x to count in utils.py",
        "Write a proof that the integral converges, as a doctest",
    ]


def test_without_the_file_routing_is_unchanged(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    plain = make(router_settings, sqlite_engine, path=None, embedder=KeywordEmbedder())
    assert plain.prompt_router is None
    for prompt in ("Rename the variable x", "Write a proof that the integral converges"):
        decision = plain.decide(request(prompt))
        assert decision.chosen == "mid"  # the weights: cheap 0.50 < 0.8 <= mid 0.82, cheaper than pricey
        assert decision.candidate("mid").predicted_quality == pytest.approx(0.82)
        assert not any("prompt router" in r for c in decision.candidates for r in c.reasons)


def test_task_classes_and_models_the_file_does_not_cover_use_the_weights(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    embedder = KeywordEmbedder()
    router = make(router_settings, sqlite_engine, path=router_file, embedder=embedder)
    chat = router.decide(request("Write a proof", task="chat"))
    assert chat.chosen == "cheap"  # chat weights: cheap 0.70 >= floor 0.6
    assert chat.candidate("cheap").predicted_quality == pytest.approx(0.70)
    assert embedder.calls == []  # no entry for chat: nothing is embedded
    hard = router.decide(request("Write a proof"))
    assert hard.candidate("onprem").predicted_quality == pytest.approx(0.20)  # onprem: weights estimate
    assert not any("prompt router" in r for r in hard.candidate("onprem").reasons)


def test_an_override_is_not_scored(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    embedder = KeywordEmbedder()
    router = make(router_settings, sqlite_engine, path=router_file, embedder=embedder)
    decision = router.decide(
        request(
            "Write a proof", model="cheap", override_reason="testing", scopes=frozenset({"router:override"})
        )
    )
    assert decision.chosen == "cheap"
    assert embedder.calls == []


def test_a_completion_is_routed_by_the_prediction(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    llm = ScriptedLLM(["hard answer", "easy answer"])
    configured = router_settings.model_copy(update={"prompt_router_path": router_file})
    router = build_router(
        configured, engine=sqlite_engine, client=llm, environ=ENVIRON, prompt_embedder=KeywordEmbedder()
    )
    try:
        hard = asyncio.run(router.complete(request("Prove this integral identity")))
        easy = asyncio.run(router.complete(request("Add a docstring to main()")))
    finally:
        router.close()
    assert (hard.model, easy.model) == ("pricey", "cheap")
    assert llm.models_called == ["pricey", "cheap"]


# -- loading and checks -----------------------------------------------------------------------------------


def test_configured_without_an_embedder_is_a_configuration_error(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    with pytest.raises(ConfigurationError, match="MAESTRO_PROMPT_ROUTER_PATH is set"):
        make(router_settings, sqlite_engine, path=router_file, embedder=None)


def test_another_embedder_than_the_fitted_one_is_refused(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path
) -> None:
    class Other(KeywordEmbedder):
        name = "all-MiniLM-L6-v2"
        dim = 384

    with pytest.raises(ConfigurationError, match="fitted with embedder 'keyword-test' \\(4 dims\\)"):
        make(router_settings, sqlite_engine, path=router_file, embedder=Other())


def test_a_model_outside_the_catalog_is_refused(
    router_settings: Settings, sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pr.json"
    document = codegen_router().to_dict()
    document["task_classes"]["codegen.edit"]["gpt-9"] = {"kind": "constant", "p": 0.5}
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError, match=r"codegen\.edit\.gpt-9: not a deployment in the catalog"):
        make(router_settings, sqlite_engine, path=path, embedder=KeywordEmbedder())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format_version=2), "format_version 2 is not supported"),
        (lambda d: d.update(format="pickle"), "format"),
        (lambda d: d.update(features=["log_chars"]), "features .* differ"),
        (lambda d: d.update(dim=0), "dim"),
        (
            lambda d: d["task_classes"]["codegen.edit"]["cheap"].update(coef=[0.1, 0.2]),
            "2 values, expected 10",
        ),
        (lambda d: d["task_classes"].update({"poetry": {}}), "poetry: unknown task class"),
        (lambda d: d["task_classes"]["codegen.edit"]["pricey"].update(p=1.5), "pricey"),
        (lambda d: d["task_classes"]["codegen.edit"]["cheap"].update(kind="tree"), "cheap"),
    ],
)
def test_malformed_files_are_refused_with_the_key(change: Any, message: str) -> None:
    document = codegen_router().to_dict()
    change(document)
    with pytest.raises(ConfigurationError, match=message):
        parse_prompt_router(
            document, source="pr.json", known_models={"cheap", "mid", "pricey"}, known_tasks={"codegen.edit"}
        )


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="prompt router file not found"):
        load_prompt_router(tmp_path / "nowhere.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigurationError, match="line 1: not valid JSON"):
        load_prompt_router(broken)


def test_every_predictor_kind_survives_a_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 4))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    router = PromptRouter(
        version="rt",
        embedder="keyword-test",
        dim=4,
        embed_chars=50,
        task_classes={
            "chat": {
                "cheap": logistic(hard=-2.0, easy=3.0),
                "mid": NeighboursPredictor(5, points, (rng.random(30) > 0.5).astype(float)),
                "pricey": ConstantPredictor(0.9),
            }
        },
    )
    path = tmp_path / "rt.json"
    router.write(path)
    loaded = load_prompt_router(path)
    texts = ["an easy one", "a proof, hard", "x" * 80]
    rows = design_matrix(rng.normal(size=(3, 4)), texts)
    before, after = router.predict_many("chat", rows), loaded.predict_many("chat", rows)
    for model in ("cheap", "mid", "pricey"):
        np.testing.assert_allclose(after[model], before[model], rtol=1e-6)
    assert loaded.embed_chars == 50 and loaded.embed_text("x" * 80) == "x" * 50
    assert loaded.predict("chat", (1.0, 0.0, 0.0, 0.0), "a proof")["pricey"] == pytest.approx(0.9)
    assert loaded.predict("codegen.edit", (1.0, 0.0, 0.0, 0.0), "a proof") == {}


def test_prompt_text_is_the_last_user_message_and_features_are_finite() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "What is 12 + 30?"}, {"type": "image_url"}]},
    ]
    assert prompt_text(messages) == "What is 12 + 30?"
    assert prompt_text([{"role": "system", "content": "only a system prompt"}]) == ""
    features = prompt_features("What is 12 + 30?")
    assert len(features) == len(FEATURES)
    assert features[FEATURES.index("log_numbers")] == pytest.approx(np.log1p(2))
    assert all(np.isfinite(prompt_features("")))


# -- the CLI, end to end: fit from outcomes, then route explain uses the file ---------------------------


def test_fit_prompts_then_route_explain_uses_the_file(router_settings: Settings, tmp_path: Path) -> None:
    outcomes = tmp_path / "outcomes.jsonl"
    with outcomes.open("w") as out:
        for i in range(60):
            hard = i % 2 == 0
            prompt = f"Write a formal proof of lemma {i}" if hard else f"Rename the helper {i}"
            for model, success in (("cheap", not hard or i % 10 == 0), ("pricey", i % 15 != 0)):
                row = {"prompt": prompt, "task": "codegen.edit", "model": model, "success": success}
                out.write(json.dumps(row) + "\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    environment.update(
        MAESTRO_DATA_DIR=str(tmp_path / "var"),
        MAESTRO_EMBEDDER="hashing",
        MAESTRO_CATALOG_PATH=str(router_settings.catalog_path),  # the test catalog and weights
        MAESTRO_WEIGHTS_PATH=str(router_settings.weights_path),
        TEST_KEY="sk-test",
    )
    maestro = str(Path(sys.executable).with_name("maestro"))

    def run(*args: str, stdin: str = "", **env: str) -> Any:
        done = subprocess.run(
            [maestro, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**environment, **env},
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    fitted = run(
        "router",
        "fit-prompts",
        str(outcomes),
        "--out",
        str(tmp_path / "pr.json"),
        "--version",
        "v1",
        "--json",
    )
    assert fitted["version"] == "v1"
    assert set(fitted["task_classes"]["codegen.edit"]["models"]) == {"cheap", "pricey"}
    rule = fitted["task_classes"]["codegen.edit"]["rule"]  # chosen on the outcomes, catalog prices
    assert rule["kind"] in ("floor", "margin") and rule["prompts"] == 60
    assert (rule["kind"] == "margin") is ("rules" in json.loads((tmp_path / "pr.json").read_text()))
    explain = ["route", "explain", "--task", "codegen.edit", "--json"]
    with_file = {"MAESTRO_PROMPT_ROUTER_PATH": str(tmp_path / "pr.json")}
    easy = run(*explain, stdin="Rename the helper 7", **with_file)
    hard = run(*explain, stdin="Write a formal proof of lemma 7", **with_file)
    assert easy["chosen"] == "cheap"
    assert hard["chosen"] != "cheap"
    reasons = {c["model"]: c["reasons"] for c in easy["candidates"]}
    assert any("(prompt router v1)" in r for r in reasons["cheap"])
    assert not any("prompt router" in r for r in reasons["mid"])  # no entry for mid: the weights
    plain = run(*explain, stdin="Rename the helper 7")
    assert plain["chosen"] == "mid"  # without the file: the weights (cheap 0.50 < floor 0.8)


# -- reloading: a refitted file is used without a restart, a bad one never ----------------------------


def strong_everywhere(version: str, *, embedder: str = KeywordEmbedder.name) -> PromptRouter:
    """A refit that finds the cheap model good on hard prompts too."""
    return PromptRouter(
        version=version,
        embedder=embedder,
        dim=KeywordEmbedder.dim,
        task_classes={
            "codegen.edit": {"cheap": logistic(hard=3.0, easy=3.0), "pricey": ConstantPredictor(0.97)}
        },
    )


def rewrite_in_place(path: Path, text: str) -> None:
    """Overwrite the file's bytes (same inode, as an editor or `cp` would), with a fresh mtime."""
    stamp = path.stat().st_mtime_ns + 1_000_000_000 if path.exists() else 1_000_000_000
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))


def test_a_refitted_file_is_used_without_a_restart_and_a_bad_one_is_ignored(
    router_settings: Settings, sqlite_engine: Engine, router_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = KeywordEmbedder()
    configured = router_settings.model_copy(
        update={"prompt_router_path": router_file, "weights_reload_s": 1e-6}
    )
    llm = ScriptedLLM(["ok"] * 10)
    router = build_router(
        configured, engine=sqlite_engine, client=llm, environ=ENVIRON, prompt_embedder=embedder
    )
    hard = request("Write a proof that the integral converges")

    def routed() -> tuple[str | None, set[str]]:
        decision = router.explain(hard)  # recorded: read back what the decision log holds
        stored = router.decisions.get(decision.id)
        versions = {
            r.split("(prompt router ")[1].split(")")[0]
            for c in stored["candidates"]
            for r in c["reasons"]
            if "(prompt router " in r
        }
        return stored["chosen"], versions

    try:
        assert routed() == ("pricey", {"pr-test"})

        strong_everywhere("refit-2").write(router_file)  # atomic replace, as fit-prompts writes it
        assert routed() == ("cheap", {"refit-2"})
        assert router.prompt_router is not None and router.prompt_router.version == "refit-2"
        assert asyncio.run(router.complete(hard)).model == "cheap"  # completions too, not only decide

        caplog.set_level("WARNING", logger="maestro.router.prompt_router")
        bad_files = {
            "half-written": '{"format": "maestro.prompt-router", "task_cl',
            "unknown model": json.dumps(
                {
                    **codegen_router("bad-model").to_dict(),
                    "task_classes": {"codegen.edit": {"gpt-9": {"kind": "constant", "p": 0.5}}},
                }
            ),
            "other embedder": json.dumps(
                strong_everywhere("bad-embedder", embedder="all-MiniLM-L6-v2").to_dict()
            ),
            "wrong vector length": json.dumps(
                {
                    **codegen_router("bad-coef").to_dict(),
                    "task_classes": {
                        "codegen.edit": {"cheap": {"kind": "logistic", "coef": [1.0], "intercept": 0}}
                    },
                }
            ),
        }
        for why, text in bad_files.items():
            caplog.clear()
            rewrite_in_place(router_file, text)
            assert routed() == ("cheap", {"refit-2"}), why  # the last good router stays in use
            warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert len(warnings) == 1 and "keeping prompt router refit-2" in warnings[0], (why, warnings)
            routed()
            assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1  # once per change

        caplog.clear()
        router_file.unlink()
        assert routed() == ("cheap", {"refit-2"})
        assert any("is gone" in r.getMessage() for r in caplog.records)

        rewrite_in_place(router_file, json.dumps(codegen_router("refit-3").to_dict()))  # a good one again
        assert routed() == ("pricey", {"refit-3"})
    finally:
        router.close()


def test_the_file_is_looked_at_only_after_the_check_interval(tmp_path: Path) -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    path = tmp_path / "pr.json"
    codegen_router("v1").write(path)
    clock = Clock()
    source = PromptRouterFile(
        path,
        load_prompt_router(path),
        embedder=KeywordEmbedder(),
        known_models={"cheap", "mid", "pricey"},
        known_tasks={"codegen.edit"},
        check_s=5,
        clock=clock,
    )
    codegen_router("v2").write(path)
    assert source.current().version == "v1"  # not looked at before the interval passes
    clock.now = 6
    assert source.current().version == "v2"
    clock.now = 12
    assert source.current() is source.current()  # unchanged file: not read again


# -- a margin rule: the prompt's floor is the best eligible P(success) minus the margin -------------------


def margin_router(margin: float) -> PromptRouter:
    return replace(codegen_router("pr-margin"), rules={"codegen.edit": MarginRule(margin)})


def test_a_margin_rule_picks_the_cheapest_model_within_the_margin_of_the_best(
    router_settings: Settings, sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pr.json"
    margin_router(0.75).write(path)
    router = make(router_settings, sqlite_engine, path=path, embedder=KeywordEmbedder())
    hard = router.decide(request("Write a proof that the integral converges"))
    # best pricey 0.97, so within 0.75 of it means >= 0.22: cheap 0.12 is not, mid 0.27 is the cheapest
    # that is, and its 0.27 is the prompt's floor. The weights' floor (0.8) would have chosen pricey.
    assert hard.chosen == "mid"
    assert hard.fallbacks[0] == "pricey"
    reason = hard.candidate("mid").reasons[0]
    assert reason == "quality 0.27 (prompt router pr-margin; margin 0.75 below the best 0.97) >= floor 0.27"
    assert hard.candidate("onprem").predicted_quality == pytest.approx(0.20)  # not scored: its weights
    easy = router.decide(request("Rename the variable x"))
    assert easy.chosen == "cheap"  # 0.95 >= 0.97 - 0.75

    path.write_text(json.dumps(margin_router(0.9).to_dict()))  # a wider margin: cheap 0.12 >= 0.07
    wide = make(router_settings, sqlite_engine, path=path, embedder=KeywordEmbedder())
    decision = wide.decide(request("Write a proof"))
    # cheap is the pick (floor 0.12); onprem, which the file does not score, is cheaper still at 512
    # output tokens and its weights estimate 0.20 meets that floor: decide takes it
    assert decision.candidate("cheap").reasons[0].endswith(">= floor 0.12")
    assert decision.chosen == "onprem" and decision.fallbacks[0] == "cheap"


def test_the_margin_is_measured_from_the_best_eligible_model(
    router_settings: Settings, sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pr.json"
    margin_router(0.75).write(path)
    # a principal budget that covers mid (4,000 tokens at $4/1M) but not pricey (at $30/1M)
    poor = router_settings.model_copy(update={"principal_budget_usd": 0.05})
    router = make(poor, sqlite_engine, path=path, embedder=KeywordEmbedder())
    hard = router.decide(request("Write a proof", max_tokens=4000))
    assert not hard.candidate("pricey").eligible
    # best eligible: mid 0.27, floor max(0, 0.27 - 0.75) = 0: the cheapest eligible model
    assert hard.chosen == "cheap"
    assert "margin 0.75 below the best 0.27" in hard.candidate("cheap").reasons[0]


def test_an_override_ignores_the_rule_and_rules_are_checked_on_load(
    router_settings: Settings, sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pr.json"
    margin_router(0.75).write(path)
    router = make(router_settings, sqlite_engine, path=path, embedder=KeywordEmbedder())
    pinned = router.decide(
        request("Write a proof", model="pricey", override_reason="t", scopes=frozenset({"router:override"}))
    )
    assert pinned.chosen == "pricey"
    assert load_prompt_router(path).rule("codegen.edit") == MarginRule(0.75)
    assert load_prompt_router(path).rule("chat") is None
    document = margin_router(0.75).to_dict()
    document["rules"]["chat"] = {"kind": "margin", "margin": 0.1}
    with pytest.raises(ConfigurationError, match=r"rules\.chat: a rule for a task class without predictors"):
        parse_prompt_router(document)
    document["rules"] = {"codegen.edit": {"kind": "margin", "margin": 1.5}}
    with pytest.raises(ConfigurationError, match="margin"):
        parse_prompt_router(document)
