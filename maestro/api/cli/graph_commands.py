"""``maestro cypher check`` (the guard on its own: exit 0 allowed, 3 refused) and ``maestro cypher ask``
(the NL->Cypher workcell, one run: exit 0 answered or waiting for approval, 1 failed, 3 refused)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from maestro.api.cli.common import (
    JsonOpt,
    TenantOpt,
    app,
    operator_authority,
    read_stdin,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, reported, write_text

if TYPE_CHECKING:
    from maestro.agents.runtime.store import RunRecord
    from maestro.tools.cypher import GuardResult

cypher_app = typer.Typer(help="Natural language to Cypher and the read-only guard.", no_args_is_help=True)
app.add_typer(cypher_app, name="cypher")


@cypher_app.command("check")
def cypher_check(
    max_hops: Annotated[
        int, typer.Option("--max-hops", min=1, help="Longest variable-length path allowed.")
    ] = 5,
    row_cap: Annotated[
        int, typer.Option("--row-cap", min=1, help="LIMIT appended to, or lowered on, the final RETURN.")
    ] = 1000,
    params: Annotated[
        str | None,
        typer.Option("--params", help='Parameters as a JSON object, e.g. \'{"name": "billing"}\'.'),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the query on stdin: {"allowed", "reasons", "query"}; the (rewritten) query goes to stdout."""
    from maestro.core.errors import Refused
    from maestro.tools.cypher import CypherGuard

    query = read_stdin()
    with reported(as_json=as_json):
        supplied = _parse_params(params)
        result = CypherGuard(max_hops=max_hops, row_cap=row_cap).check(query, supplied)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_result(result)
    if not result.allowed:
        raise typer.Exit(Refused.exit_code)


def _parse_params(text: str | None) -> dict[str, object] | None:
    import json

    from maestro.core.errors import InvalidRequest

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"--params is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"--params must be a JSON object, got {type(value).__name__}")
    return value


def _print_result(result: GuardResult) -> None:
    from rich.markup import escape

    if result.allowed:
        write_text(result.query.rstrip("\n") + "\n")
        err_console.print("[bold green]allowed[/]", highlight=False)
        for note in result.reasons:
            err_console.print(f"  [dim]note:[/] {escape(note)}", highlight=False)
        return
    err_console.print("[bold red]refused[/]", highlight=False)
    for reason in result.reasons:
        err_console.print(f"  - {escape(reason)}", highlight=False)


@cypher_app.command("ask")
def cypher_ask(
    question: Annotated[str, typer.Argument(help="The question ('-' reads stdin).")],
    graph: Annotated[str, typer.Option("--graph", help="The tenant's graph (see `maestro graph list`).")],
    thread: Annotated[str | None, typer.Option(help="Continue this conversation thread.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from a graph: generate Cypher, guard it, preview its cost, run it read-only.

    With --json: the run (id, status, thread_id, cost) with the workcell's output (answer, query, params,
    columns, rows, citations, plan, attempts, failures) under "output". A costly query waits for approval
    (`maestro runs approve RUN`); the command then exits 0 with status "waiting".
    """
    import asyncio

    settings = settings_from_env()
    if question == "-":
        question = read_stdin()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            run = asyncio.run(
                services.runner().start(
                    "cypher",
                    {"question": question, "graph": graph},
                    operator_authority(settings, tenant),
                    thread_id=thread,
                    listener=None if as_json else _progress,
                )
            )
        finally:
            services.close()
    if as_json:
        emit_json(run.to_dict())
    else:
        _print_run(run)
    if run.status == "failed":
        raise typer.Exit(_failed_exit(run))
    if run.status == "rejected":
        raise typer.Exit(3)


def _failed_exit(run: RunRecord) -> int:
    code = (run.error or {}).get("code", "")
    refused = {"policy_denied", "rate_limited", "budget_exceeded", "pii_refused", "cypher_refused", "refused"}
    return 3 if code in refused else 1


def _progress(kind: str, payload: dict[str, Any]) -> None:
    from rich.markup import escape

    if kind == "node":
        err_console.print(f"[dim]· {payload.get('node')}[/]", highlight=False)
    elif kind == "guard" and not payload.get("allowed"):
        reasons = "; ".join(payload.get("reasons") or [])
        err_console.print(f"[yellow]  guard refused: {escape(reasons)}[/]", highlight=False)
    elif kind == "tool" and payload.get("phase") == "error":
        err_console.print(f"[yellow]  {payload.get('tool')}: {escape(str(payload.get('message')))}[/]")
    elif kind == "approval":
        err_console.print(f"[yellow]approval {payload.get('approval_id')} requested[/]", highlight=False)


def _print_run(run: RunRecord) -> None:
    from rich.markup import escape

    out = run.output or {}
    if run.status == "waiting":
        err_console.print(
            f"[yellow]run {run.id} waits for approval {run.approval_id}[/] (the query is costly): "
            f"`maestro runs approve {run.id}` or `maestro runs reject {run.id}`",
            highlight=False,
        )
        return
    if run.status == "failed":
        err = run.error or {}
        err_console.print(f"[red]{err.get('code')}: {escape(str(err.get('message')))}[/]", highlight=False)
        return
    write_text(str(out.get("answer", "")).rstrip("\n") + "\n")
    err_console.print(
        f"[dim]{out.get('status')} · {len(out.get('rows') or [])} row(s) · attempts {out.get('attempts')} · "
        f"{out.get('model') or '-'} · run {run.id} · thread {run.thread_id}[/]",
        highlight=False,
    )
