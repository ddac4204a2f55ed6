"""The codegen workcell on the fixture repository (tests/fixtures/sample_repo): real git worktrees, the
real sandbox (bubblewrap or unshare), the real edit tools, the git PR backend into a local bare remote,
real LangGraph, policy and ledger. Only the model is fake (``FunctionLLM``)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro.agents.codegen.plan import parse_plan
from maestro.api.container import Services, build_services
from maestro.core.authority import Authority, Principal
from maestro.core.roles import scopes_for
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall

FIXTURE = Path(__file__).parents[1] / "fixtures" / "sample_repo"
TASK = "Fix apply_discount: it must return the price after the discount, not the discount."
FIX = """shelfkit/pricing.py
<<<<<<< SEARCH
    return round(price * percent / 100, 2)
=======
    return round(price * (100 - percent) / 100, 2)
>>>>>>> REPLACE
"""
PLAN = json.dumps(
    {
        "steps": [
            "Read apply_discount in shelfkit/pricing.py and the failing test_apply_discount_takes_the_"
            "percent_off",
            "Return the price minus the discount instead of the discount itself",
        ],
        "files": ["shelfkit/pricing.py", "tests/test_pricing.py", "shelfkit/missing.py"],
    }
)
GARBAGE_PLAN = "¯\\_(ツ)_/¯ {not json at all"
WRONG = FIX.replace("(100 - percent) / 100", "percent")
CHEAT = """tests/test_pricing.py
<<<<<<< SEARCH
    assert apply_discount(100.0, 10) == 90.0
=======
    assert apply_discount(100.0, 10) == 10.0
>>>>>>> REPLACE
"""
LEAK = (
    FIX
    + """
shelfkit/settings.py
<<<<<<< SEARCH
=======
OPENAI_API_KEY = "sk-proj-Zq3vT8yLw2Nc5Kd7Hf9Rb1Xp4Mj6Gs0Ae2Uo8Ti3Ly5Qw7Er9Ty1Ui3Op5As7Df9Gh"
>>>>>>> REPLACE
"""
)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository holding the fixture package on ``main`` (the 'origin' PRs go to)."""
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    _git("init", "-q", "-b", "main", cwd=src)
    _git("add", "-A", cwd=src)
    _git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "initial", cwd=src)
    bare = tmp_path / "origin.git"
    _git("clone", "-q", "--bare", str(src), str(bare), cwd=tmp_path)
    return bare.resolve()


class Model:
    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.prompts: list[str] = []

    def __call__(self, messages: list[Message], call: ModelCall) -> str:
        self.prompts.append(str(messages[-1].get("content") or ""))
        return self.replies[min(len(self.prompts), len(self.replies)) - 1]


@pytest.fixture
def make_services(tmp_path: Path, remote: Path) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(model: Model, **overrides: Any) -> Services:
        settings = Settings(  # type: ignore[call-arg]
            data_dir=tmp_path / "var",
            embedder="hashing",
            pr_repos_allowed={"acme": [str(remote)]},
            _env_file=None,
            **overrides,
        )
        services = build_services(settings, client=FunctionLLM(model))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


def _authority(name: str, roles: list[str], kind: str = "user") -> Authority:
    principal = Principal(
        id=f"prn-{name}",
        tenant="acme",
        name=name,
        kind=kind,
        roles=tuple(roles),  # type: ignore[arg-type]
        scopes=scopes_for(roles, kind=kind),  # type: ignore[arg-type]
    )
    return Authority(principal=principal, scopes=principal.scopes)


BOT = _authority("fixer-bot", ["bot"], kind="bot")


def _start(services: Services, remote: Path, authority: Authority = BOT) -> Any:
    return asyncio.run(services.runner().start("codegen", {"repo": str(remote), "task": TASK}, authority))


def _branches(remote: Path) -> list[str]:
    return _git("branch", "--format=%(refname:short)", cwd=remote).split()


