"""``/v1/evals``: eval runs, their per-item results and reports, for the caller's tenant (``eval:report``).

Read-only: running evals and proposing weights are ML ops' commands (``maestro eval ...``) and the weekly
schedule; approving a weights PR goes through the PR review (``eval:approve``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from maestro.api.deps import CurrentAuthority, ServicesDep

router = APIRouter(prefix="/v1/evals", tags=["evals"])

RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such eval run in this tenant"}}


def _store(services: Any, authority: Any, run_id: str | None = None) -> Any:
    from maestro.evals.store import EvalStore

    resource = {"kind": "eval_run", "tenant": authority.tenant}
    if run_id is not None:
        resource["id"] = run_id
    services.authorizer.authorize(authority, "eval.report", resource)
    return EvalStore(services.engine)


@router.get("/runs")
def list_runs(
    services: ServicesDep,
    authority: CurrentAuthority,
    suite: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The tenant's eval runs, newest first."""
    runs = _store(services, authority).list_runs(authority.tenant, suite=suite, limit=limit)
    return {"runs": [run.to_dict() for run in runs]}


@router.get("/runs/{run_id}", responses=_NOT_FOUND)
def get_run(run_id: RunId, services: ServicesDep, authority: CurrentAuthority) -> dict[str, Any]:
    """One run with its per-item results (another tenant's run is "not found")."""
    store = _store(services, authority, run_id)
    run = store.get_run(authority.tenant, run_id)
    return {"run": run.to_dict(), "results": [r.to_dict() for r in store.results(authority.tenant, run_id)]}


def _report(run_id: str, services: Any, authority: Any) -> Any:
    from maestro.evals.report import report_for

    store = _store(services, authority, run_id)
    return report_for(store, authority.tenant, store.get_run(authority.tenant, run_id))


@router.get("/runs/{run_id}/report", responses=_NOT_FOUND)
def get_report(run_id: RunId, services: ServicesDep, authority: CurrentAuthority) -> dict[str, Any]:
    """The report as JSON: per task class and model, quality with its interval, cost, change, frontier."""
    result: dict[str, Any] = _report(run_id, services, authority).to_dict()
    return result


_HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "the report page", "content": {"text/html": {"schema": {"type": "string"}}}},
    **_NOT_FOUND,
}


# errors stay JSON (the default response class); only the page itself is text/html
@router.get("/runs/{run_id}/report.html", response_model=None, responses=_HTML)
def get_report_html(run_id: RunId, services: ServicesDep, authority: CurrentAuthority) -> HTMLResponse:
    """The self-contained HTML report (charts inline)."""
    return HTMLResponse(_report(run_id, services, authority).html())
