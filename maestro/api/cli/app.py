"""The ``maestro`` command line (typer + rich).

Every heavy import (litellm, llama.cpp, SQLAlchemy engines, FastAPI) happens inside the command that
needs it, so ``maestro --help`` answers quickly. Commands build ``Settings`` once and pass it down.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maestro.api.cli.output import emit_json, err_console, reported, write_text

if TYPE_CHECKING:
    from maestro.api.container import Services
    from maestro.core.settings import Settings
    from maestro.router.policy import RouteRequest

app = typer.Typer(
    name="maestro",
    help="Maestro: a cost-aware router on LiteLLM feeding LangGraph workcells, bound to an authority.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
route_app = typer.Typer(help="Routing decisions.", no_args_is_help=True)
budget_app = typer.Typer(help="Monthly budgets per tenant and principal.", no_args_is_help=True)
db_app = typer.Typer(help="The state database.", no_args_is_help=True)
pii_app = typer.Typer(help="PII and secrets.", no_args_is_help=True)
app.add_typer(pii_app, name="pii")
keys_app = typer.Typer(help="API keys (hashed at rest; the key is shown once).", no_args_is_help=True)
ledger_app = typer.Typer(help="The tamper-evident ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(route_app, name="route")
app.add_typer(budget_app, name="budget")
app.add_typer(db_app, name="db")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant (default MAESTRO_DEFAULT_TENANT).")]
TaskOpt = Annotated[str, typer.Option("--task", help="Task class: chat, rag.answer, codegen.edit, ...")]

LOCAL_OPERATOR_SCOPES = frozenset({"router:override", "chat", "budget:admin"})
"""Scopes of the person at the terminal: the CLI runs as the local operator of this machine."""


def _settings() -> Settings:
    from maestro.core.settings import Settings

    return Settings()


def _principal() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:operator"


def _read_stdin_prompt() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.read()


def _request(
    settings: Settings,
    prompt: str,
    *,
    task: str,
    tenant: str | None,
    model: str = "auto",
    reason: str | None = None,
    max_tokens: int | None = None,
) -> RouteRequest:
    from maestro.router.policy import RouteRequest

    return RouteRequest(
        task=task,
        messages=[{"role": "user", "content": prompt}],
        tenant=tenant or settings.default_tenant,
        principal=_principal(),
        scopes=LOCAL_OPERATOR_SCOPES,
        max_tokens=max_tokens,
        model=model,
        override_reason=reason,
        clearance="pii",  # the operator at this machine may see the values the router pseudonymised
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default MAESTRO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MAESTRO_PORT).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) on the embedded defaults."""
    import uvicorn

    from maestro.api.main import create_app

    settings = _settings()
    _configure_logging(settings.log_level)
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    with reported(as_json=False):
        application = create_app(settings)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to the root handler, which redacts PII
    )


def _configure_logging(level: str) -> None:
    """Log to stderr through the PII redaction filter (RELIABILITY #31)."""
    import logging

    from maestro.tools.pii.logredact import install_log_redaction

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the catalog: cost per 1M tokens, limits, clearance, health."""
    from maestro.router.factory import load_routing_config

    settings = _settings()
    with reported(as_json=as_json):
        catalog, _ = load_routing_config(settings)
    rows: list[dict[str, Any]] = []
    for d in catalog.all():
        missing = catalog.credentials_missing(d)
        rows.append(
            {
                "name": d.name,
                "model": d.model,
                "provider": d.provider,
                "input_usd_per_1m": round(d.input_cost_per_token * 1e6, 6),
                "output_usd_per_1m": round(d.output_cost_per_token * 1e6, 6),
                "context_window": d.context_window,
                "max_output_tokens": d.max_output_tokens,
                "supports_tools": d.supports_tools,
                "supports_json_schema": d.supports_json_schema,
                "pii_allowed": d.pii_allowed,
                "region": d.region,
                "tags": list(d.tags),
                "fallbacks": list(d.fallbacks),
                "health": "ready" if missing is None else f"no credentials ({missing})",
            }
        )
    if as_json:
        emit_json({"catalog_version": catalog.version, "models": rows})
        return
    from rich.table import Table

    table = Table(title=f"catalog {catalog.version}")
    for column in ("name", "model", "$/1M in", "$/1M out", "context", "PII", "health"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["name"],
            r["model"],
            f"{r['input_usd_per_1m']:g}",
            f"{r['output_usd_per_1m']:g}",
            f"{r['context_window']:,}",
            "yes" if r["pii_allowed"] else "no",
            r["health"],
        )
    err_console.print(table)


@app.command()
def ask(
    prompt: Annotated[str, typer.Argument(help="The prompt ('-' reads stdin).")],
    task: TaskOpt = "chat",
    model: Annotated[
        str, typer.Option(help="'auto' routes; a catalog name overrides (needs --reason).")
    ] = "auto",
    reason: Annotated[str | None, typer.Option(help="Why the model is overridden (recorded).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Upper bound on generated tokens.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One routed completion, streamed."""
    if prompt == "-":
        prompt = _read_stdin_prompt()
    settings = _settings()
    with reported(as_json=as_json):
        router = _services(settings).router
        request = _request(
            settings, prompt, task=task, tenant=tenant, model=model, reason=reason, max_tokens=max_tokens
        )
        try:
            result = asyncio.run(_stream_answer(router, request, echo=not as_json))
        finally:
            router.close()
    if as_json:
        emit_json(result)
    else:
        err_console.print(
            f"[dim]{result['model']} · {result['usage']['completion_tokens']} tokens · "
            f"${result['cost_usd']:.6f} · {result['decision_id']}[/]",
            highlight=False,
        )


