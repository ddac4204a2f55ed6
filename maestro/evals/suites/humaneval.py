"""HumanEval items (task class ``codegen.edit``): the codegen generate step, then the tests in the sandbox.

Score 1 when the problem's tests pass in the sandbox, 0 when they fail (or the reply has no usable
code); unmeasured when the model could not be called at all (an outage is not a quality signal).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from maestro.core.errors import ModelCallFailed, NoEligibleModel
from maestro.evals.data import Dataset, Item
from maestro.evals.humaneval import MAX_TOKENS, completion_from_reply, messages_for, run_in_sandbox
from maestro.evals.suites.base import EvalEnv
from maestro.evals.types import ItemOutcome
from maestro.router.policy import RouteRequest


class HumanEvalSuite:
    kind = "humaneval"

    async def prepare(self, env: EvalEnv, dataset: Dataset, items: Sequence[Item]) -> None:
        del dataset, items
        box = env.need(env.sandbox, "sandbox")
        await asyncio.to_thread(box.mode)  # SandboxUnavailable now, not once per item

    async def run(self, env: EvalEnv, dataset: Dataset, item: Item, model: str) -> ItemOutcome:
        problem = dict(item.data)
        request = RouteRequest.for_authority(
            env.pinned(model),
            task=dataset.task_class,
            messages=messages_for(problem),
            max_tokens=MAX_TOKENS,
            temperature=0.0,
        )
        started = time.perf_counter()
        try:
            result = await env.router.complete(request)
        except (ModelCallFailed, NoEligibleModel) as exc:
            return ItemOutcome(None, error=f"{exc.code}: {exc.message}")
        latency = time.perf_counter() - started
        completion = completion_from_reply(result.text, problem["entry_point"])
        box = env.need(env.sandbox, "sandbox")
        run = await asyncio.to_thread(run_in_sandbox, box, problem, completion)
        passed = 1.0 if run.passed else 0.0
        return ItemOutcome(
            passed,
            {"pass_at_1": passed},
            cost_usd=result.cost_usd,
            latency_s=latency,
            error=None if run.passed else run.reason or None,
        )