def test_fixes_the_bug_and_opens_a_pr_on_the_bare_remote(
    make_services: Callable[..., Services], remote: Path
) -> None:
    model = Model([PLAN, FIX])
    services = make_services(model)
    run = _start(services, remote)
    assert run.status == "succeeded", run.error
    out = run.output
    assert out["status"] == "opened", out["summary"]
    assert out["plan"]["source"] == "json" and len(out["plan"]["steps"]) == 2
    assert out["plan"]["files"] == ["shelfkit/pricing.py", "tests/test_pricing.py"]  # not the missing one
    assert out["tests_before"]["failed"] == 2 and out["tests_after"] == {
        "status": "passed",
        "passed": 3,
        "failed": 0,
        "mode": out["tests_before"]["mode"],
    }
    assert out["tests_before"]["mode"] in ("bwrap", "unshare") and out["rounds"] == 1
    assert "(100 - percent)" in out["diff"]
    branch = out["branch"]
    assert branch.startswith("maestro/codegen/") and branch in _branches(remote)
    assert _git("show", f"{branch}:shelfkit/pricing.py", cwd=remote).count("(100 - percent)") == 1
    assert "main" in _branches(remote) and "(100 - percent)" not in _git(
        "show", "main:shelfkit/pricing.py", cwd=remote
    )
    pr = out["pr"]
    assert pr["state"] == "open" and pr["branch"] == branch and pr["idempotency_key"] == f"codegen:{run.id}"
    assert "test_apply_discount_takes_the_percent_off" in pr["body"] and run.id in pr["body"]
    assert "## Plan\n\n1. Read apply_discount in shelfkit/pricing.py and the failing" in pr["body"]
    assert "2. Return the price minus the discount instead of the discount itself" in pr["body"]
    assert [d["task"] for d in out["decisions"]] == ["codegen.edit", "codegen.edit"]  # plan, edit
    assert pr["ledger_ids"] and all(i in pr["body"] for i in pr["ledger_ids"])  # the run's evidence
    events = services.runner().runs.events(run.id)
    searched = [e["payload"] for e in events if e["kind"] == "tool"]
    ends = [p for p in searched if p["tool"] == "code.search" and p["phase"] == "end"]
    assert ends and ends[0]["files"] > 0  # the repository was indexed into retrieval and searched
    plans = [e["payload"] for e in events if e["kind"] == "plan"]
    assert len(plans) == 1 and plans[0]["parsed"] is True and plans[0]["steps"] == out["plan"]["steps"]
    assert plans[0]["structured"] is False  # the embedded local model is asked for text
    planning = model.prompts[0]  # the plan saw the task, the repository's files and the failing tests
    assert TASK in planning and "shelfkit/stock.py" in planning and "README.md" in planning
    assert "test_apply_discount_takes_the_percent_off" in planning and "<<<<<<< SEARCH" not in planning
    prompt = model.prompts[1]
    assert "shelfkit/pricing.py" in prompt and "test_apply_discount_takes_the_percent_off" in prompt
    assert "Plan:\n1. Read apply_discount" in prompt
    kinds = {e.kind for e in services.ledger.entries(tenant="acme", limit=100)}
    assert {"run.started", "run.succeeded"} <= kinds


def _context_files(prompt: str) -> list[str]:
    """The files shown in an edit prompt, in order (each is its path on a line, then a fence)."""
    return re.findall(r"^([\w./-]+)\n```\n", prompt, re.MULTILINE)


def test_the_plans_files_lead_the_context(make_services: Callable[..., Services], remote: Path) -> None:
    """The same task with two plans: the files each plan names come first in the edit's context."""
    elsewhere = json.dumps(
        {
            "steps": ["Check how reports print stock levels"],
            "files": ["shelfkit/report.py", "shelfkit/stock.py"],
        }
    )
    contexts = []
    for plan in (PLAN, elsewhere):
        model = Model([plan, "no edits in this reply"])  # one round that does not apply: no sandbox rerun
        run = _start(make_services(model, repo_rounds=1), remote)
        assert run.output["status"] == "edits_failed"
        contexts.append(_context_files(model.prompts[1]))
    by_pricing, by_report = contexts
    assert by_pricing[:2] == ["shelfkit/pricing.py", "tests/test_pricing.py"]
    assert by_report[:2] == ["shelfkit/report.py", "shelfkit/stock.py"]
    assert by_pricing != by_report and "shelfkit/pricing.py" in by_report  # search still has room


def test_an_unreadable_plan_falls_back_to_the_task(
    make_services: Callable[..., Services], remote: Path
) -> None:
    model = Model([GARBAGE_PLAN, FIX])
    services = make_services(model)
    run = _start(services, remote)
    assert run.status == "succeeded", run.error
    out = run.output
    assert out["status"] == "opened" and out["tests_after"]["failed"] == 0
    assert (
        out["plan"]["source"] == "fallback" and out["plan"]["steps"] == [TASK] and out["plan"]["files"] == []
    )
    plans = [e["payload"] for e in services.runner().runs.events(run.id) if e["kind"] == "plan"]
    assert len(plans) == 1 and plans[0]["parsed"] is False and plans[0]["steps"] == [TASK]
    note = plans[0]["note"]
    assert note.startswith("the plan could not be read (invalid JSON: ") and note.endswith(
        "stands as the plan"
    )
    assert f"Plan:\n1. {TASK}" in model.prompts[1]
    body = out["pr"]["body"]
    assert "## Plan\n\n1. (no plan could be read from the model's reply, so it worked from the task)" in body
    assert body.count(TASK) >= 2  # the summary and the plan


