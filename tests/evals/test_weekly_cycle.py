"""The weekly loop end to end: eval -> report -> weights PR -> human merge -> the router follows.

Three scripted deployments of different quality and price answer HumanEval through the real path (the
router with the route pinned per model, the sandbox running the tests); only the LLM is fake. The
weights live in a git repository (a local bare remote) whose ``main`` has hand-set priors saying the
cheap model is not good enough for ``codegen.edit``. The cycle must measure that it is, open a labelled
PR through the git backend that moves ``codegen.edit`` to it, refuse the bot and a merger without
``eval:approve``, and - after a human with ``eval:approve`` merges it - a router built on the merged
file routes ``codegen.edit`` to the cheap model. A cycle whose numbers move within the intervals opens
no PR; a second cycle before the merge updates the open PR instead of opening another.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro.api.container import Services, build_services
from maestro.api.eval_cycle import run_cycle
from maestro.core.authority import Authority, Principal
from maestro.core.errors import PolicyDenied
from maestro.core.roles import scopes_for
from maestro.core.settings import Settings
from maestro.evals.humaneval import load_problems
from maestro.evals.store import EvalStore
from maestro.router.policy import RouteRequest
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall
from maestro.tools.prs.store import PRStore

CATALOG = """
version: 1
deployments:
  - name: budget
    model: openai/budget-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.00000005
    output_cost_per_token: 0.0000001
    context_window: 16000
    max_output_tokens: 4000
  - name: cheap
    model: openai/cheap-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.0000001
    output_cost_per_token: 0.0000004
    context_window: 16000
    max_output_tokens: 4000
  - name: pricey
    model: openai/pricey-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.00001
    output_cost_per_token: 0.00003
    context_window: 100000
    max_output_tokens: 8000
"""

PRIORS = """\
version: "priors-1"
prior: 0.5
task_classes:
  chat:
    floor: 0.30
    models:
      cheap: {quality: 0.60, samples: 0, interval: [0.30, 0.90]}
  codegen.edit:
    floor: 0.70
    models:
      budget: {quality: 0.40, samples: 0, interval: [0.10, 0.70]}
      cheap: {quality: 0.50, samples: 0, interval: [0.20, 0.80]}
      pricey: {quality: 0.90, samples: 0, interval: [0.70, 0.99]}
"""

LIMIT = 12
TENANT = "acme"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def weights_remote(tmp_path: Path) -> Path:
    """The deployment's config repository: ``weights.yaml`` with hand-set priors on ``main``."""
    src = tmp_path / "config-src"
    src.mkdir()
    (src / "weights.yaml").write_text(PRIORS)
    _git("init", "-q", "-b", "main", cwd=src)
    _git("add", "-A", cwd=src)
    _git("-c", "user.name=ops", "-c", "user.email=ops@example.com", "commit", "-qm", "priors", cwd=src)
    bare = tmp_path / "config.git"
    _git("clone", "-q", "--bare", str(src), str(bare), cwd=tmp_path)
    return bare.resolve()


class Models:
    """Scripted deployments: ``pricey`` always right, ``cheap`` right except on ``misses``, ``budget``
    never right (it answers ``pass``). Right = the problem's canonical solution."""

    def __init__(self) -> None:
        # found by the function's name: the router's PII filter may rewrite parts of the docstring
        self.problems = {
            p["entry_point"]: (tid, p["canonical_solution"]) for tid, p in load_problems().items()
        }
        self.misses: set[str] = {"HumanEval/100"}
        self.calls: dict[str, int] = {}

    def __call__(self, messages: list[Message], call: ModelCall) -> str:
        name = call.deployment.name
        self.calls[name] = self.calls.get(name, 0) + 1
        user = str(messages[-1].get("content") or "")
        names = [n for n in re.findall(r"def (\w+)\(", user) if n in self.problems]
        task_id, solution = self.problems[names[-1]] if names else ("", "")
        if name == "budget" or (name == "cheap" and task_id in self.misses):
            return "```python\n    pass\n```"
        return f"```python\n{solution}```"


@pytest.fixture
def world(tmp_path: Path, weights_remote: Path) -> Iterator[dict[str, Any]]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    deployed = tmp_path / "deployed" / "weights.yaml"  # the file the routers read (MAESTRO_WEIGHTS_PATH)
    deployed.parent.mkdir()
    deployed.write_text(PRIORS)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "var",
        embedder="hashing",
        catalog_path=catalog,
        weights_path=deployed,
        default_tenant=TENANT,
        pr_repos_allowed={TENANT: [str(weights_remote)]},
        eval_weights_repo=str(weights_remote),
        eval_weights_file="weights.yaml",
        eval_min_samples=10,
        weights_reload_s=0.01,
    )
    models = Models()
    built: list[Services] = []

    def services() -> Services:
        made = build_services(settings, client=FunctionLLM(models))
        built.append(made)
        return made

    yield {"settings": settings, "models": models, "services": services, "deployed": deployed}
    for made in built:
        made.close()


def _cycle(world: dict[str, Any]) -> Any:
    services = world["services"]()
    return asyncio.run(
        run_cycle(
            services, world["settings"], TENANT, suite="humaneval", models="budget,cheap,pricey", limit=LIMIT
        )
    )


