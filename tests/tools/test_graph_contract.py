"""The graph port's contract: the same behaviour from every backend (``conftest.graph_backend``).

Each test runs against a real engine (embedded FalkorDB, a FalkorDB server over TCP, and Neo4j when
one is configured); nothing here fakes the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from maestro.core.errors import ConfigurationError, NotFound
from maestro.core.settings import Settings
from maestro.tools.graph import GraphBackend, GraphQueryError, GraphTimeout, open_graph
from maestro.tools.graph.convert import iso_duration, to_json
from maestro.tools.graph.factory import graph_scheme
from maestro.tools.graph.neo4j_backend import (
    node_json,
    path_json,
    plan_from_summary,
    point_json,
    relationship_json,
    translate_neo4j_error,
)
from maestro.tools.graph.plan import GraphStats, PatternFacts, PlanOp, estimate_rows, pattern_facts

Keys = Callable[[str], str]

ORG = """
CREATE (ada:Person {pid: 1, name: 'Ada', age: 36, active: true}),
       (bob:Person {pid: 2, name: 'Bob', age: 41, active: false}),
       (cy:Person {pid: 3, name: 'Cy', age: 29, active: true}),
       (eng:Team {name: 'Engineering'}),
       (ops:Team {name: 'Operations'}),
       (ada)-[:MEMBER_OF {since: 2019}]->(eng),
       (bob)-[:MEMBER_OF {since: 2021}]->(ops),
       (cy)-[:MEMBER_OF {since: 2023}]->(eng),
       (ada)-[:KNOWS]->(bob),
       (bob)-[:KNOWS]->(cy)
