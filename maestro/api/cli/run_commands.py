"""``maestro run``, ``maestro runs list|show|approve|reject`` and ``maestro chat``."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maestro.api.cli.common import (
    JsonOpt,
    TenantOpt,
    app,
    operator_authority,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, reported, write_text

if TYPE_CHECKING:
    from maestro.agents.runtime.store import RunRecord

runs_app = typer.Typer(help="Workcell runs: list, inspect, approve or reject.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

RunIdArg = Annotated[str, typer.Argument(help="The run id (run_...).")]


def _printer(as_json: bool) -> Any:
    if as_json:
        return None

    def show(kind: str, payload: dict[str, Any]) -> None:
        if kind == "node":
            err_console.print(f"[dim]· {payload['node']}[/]", highlight=False)
        elif kind == "model":
            err_console.print(
                f"[dim]  model {payload['model']} ({payload['decision_id']})[/]", highlight=False
            )
        elif kind == "approval":
            err_console.print(
                f"[yellow]approval {payload['approval_id']} requested for {payload['action']}[/]",
                highlight=False,
            )
        elif kind == "error":
            err_console.print(
                f"[red]error {payload.get('code')}: {payload.get('message')}[/]", highlight=False
            )

    return show


def _report(run: RunRecord, *, as_json: bool) -> None:
    if as_json:
        emit_json(run.to_dict())
        return
    colour = {"succeeded": "green", "waiting": "yellow", "failed": "red", "rejected": "red"}.get(
        run.status, "white"
    )
    err_console.print(
        f"run {run.id} [{colour}]{run.status}[/] ({run.workcell}, ${run.cost_usd:.6f})", highlight=False
    )
    if run.status == "waiting":
        err_console.print(
            f"waiting for approval {run.approval_id}: "
            f"`maestro runs approve {run.id}` or `maestro runs reject {run.id}`"
        )
    if run.output is not None:
        write_text(json.dumps(run.output, indent=2) + "\n")
    if run.error is not None:
        err_console.print(f"[red]{run.error.get('code')}: {run.error.get('message')}[/]", highlight=False)


def _exit_for(run: RunRecord) -> None:
    if run.status == "failed":
        raise typer.Exit(1)
    if run.status == "rejected":
        raise typer.Exit(3)


@app.command("run")
def run_workcell(
    workcell: Annotated[str, typer.Argument(help="Workcell name (see `maestro runs workcells`).")],
    input: Annotated[str, typer.Option("--input", help="The run's input as JSON ('-' reads stdin).")] = "{}",
    thread: Annotated[str | None, typer.Option(help="Continue this conversation thread.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a workcell once; streams events; a run waiting for approval exits 0 with status 'waiting'."""
    from maestro.api.cli.common import read_stdin
    from maestro.core.errors import InvalidRequest

    settings = settings_from_env()
    with reported(as_json=as_json):
        raw = read_stdin() if input == "-" else input
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"--input is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise InvalidRequest("--input must be a JSON object")
        services = services_for(settings)
        try:
            runner = services.runner()
            authority = operator_authority(settings, tenant)
            run = asyncio.run(
                runner.start(workcell, payload, authority, thread_id=thread, listener=_printer(as_json))
            )
        finally:
            services.close()
    _report(run, as_json=as_json)
    _exit_for(run)


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option(help="Only runs in this status (e.g. waiting).")] = None,
    tenant: TenantOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs of the tenant, newest first; 'waiting' ones have a pending approval."""
    from maestro.agents.runtime.store import RunStore
    from maestro.router.factory import open_state_db

    settings = settings_from_env()
    with reported(as_json=as_json):
        runs = RunStore(open_state_db(settings)).list(
            tenant=tenant or settings.default_tenant, status=status, limit=limit
        )
    if as_json:
        emit_json({"runs": [r.to_dict() for r in runs]})
        return
    for r in runs:
        pending = f" approval {r.approval_id}" if r.status == "waiting" else ""
        err_console.print(
            f"{r.id}  {r.workcell:<10} {r.status:<9} {r.created_at:%Y-%m-%d %H:%M}{pending}", highlight=False
        )


@runs_app.command("show")
def runs_show(run_id: RunIdArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A run and its events."""
    from maestro.agents.runtime.store import RunStore
    from maestro.router.factory import open_state_db

    settings = settings_from_env()
    with reported(as_json=as_json):
        store = RunStore(open_state_db(settings))
        run = store.get(run_id, tenant=tenant or settings.default_tenant)
        events = store.events(run.id)
    if as_json:
        emit_json({**run.to_dict(), "events": events})
        return
    _report(run, as_json=False)
    for e in events:
        err_console.print(f"  {e['seq']:>3} {e['kind']:<9} {json.dumps(e['payload'])[:100]}", highlight=False)


