"""Router commands: models, ask, route explain, budgets; `router bench|fit-prompts` (learned routing)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maestro.api.cli.common import (
    JsonOpt,
    TaskOpt,
    TenantOpt,
    app,
    budget_app,
    operator_request,
    read_stdin,
    route_app,
    services_for,
    settings_from_env,
)
from maestro.api.cli.output import emit_json, err_console, progress_bar, reported, write_text

if TYPE_CHECKING:
    from maestro.router.policy import RouteRequest
    from maestro.router.service import ModelRouter


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the catalog: cost per 1M tokens, limits, clearance, health."""
    from maestro.router.factory import load_routing_config

    settings = settings_from_env()
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
        prompt = read_stdin()
    settings = settings_from_env()
    with reported(as_json=as_json):
        router = services_for(settings).router
        request = operator_request(
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


async def _stream_answer(router: ModelRouter, request: RouteRequest, *, echo: bool) -> dict[str, Any]:
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
    prompt = read_stdin()
    settings = settings_from_env()
    with reported(as_json=as_json):
        router = services_for(settings).router  # no model is called: litellm is never imported here
        decision = router.explain(
            operator_request(
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

    settings = settings_from_env()
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

    settings = settings_from_env()
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

    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
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


router_app = typer.Typer(help="Learned routing: fit a per-prompt router, benchmark it.", no_args_is_help=True)
app.add_typer(router_app, name="router")


@router_app.command("bench")
def router_bench(
    data: Annotated[
        Path | None,
        typer.Option(
            help="RouteLLM's routing data, the folder with gsm8k/ and mmlu/ (default ../shared/data/routing)."
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Every MMLU prompt, not the per-subject sample (about 15k prompts to embed).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit the per-prompt router on RouteLLM's GSM8K and MMLU outcomes; measure it on held-out prompts."""
    from maestro.bench.routing import DEFAULT_DATA, bench_routing, report_table

    settings = settings_from_env()
    with reported(as_json=as_json), progress_bar("router bench", quiet=as_json) as bar:
        report = bench_routing(settings, data=data or DEFAULT_DATA, full=full, progress=bar)
    document = report.to_dict()
    if as_json:
        emit_json(document)
        return
    err_console.print(report_table(document))
    for name, target in document["targets"].items():
        mark = "[green]met[/]" if target["met"] else "[red]not met[/]"
        err_console.print(
            f"  {name}: {target['value']:.4f} (target {target['target']}) {mark}", highlight=False
        )
    metrics = document["metrics"]
    err_console.print(
        f"[dim]chosen by CV: {'; '.join(f'{k}: {v}' for k, v in report.chosen.items())} · rule chosen on "
        f"training: {'; '.join(f'{k}: {v}' for k, v in report.rules.items())} · "
        f"{metrics['prompts_embedded']:.0f} prompts embedded in {metrics['embed_s']:.0f}s · "
        f"fitting {metrics['fit_s']:.0f}s · total {metrics['bench_s']:.0f}s[/]",
        highlight=False,
    )


@router_app.command("fit-prompts")
def router_fit_prompts(
    outcomes: Annotated[
        Path, typer.Argument(help='JSON lines: {"prompt", "task", "model", "success"[, "group"]} per item.')
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the prompt router (JSON).")],
    version: Annotated[
        str | None, typer.Option(help="Version shown in decisions (default prompts-<UTC timestamp>).")
    ] = None,
    quality_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Decision rule: keep this share of the best model's success rate (on the outcomes).",
        ),
    ] = 0.95,
    as_json: JsonOpt = False,
) -> None:
    """Fit a per-prompt router from per-item outcomes; point MAESTRO_PROMPT_ROUTER_PATH at the file.

    Per task class it also chooses the decision rule on the outcomes (the weights' floor, or a margin
    below the best predicted model), with each model priced at a typical call in the catalog."""
    from datetime import UTC, datetime

    settings = settings_from_env()
    with reported(as_json=as_json), progress_bar("fitting", quiet=as_json) as bar:
        from maestro.core.errors import ConfigurationError
        from maestro.evals.prompt_fit import TYPICAL_CALL_TOKENS, fit_prompt_router, read_outcomes
        from maestro.retrieval.factory import build_embedder
        from maestro.router.factory import load_routing_config

        rows = read_outcomes(outcomes)
        catalog, _ = load_routing_config(settings)
        unknown = sorted({r.model for r in rows} - set(catalog.deployments))
        if unknown:
            raise ConfigurationError(
                f"{outcomes}: {unknown} are not deployments in the catalog ({settings.catalog_path}); a "
                "prompt router names models as the catalog does"
            )
        embedder = build_embedder(settings)
        task = bar.add_task("embedding prompts", total=len({r.prompt for r in rows}))

        def embed(texts: Sequence[str]) -> list[tuple[float, ...]]:
            vectors: list[tuple[float, ...]] = []
            for start in range(0, len(texts), 256):
                vectors += embedder.embed(texts[start : start + 256])
                bar.update(task, completed=len(vectors))
            return vectors

        fitted = fit_prompt_router(
            rows,
            embed=embed,
            embedder=embedder.name,
            dim=embedder.dim,
            version=version or f"prompts-{datetime.now(UTC):%Y%m%d-%H%M}",
            costs={
                name: d.cost_usd(TYPICAL_CALL_TOKENS[0], TYPICAL_CALL_TOKENS[1])
                for name, d in catalog.deployments.items()
            },
            quality_share=quality_share,
        )
        fitted.router.write(out)
    document: dict[str, Any] = {
        "path": str(out),
        "version": fitted.router.version,
        "task_classes": fitted.summary(),
    }
    if as_json:
        emit_json(document)
        return
    for task_class, summary in document["task_classes"].items():
        rule = summary.get("rule", {"kind": "floor"})
        how = f"margin {rule['margin']:.3f}" if rule["kind"] == "margin" else "the weights' floor"
        err_console.print(
            f"{task_class}: {summary['chosen']} (CV AUC {summary['cv_auc'][summary['chosen']]:.3f}) for "
            f"{', '.join(summary['models'])}; routed by {how}",
            highlight=False,
        )
    err_console.print(
        f"wrote {out} (version {fitted.router.version}); set MAESTRO_PROMPT_ROUTER_PATH to use it"
    )
