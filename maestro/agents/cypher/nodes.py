"""The Cypher workcell's nodes: introspect -> generate -> check -> preview -> execute -> answer.

Each node reads the graph through ``GraphAccess`` (``ctx.tools["graph"]``), which re-checks the run's
authority itself, and records why a candidate failed in ``error`` so ``edges.py`` can send it back to
``generate`` (a repair: the model sees its query and the reason) or, after the last repair, to
``give_up``, which answers honestly that no query could be run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from langgraph.runtime import Runtime

from maestro.agents.cypher.examples import default_library
from maestro.agents.cypher.prompting import GENERATION_SCHEMA, ROW_CITATION, parse_generation, schema_text
from maestro.agents.cypher.state import CypherState
from maestro.agents.runtime.context import RunContext
from maestro.prompts.templates import load
from maestro.tools.graph.access import GraphAccess, GraphHandle
from maestro.tools.graph.errors import GraphQueryError, GraphTimeout

__all__ = ["answer", "check", "execute", "generate", "give_up", "introspect", "preview"]

FEW_SHOT = 4
HISTORY_TURNS = 4
GENERATE_MAX_TOKENS = 200  # a query and its parameters (~80 tokens); a runaway string stops here
ANSWER_MAX_TOKENS = 200  # three sentences
PROMPT_ROWS = 50
DEFAULT_REPAIRS = 2

T = TypeVar("T")


def _access(ctx: RunContext) -> GraphAccess:
    access = ctx.tools.get("graph")
    if not isinstance(access, GraphAccess):
        raise TypeError("the cypher workcell needs tools['graph'] to be a GraphAccess")
    return access


def _failure(state: Mapping[str, Any], ctx: RunContext, stage: str, reason: str) -> dict[str, Any]:
    """Record why the candidate failed; ``exhausted`` once ``1 + cypher_repairs`` generations failed."""
    failure = {"stage": stage, "query": state.get("query", ""), "reason": reason}
    repairs = int(ctx.tools.get("cypher_repairs", DEFAULT_REPAIRS))
    return {
        "error": reason,
        "exhausted": state.get("attempts", 0) > repairs,
        "failures": [*state.get("failures", []), failure],
    }


async def _tool(ctx: RunContext, name: str, args: dict[str, Any], act: Callable[[], T]) -> T:
    """Run a blocking graph call off the event loop with ``tool`` events around it."""
    started = time.perf_counter()
    ctx.emit("tool", {"tool": name, "phase": "start", **args})
    try:
        result = await asyncio.to_thread(act)
    except Exception as exc:
        ctx.emit(
            "tool",
            {"tool": name, "phase": "error", "error": type(exc).__name__, "message": str(exc)[:500]},
        )
        raise
    ctx.emit("tool", {"tool": name, "phase": "end", "ms": round((time.perf_counter() - started) * 1e3, 2)})
    return result


async def _on_graph(
    ctx: RunContext,
    state: CypherState,
    tool: str,
    call: Callable[[GraphHandle, str, dict[str, Any]], T],
) -> tuple[GraphHandle, T]:
    """Open the run's graph (authorised again for this step) and call ``tool`` on the current query."""
    access = _access(ctx)
    handle = await asyncio.to_thread(access.open, ctx.authority, state["graph"])
    params = dict(state.get("params") or {})
    result = await _tool(ctx, tool, {"graph": handle.name}, lambda: call(handle, state["query"], params))
    return handle, result


async def introspect(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Authorise the graph, read its schema (labels, relationship patterns, sample values) and pick
    few-shot examples near the question."""
    ctx = runtime.context
    access = _access(ctx)
    handle = await asyncio.to_thread(access.open, ctx.authority, state["graph"])
    schema = await _tool(ctx, "graph.schema", {"graph": handle.name}, lambda: access.schema(handle))
    examples = [e.to_dict() for e in default_library().nearest(state["question"], FEW_SHOT)]
    return {"schema": schema_text(schema), "examples": examples}


async def generate(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask the model for ``{"cypher", "params"}`` (JSON-constrained), repairing the last failure if any."""
    ctx = runtime.context
    access = _access(ctx)
    failures = state.get("failures", [])
    system = load("cypher_generate_system").render(max_hops=access.guard.max_hops)
    user = load("cypher_generate_user").render(
        schema=state["schema"],
        examples=state.get("examples", []),
        history=state.get("turns", [])[-HISTORY_TURNS:],
        question=state["question"],
        failure=failures[-1] if failures else None,
    )
    result = await ctx.complete(
        task="cypher.generate",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        requires_json=True,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "cypher", "schema": GENERATION_SCHEMA},
        },
        temperature=0.0,
        max_tokens=GENERATE_MAX_TOKENS,
        stream=False,  # JSON for the graph, not words for a human: only the answer streams
    )
    update: dict[str, Any] = {
        "attempts": state.get("attempts", 0) + 1,
        "budget_used_usd": result.cost_usd,
        "model": result.model,
        "decision_id": result.decision.id,
    }
    try:
        query, params = parse_generation(result.text)
    except ValueError as exc:
        reason = str(exc)
        if result.finish_reason == "length":
            reason = f"the reply was cut off at {GENERATE_MAX_TOKENS} tokens ({reason}); write a shorter one"
        raw = {**state, **update, "query": result.text.strip()[:2000]}
        return {**update, "query": raw["query"], **_failure(raw, ctx, "generate", reason)}
    return {**update, "query": query, "params": params, "error": None}


