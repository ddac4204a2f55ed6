"""``maestro bench cypher --quick``: the report has DESIGN.md's shape and sane numbers (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from maestro.bench.cypher import generate_edges, naive_check

MAESTRO = str(Path(sys.executable).with_name("maestro"))
LATENCIES = ("guard", "graph_1hop", "graph_2hop", "graph_3hop", "runtime_runner")
BASELINES = ("regex", "raw_query_1hop", "raw_query_3hop", "raw_ro_3hop", "runtime_bare_langgraph")


def test_generated_graph_is_deterministic_and_skewed() -> None:
    edges = generate_edges(1_000, 10_000, seed=7)
    assert edges == generate_edges(1_000, 10_000, seed=7) and len(edges) == 10_000
    assert all(0 <= a < 1_000 and 0 <= b < 1_000 and a != b for a, b in edges)
    indegree: dict[int, int] = {}
    for _, target in edges:
        indegree[target] = indegree.get(target, 0) + 1
    assert max(indegree.values()) > 20 * (10_000 / 1_000)  # hubs


def test_naive_baseline_is_a_keyword_match() -> None:
    assert naive_check("MATCH (n) RETURN n") and not naive_check("MATCH (n) DETACH DELETE n")
    assert not naive_check("MATCH (s) WHERE s.name = 'create' RETURN s")  # why it is naive


def test_quick_run_through_the_cli(tmp_path: Path) -> None:
    env = {"MAESTRO_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [MAESTRO, "bench", "cypher", "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"bench", "machine", "metrics", "baseline", "targets"}
    assert report["bench"] == "cypher" and report["machine"]
    metrics, baseline = report["metrics"], report["baseline"]
    for side, names in ((metrics, LATENCIES), (baseline, BASELINES)):
        for name in names:
            p50, p95 = side[f"{name}_p50_ms"], side[f"{name}_p95_ms"]
            assert 0 < p50 <= p95, (name, p50, p95)
    assert metrics["guard_p99_ms"] >= metrics["guard_p95_ms"]
    assert (metrics["graph_nodes"], metrics["graph_edges"], metrics["graph_reused"]) == (10_000, 100_000, 0)
    assert metrics["guard_queries"] >= 50
    assert metrics["guard_redteam_accuracy"] == 1.0 > baseline["regex_redteam_accuracy"]
    assert metrics["runtime_vs_bare_p50_ratio"] > 0
    for name, target in report["targets"].items():
        assert set(target) == {"value", "target", "met"} and isinstance(target["met"], bool), name
    assert {"guard_p95_ms", "graph_1hop_p95_ms", "graph_3hop_p95_ms", "runtime_vs_bare_p50_ratio"} <= set(
        report["targets"]
    )
    kept = tmp_path / "var" / "bench-cypher"
    assert kept.is_dir()  # the generated graph is kept for the next run

    again = subprocess.run(
        [MAESTRO, "bench", "cypher", "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["metrics"]["graph_reused"] == 1