"""


def _org(backend: GraphBackend, key: str) -> str:
    stats = backend.write(key, ORG)
    assert (stats.nodes_created, stats.relationships_created) == (5, 5)
    return key


def test_read_rows_columns_and_params(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = _org(graph_backend, graph_keys("org"))
    result = graph_backend.query_readonly(
        g,
        "MATCH (p:Person)-[:MEMBER_OF]->(t:Team {name: $team}) RETURN p.name AS name, p.age AS age "
        "ORDER BY name",
        {"team": "Engineering"},
        timeout_ms=5_000,
        row_cap=100,
    )
    assert result.columns == ["name", "age"]
    assert result.rows == [["Ada", 36], ["Cy", 29]]
    assert result.records() == [{"name": "Ada", "age": 36}, {"name": "Cy", "age": 29}]
    assert not result.truncated and result.elapsed_ms > 0
    assert json.loads(json.dumps(result.to_dict()))["rows"] == [["Ada", 36], ["Cy", 29]]

    typed = graph_backend.query_readonly(
        g,
        "RETURN $i AS i, $f AS f, $b AS b, $n AS n, $l AS l, $m AS m",
        {"i": 7, "f": 2.5, "b": True, "n": None, "l": [1, "two"], "m": {"k": "v"}},
        timeout_ms=5_000,
        row_cap=10,
    )
    assert typed.rows == [[7, 2.5, True, None, [1, "two"], {"k": "v"}]]


def test_row_cap_truncates(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = graph_keys("many")
    graph_backend.write(g, "UNWIND range(1, 50) AS i CREATE (:Item {i: i})")
    capped = graph_backend.query_readonly(
        g, "MATCH (n:Item) RETURN n.i AS i ORDER BY i", timeout_ms=5_000, row_cap=10
    )
    assert capped.truncated and [r[0] for r in capped.rows] == list(range(1, 11))
    exact = graph_backend.query_readonly(g, "MATCH (n:Item) RETURN count(n)", timeout_ms=5_000, row_cap=1)
    assert not exact.truncated and exact.rows == [[50]]


@pytest.mark.parametrize(
    "query",
    [
        "CREATE (n:Person {name: 'Eve'}) RETURN n",
        "MERGE (n:Person {name: 'Eve'}) RETURN n",
        "MATCH (n:Person {name: 'Ada'}) SET n.age = 99",
        "MATCH (n:Person {name: 'Ada'}) DETACH DELETE n",
        "MATCH (n:Person {name: 'Ada'}) REMOVE n.age",
    ],
)
def test_writes_are_refused_in_read_only_mode(
    graph_backend: GraphBackend, graph_keys: Keys, query: str
) -> None:
    g = _org(graph_backend, graph_keys("org"))
    with pytest.raises(GraphQueryError) as caught:
        graph_backend.query_readonly(g, query, timeout_ms=5_000, row_cap=10)
    assert caught.value.details["reason"] == "read_only"
    assert "read-only" in caught.value.message and caught.value.exit_code == 2
    unchanged = graph_backend.query_readonly(
        g, "MATCH (n:Person) RETURN n.name, n.age ORDER BY n.name", timeout_ms=5_000, row_cap=10
    )
    assert unchanged.rows == [["Ada", 36], ["Bob", 41], ["Cy", 29]]


def test_bad_query_is_a_query_error(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = _org(graph_backend, graph_keys("org"))
    with pytest.raises(GraphQueryError) as caught:
        graph_backend.query_readonly(g, "MATCH (n RETURN n", timeout_ms=5_000, row_cap=10)
    assert caught.value.details["reason"] == "syntax" and caught.value.http_status == 422


def test_missing_graph_is_not_found(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        graph_backend.query_readonly(
            graph_keys("nothing"), "MATCH (n) RETURN n", timeout_ms=5_000, row_cap=10
        )


def test_timeout_stops_a_long_query(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = graph_keys("big")
    graph_backend.write(g, "UNWIND range(1, 3000) AS i CREATE (:N {i: i})")
    with pytest.raises(GraphTimeout) as caught:
        graph_backend.query_readonly(
            g, "MATCH (a:N), (b:N), (c:N) RETURN count(*)", timeout_ms=100, row_cap=10
        )
    assert caught.value.http_status == 504 and "MAESTRO_GRAPH_TIMEOUT_MS" in caught.value.message


def test_explain_ranks_full_scan_with_deep_expansion_far_above_lookup(
    graph_backend: GraphBackend, graph_keys: Keys
) -> None:
    g = graph_keys("chain")
    graph_backend.write(g, "UNWIND range(0, 299) AS i CREATE (:P {i: i})")
    graph_backend.write(
        g,
        "MATCH (a:P), (b:P) WHERE b.i = (a.i * 7 + 1) % 300 OR b.i = (a.i * 13 + 5) % 300 "
        "CREATE (a)-[:LINK]->(b)",
    )
    scan = graph_backend.explain(g, "MATCH (n)-[*1..5]->(m) RETURN m")
    fixed = graph_backend.explain(g, "MATCH (n:P)-[:LINK]->(a)-[:LINK]->(b)-[:LINK]->(c) RETURN c")
    lookup = graph_backend.explain(g, "MATCH (n:P) WHERE id(n) = $id RETURN n", {"id": 0})
    assert scan.operators and scan.text
    assert lookup.estimated_rows <= 10
    assert scan.estimated_rows >= 1_000 * lookup.estimated_rows
    assert fixed.estimated_rows > 300 and scan.estimated_rows > fixed.estimated_rows
    assert json.dumps(scan.to_dict())


def test_schema_lists_labels_types_patterns_and_samples(
    graph_backend: GraphBackend, graph_keys: Keys
) -> None:
    g = _org(graph_backend, graph_keys("org"))
    schema = graph_backend.schema(g, samples=2)
    labels = {lab.name: lab for lab in schema.labels}
    assert {name: lab.count for name, lab in labels.items()} == {"Person": 3, "Team": 2}
    assert schema.node_count == 5
    person = labels["Person"].properties
    assert set(person) == {"pid", "name", "age", "active"}
    assert len(person["name"]) == 2 and set(person["name"]) <= {"Ada", "Bob", "Cy"}
    rels = {rel.type: rel for rel in schema.relationships}
    assert {t: r.count for t, r in rels.items()} == {"MEMBER_OF": 3, "KNOWS": 2}
    assert rels["MEMBER_OF"].patterns == [("Person", "Team")]
    assert rels["KNOWS"].patterns == [("Person", "Person")]
    assert set(rels["MEMBER_OF"].properties["since"]) <= {2019, 2021, 2023}
    assert json.loads(json.dumps(schema.to_dict()))["labels"]


def test_nodes_edges_and_paths_become_json(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = _org(graph_backend, graph_keys("org"))
    result = graph_backend.query_readonly(
        g,
        "MATCH p = (a:Person {name: 'Ada'})-[k:KNOWS]->(b) RETURN a, k, p, [a.name, b.name] AS names, "
        "{who: a.name} AS m",
        timeout_ms=5_000,
        row_cap=10,
    )
    assert result.columns == ["a", "k", "p", "names", "m"]
    node, edge, path, names, mapping = json.loads(json.dumps(result.rows[0], allow_nan=False))
    assert node["labels"] == ["Person"] and node["properties"]["name"] == "Ada"
    assert node["properties"]["active"] is True
    assert edge["type"] == "KNOWS" and edge["properties"] == {}
    assert [n["properties"]["name"] for n in path["nodes"]] == ["Ada", "Bob"]
    assert [r["type"] for r in path["relationships"]] == ["KNOWS"]
    assert names == ["Ada", "Bob"] and mapping == {"who": "Ada"}


def test_unicode_and_large_strings_round_trip(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = graph_keys("text")
    odd = "Zoë «quoted» \"double\" 'single' back\\slash \n newline 日本語 🚀 `tick` $param"
    large = "x" * 100_000 + odd
    graph_backend.write(g, "CREATE (:Doc {title: $t, body: $b})", {"t": odd, "b": large})
    result = graph_backend.query_readonly(
        g, "MATCH (d:Doc {title: $t}) RETURN d.title, d.body", {"t": odd}, timeout_ms=5_000, row_cap=10
    )
    assert result.rows == [[odd, large]]


def test_graphs_delete_and_isolation(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    a, b = graph_keys("a"), graph_keys("b")
    graph_backend.write(a, "CREATE (:Only {in: 'a'})")
    graph_backend.write(b, "CREATE (:Only {in: 'b'}), (:Only {in: 'b'})")
    assert {a, b} <= set(graph_backend.graphs())
    count = "MATCH (n:Only) RETURN collect(n.in)"
    assert graph_backend.query_readonly(a, count, timeout_ms=5_000, row_cap=1).rows == [[["a"]]]
    assert graph_backend.query_readonly(b, count, timeout_ms=5_000, row_cap=1).rows == [[["b", "b"]]]
    graph_backend.delete_graph(a)
    assert a not in graph_backend.graphs() and b in graph_backend.graphs()
    graph_backend.delete_graph(a)  # deleting a graph that is gone is a no-op
    assert graph_backend.query_readonly(b, count, timeout_ms=5_000, row_cap=1).rows == [[["b", "b"]]]


def test_write_many_sums_stats(graph_backend: GraphBackend, graph_keys: Keys) -> None:
    g = graph_keys("batch")
    stats = graph_backend.write_many(
        g,
        [
            (
                "UNWIND $rows AS r CREATE (:City {name: r.name})",
                {"rows": [{"name": "Oslo"}, {"name": "Lima"}]},
            ),
            (
                "MATCH (a:City {name: $a}), (b:City {name: $b}) CREATE (a)-[:ROAD]->(b)",
                {"a": "Oslo", "b": "Lima"},
            ),
        ],
    )
    assert (stats.nodes_created, stats.relationships_created, stats.properties_set) == (2, 1, 2)


# -- pure parts: URL schemes, the FalkorDB row estimate, Neo4j value and plan conversion -------------------


def test_unknown_url_scheme_names_the_accepted_ones(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, graph_url="mongodb://user:pw@db:27017", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError) as caught:
        open_graph(settings)
    message = caught.value.message
    assert "falkor://" in message and "bolt://" in message and "neo4j+s://" in message
    assert "pw" not in message and caught.value.exit_code == 2
    assert [graph_scheme(u) for u in ("falkor://h:1", "unix:///s.sock", "neo4j+s://h", "BOLT://h")] == [
        "falkor",
        "unix",
        "neo4j+s",
        "bolt",
    ]


def test_estimate_heuristic_on_a_hand_written_plan() -> None:
    stats = GraphStats(nodes=100_000, labels={"P": 1_000}, relationships={"R": 300_000})
    scan = PlanOp.parse(
        ["Results", "    Project", "        Conditional Variable Length Traverse | (n)-[@anon_0*1..5]->(m)",
         "            All Node Scan | (n)"]
    )  # fmt: skip
    facts = pattern_facts("MATCH (n)-[*1..5]->(m) RETURN m")
    assert facts == PatternFacts(fixed_hops=0, types=frozenset(), untyped=True)
    assert estimate_rows(scan, stats, facts, max_hops=5) == 100_000 * sum(3.0**k for k in range(1, 6))
    fused = PlanOp.parse(
        ["Results", "    Conditional Traverse | (n)->(c)", "        Node By Label Scan | (n:P)"]
    )
    chain = pattern_facts(
        "MATCH (n:P)-[:R]->(a)-[:R]->(b)-->(c) // -[:X]-> in a comment\nRETURN c, '-[:Y]->'"
    )
    assert chain == PatternFacts(fixed_hops=3, types=frozenset({"R"}), untyped=True)
    assert estimate_rows(fused, stats, chain, max_hops=5) == 1_000 * 3.0**3
    lookup = PlanOp.parse(["Results", "    Node By Label and ID Scan | (n:P)"])
    assert (
        estimate_rows(lookup, stats, pattern_facts("MATCH (n:P) WHERE id(n) = 1 RETURN n"), max_hops=5) == 1.0
    )


def test_neo4j_conversions_on_plain_values() -> None:
    ada = node_json(
        "4:x:1", ["Person", "Admin"], {"name": "Ada", "born": date(1815, 12, 10), "x": float("nan")}
    )
    assert ada == {
        "id": "4:x:1",
        "labels": ["Admin", "Person"],
        "properties": {"name": "Ada", "born": "1815-12-10", "x": "NaN"},
    }
    knows = relationship_json("5:x:9", "KNOWS", "4:x:1", "4:x:2", {"since": 2019})
    assert knows["type"] == "KNOWS" and (knows["start"], knows["end"]) == ("4:x:1", "4:x:2")
    assert path_json([ada], [knows]) == {"nodes": [ada], "relationships": [knows]}
    assert point_json(4326, [13.4, 52.5]) == {"latitude": 52.5, "longitude": 13.4}
    assert point_json(7203, [1.0, 2.0]) == {"x": 1.0, "y": 2.0}
    plan = plan_from_summary(
        {
            "operatorType": "ProduceResults@neo4j",
            "args": {"EstimatedRows": 12345.0, "Details": "m"},
            "children": [
                {
                    "operatorType": "VarLengthExpand(All)@neo4j",
                    "args": {"EstimatedRows": 12345.0, "Details": "(n)-[*1..5]->(m)"},
                    "children": [{"operatorType": "AllNodesScan@neo4j", "args": {"EstimatedRows": 100.0}}],
                }
            ],
        }
    )
    assert plan.operators == ["ProduceResults", "VarLengthExpand(All)", "AllNodesScan"]
    assert plan.estimated_rows == 12345.0 and "    VarLengthExpand(All) | (n)-[*1..5]->(m)" in plan.text
    timeout = translate_neo4j_error(
        "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration", "t", "g"
    )
    assert isinstance(timeout, GraphTimeout)
    read_only = translate_neo4j_error(
        "Neo.ClientError.Statement.AccessMode", "Writing in read access mode", "g"
    )
    assert isinstance(read_only, GraphQueryError) and read_only.details["reason"] == "read_only"
    syntax = translate_neo4j_error("Neo.ClientError.Statement.SyntaxError", "Invalid input", "g")
    assert isinstance(syntax, GraphQueryError) and syntax.details["reason"] == "syntax"
    assert isinstance(translate_neo4j_error("Neo.ClientError.Database.DatabaseNotFound", "", "g"), NotFound)


def test_falkor_values_convert_to_json() -> None:
    assert to_json({"d": datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC), "t": timedelta(days=1, seconds=5)}) == {
        "d": "2020-01-02T03:04:05+00:00",
        "t": "P1DT5S",
    }
    assert iso_duration() == "PT0S" and iso_duration(years=1, months=2, seconds=3661.5) == "P1Y2MT1H1M1.5S"
    assert to_json([float("inf"), float("-inf"), b"bytes", (1, 2)]) == [
        "Infinity",
        "-Infinity",
        "bytes",
        [1, 2],
    ]