async def check(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The Cypher guard: parse, refuse anything that is not a bounded read, add or lower the LIMIT."""
    verdict = _access(runtime.context).check(state["query"], state.get("params") or {})
    runtime.context.emit("guard", {"allowed": verdict.allowed, "reasons": verdict.reasons[:10]})
    if not verdict.allowed:
        return _failure(
            state, runtime.context, "guard", "the guard refused it: " + "; ".join(verdict.reasons)
        )
    return {"query": verdict.query, "guard_notes": verdict.reasons, "error": None}


async def preview(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """EXPLAIN the query; above the cost threshold, pause for a human's approval."""
    ctx = runtime.context
    access = _access(ctx)
    try:
        handle, plan = await _on_graph(ctx, state, "graph.explain", access.explain)
    except GraphQueryError as exc:
        return _failure(state, ctx, "explain", f"the database rejected it: {exc}")
    threshold = access.cost_threshold
    update: dict[str, Any] = {"plan": plan.to_dict(), "error": None}
    if plan.estimated_rows <= threshold:
        return update
    decision = await ctx.approve(
        "preview",
        action="cypher.read",
        resource={"graph": handle.name, "query": state["query"], "estimated_rows": plan.estimated_rows},
        reason=(
            f"the query may touch about {plan.estimated_rows:,.0f} rows "
            f"(threshold {threshold:,.0f}): operators {', '.join(plan.operators[:8])}"
        ),
    )
    update["approval"] = decision
    if not decision.get("approved"):
        note = decision.get("note") or "no reason given"
        update.update(
            status="rejected",
            answer=f"The query was not run: {decision.get('decided_by')} rejected it ({note}).\n\n"
            f"Query:\n{state['query']}",
        )
    return update


async def execute(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Run the query read-only (guard again, rate limit, tool policy, server timeout, row cap)."""
    ctx = runtime.context
    access = _access(ctx)
    try:
        _, result = await _on_graph(ctx, state, "graph.query", partial(access.run, ctx.authority))
    except GraphTimeout as exc:
        return _failure(state, ctx, "execute", f"it timed out; write a cheaper query: {exc}")
    except GraphQueryError as exc:
        return _failure(state, ctx, "execute", f"the database rejected it: {exc}")
    return {
        "columns": list(result.columns),
        "rows": [list(r) for r in result.rows],
        "truncated": result.truncated,
        "error": None,
    }


def _rows_answer(columns: list[str], rows: list[list[Any]], truncated: bool) -> tuple[str, list[int]]:
    """A plain answer listing the rows with their citations (when the model's answer cites nothing)."""
    shown = rows[:20]
    lines = [
        ", ".join(
            f"{c}: {json.dumps(v, ensure_ascii=False, default=str)}"
            for c, v in zip(columns, row, strict=False)
        )
        + f" [r{i}]"
        for i, row in enumerate(shown, start=1)
    ]
    more = len(rows) - len(shown)
    head = f"{len(rows)}{'+' if truncated else ''} row{'s' if len(rows) != 1 else ''}:"
    tail = [f"... and {more} more row{'s' if more != 1 else ''}"] if more > 0 else []
    return "\n".join([head, *lines, *tail]), list(range(1, len(shown) + 1))


async def answer(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Answer from the rows, citing them as [rN]; the query is always shown."""
    ctx = runtime.context
    columns, rows, truncated = state.get("columns", []), state.get("rows", []), state.get("truncated", False)
    query = state["query"]
    update: dict[str, Any] = {}
    if not rows:
        text, cited, status = "The graph has no rows that match this question.", [], "no_rows"
    else:
        status = "answered"
        user = load("cypher_answer_user").render(
            question=state["question"],
            query=query,
            columns=columns,
            rows=rows[:PROMPT_ROWS],
            truncated=truncated or len(rows) > PROMPT_ROWS,
        )
        result = await ctx.complete(
            task="cypher.answer",
            messages=[
                {"role": "system", "content": load("cypher_answer_system").render()},
                {"role": "user", "content": user},
            ],
            temperature=0.0,
            max_tokens=ANSWER_MAX_TOKENS,
        )
        update.update(budget_used_usd=result.cost_usd, model=result.model, decision_id=result.decision.id)
        shown = min(len(rows), PROMPT_ROWS)
        cited = sorted({int(n) for n in ROW_CITATION.findall(result.text) if 1 <= int(n) <= shown})
        text = ROW_CITATION.sub(
            lambda m: m.group(0) if 1 <= int(m.group(1)) <= shown else "", result.text
        ).strip()
        if not cited:  # the model's words are not grounded in any row: show the rows themselves
            text, cited = _rows_answer(columns, rows, truncated)
    citations = [{"n": n, "row": rows[n - 1]} for n in cited]
    full = f"{text}\n\nQuery:\n{query}"
    return {
        **update,
        "answer": full,
        "citations": citations,
        "status": status,
        "messages": [{"role": "assistant", "content": full}],
        "turns": [{"question": state["question"], "query": query, "rows": len(rows), "answer": text}],
    }


async def give_up(state: CypherState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """No candidate survived the guard, the database and the repairs: say so, with every reason."""
    failures = state.get("failures", [])
    reasons = "\n".join(f"- attempt {i} ({f['stage']}): {f['reason']}" for i, f in enumerate(failures, 1))
    text = f"I could not write a query for this question that passes the guard and runs.\n{reasons}"
    return {
        "answer": text,
        "status": "unanswered",
        "citations": [],
        "messages": [{"role": "assistant", "content": text}],
    }
