"""``maestro eval run|report|propose-weights|weekly|runs|datasets``: the eval harness for ML ops.

The harness acts as its own bot principal (``Services.eval_authority``: ``eval:run``, never
``eval:approve``), so the weights PRs it opens need a human with ``eval:approve`` to merge. Results,
reports and proposals are per tenant (``--tenant``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from maestro.api.cli.common import JsonOpt, TenantOpt, app, services_for, settings_from_env
from maestro.api.cli.output import emit_json, err_console, progress_bar, reported, write_text
from maestro.api.cli.router_commands import router_app
from maestro.api.eval_cycle import report_dir, run_cycle, select_models

if TYPE_CHECKING:
    from maestro.evals.propose import Proposal
    from maestro.evals.runner import Progress

eval_app = typer.Typer(
    help="Evals: run suites per model, report, and propose routing weights.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")

SuiteOpt = Annotated[str, typer.Option("--suite", help="A suite or dataset name (`maestro eval datasets`).")]
ModelsOpt = Annotated[
    str | None,
    typer.Option("--models", help="Comma-separated deployments (default MAESTRO_EVAL_MODELS or all)."),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Items per dataset (default: all).")]


@eval_app.command("datasets")
def eval_datasets(as_json: JsonOpt = False) -> None:
    """The versioned datasets and suites, with each file's current hash checked against the manifest."""
    from maestro.evals.data import content_sha256, load_manifest

    with reported(as_json=as_json):
        manifest = load_manifest()
        rows = []
        for ds in manifest.datasets.values():
            current = content_sha256(ds)
            rows.append(
                {
                    "name": ds.name,
                    "task_class": ds.task_class,
                    "kind": ds.kind,
                    "version": ds.version,
                    "items": ds.items,
                    "sha256": ds.sha256,
                    "current_sha256": current,
                    "ok": current == ds.sha256,
                    "description": ds.description,
                }
            )
    if as_json:
        emit_json(
            {
                "version": manifest.version,
                "datasets": rows,
                "suites": {k: list(v) for k, v in manifest.suites.items()},
            }
        )
        return
    for row in rows:
        mark = "[green]ok[/]" if row["ok"] else "[red]CHANGED[/]"
        err_console.print(
            f"[bold]{row['name']}[/]  {row['task_class']}  v{row['version']}  {row['items']} items  {mark}  "
            f"[dim]{escape(str(row['description']))}[/]",
            highlight=False,
        )
    for suite, names in manifest.suites.items():
        err_console.print(f"suite [bold]{suite}[/]: {', '.join(names)}", highlight=False)


@eval_app.command("run")
def eval_run(
    suite: SuiteOpt = "weekly",
    models: ModelsOpt = None,
    limit: LimitOpt = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, help="Items at once.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Resume an interrupted eval run by id.")
    ] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every (item, model) pair of a suite through its real path, the route pinned to each model."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            runner = services.eval_runner(services.eval_authority(tenant))
            chosen = select_models(services, settings, models) if resume is None else []
            with _bar(as_json) as progress:
                summary = asyncio.run(
                    runner.run(
                        suite,
                        chosen,
                        run_id=resume,
                        limit=limit if limit is not None else settings.eval_limit,
                        concurrency=concurrency or settings.eval_concurrency,
                        progress=progress,
                    )
                )
            rows = runner.store.results(runner.env.authority.tenant, summary.run.id)
        finally:
            services.close()
    if as_json:
        emit_json({**summary.to_dict(), "results": len(rows)})
        return
    err_console.print(
        f"eval run [bold]{summary.run.id}[/] {summary.run.status}: {summary.pairs} pairs "
        f"({summary.ran} run now, {summary.unmeasured} unmeasured); "
        f"`maestro eval report --run {summary.run.id}`",
        highlight=False,
    )


