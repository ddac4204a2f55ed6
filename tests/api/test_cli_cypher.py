"""``maestro graph load`` -> ``maestro cypher ask`` -> ``maestro chat cypher`` through the real entry point
with the real embedded model (SmolLM2-135M) and the real embedded FalkorDB: the path is real end to end,
the answer's quality is not asserted (a 135M model rarely writes a right query; the scripted-model tests
in tests/agents/test_cypher_workcell.py assert the rows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture

SAMPLE = Path(__file__).parents[2] / "maestro" / "tools" / "graph" / "samples" / "contract_lineage.cypher"
ONE_TRY = {"MAESTRO_CYPHER_REPAIRS": "0"}  # one generation per question keeps the local model's time down
OUTCOMES = {"answered", "no_rows", "unanswered"}


def _ok(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_load_ask_and_chat_with_the_local_model(tmp_path: Path, cli: MaestroCli) -> None:
    _ok(cli(["graph", "load", str(SAMPLE), "--graph", "sample", "--json"], tmp_path))

    question = "Which services depend on the payments contract?"
    run = _ok(cli(["cypher", "ask", question, "--graph", "sample", "--json"], tmp_path, env=ONE_TRY))
    assert run["workcell"] == "cypher" and run["status"] == "succeeded"
    out = run["output"]
    assert out["graph"] == "sample" and out["status"] in OUTCOMES and out["attempts"] == 1
    assert out["answer"].strip() and out["model"] == "local/smollm2-135m"
    if out["status"] == "unanswered":  # the failure says why, stage by stage
        assert [f["stage"] for f in out["failures"]] and out["rows"] == []
    else:  # whatever it asked ran read-only through the guard: the capped query is shown
        assert "LIMIT" in out["query"] and out["query"] in out["answer"]
    shown = _ok(cli(["runs", "show", run["id"], "--json"], tmp_path))
    tasks = [e["payload"]["task"] for e in shown["events"] if e["kind"] == "model"]
    assert tasks[0] == "cypher.generate"
    nodes = [e["payload"]["node"] for e in shown["events"] if e["kind"] == "node"]
    assert nodes[:2] == ["introspect", "generate"]

    missing = cli(["cypher", "ask", question, "--graph", "nope", "--json"], tmp_path, env=ONE_TRY)
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"]["code"] == "not_found"
    other_tenant = cli(
        ["cypher", "ask", question, "--graph", "sample", "--tenant", "globex", "--json"], tmp_path
    )
    assert other_tenant.returncode == 1 and json.loads(other_tenant.stdout)["error"]["code"] == "not_found"

    chat = cli(
        ["chat", "cypher", "--input", '{"graph": "sample"}'],
        tmp_path,
        stdin=f"{question}\nAnd which of those are tier 1?\n\n",
        env=ONE_TRY,
    )
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.count("Query:") + chat.stdout.count("could not write a query") >= 2  # two replies
    runs = _ok(cli(["runs", "list", "--json"], tmp_path))["runs"]
    turns = [r for r in runs if r["workcell"] == "cypher" and "message" in r["input"]]
    assert len(turns) == 2 and turns[0]["thread_id"] == turns[1]["thread_id"]
    assert {r["status"] for r in turns} == {"succeeded"}
    assert {r["input"]["message"] for r in turns} == {question, "And which of those are tier 1?"}