def _human(name: str, roles: list[str]) -> Authority:
    principal = Principal(
        id=f"prn-{name}",
        tenant=TENANT,
        name=name,
        kind="user",
        roles=tuple(roles),
        scopes=scopes_for(roles),  # type: ignore[arg-type]
    )
    return Authority(principal=principal, scopes=principal.scopes)


def _route(services: Services) -> str:
    request = RouteRequest(
        task="codegen.edit",
        messages=[{"role": "user", "content": "def add(a, b):"}],
        tenant=TENANT,
        principal="someone",
        max_tokens=200,
    )
    return asyncio.run(services.router.complete(request)).model


def test_weekly_cycle_opens_a_weights_pr_that_moves_traffic_to_the_cheaper_good_model(
    world: dict[str, Any], weights_remote: Path
) -> None:
    serving = world["services"]()  # a long-running server's router: it reloads the weights file it reads
    assert _route(serving) == "pricey"  # the priors say cheap is below the 0.70 floor

    first = _cycle(world)
    # every (item, model) pair measured through the pinned route
    assert first.summary.pairs == 3 * LIMIT and first.summary.unmeasured == 0
    assert world["models"].calls == {
        "budget": LIMIT,
        "cheap": LIMIT,
        "pricey": LIMIT + 1,
    }  # +1: the route above
    services = world["services"]()
    rows = EvalStore(services.engine).results(TENANT, first.summary.run.id)
    by_model = {m: [r.score for r in rows if r.model == m] for m in ("budget", "cheap", "pricey")}
    assert (
        sum(by_model["pricey"]) == LIMIT
        and sum(by_model["cheap"]) == LIMIT - 1
        and sum(by_model["budget"]) == 0
    )

    # the report: Markdown and a self-contained HTML page with a chart
    md = first.report_md.read_text()
    assert "## codegen.edit" in md and "| cheap |" in md and "No previous run" in md
    page = first.report_html.read_text()
    assert "<svg" in page and "http://" not in page.split("<svg", 1)[0]

    # the PR: labelled, on a maestro/ branch of the config repo, moving codegen.edit to cheap
    proposal = first.proposal
    assert proposal is not None and proposal.changed and proposal.pr is not None
    pr = proposal.pr
    assert "routing-weights" in pr["labels"] and pr["branch"].startswith("maestro/eval/")
    assert pr["opened_by"] == "eval-harness" and pr["state"] == "open"
    moved = {i.task: (i.old_model, i.new_model) for i in proposal.impacts if i.moved}
    assert moved == {"codegen.edit": ("pricey", "cheap")}
    assert "codegen.edit" in pr["body"] and "**moved**" in pr["body"]
    remote_file = _git("show", f"{pr['branch']}:weights.yaml", cwd=weights_remote)
    assert "cheap: {quality: 0.917, samples: 12" in remote_file
    assert "budget: {quality: 0.000, samples: 12" in remote_file
    assert _git("show", "main:weights.yaml", cwd=weights_remote) == PRIORS  # bots never touch main

    # a second cycle before anyone merged: the open weights PR is updated, not duplicated
    second = _cycle(world)
    assert second.proposal is not None and second.proposal.pr is not None
    assert second.proposal.pr["id"] == pr["id"]
    store = PRStore(services.engine)
    assert [p.id for p in store.list(TENANT)] == [pr["id"]]
    assert first.summary.run.id in second.report_md.read_text()  # compared with the previous run

    # merging needs a human with eval:approve: the bot, and an engineer with repo:merge only, are refused
    backend = services.repo_tools().prs()
    with pytest.raises(PolicyDenied):
        backend.review(services.eval_authority(TENANT), pr["id"], verdict="approve", note=None)
    merger = _human("dev", ["engineer"])
    merger = Authority(principal=merger.principal, scopes=merger.scopes | {"repo:merge"})
    with pytest.raises(PolicyDenied):
        backend.review(merger, pr["id"], verdict="approve", note=None)
    ops = _human("ops", ["admin"])
    backend.review(ops, pr["id"], verdict="approve", note="measured, cheaper")
    merged = backend.merge(ops, pr["id"])
    assert merged.state == "merged"

    # deploy the merged file: the running router picks it up and sends codegen.edit to the cheap model
    world["deployed"].write_text(_git("show", "main:weights.yaml", cwd=weights_remote))
    time.sleep(0.05)
    assert _route(serving) == "cheap"
    assert serving.router.weights.version == second.proposal.version  # the PR as last updated

    # a week later the cheap model slips a little, within its interval: noise opens no PR
    world["models"].misses = {"HumanEval/100", "HumanEval/101"}
    third = _cycle(world)
    assert third.proposal is not None and not third.proposal.changed and third.proposal.pr is None
    assert [p.id for p in PRStore(services.engine).list(TENANT)] == [pr["id"]]

    kinds = [e.kind for e in services.ledger.entries(tenant=TENANT, limit=500)]
    assert {"eval.started", "eval.finished", "eval.weights_proposed", "eval.weights_unchanged"} <= set(kinds)
    assert {"pr.opened", "pr.updated", "pr.merged"} <= set(kinds)
