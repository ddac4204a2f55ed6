"""``maestro graph load|list|schema|drop|stop`` through the real entry point (subprocesses) on the
embedded FalkorDB: a graph loaded by one command is there for the next, per tenant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture

SAMPLE = Path(__file__).parents[2] / "maestro" / "tools" / "graph" / "samples" / "contract_lineage.cypher"


def _json(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_load_list_schema_drop_across_commands(tmp_path: Path, cli: MaestroCli) -> None:
    loaded = _json(
        cli(["graph", "load", str(SAMPLE), "--graph", "lineage", "--tenant", "acme", "--json"], tmp_path)
    )
    assert {k: loaded[k] for k in ("graph", "tenant", "nodes", "relationships", "files")} == {
        "graph": "lineage",
        "tenant": "acme",
        "nodes": 275,
        "relationships": 585,
        "files": [str(SAMPLE)],
    }
    assert loaded["elapsed_s"] > 0

    (tmp_path / "n.csv").write_text("id:ID,name,:LABEL\na,Ada,Person\nb,Bob,Person\n")
    (tmp_path / "r.csv").write_text(":START_ID,:END_ID,:TYPE\na,b,KNOWS\n")
    other = _json(
        cli(
            ["graph", "load", "n.csv", "r.csv", "--graph", "people", "--tenant", "globex", "--json"], tmp_path
        )
    )
    assert (other["nodes"], other["relationships"]) == (2, 1)

    listed = _json(cli(["graph", "list", "--tenant", "acme", "--json"], tmp_path))
    assert listed["tenant"] == "acme"
    assert [(g["name"], g["nodes"], g["relationships"]) for g in listed["graphs"]] == [("lineage", 275, 585)]
    assert listed["graphs"][0]["created_by"].startswith("local:")

    schema = _json(cli(["graph", "schema", "--graph", "lineage", "--tenant", "acme", "--json"], tmp_path))
    labels = {lab["name"]: lab["count"] for lab in schema["labels"]}
    assert labels["Team"] == 16 and labels["Person"] == 53 and sum(labels.values()) == 275

    # another tenant's graph does not exist for acme, and the message names only acme's graphs
    hidden = cli(["graph", "schema", "--graph", "people", "--tenant", "acme", "--json"], tmp_path)
    assert hidden.returncode == 1 and json.loads(hidden.stdout)["error"]["code"] == "not_found"
    assert "lineage" in hidden.stderr and "globex" not in hidden.stderr

    refused = cli(["graph", "drop", "--graph", "lineage", "--tenant", "acme"], tmp_path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    dropped = cli(["graph", "drop", "--graph", "lineage", "--tenant", "acme", "--yes"], tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    assert _json(cli(["graph", "list", "--tenant", "acme", "--json"], tmp_path))["graphs"] == []
    assert not (tmp_path / "var" / "falkordb" / "falkordb.sock").exists()  # each command stopped its server


def test_errors_map_to_exit_codes(tmp_path: Path, cli: MaestroCli) -> None:
    bad_name = cli(["graph", "load", str(SAMPLE), "--graph", "../x", "--json"], tmp_path)
    assert bad_name.returncode == 2 and json.loads(bad_name.stdout)["error"]["code"] == "invalid_request"
    missing = cli(["graph", "load", "nowhere.cypher", "--graph", "g"], tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "bad.csv").write_text("id:ID,age:int,:LABEL\na,x,P\n")
    malformed = cli(["graph", "load", "bad.csv", "--graph", "g", "--json"], tmp_path)
    assert malformed.returncode == 2 and "bad.csv:2: column 'age' expects int" in malformed.stderr
    listed = _json(cli(["graph", "list", "--json"], tmp_path))
    assert listed["graphs"] == []  # nothing registered, nothing written
    usage = cli(["graph", "load", str(SAMPLE)], tmp_path)  # --graph is required
    assert usage.returncode == 2


def test_stop_stops_a_server_another_process_started(tmp_path: Path, cli: MaestroCli) -> None:
    from maestro.tools.graph.embedded import EmbeddedFalkorServer

    server = EmbeddedFalkorServer(tmp_path / "var")
    server.ensure()
    try:
        stopped = cli(["graph", "stop"], tmp_path)
        assert stopped.returncode == 0 and "stopped" in stopped.stderr
        assert not EmbeddedFalkorServer(tmp_path / "var").alive()
        idle = cli(["graph", "stop"], tmp_path)
        assert idle.returncode == 0 and "no embedded graph server is running" in idle.stderr
    finally:
        server.close()
