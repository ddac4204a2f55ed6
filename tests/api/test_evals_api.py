"""``/v1/evals``: eval runs, results and reports over HTTP, for the caller's tenant (``eval:report``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from maestro.api.main import create_app
from maestro.core.settings import Settings
from maestro.evals.store import EvalStore
from maestro.evals.types import ItemOutcome
from maestro.router.testing import ScriptedLLM


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, client=ScriptedLLM(["unused"]))) as test_client:
        yield test_client


def _key(client: TestClient, tenant: str, name: str, roles: list[str]) -> dict[str, str]:
    services = client.app.state.services  # type: ignore[attr-defined]
    principal = services.principals.create(tenant, name, roles=roles, kind="user")
    plaintext, _ = services.api_keys.create(principal.id, "test", tenant=tenant)
    return {"Authorization": f"Bearer {plaintext}"}


def _run(client: TestClient, tenant: str, scores: list[float | None]) -> str:
    store = EvalStore(client.app.state.services.engine)  # type: ignore[attr-defined]
    run = store.create_run(
        tenant=tenant, suite="code", models=["m"], datasets={"humaneval": {}}, started_by="x"
    )
    for n, score in enumerate(scores):
        store.record(
            run.id,
            dataset="humaneval",
            item_id=f"i{n}",
            model="m",
            task_class="codegen.edit",
            outcome=ItemOutcome(score),
        )
    return store.finish(tenant, run.id, "finished").id


def test_ml_ops_reads_runs_results_and_reports_of_their_tenant_only(client: TestClient) -> None:
    run_id = _run(client, "acme", [1.0, 0.0, None, 1.0])
    other = _run(client, "globex", [1.0])
    ops = _key(client, "acme", "ops", ["mlops"])

    listed = client.get("/v1/evals/runs", headers=ops).json()["runs"]
    assert [r["id"] for r in listed] == [run_id]
    detail = client.get(f"/v1/evals/runs/{run_id}", headers=ops).json()
    assert len(detail["results"]) == 4 and detail["results"][2]["score"] is None
    report = client.get(f"/v1/evals/runs/{run_id}/report", headers=ops).json()
    (line,) = report["lines"]
    assert line["quality"]["samples"] == 3 and line["unmeasured"] == 1
    assert line["quality"]["mean"] == pytest.approx(2 / 3)
    page = client.get(f"/v1/evals/runs/{run_id}/report.html", headers=ops)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text

    assert client.get(f"/v1/evals/runs/{other}", headers=ops).status_code == 404  # no existence oracle
    assert client.get(f"/v1/evals/runs/{other}/report.html", headers=ops).status_code == 404
    viewer = _key(client, "acme", "viewer", ["viewer"])
    assert client.get("/v1/evals/runs", headers=viewer).status_code == 403
    assert client.get("/v1/evals/runs").status_code == 401
    assert client.get("/v1/evals/runs/bad%20id", headers=ops).status_code == 422
