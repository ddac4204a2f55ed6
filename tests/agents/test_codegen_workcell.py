"""The codegen workcell on the fixture repository (tests/fixtures/sample_repo): real git worktrees, the
real sandbox (bubblewrap or unshare), the real edit tools, the git PR backend into a local bare remote,
real LangGraph, policy and ledger. Only the model is fake (``FunctionLLM``)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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
    model = Model([FIX])
    services = make_services(model)
    run = _start(services, remote)
    assert run.status == "succeeded", run.error
    out = run.output
    assert out["status"] == "opened", out["summary"]
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
    assert pr["ledger_ids"] and all(i in pr["body"] for i in pr["ledger_ids"])  # the run's evidence
    searched = [e["payload"] for e in services.runner().runs.events(run.id) if e["kind"] == "tool"]
    ends = [p for p in searched if p["tool"] == "code.search" and p["phase"] == "end"]
    assert ends and ends[0]["files"] > 0  # the repository was indexed into retrieval and searched
    prompt = model.prompts[0]
    assert "shelfkit/pricing.py" in prompt and "test_apply_discount_takes_the_percent_off" in prompt
    kinds = {e.kind for e in services.ledger.entries(tenant="acme", limit=100)}
    assert {"run.started", "run.succeeded"} <= kinds


def test_protected_test_edit_is_refused_and_repaired(
    make_services: Callable[..., Services], remote: Path
) -> None:
    model = Model([CHEAT, FIX])
    out = _start(make_services(model), remote).output
    assert out["status"] == "opened" and out["rounds"] == 2
    assert "tests/test_pricing.py" in model.prompts[1] and "protected" in model.prompts[1]
    assert "tests/test_pricing.py" not in out["diff"]


def test_stops_honestly_when_the_tests_keep_failing(
    make_services: Callable[..., Services], remote: Path
) -> None:
    still_wrong = WRONG.replace("price * percent / 100", "price * percent").replace(
        "=======\n    return round(price * percent, 2)", "=======\n    return round(price * percent / 10, 2)"
    )
    model = Model([WRONG, still_wrong])
    out = _start(make_services(model, repo_rounds=2), remote).output
    assert out["status"] == "tests_failing" and out["pr"] is None and out["rounds"] == 2
    assert "No pull request was opened" in out["summary"] and "still fail" in out["summary"]
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]
    assert "the tests still fail" in model.prompts[1]  # the failing output went back to the model


def test_secrets_in_the_diff_refuse_the_change(make_services: Callable[..., Services], remote: Path) -> None:
    out = _start(make_services(Model([LEAK])), remote).output
    assert out["status"] == "refused" and out["pr"] is None
    assert {f["type"] for f in out["findings"]} & {"OPENAI_API_KEY", "GENERIC_SECRET"}
    assert "sk-proj" not in str(out["findings"]) and "sk-proj" not in out["summary"]
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]


def test_approval_before_the_pr_and_a_repository_outside_the_allow_list(
    make_services: Callable[..., Services], remote: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.git"  # the same code, but not on the tenant's allow-list
    _git("clone", "-q", "--bare", str(remote), str(other), cwd=tmp_path)
    services = make_services(Model([FIX]), repo_approval="always")
    run = _start(services, remote)
    assert run.status == "waiting"
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]
    done = asyncio.run(services.runner().decide(run.id, _authority("lead", ["admin"]), approve=True))
    assert done.status == "succeeded" and done.output["status"] == "opened"

    refused = asyncio.run(
        make_services(Model([FIX])).runner().start("codegen", {"repo": str(other), "task": TASK}, BOT)
    )
    assert refused.status == "failed" and refused.error is not None
    assert refused.error["code"] == "policy_denied"
    assert not [b for b in _branches(other) if b.startswith("maestro/")]
