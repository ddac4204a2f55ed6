"""``maestro rag ingest`` / ``maestro rag query`` through the real entry point, with the real local model.

This is the README's demo: ingest a docs folder, ask a question, get an answer whose citations point at
real chunks of real files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maestro.retrieval.stores.edge import QdrantEdgeStore

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture

REPO_DOCS = Path(__file__).resolve().parents[2] / "docs"


def _copy_docs(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    target.mkdir()
    for path in sorted(REPO_DOCS.glob("*.md")):
        (target / path.name).write_text(path.read_text())
    (target / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return target


def test_ingest_then_query_cites_real_chunks(tmp_path: Path, cli: MaestroCli) -> None:
    docs = _copy_docs(tmp_path)
    done = cli(["rag", "ingest", "docs", "--collection", "maestro", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    markdown = len(list(docs.glob("*.md")))
    assert report["files"] == {"indexed": markdown, "unchanged": 0, "skipped": 1, "removed": 0}
    assert report["skipped"][0]["source"] == "docs/logo.png" and report["skipped"][0]["code"] == "unsupported"
    assert report["chunks"]["total"] == report["chunks"]["added"] > markdown

    again = json.loads(cli(["rag", "ingest", "docs", "--collection", "maestro", "--json"], tmp_path).stdout)
    assert again["files"]["unchanged"] == markdown and again["chunks"]["added"] == 0

    asked = cli(["rag", "query", "How do I add a provider?", "--collection", "maestro", "--json"], tmp_path)
    assert asked.returncode == 0, asked.stderr
    doc: dict[str, Any] = json.loads(asked.stdout)
    assert set(doc) == {"answer", "citations", "sources", "model", "decision_id"}
    assert doc["model"] == "local/smollm2-135m" and doc["decision_id"].startswith("dec")
    assert doc["answer"].strip()
    assert 1 <= len(doc["sources"]) <= 5
    retrieved = {s["chunk_id"] for s in doc["sources"]}
    for source in doc["sources"]:
        assert (tmp_path / source["source"]).is_file()
    for citation in doc["citations"]:  # whatever the tiny model cited survived verification
        assert citation["chunk_id"] in retrieved and 1 <= citation["n"] <= len(doc["sources"])
        assert citation["text"] in (tmp_path / citation["source"]).read_text()
        assert f"[{citation['n']}]" in doc["answer"]


def test_query_errors_exit_codes(tmp_path: Path, cli: MaestroCli) -> None:
    _copy_docs(tmp_path)
    assert cli(["rag", "ingest", "docs", "--collection", "maestro"], tmp_path).returncode == 0
    missing = cli(["rag", "query", "anything?", "--collection", "nope"], tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad_path = cli(["rag", "ingest", "nowhere", "--collection", "maestro"], tmp_path)
    assert bad_path.returncode == 2 and "no such file" in bad_path.stderr
    bad_name = cli(["rag", "ingest", "docs", "--collection", "../x"], tmp_path)
    assert bad_name.returncode == 2 and "invalid collection name" in bad_name.stderr
    with QdrantEdgeStore(tmp_path / "var"):  # another process holds the embedded store
        locked = cli(
            ["rag", "query", "How do I add a provider?", "--collection", "maestro", "--json"], tmp_path
        )
        assert locked.returncode == 1
        assert json.loads(locked.stdout)["error"]["code"] == "retrieval_unavailable"
        assert "in use by another process" in locked.stderr