async def _stream_answer(router: object, request: RouteRequest, *, echo: bool) -> dict[str, Any]:
    from maestro.router.service import ModelRouter

    assert isinstance(router, ModelRouter)
    async for event in router.stream(request):
        if event.kind == "delta" and echo:
            write_text(event.text)
        elif event.kind == "end" and event.result is not None:
            if echo:
                write_text("\n")
            return event.result.to_dict()
    raise AssertionError("the router's stream ended without a result")


@route_app.command("explain")
def route_explain(
    task: TaskOpt = "chat",
    tenant: TenantOpt = None,
    model: Annotated[str, typer.Option(help="Explain an override instead of 'auto'.")] = "auto",
    reason: Annotated[str | None, typer.Option(help="Reason for the override.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Upper bound on generated tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide for the prompt on stdin without calling a model; the decision is recorded."""
    prompt = _read_stdin_prompt()
    settings = _settings()
    with reported(as_json=as_json):
        router = _services(settings).router  # no model is called: litellm is never imported here
        decision = router.explain(
            _request(
                settings, prompt, task=task, tenant=tenant, model=model, reason=reason, max_tokens=max_tokens
            )
        )
    document = decision.explain()
    if as_json:
        emit_json(document)
        return
    err_console.print(f"decision {document['decision_id']}: [bold]{document['chosen']}[/] for {task}")
    for c in document["candidates"]:
        mark = "[green]✓[/]" if c["eligible"] else "[red]✗[/]"
        err_console.print(
            f"  {mark} {c['model']:<22} q={c['predicted_quality']:.2f} "
            f"max ${c['est_cost_usd']:.6f}  {'; '.join(c['reasons'])}",
            highlight=False,
        )


@budget_app.command("set")
def budget_set(
    usd: Annotated[float, typer.Option("--usd", min=0, help="Monthly limit in USD.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant whose budget to set.")] = None,
    principal: Annotated[
        str | None, typer.Option(help="Principal (within --tenant) whose budget to set.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a tenant's or a principal's monthly budget."""
    from maestro.router.budget import principal_scope
    from maestro.router.factory import budget_store

    settings = _settings()
    with reported(as_json=as_json):
        budgets = budget_store(settings)
        tenant_id = tenant or settings.default_tenant
        if principal:
            scope_id = principal_scope(tenant_id, principal)
            budgets.set_limit("principal", scope_id, usd)
            status = budgets.status("principal", scope_id)
        else:
            budgets.set_limit("tenant", tenant_id, usd)
            status = budgets.status("tenant", tenant_id)
    _print_status([status], as_json=as_json)


@budget_app.command("show")
def budget_show(
    tenant: Annotated[str | None, typer.Option(help="Tenant to show.")] = None,
    principal: Annotated[str | None, typer.Option(help="Also show this principal's budget.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show this month's limit, spend and reservations."""
    from maestro.router.budget import principal_scope
    from maestro.router.factory import budget_store

    settings = _settings()
    with reported(as_json=as_json):
        budgets = budget_store(settings)
        tenant_id = tenant or settings.default_tenant
        statuses = [budgets.status("tenant", tenant_id)]
        if principal:
            statuses.append(budgets.status("principal", principal_scope(tenant_id, principal)))
    _print_status(statuses, as_json=as_json)


@budget_app.command("reap")
def budget_reap(
    older_than: Annotated[float, typer.Option(help="Minutes a reservation may stay unsettled.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Charge reservations left by crashed processes at their reserved maximum (recorded in the ledger)."""
    from datetime import timedelta

    settings = _settings()
    with reported(as_json=as_json):
        services = _services(settings)
        reaped = services.router.budgets.reap_stale(older_than=timedelta(minutes=older_than))
        for r in reaped:
            services.ledger.append(
                "budget.reaped",
                {"reservation_id": r.id, "charged_nano": r.amount_nano, "principal": r.principal},
                tenant=r.tenant,
            )
    rows = [{"reservation_id": r.id, "tenant": r.tenant, "charged_usd": r.amount_nano / 1e9} for r in reaped]
    if as_json:
        emit_json({"reaped": rows})
    else:
        err_console.print(f"charged {len(rows)} stale reservation(s) at their reserved maximum")


def _print_status(statuses: Sequence[Any], *, as_json: bool) -> None:
    from dataclasses import asdict, is_dataclass

    rows = [asdict(s) for s in statuses if is_dataclass(s) and not isinstance(s, type)]
    if as_json:
        emit_json({"budgets": rows})
        return
    for r in rows:
        err_console.print(
            f"{r['scope_kind']} {r['scope_id']} {r['period']}: spent ${r['spent_usd']:.4f} + reserved "
            f"${r['reserved_usd']:.4f} of ${r['limit_usd']:.2f} (remaining ${r['remaining_usd']:.4f})",
            highlight=False,
        )


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Option(help="Principal name; created with --role if it does not exist.")],
    tenant: TenantOpt = None,
    role: Annotated[
        list[str] | None, typer.Option(help="Role(s) for a new principal (admin, engineer, ...).")
    ] = None,
    kind: Annotated[str, typer.Option(help="user or bot (for a new principal).")] = "user",
    scope: Annotated[list[str] | None, typer.Option(help="Narrow the key to these scopes.")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 with a time zone.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for a principal (and the principal, if new)."""
    from datetime import datetime

    from maestro.core.errors import InvalidRequest, NotFound
    from maestro.core.principals import check_kind

    settings = _settings()
    with reported(as_json=as_json):
        services = _services(settings)
        tenant_id = tenant or settings.default_tenant
        try:
            who = services.principals.get_by_name(tenant_id, principal)
        except NotFound:
            if not role:
                raise InvalidRequest(
                    f"principal '{principal}' does not exist in tenant '{tenant_id}': "
                    "pass --role to create it"
                ) from None
            who = services.principals.create(tenant_id, principal, roles=role, kind=check_kind(kind))
        try:
            expires_at = datetime.fromisoformat(expires) if expires else None
        except ValueError:
            raise InvalidRequest(f"--expires {expires!r} is not an ISO 8601 date-time") from None
        plaintext, info = services.api_keys.create(
            who.id, name, scopes=scope, expires_at=expires_at, tenant=tenant_id
        )
    if as_json:
        emit_json({"key": plaintext, **info.to_dict()})
        return
    write_text(plaintext + "\n")
    err_console.print(f"key {info.display} for {tenant_id}/{principal}: store it now, it is not shown again")


@keys_app.command("list")
def keys_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List a tenant's keys (prefixes only)."""
    settings = _settings()
    with reported(as_json=as_json):
        keys = _services(settings).api_keys.list(tenant or settings.default_tenant)
    rows = [k.to_dict() for k in keys]
    if as_json:
        emit_json({"keys": rows})
        return
    for r in rows:
        state = "revoked" if r.get("revoked_at") else "active"
        err_console.print(f"{r['id']}  {r['prefix']}  {r['name']}  principal={r['principal_id']}  {state}")


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id, prefix, or mk_<prefix>.")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key (idempotent)."""
    settings = _settings()
    with reported(as_json=as_json):
        info = _services(settings).api_keys.revoke(key, tenant=tenant or settings.default_tenant)
    if as_json:
        emit_json(info.to_dict())
    else:
        err_console.print(f"revoked {info.display}")


@pii_app.command("scan")
def pii_scan(
    redact: Annotated[bool, typer.Option("--redact", help="Print the redacted text (human output).")] = False,
    mode: Annotated[str, typer.Option(help="redact, mask, hash or pseudonymize.")] = "redact",
    fast: Annotated[bool, typer.Option(help="Patterns only, no NER model (faster, fewer names).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scan stdin for PII and secrets: {"entities": [{type, start, end, score}], "redacted": str}."""
    from maestro.tools.pii import PIIGuard

    text = _read_stdin_prompt()
    with reported(as_json=as_json):
        result = PIIGuard(ner=not fast).redact(text, mode)  # type: ignore[arg-type]
    document = {"entities": [f.to_dict() for f in result.findings], "redacted": result.text}
    if as_json:
        emit_json(document)
        return
    if redact:
        write_text(result.text)
    for f in result.findings:
        err_console.print(f"{f.type:<24} {f.start:>6}-{f.end:<6} score {f.score:.2f}", highlight=False)
    if not result.findings:
        err_console.print("no PII found")


@ledger_app.command("verify")
def ledger_verify(
    bundle: Annotated[
        str | None, typer.Option(help="Verify an exported bundle file instead of the DB.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every entry and signed head; name the first bad index (exit 1 when not ok)."""
    import json

    from maestro.core.errors import InvalidRequest
    from maestro.core.ledger import verify_bundle

    settings = _settings()
    with reported(as_json=as_json):
        if bundle:
            try:
                document = json.loads(Path(bundle).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidRequest(f"cannot read the bundle {bundle}: {exc}") from None
            report = verify_bundle(document)
        else:
            report = _services(settings).ledger.verify()
    if as_json:
        emit_json(report.to_dict())
    else:
        state = "[green]ok[/]" if report.ok else f"[red]BAD at index {report.first_bad_index}[/]"
        err_console.print(f"ledger {state}: {report.entries} entries, head {report.head or '-'}")
        if not report.ok:
            err_console.print(report.reason, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("head")
def ledger_head(as_json: JsonOpt = False) -> None:
    """The newest signed tree head."""
    settings = _settings()
    with reported(as_json=as_json):
        head = _services(settings).ledger.head()
    document = head.to_dict() if head is not None else None
    if as_json:
        emit_json(document)
    elif head is None:
        err_console.print("the ledger is empty")
    else:
        err_console.print(
            f"size {head.tree_size} root {head.root_hash} signed {head.signed_at} by {head.key_id}"
        )


@ledger_app.command("export")
def ledger_export(
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed evidence bundle.")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries (with proofs).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a signed evidence bundle (entries, proofs, heads, public key) that verifies on its own."""
    settings = _settings()
    with reported(as_json=as_json):
        bundle = _services(settings).ledger.export(out, tenant=tenant)
    summary = {"out": str(out), "entries": len(bundle["entries"]), "head": bundle["head"]}
    if as_json:
        emit_json(summary)
    else:
        err_console.print(f"wrote {summary['entries']} entries to {out}")


def _services(settings: Settings) -> Services:
    from maestro.api.container import build_services

    return build_services(settings)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the state DB to the newest schema."""
    from maestro.router.factory import open_state_db

    settings = _settings()
    with reported(as_json=False):
        open_state_db(settings).dispose()
    err_console.print(f"state DB at head: {settings.resolved_database_url}")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark: router.")],
    as_json: JsonOpt = False,
    quick: Annotated[bool, typer.Option(help="Fewer iterations (smoke run).")] = False,
) -> None:
    """Run a benchmark that measures a baseline in the same run and prints ratios."""
    from maestro.bench import run_bench

    with reported(as_json=as_json):
        report = run_bench(name, settings=_settings(), quick=quick)
    if as_json:
        emit_json(report)
        return
    err_console.print_json(data=report)


@app.command()
def version() -> None:
    """Print Maestro's version."""
    from maestro import __version__

    write_text(__version__ + "\n")


def main() -> None:
    """Console-script entry point."""
    app()
