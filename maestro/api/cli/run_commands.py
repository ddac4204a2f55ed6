"""``maestro run``, ``maestro runs list|show|approve|reject|recover|workcells`` and ``maestro chat``.

Runs execute inline in this process, or on a ``maestro worker`` when MAESTRO_BROKER_URL is set: then
the command enqueues the run and follows its stored events until it ends or waits for an approval.
"""

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
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.agents.runtime.store import RunRecord
    from maestro.api.container import Services

runs_app = typer.Typer(help="Workcell runs: list, inspect, approve or reject.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

RunIdArg = Annotated[str, typer.Argument(help="The run id (run_...).")]


class _Printer:
    """Shows a run's events on stderr as they arrive; model tokens are written as they stream."""

    def __init__(self, *, tokens_to_stdout: bool = False) -> None:
        self.tokens_to_stdout = tokens_to_stdout
        self.streamed: list[str] = []
        self._mid_line = False

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "token":
            text = str(payload.get("text", ""))
            self.streamed.append(text)
            if self.tokens_to_stdout:
                write_text(text)
            else:
                err_console.print(text, end="", markup=False, highlight=False, style="cyan")
            self._mid_line = True
            return
        if self._mid_line:
            self._newline()
        line = _event_line(kind, payload)
        if line is not None:
            err_console.print(line, highlight=False)

    def _newline(self) -> None:
        if self.tokens_to_stdout:
            write_text("\n")
        else:
            err_console.print()
        self._mid_line = False

    def finish(self) -> None:
        if self._mid_line:
            self._newline()


def _event_line(kind: str, payload: dict[str, Any]) -> str | None:
    if kind == "node_start":
        return f"[dim]· {payload['node']}[/]"
    if kind == "model":
        return f"[dim]  model {payload['model']} ({payload['decision_id']})[/]"
    if kind == "tool":
        if payload.get("phase") == "start":
            return f"[dim]  tool {payload['tool']}…[/]"
        outcome = "ok" if payload.get("ok") else f"[red]{(payload.get('error') or {}).get('code')}[/]"
        return f"[dim]  tool {payload['tool']} {outcome} ({payload.get('ms', 0):.0f} ms)[/]"
    if kind == "approval":
        return f"[yellow]approval {payload['approval_id']} requested for {payload['action']}[/]"
    if kind == "error":
        return f"[red]error {payload.get('code')}: {payload.get('message')}[/]"
    return None


async def _advance(
    services: Services, runner: WorkcellRunner, run: RunRecord, printer: _Printer | None
) -> RunRecord:
    """Have the queued run advanced (inline, or by a worker when a broker is set) and show its events."""
    from maestro.workers.dispatch import build_dispatcher, follow_run

    dispatcher = build_dispatcher(services.settings, runner)
    run = await dispatcher.submit(run, listener=printer)
    if dispatcher.mode == "in-process":
        if printer is not None:
            printer.finish()
        return run
    waited, hinted = 0.0, False
    async for event in follow_run(runner.runs, run.id, tenant=run.tenant):
        if event is not None:
            if printer is not None:
                printer(str(event["kind"]), dict(event["payload"]))
            continue
        waited += 0.2
        if waited > 10 and not hinted and runner.runs.get(run.id, tenant=run.tenant).status == "queued":
            err_console.print(f"[yellow]run {run.id} is still queued: is a `maestro worker` running?[/]")
            hinted = True
    if printer is not None:
        printer.finish()
    return runner.runs.get(run.id, tenant=run.tenant)


def _json_object(raw: str, option: str) -> dict[str, Any]:
    from maestro.core.errors import InvalidRequest

    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{option} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{option} must be a JSON object")
    return payload


def reply_text(output: dict[str, Any]) -> str:
    """What a conversation shows of a run's output: ``reply``, else ``answer``, else the JSON."""
    for key in ("reply", "answer"):
        value = output.get(key)
        if isinstance(value, str):
            return value
    return json.dumps(output, indent=2, default=str)


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
    """Run a workcell once, showing its events and tokens live (stderr); a run waiting for approval
    exits 0 with status 'waiting'. With MAESTRO_BROKER_URL the run executes on a `maestro worker`."""
    from maestro.api.cli.common import read_stdin

    settings = settings_from_env()
    with reported(as_json=as_json):
        payload = _json_object(read_stdin() if input == "-" else input, "--input")
        services = services_for(settings)
        try:
            runner = services.runner()
            run = runner.prepare(workcell, payload, operator_authority(settings, tenant), thread_id=thread)
            run = asyncio.run(_advance(services, runner, run, None if as_json else _Printer()))
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
            runner = services.runner()
            run = runner.record_decision(
                run_id, operator_authority(settings, tenant), approve=approve, note=note
            )
            run = asyncio.run(_advance(services, runner, run, None if as_json else _Printer()))
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


@runs_app.command("recover")
def runs_recover(
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            help="Seconds since the run's last update (default: MAESTRO_RUN_DEADLINE_S).",
            min=0,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue runs a dead process left queued or running (in-process mode), from their checkpoints."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        if settings.broker_url:
            from maestro.core.errors import InvalidRequest

            raise InvalidRequest(
                "MAESTRO_BROKER_URL is set: the broker redelivers runs cut short, "
                "`maestro runs recover` is for in-process mode"
            )
        services = services_for(settings)
        try:
            runner = services.runner()
            recovered = asyncio.run(_recover(runner, older_than))
        finally:
            services.close()
    if as_json:
        emit_json({"recovered": [r.to_dict() for r in recovered]})
        return
    if not recovered:
        err_console.print("no run to recover")
    for run in recovered:
        err_console.print(f"{run.id} {run.workcell}: {run.status}", highlight=False)


async def _recover(runner: WorkcellRunner, older_than: float | None) -> list[RunRecord]:
    try:
        return await runner.recover(older_than_s=older_than)
    finally:
        await runner.aclose()


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
    workcell: Annotated[str, typer.Argument(help="The workcell to talk to (e.g. chat, cypher).")] = "chat",
    thread: Annotated[str | None, typer.Option(help="Continue an earlier conversation thread.")] = None,
    input: Annotated[
        str, typer.Option("--input", help='Fields merged into every turn\'s input, e.g. \'{"graph": "g"}\'.')
    ] = "{}",
    tenant: TenantOpt = None,
) -> None:
    """An interactive conversation: one thread, one run per turn. Empty line or Ctrl-D ends it."""
    from rich.prompt import Prompt

    settings = settings_from_env()
    with reported(as_json=False):
        extra = _json_object(input, "--input")
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
                run = runner.prepare(workcell, {**extra, "message": message}, authority, thread_id=thread)
                thread = run.thread_id
                printer = _Printer(tokens_to_stdout=True)
                run = asyncio.run(_advance(services, runner, run, printer))
                if run.status != "succeeded" or run.output is None:
                    _report(run, as_json=False)
                    continue
                reply = reply_text(run.output)
                if reply.strip() != "".join(printer.streamed).strip():  # the streamed text was not the reply
                    write_text(f"{reply}\n")
            if thread:
                err_console.print(
                    f"[dim]thread {thread} (continue with --thread {thread})[/]", highlight=False
                )
        finally:
            services.close()