def test_parse_plan_reads_json_then_a_list_then_falls_back() -> None:
    files = ["shelfkit/pricing.py", "shelfkit/stock.py", "README.md"]
    fenced = 'Sure.\n```json\n{"steps": [" Fix   it "], "files": ["./shelfkit/stock.py", "nope.py"]}\n```'
    plan = parse_plan(fenced, files, "task")
    assert (plan.source, plan.steps, plan.files) == ("json", ("Fix it",), ("shelfkit/stock.py",))
    listed = parse_plan("Plan:\n1. Open shelfkit/pricing.py.\n2) Change the return\n- run tests", files, "t")
    assert listed.source == "text" and listed.steps == (
        "Open shelfkit/pricing.py.",
        "Change the return",
        "run tests",
    )
    assert listed.files == ("shelfkit/pricing.py",)
    wrong = parse_plan('{"steps": "one string", "files": []}', files, "the task")
    assert wrong.source == "fallback" and wrong.steps == ("the task",) and wrong.files == ()
    assert wrong.note is not None and "does not fit the plan schema: steps" in wrong.note
    broken = parse_plan('{"steps": ["a",', files, "the task")
    assert broken.source == "fallback" and broken.note is not None and "invalid JSON" in broken.note
    prose = parse_plan("I would fix the pricing.", files, "the task")
    assert prose.source == "fallback" and prose.note is not None and "neither a JSON plan nor" in prose.note
    empty = parse_plan('{"steps": ["  "], "files": ["README.md"]}', files, "the task")
    assert empty.source == "fallback" and empty.note is not None and "no non-empty step" in empty.note


class JsonRecorder(Model):
    """Also records each call's ``response_format``."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.formats: list[dict[str, Any] | None] = []

    def __call__(self, messages: list[Message], call: ModelCall) -> str:
        self.formats.append(call.response_format)
        return super().__call__(messages, call)


def test_a_deployment_with_json_schema_gets_the_plan_schema(
    make_services: Callable[..., Services], remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")  # gpt-4o-mini becomes eligible
    model = JsonRecorder([PLAN, "no edits in this reply"])
    services = make_services(model, repo_rounds=1)
    run = _start(services, remote)
    out = run.output
    assert out["status"] == "edits_failed" and out["plan"]["source"] == "json"
    assert [d["model"] for d in out["decisions"]] == ["gpt-4o-mini", "gpt-4o-mini"]
    plan_format, edit_format = model.formats
    assert edit_format is None and plan_format is not None and plan_format["type"] == "json_schema"
    schema = plan_format["json_schema"]["schema"]
    assert plan_format["json_schema"]["name"] == "codegen_plan" and set(schema["properties"]) == {
        "steps",
        "files",
    }
    plans = [e["payload"] for e in services.runner().runs.events(run.id) if e["kind"] == "plan"]
    assert plans[0]["structured"] is True


def test_protected_test_edit_is_refused_and_repaired(
    make_services: Callable[..., Services], remote: Path
) -> None:
    model = Model([PLAN, CHEAT, FIX])
    out = _start(make_services(model), remote).output
    assert out["status"] == "opened" and out["rounds"] == 2
    assert "tests/test_pricing.py" in model.prompts[2] and "protected" in model.prompts[2]
    assert "tests/test_pricing.py" not in out["diff"]


def test_stops_honestly_when_the_tests_keep_failing(
    make_services: Callable[..., Services], remote: Path
) -> None:
    still_wrong = WRONG.replace("price * percent / 100", "price * percent").replace(
        "=======\n    return round(price * percent, 2)", "=======\n    return round(price * percent / 10, 2)"
    )
    model = Model([PLAN, WRONG, still_wrong])
    out = _start(make_services(model, repo_rounds=2), remote).output
    assert out["status"] == "tests_failing" and out["pr"] is None and out["rounds"] == 2
    assert "No pull request was opened" in out["summary"] and "still fail" in out["summary"]
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]
    assert "the tests still fail" in model.prompts[2]  # the failing output went back to the model
    assert len(model.prompts) == 3  # one plan for the run, not one per repair round


def test_secrets_in_the_diff_refuse_the_change(make_services: Callable[..., Services], remote: Path) -> None:
    out = _start(make_services(Model([PLAN, LEAK])), remote).output
    assert out["status"] == "refused" and out["pr"] is None
    assert {f["type"] for f in out["findings"]} & {"OPENAI_API_KEY", "GENERIC_SECRET"}
    assert "sk-proj" not in str(out["findings"]) and "sk-proj" not in out["summary"]
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]


def test_approval_before_the_pr_and_a_repository_outside_the_allow_list(
    make_services: Callable[..., Services], remote: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.git"  # the same code, but not on the tenant's allow-list
    _git("clone", "-q", "--bare", str(remote), str(other), cwd=tmp_path)
    services = make_services(Model([PLAN, FIX]), repo_approval="always")
    run = _start(services, remote)
    assert run.status == "waiting"
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]
    done = asyncio.run(services.runner().decide(run.id, _authority("lead", ["admin"]), approve=True))
    assert done.status == "succeeded" and done.output["status"] == "opened"

    refused = asyncio.run(
        make_services(Model([PLAN, FIX])).runner().start("codegen", {"repo": str(other), "task": TASK}, BOT)
    )
    assert refused.status == "failed" and refused.error is not None
    assert refused.error["code"] == "policy_denied"
    assert not [b for b in _branches(other) if b.startswith("maestro/")]