@eval_app.command("runs")
def eval_runs(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's eval runs, newest first."""
    from maestro.evals.store import EvalStore

    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            found = EvalStore(services.engine).list_runs(services.eval_authority(tenant).tenant)
        finally:
            services.close()
    if as_json:
        emit_json({"runs": [r.to_dict() for r in found]})
        return
    for run in found:
        err_console.print(
            f"[bold]{run.id}[/]  {run.status:<8}  {run.suite}  {', '.join(run.models)}  "
            f"[dim]{run.started_at:%Y-%m-%d %H:%M}[/]",
            highlight=False,
        )


@eval_app.command("report")
def eval_report(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Eval run id (default: the latest finished).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Directory for the .md and .html.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the run's report (Markdown + self-contained HTML) and print the Markdown."""
    from maestro.evals.report import report_for
    from maestro.evals.store import EvalStore

    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            store = EvalStore(services.engine)
            t = services.eval_authority(tenant).tenant
            report = report_for(store, t, store.run_or_latest(t, run_id))
            md, page = report.write(out or report_dir(settings))
        finally:
            services.close()
    if as_json:
        emit_json({**report.to_dict(), "markdown": str(md), "html": str(page)})
        return
    write_text(report.markdown())
    err_console.print(f"wrote {md} and {page}", highlight=False)


@eval_app.command("propose-weights")
def eval_propose_weights(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Eval run id (default: the latest finished).")
    ] = None,
    open_pr: Annotated[bool, typer.Option("--open-pr", help="Open (or update) the weights PR.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff; write nothing.")] = False,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """New weights from the eval results when they moved beyond their intervals: a PR or the local file."""
    from maestro.evals.propose import WeightsTarget, propose_weights
    from maestro.evals.store import EvalStore

    if open_pr and dry_run:
        raise typer.BadParameter("--open-pr and --dry-run exclude each other")
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            authority = services.eval_authority(tenant)
            store = EvalStore(services.engine)
            run = store.run_or_latest(authority.tenant, run_id)
            proposal = propose_weights(
                settings=settings,
                authority=authority,
                catalog=services.router.catalog,
                rows=store.results(authority.tenant, run.id),
                eval_runs=[run.id],
                target=WeightsTarget.from_settings(settings),
                dry_run=dry_run,
                open_pr=open_pr,
                pr_tools=services.repo_tools(),
                record=services.record,
                min_samples=settings.eval_min_samples,
            )
        finally:
            services.close()
    _print_proposal(proposal, as_json)


@eval_app.command("weekly")
def eval_weekly(
    suite: Annotated[str | None, typer.Option("--suite", help="Default MAESTRO_EVAL_SUITE.")] = None,
    models: ModelsOpt = None,
    limit: LimitOpt = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One weekly cycle now: run the suite, write the report, propose the weights (what the schedule runs)."""
    settings = settings_from_env()
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            with _bar(as_json) as progress:
                result = asyncio.run(
                    run_cycle(
                        services, settings, tenant, suite=suite, models=models, limit=limit, progress=progress
                    )
                )
        finally:
            services.close()
    if as_json:
        emit_json(result.to_dict())
        return
    err_console.print(f"report: {result.report_md} and {result.report_html}", highlight=False)
    if result.regressions:
        err_console.print(f"[red]regressions[/]: {', '.join(result.regressions)}", highlight=False)
    if result.proposal is not None:
        _print_proposal(result.proposal, False)


@router_app.command("fit")
def router_fit(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Eval run id (default: the latest finished).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Weights file to write (default MAESTRO_WEIGHTS_PATH).")
    ] = None,
    outcomes: Annotated[
        Path | None,
        typer.Option(
            "--outcomes", help="Also write per-prompt outcomes (JSON lines) for `maestro router fit-prompts`."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff; write nothing.")] = False,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn an eval run's per-item outcomes into routing weights (every measured pair re-estimated).

    Unlike `maestro eval propose-weights`, nothing is held back as noise: this is the direct fit, for a
    first measurement or a deliberate refit. Weights PRs go through `propose-weights --open-pr`."""
    import difflib
    import json

    from maestro.evals.data import load_items, load_manifest
    from maestro.evals.fit import compare, fit_weights, item_prompt, prompt_outcomes
    from maestro.evals.store import EvalStore
    from maestro.router.weights import dump_weights, load_weights

    settings = settings_from_env()
    target = out or settings.weights_path
    with reported(as_json=as_json):
        services = services_for(settings)
        try:
            t = services.eval_authority(tenant).tenant
            store = EvalStore(services.engine)
            run = store.run_or_latest(t, run_id)
            rows = store.results(t, run.id)
            known = set(services.router.catalog.deployments)
        finally:
            services.close()
        current = load_weights(target, known_models=known)
        fitted = fit_weights(
            current,
            rows,
            version=f"{run.finished_at or run.started_at:%Y-%m-%d}.{run.id[-10:]}",
            known_models=known,
        )
        old_text, new_text = target.read_text(encoding="utf-8"), dump_weights(fitted)
        changes = compare(current, fitted)
        if not dry_run:
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(new_text, encoding="utf-8")
            tmp.replace(target)
        written_outcomes = 0
        if outcomes is not None:
            manifest = load_manifest()
            prompts = {
                (name, item.id): item_prompt(item.data)
                for name in {r.dataset for r in rows}
                if name in manifest.datasets
                for item in load_items(manifest.datasets[name])
            }
            lines = prompt_outcomes(rows, prompts)
            outcomes.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
            written_outcomes = len(lines)
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), str(target), str(target)
        )
    )
    if as_json:
        emit_json(
            {
                "eval_run": run.id,
                "weights": str(target),
                "version": fitted.version,
                "written": not dry_run,
                "changes": [c.to_dict() for c in changes],
                "diff": diff,
                "outcomes": {"path": str(outcomes), "lines": written_outcomes} if outcomes else None,
            }
        )
        return
    write_text(diff)
    err_console.print(
        f"{'would write' if dry_run else 'wrote'} {target} (version {fitted.version}, "
        f"{len(changes)} estimate(s) changed)"
        + (f"; {written_outcomes} outcomes in {outcomes}" if outcomes else ""),
        highlight=False,
    )


def _print_proposal(proposal: Proposal, as_json: bool) -> None:
    if as_json:
        emit_json(proposal.to_dict())
        return
    for change in proposal.changes:
        tag = "[bold green]change[/]" if change.significant else "[dim]noise[/]"
        err_console.print(
            f"{tag}  {change.task} / {change.model}: {change.old.quality:.3f} ({change.old.samples}) -> "
            f"{change.new.quality:.3f} ({change.new.samples})  [dim]{escape(change.why)}[/]",
            highlight=False,
        )
    for impact in proposal.impacts:
        if impact.moved:
            err_console.print(
                f"routes {impact.task}: {impact.old_model} -> {impact.new_model}"
                + (f" ({impact.cost_change:+.1%} per call)" if impact.cost_change is not None else ""),
                highlight=False,
            )
    for note in proposal.notes:
        err_console.print(note, highlight=False)
    if proposal.changed and proposal.pr is None and proposal.written is None:
        write_text(proposal.diff)
    if proposal.pr is not None:
        err_console.print(
            f"weights PR [bold]{proposal.pr['id']}[/] ({proposal.pr['branch']})", highlight=False
        )
    if proposal.written is not None:
        err_console.print(f"wrote {proposal.written}", highlight=False)


@contextmanager
def _bar(as_json: bool) -> Iterator[Progress]:
    bar = progress_bar("eval", quiet=as_json)
    task = bar.add_task("", total=None)

    def progress(label: str, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, description=label)

    with bar:
        yield progress
