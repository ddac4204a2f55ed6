"""``maestro bench codegen``: HumanEval through the router and the sandbox (no timing asserts).

The oracle (canonical solutions, routed) solves every problem of the quick subset; a wrong model
solves none and its failures are listed; hostile code (a busy loop, a huge allocation, an early
``exit(0)``) is stopped or caught by the sandbox and counted failed; the CLI prints DESIGN.md's shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from maestro.bench.codegen import (
    QUICK_TASKS,
    bench_codegen,
    build_program,
    completion_from_reply,
    extract_code,
    load_problems,
    oracle_client,
)
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall

MAESTRO = str(Path(sys.executable).with_name("maestro"))
LOCAL = "local/smollm2-135m"


def test_replies_become_completions() -> None:
    body = "    return a + b"
    assert completion_from_reply(body, "add") == body + "\n"  # a raw body is kept as it is
    assert completion_from_reply("return a + b", "add") == "    return a + b\n"  # indented when flush left
    fenced = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert completion_from_reply(fenced, "add") == "\n\ndef add(a, b):\n    return a + b\n"
    two = "```\nprint('example')\n```\n```python\nimport math\n\ndef add(a, b):\n    return a + b\n```"
    assert extract_code(two, "add").startswith("import math")  # the block that defines the function
    assert extract_code("```python\n\n    x = 1\n    return x", "f") == "    x = 1\n    return x"  # cut off


def test_program_runs_prompt_completion_tests_and_check() -> None:
    problem = load_problems()["HumanEval/0"]
    program = build_program(problem, problem["canonical_solution"], "NONCE")
    assert program.startswith(problem["prompt"] + problem["canonical_solution"])
    assert program.rstrip().endswith("check(has_close_elements)\nprint('NONCE')")
    compile(program, "solution.py", "exec")  # compiled only; never executed in-process


def test_oracle_solves_the_quick_subset_through_the_router(settings: Settings) -> None:
    client = oracle_client(load_problems())
    report = bench_codegen(settings, model="oracle", quick=True, client=client, progress=False)
    metrics = report.metrics
    assert report.failures == {}
    assert (metrics["pass_at_1"], metrics["passed"], metrics["problems"]) == (1.0, 12.0, 12.0)
    assert metrics["oracle_pass_at_1"] == 1.0 and report.baseline["bare_pass_at_1"] == 1.0
    assert report.targets["oracle_pass_at_1"]["met"] is True
    assert metrics["sandbox_mode_bwrap"] + metrics["sandbox_mode_unshare"] == 1.0
    assert 0 < metrics["sandbox_run_ms_p50"] <= metrics["sandbox_run_ms_p95"]
    assert 0 < report.baseline["bare_run_ms_p50"] <= report.baseline["bare_run_ms_p95"]
    assert metrics["killed"] == 0 and metrics["generation_failed"] == 0
    assert isinstance(client, FunctionLLM)  # every call went through the router to the local deployment
    assert len(client.history) == 12
    assert {call.deployment.name for call in client.history} == {LOCAL}
    saved = (settings.data_dir / "bench-codegen" / "oracle.jsonl").read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in saved] == list(QUICK_TASKS)


def test_a_wrong_model_scores_zero_and_its_failures_are_listed(settings: Settings) -> None:
    client = FunctionLLM(lambda messages, call: "```python\n    pass\n```")
    report = bench_codegen(settings, model=LOCAL, limit=4, client=client, progress=False)
    assert report.metrics["pass_at_1"] == 0.0 and report.metrics["problems"] == 4
    assert sorted(report.failures) == [f"HumanEval/{n}" for n in range(4)]
    assert all(reason == "AssertionError" for reason in report.failures.values()), report.failures
    # the canonical solutions, run for the overhead measure, still pass: the harness is not to blame
    assert report.metrics["oracle_pass_at_1"] == 1.0 and report.targets["oracle_pass_at_1"]["met"]


def _hostile(messages: list[Message], call: ModelCall) -> str:
    del call
    user = str(messages[-1].get("content") or "")
    if "has_close_elements" in user:  # HumanEval/0
        return "    while True:\n        pass\n"
    if "separate_paren_groups" in user:  # HumanEval/1
        return "    blob = bytearray(8 * 1024 ** 3)\n    return [str(len(blob))]\n"
    if "truncate_number" in user:  # HumanEval/2
        return "    import os\n    os._exit(0)\n"
    return "    import sys\n    sys.exit(0)\n"  # HumanEval/3: exits 0 when the tests call it


def test_hostile_code_is_stopped_and_counted_failed(settings: Settings) -> None:
    report = bench_codegen(settings, model=LOCAL, limit=4, client=FunctionLLM(_hostile), progress=False)
    assert report.metrics["pass_at_1"] == 0.0 and report.metrics["problems"] == 4
    failures = report.failures
    assert failures["HumanEval/0"] in ("killed by cpu", "killed by timeout")  # the busy loop
    assert "MemoryError" in failures["HumanEval/1"]  # RLIMIT_AS refused the allocation
    assert failures["HumanEval/2"] == "exited 0 before the tests finished"  # no nonce on stdout
    assert failures["HumanEval/3"] == "exited 0 before the tests finished"
    assert report.metrics["killed"] >= 1


def test_quick_run_through_the_cli(tmp_path: Path) -> None:
    env = {"MAESTRO_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [MAESTRO, "bench", "codegen", "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"bench", "machine", "metrics", "baseline", "targets"}
    assert report["bench"] == "codegen" and report["machine"]
    metrics, baseline = report["metrics"], report["baseline"]
    assert all(isinstance(v, int | float) for v in [*metrics.values(), *baseline.values()])
    assert metrics["pass_at_1"] == 1.0 and metrics["problems"] == len(QUICK_TASKS)
    for name in ("pass_at_1", "generation_s_p50", "sandbox_run_ms_p50", "sandbox_run_ms_p95"):
        assert name in metrics, name
    assert {"sandbox_overhead_ms_p50", "sandbox_vs_bare_p50_ratio"} <= set(metrics)
    assert {"bare_run_ms_p50", "bare_run_ms_p95"} <= set(baseline)
    for name, target in report["targets"].items():
        assert set(target) == {"value", "target", "met"} and isinstance(target["met"], bool), name
    assert report["targets"]["oracle_pass_at_1"]["met"] is True


def test_cli_options_belong_to_their_benchmark(tmp_path: Path) -> None:
    env = {"MAESTRO_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [MAESTRO, "bench", "pii", "--model", "oracle"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "--model and --limit" in done.stderr
