"""``maestro eval datasets|runs|report|propose-weights`` as a subprocess: exit codes and JSON shapes.

Results come from a real eval run (HumanEval, the oracle model answering with the canonical solutions,
through the router and the sandbox); the commands then read them from the same state DB."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

from maestro.api.container import build_services
from maestro.core.settings import Settings
from maestro.evals.humaneval import load_problems, oracle_client

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture

LOCAL = "local/smollm2-135m"


def test_cli_datasets_runs_report_and_dry_run_proposal(tmp_path: Path, cli: MaestroCli) -> None:
    settings = Settings(data_dir=tmp_path / "var", embedder="hashing", _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings, client=oracle_client(load_problems()))
    try:
        runner = services.eval_runner(services.eval_authority())
        summary = asyncio.run(runner.run("humaneval", [LOCAL], limit=4))
    finally:
        services.close()

    datasets = json.loads(cli(["eval", "datasets", "--json"], tmp_path).stdout)
    assert all(d["ok"] for d in datasets["datasets"]) and "weekly" in datasets["suites"]
    runs = json.loads(cli(["eval", "runs", "--json"], tmp_path).stdout)["runs"]
    assert [r["id"] for r in runs] == [summary.run.id]

    done = cli(["eval", "report", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (line,) = report["lines"]
    assert line["model"] == LOCAL and line["quality"]["mean"] == 1.0 and line["quality"]["samples"] == 4
    assert Path(report["html"]).read_text().count("<svg") == 1

    weights_before = (Path(__file__).parents[2] / "maestro" / "router" / "weights.yaml").read_text()
    proposal = cli(
        ["eval", "propose-weights", "--dry-run", "--json"], tmp_path, env={"MAESTRO_EVAL_MIN_SAMPLES": "4"}
    )
    assert proposal.returncode == 0, proposal.stderr
    doc = json.loads(proposal.stdout)
    assert doc["changed"] and doc["pr"] is None and doc["written"] is None
    assert f"+      {LOCAL}: {{quality: 1.000, samples: 4" in doc["diff"]
    assert (Path(__file__).parents[2] / "maestro" / "router" / "weights.yaml").read_text() == weights_before

    refused = cli(
        ["eval", "propose-weights", "--open-pr", "--json"], tmp_path, env={"MAESTRO_EVAL_MIN_SAMPLES": "4"}
    )
    assert (
        refused.returncode == 2
        and "MAESTRO_EVAL_WEIGHTS_REPO" in json.loads(refused.stdout)["error"]["message"]
    )


def test_router_fit_writes_weights_and_outcomes_for_the_prompt_router(
    tmp_path: Path, cli: MaestroCli
) -> None:
    settings = Settings(data_dir=tmp_path / "var", embedder="hashing", _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings, client=oracle_client(load_problems()))
    try:
        summary = asyncio.run(
            services.eval_runner(services.eval_authority()).run("humaneval", [LOCAL], limit=3)
        )
    finally:
        services.close()
    weights = tmp_path / "weights.yaml"
    weights.write_text((Path(__file__).parents[2] / "maestro" / "router" / "weights.yaml").read_text())
    env = {"MAESTRO_WEIGHTS_PATH": str(weights), "MAESTRO_EMBEDDER": "hashing"}

    dry = json.loads(cli(["router", "fit", "--dry-run", "--json"], tmp_path, env=env).stdout)
    assert dry["eval_run"] == summary.run.id and not dry["written"]
    assert f"+      {LOCAL}: {{quality: 1.000, samples: 3" in dry["diff"]
    assert "samples: 3" not in weights.read_text()

    outcomes = tmp_path / "outcomes.jsonl"
    done = cli(["router", "fit", "--outcomes", str(outcomes), "--json"], tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{LOCAL}: {{quality: 1.000, samples: 3" in weights.read_text()
    lines = [json.loads(line) for line in outcomes.read_text().splitlines()]
    assert len(lines) == 3 and all(x["success"] and x["task"] == "codegen.edit" for x in lines)
    assert all("def " in x["prompt"] for x in lines)  # the HumanEval prompt stands for the item

    router_file = tmp_path / "prompts.json"
    fitted = cli(
        ["router", "fit-prompts", str(outcomes), "--out", str(router_file), "--json"], tmp_path, env=env
    )
    assert fitted.returncode == 0, fitted.stderr
    assert "codegen.edit" in json.loads(fitted.stdout)["task_classes"] and router_file.exists()
