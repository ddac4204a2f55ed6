"""NL->Cypher items (task class ``cypher.generate``): the cypher workcell on the sample graph.

Each item runs the real workcell (introspect, generate, guard, preview, execute, answer; repairs
included) with every model call pinned to the model under test, on the packaged sample graph (loaded
into the eval tenant's graph ``MAESTRO_EVAL_CYPHER_GRAPH`` when it is not there yet). The score is
*execution accuracy*: 1 when the rows the workcell's query returned equal the item's frozen gold rows
(as a multiset, or in order for ``ordered`` items; column names may differ), else 0. Unmeasured: the
run waited for an approval (a preview above the cost threshold), or it failed on a broken environment.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from maestro.core.errors import NotFound
from maestro.evals.data import Dataset, Item
from maestro.evals.suites.base import EvalEnv
from maestro.evals.types import ItemOutcome

SAMPLE = "contract_lineage.cypher"
_ENVIRONMENT_ERRORS = frozenset({"graph_unavailable", "internal_error", "configuration_error"})


def same_rows(got: Sequence[Sequence[Any]], gold: Sequence[Sequence[Any]], *, ordered: bool) -> bool:
    """Do two result sets hold the same rows (values only; floats to 6 places)?"""
    left = [_row(r) for r in got]
    right = [_row(r) for r in gold]
    return left == right if ordered else Counter(left) == Counter(right)


def _row(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_value(v) for v in row)


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return round(value, 6) if not value.is_integer() else int(value)
    if isinstance(value, list):
        return tuple(sorted((_value(v) for v in value), key=repr))
    if isinstance(value, dict):
        return tuple(sorted((k, _value(v)) for k, v in value.items()))
    return value


class CypherSuite:
    kind = "cypher"

    async def prepare(self, env: EvalEnv, dataset: Dataset, items: Sequence[Item]) -> None:
        del dataset, items
        catalog = env.need(env.graph_catalog, "graph catalog")
        name = env.settings.eval_cypher_graph
        try:
            catalog.resolve(env.authority.tenant, name)
            return
        except NotFound:
            pass
        from maestro.tools.graph.loader import load_file

        backend = env.need(env.graph_backend, "graph engine")
        key = catalog.key_for(env.authority.tenant, name)
        sample = resources.files("maestro.tools.graph").joinpath("samples", SAMPLE)
        with resources.as_file(sample) as path:
            report = load_file(backend, key, Path(path), replace=True)
        catalog.register(
            env.authority.tenant,
            name,
            by=env.authority.principal.id,
            nodes=report.nodes,
            relationships=report.relationships,
            source=f"eval sample {SAMPLE}",
        )

    async def run(self, env: EvalEnv, dataset: Dataset, item: Item, model: str) -> ItemOutcome:
        del dataset
        runner = env.need(env.runner, "workcell runner")
        payload = {"question": item.data["question"], "graph": env.settings.eval_cypher_graph}
        started = time.perf_counter()
        run = await runner.start("cypher", payload, env.pinned(model))
        latency = time.perf_counter() - started
        if run.status == "waiting":
            return ItemOutcome(None, cost_usd=run.cost_usd, latency_s=latency, error="waited for an approval")
        if run.status != "succeeded" or run.output is None:
            error = run.error or {}
            code = str(error.get("code", run.status))
            message = f"{code}: {error.get('message', '')}".strip()
            if code in _ENVIRONMENT_ERRORS:
                return ItemOutcome(None, cost_usd=run.cost_usd, latency_s=latency, error=message)
            return ItemOutcome(0.0, {"exec_accuracy": 0.0}, run.cost_usd, latency, message)
        output = run.output
        correct = same_rows(
            output.get("rows") or [], item.data["gold_rows"], ordered=bool(item.data.get("ordered"))
        )
        score = 1.0 if correct else 0.0
        return ItemOutcome(
            score,
            {
                "exec_accuracy": score,
                "answered": 1.0 if output.get("status") == "answered" else 0.0,
                "attempts": float(output.get("attempts") or 0),
            },
            cost_usd=run.cost_usd,
            latency_s=latency,
            error=None if correct else f"status {output.get('status')}: rows differ from the gold rows",
        )