def _decide(run_id: str, *, approve: bool, note: str | None, tenant: str | None, as_json: bool) -> None:
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            run = asyncio.run(
                services.runner().decide(
                    run_id,
                    operator_authority(settings, tenant),
                    approve=approve,
                    note=note,
                    listener=_printer(as_json),
                )
            )
        finally:
            services.close()
    _report(run, as_json=as_json)
    if run.status == "failed":
        raise typer.Exit(1)


NoteOpt = Annotated[str | None, typer.Option(help="Why (recorded with the decision).")]


@runs_app.command("approve")
def runs_approve(
    run_id: RunIdArg, note: NoteOpt = None, tenant: TenantOpt = None, as_json: JsonOpt = False
) -> None:
    """Grant the run's pending approval and resume it."""
    _decide(run_id, approve=True, note=note, tenant=tenant, as_json=as_json)


@runs_app.command("reject")
def runs_reject(
    run_id: RunIdArg, note: NoteOpt = None, tenant: TenantOpt = None, as_json: JsonOpt = False
) -> None:
    """Refuse the run's pending approval; the run ends 'rejected' without acting."""
    _decide(run_id, approve=False, note=note, tenant=tenant, as_json=as_json)


@runs_app.command("workcells")
def runs_workcells(as_json: JsonOpt = False) -> None:
    """The workcells this installation knows (entry points ``maestro.workcells``)."""
    from maestro.agents.runtime.registry import workcells

    with reported(as_json=as_json):
        found = workcells()
    rows = [{"name": w.name, "description": w.description, "action": w.action} for w in found.values()]
    if as_json:
        emit_json({"workcells": rows})
        return
    for row in rows:
        err_console.print(f"{row['name']:<12} {row['description']}", highlight=False)


@app.command("chat")
def chat(
    workcell: Annotated[str, typer.Argument(help="The workcell to talk to (e.g. chat).")] = "chat",
    thread: Annotated[str | None, typer.Option(help="Continue an earlier conversation thread.")] = None,
    tenant: TenantOpt = None,
) -> None:
    """An interactive conversation: one thread, one run per turn. Empty line or Ctrl-D ends it."""
    from rich.prompt import Prompt

    settings = settings_from_env()
    with reported(as_json=False):
        services = services_for(settings)
        try:
            runner = services.runner()
            authority = operator_authority(settings, tenant)
            err_console.print(f"[bold]{workcell}[/] — empty line to quit", highlight=False)
            while True:
                try:
                    message = Prompt.ask(
                        "[bold cyan]you[/]", console=err_console, default="", show_default=False
                    )
                except (EOFError, KeyboardInterrupt):
                    break
                if not message.strip():
                    break
                run = asyncio.run(runner.start(workcell, {"message": message}, authority, thread_id=thread))
                thread = run.thread_id
                if run.status != "succeeded" or run.output is None:
                    _report(run, as_json=False)
                    continue
                write_text(f"{run.output.get('reply', json.dumps(run.output))}\n")
            if thread:
                err_console.print(
                    f"[dim]thread {thread} (continue with --thread {thread})[/]", highlight=False
                )
        finally:
            services.close()
