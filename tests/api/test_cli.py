"""The ``maestro`` CLI through its real entry point (subprocesses): JSON shapes and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from maestro.api.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "names = ('litellm', 'torch', 'llama_cpp', 'sqlalchemy', 'fastapi')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in done.stderr


def test_route_explain_json_shape(tmp_path: Path, cli: MaestroCli) -> None:
    done = cli(
        ["route", "explain", "--task", "chat", "--json"], tmp_path, stdin="Summarise the release notes"
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    assert set(doc) == {
        "decision_id",
        "task",
        "chosen",
        "fallbacks",
        "candidates",
        "policy_version",
        "weights_version",
    }
    assert doc["task"] == "chat" and doc["chosen"] == "local/smollm2-135m"
    assert isinstance(doc["fallbacks"], list)
    for candidate in doc["candidates"]:
        assert set(candidate) == {"model", "eligible", "reasons", "predicted_quality", "est_cost_usd"}
        assert isinstance(candidate["eligible"], bool) and isinstance(candidate["reasons"], list)
        assert isinstance(candidate["predicted_quality"], float) and isinstance(
            candidate["est_cost_usd"], float
        )
    hosted = next(c for c in doc["candidates"] if c["model"] == "gpt-4o-mini")
    assert hosted["eligible"] is False and "OPENAI_API_KEY" in hosted["reasons"][0]


def test_route_explain_sees_a_provider_key(tmp_path: Path, cli: MaestroCli) -> None:
    done = cli(
        ["route", "explain", "--task", "codegen.edit", "--json"],
        tmp_path,
        stdin="fix",
        env={"OPENAI_API_KEY": "sk-x"},
    )
    doc = json.loads(done.stdout)
    assert doc["chosen"] == "gpt-4o-mini"  # meets the codegen floor and is the cheapest with a key
    assert "gpt-4o" in doc["fallbacks"]


def test_models_json(tmp_path: Path, cli: MaestroCli) -> None:
    done = cli(["models", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    models = {m["name"]: m for m in json.loads(done.stdout)["models"]}
    assert models["local/smollm2-135m"]["health"] == "ready"
    assert models["gpt-4o-mini"]["input_usd_per_1m"] == pytest.approx(0.15)


@pytest.mark.parametrize(
    ("args", "stdin", "code", "needle"),
    [
        (["ask", ""], "", 2, "prompt is empty"),
        (["ask", "hi", "--model", "gpt-4o"], "", 2, "needs a reason"),
        (["ask", "hi", "--model", "nope", "--reason", "x"], "", 1, "unknown model 'nope'"),
        (["ask", "hi", "--task", "poetry"], "", 2, "unknown task class 'poetry'"),
        (["ask", "hi", "--max-tokens", "1000000000"], "", 2, "out of range"),
        (["route", "explain", "--json"], "", 2, "prompt is empty"),
        (["bench", "nope"], "", 2, "unknown benchmark"),
    ],
)
def test_errors_exit_codes(
    tmp_path: Path, args: list[str], stdin: str, code: int, needle: str, cli: MaestroCli
) -> None:
    done = cli(args, tmp_path, stdin=stdin)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_error_json_goes_to_stdout(tmp_path: Path, cli: MaestroCli) -> None:
    done = cli(["ask", "", "--json"], tmp_path)
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["code"] == "invalid_request"


def test_malformed_catalog_exits_2_naming_the_file(tmp_path: Path, cli: MaestroCli) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndeployments:\n  - name: a\n    model: openai/a\n    colour: blue\n")
    done = cli(["models"], tmp_path, env={"MAESTRO_CATALOG_PATH": str(bad)})
    assert done.returncode == 2
    assert f"{bad}: deployments[0] ('a').colour: Extra inputs are not permitted" in done.stderr


def test_budget_set_and_show(tmp_path: Path, cli: MaestroCli) -> None:
    done = cli(["budget", "set", "--tenant", "acme", "--usd", "12.5", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(cli(["budget", "show", "--tenant", "acme", "--json"], tmp_path).stdout)
    assert shown["budgets"][0]["limit_usd"] == 12.5 and shown["budgets"][0]["spent_usd"] == 0


@pytest.mark.slow
def test_ask_answers_with_the_local_model(tmp_path: Path, cli: MaestroCli) -> None:
    """One real SmolLM2 generation through the whole path: CLI, router, litellm, llama.cpp."""
    done = cli(["ask", "Say hello", "--max-tokens", "24", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["model"] == "local/smollm2-135m"
    assert doc["text"].strip()
    assert doc["usage"]["completion_tokens"] > 0 and doc["usage"]["estimated"] is False
    assert doc["cost_usd"] == 0
    explained = cli(["route", "explain", "--json"], tmp_path, stdin="Say hello")
    assert json.loads(explained.stdout)["decision_id"] != doc["decision_id"]


def test_ledger_verify_catches_a_flipped_byte(tmp_path: Path, cli: MaestroCli) -> None:
    import sqlite3

    for prompt in ("first", "second", "third"):
        assert cli(["route", "explain", "--json"], tmp_path, stdin=prompt).returncode == 0
    ok = json.loads(cli(["ledger", "verify", "--json"], tmp_path).stdout)
    assert ok["ok"] is True and ok["entries"] == 3 and ok["first_bad_index"] is None
    head = json.loads(cli(["ledger", "head", "--json"], tmp_path).stdout)
    assert head["tree_size"] == 3 and head["root_hash"] == ok["head"]
    bundle = tmp_path / "bundle.json"
    assert cli(["ledger", "export", "--out", str(bundle), "--json"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "var" / "maestro.db") as db:
        db.execute(
            "UPDATE ledger_entries SET payload = replace(payload, 'explained', 'explainEd') WHERE idx = 1"
        )
    bad = cli(["ledger", "verify", "--json"], tmp_path)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["first_bad_index"] == 1
    standalone = cli(["ledger", "verify", "--bundle", str(bundle), "--json"], tmp_path)
    assert standalone.returncode == 0 and json.loads(standalone.stdout)["entries"] == 3
