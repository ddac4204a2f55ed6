"""``maestro run`` / ``maestro runs`` through the real entry point, with the real local model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture


def test_run_chat_then_list_and_show(tmp_path: Path, cli: MaestroCli) -> None:
    done = cli(["run", "chat", "--input", '{"message": "Say hello"}', "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    run: dict[str, Any] = json.loads(done.stdout)
    assert run["status"] == "succeeded" and run["workcell"] == "chat"
    assert run["output"]["reply"].strip() and run["output"]["decision_id"].startswith("dec")

    listed = json.loads(cli(["runs", "list", "--json"], tmp_path).stdout)
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    shown = json.loads(cli(["runs", "show", run["id"], "--json"], tmp_path).stdout)
    kinds = [e["kind"] for e in shown["events"] if e["kind"] != "token"]
    assert kinds == ["node_start", "model", "node", "end"]
    streamed = "".join(e["payload"]["text"] for e in shown["events"] if e["kind"] == "token")
    assert streamed.strip() == run["output"]["reply"].strip()  # the reply's tokens, stored coalesced
    workcells = json.loads(cli(["runs", "workcells", "--json"], tmp_path).stdout)
    assert "chat" in {w["name"] for w in workcells["workcells"]}


def test_run_errors_exit_codes(tmp_path: Path, cli: MaestroCli) -> None:
    unknown = cli(["run", "nope", "--json"], tmp_path)
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["error"]["code"] == "not_found"
    bad_json = cli(["run", "chat", "--input", "{not json"], tmp_path)
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    bad_input = cli(["run", "chat", "--input", '{"msg": 1}'], tmp_path)
    assert bad_input.returncode == 2 and "chat input must be" in bad_input.stderr
    missing = cli(["runs", "show", "run_doesnotexist"], tmp_path)
    assert missing.returncode == 1 and "no run" in missing.stderr
    no_approval = cli(["runs", "approve", "run_doesnotexist"], tmp_path)
    assert no_approval.returncode == 1


def test_chat_reply_is_read_generically() -> None:
    from maestro.api.cli.run_commands import reply_text

    assert reply_text({"reply": "hi", "answer": "no"}) == "hi"
    assert reply_text({"answer": "42 rows", "cypher": "MATCH (n) RETURN n"}) == "42 rows"
    assert json.loads(reply_text({"rows": [1, 2]})) == {"rows": [1, 2]}
