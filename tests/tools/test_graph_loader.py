"""``load_file`` into the real embedded FalkorDB: Cypher scripts, neo4j-admin style CSVs, directories,
and validation that refuses a malformed input before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maestro.core.errors import InvalidRequest
from maestro.core.settings import Settings
from maestro.tools.graph import GraphBackend, GraphQueryError, open_graph
from maestro.tools.graph.loader import load_file, split_statements

SAMPLE = Path(__file__).parents[2] / "maestro" / "tools" / "graph" / "samples" / "contract_lineage.cypher"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphBackend]:
    data = tmp_path_factory.mktemp("loader") / "var"
    opened = open_graph(Settings(data_dir=data, _env_file=None))  # type: ignore[call-arg]
    yield opened
    opened.close()


def _count(backend: GraphBackend, key: str, query: str) -> object:
    return backend.query_readonly(key, query, timeout_ms=5_000, row_cap=10).rows[0][0]


def test_split_respects_strings_comments_and_backticks() -> None:
    source = (
        "CREATE (:A {t: 'x; y'}); // a comment; with a semicolon\n"
        'CREATE (:`B;C` {t: "q\\"; "}) /* block; */ ;\n'
        ";  \n"
        "MATCH (a:A) RETURN a"
    )
    statements = split_statements(source)
    assert [line for line, _ in statements] == [1, 2, 4]  # the line of the first token
    assert statements[0][1] == "CREATE (:A {t: 'x; y'})"
    assert statements[1][1].startswith("// a comment; with a semicolon\nCREATE (:`B;C`")
    assert statements[2][1] == "MATCH (a:A) RETURN a"


def test_cypher_script_loads_the_sample(backend: GraphBackend) -> None:
    seen: list[tuple[int, int]] = []
    report = load_file(backend, "sample", SAMPLE, replace=True, progress=lambda d, t, w: seen.append((d, t)))
    assert (report.nodes, report.relationships) == (275, 585)
    assert seen[-1][0] == seen[-1][1] == report.statements
    again = load_file(backend, "sample", SAMPLE, replace=True)  # replace: the same graph, not doubled
    assert (again.nodes, again.relationships) == (275, 585)
    assert _count(backend, "sample", "MATCH (n) RETURN count(n)") == 275


def test_csv_nodes_and_relationships_with_types(backend: GraphBackend, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "personId:ID,name,age:int,score:float,active:boolean,tags:string[],:LABEL\n"
        "p1,Ada,36,1.5,true,a;b,Person;Admin\n"
        'p2,"Bob, Jr.",41,,false,,Person\n'
        "p3,Zoë 日本,,2,yes,c,Person\n"
    )
    (tmp_path / "teams.csv").write_text(":ID(Team),name,:LABEL\nt1,Eng,Team\n")
    (tmp_path / "member.csv").write_text(
        ":START_ID,:END_ID(Team),:TYPE,since:int\np1,t1,MEMBER_OF,2019\np2,t1,MEMBER_OF,\n"
    )
    (tmp_path / "knows.csv").write_text(":START_ID,:END_ID,:TYPE\np1,p2,KNOWS\np2,p3,KNOWS\n")
    report = load_file(backend, "csv", [tmp_path], replace=True)  # a directory: nodes go first
    assert (report.nodes, report.relationships) == (4, 4)
    assert len(report.files) == 4
    row = backend.query_readonly(
        "csv",
        "MATCH (p:Person {personId: 'p1'}) RETURN p.name, p.age, p.score, p.active, p.tags, labels(p)",
        timeout_ms=5_000,
        row_cap=1,
    ).rows[0]
    assert row[:5] == ["Ada", 36, 1.5, True, ["a", "b"]] and sorted(row[5]) == ["Admin", "Person"]
    bob = backend.query_readonly(
        "csv", "MATCH (p {personId: 'p2'}) RETURN p.name, p.score, p.active", timeout_ms=5_000, row_cap=1
    )
    assert bob.rows == [["Bob, Jr.", None, False]]
    since = backend.query_readonly(
        "csv",
        "MATCH (p:Person)-[m:MEMBER_OF]->(t:Team {name: 'Eng'}) "
        "RETURN p.personId, m.since ORDER BY p.personId",
        timeout_ms=5_000,
        row_cap=5,
    )
    assert since.rows == [["p1", 2019], ["p2", None]]
    assert (
        _count(backend, "csv", "MATCH (:Person {personId: 'p3'})<-[:KNOWS]-(x) RETURN x.name") == "Bob, Jr."
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"n.csv": "id:ID,age:int,:LABEL\na,1,P\nb,two,P\n"}, "n.csv:3: column 'age' expects int, got 'two'"),
        ({"n.csv": "id:ID,:LABEL\na,P\na,P\n"}, "n.csv:3: node id 'a' is already defined at"),
        ({"n.csv": "id:ID,:LABEL\na,P\nb\n"}, "n.csv:3: 1 cells where the header has 2"),
        ({"n.csv": "id:ID,:LABEL\na,Bad-Label\n"}, "label 'Bad-Label' is not a plain identifier"),
        ({"n.csv": "id:ID,x:date,:LABEL\na,1,P\n"}, "unknown type 'date'"),
        ({"n.csv": "id:ID,:LABEL\na,\n"}, "node 'a' has no label"),
        ({"n.csv": "name,age\nx,1\n"}, "neither an :ID column"),
        (
            {"n.csv": "id:ID,:LABEL\na,P\n", "r.csv": ":START_ID,:END_ID,:TYPE\na,zz,R\n"},
            "r.csv:2: :END_ID 'zz' is not defined",
        ),
        ({"r.csv": ":START_ID,:END_ID,:TYPE\na,b,`x`\n"}, "relationship type '`x`'"),
        ({"s.cypher": "CREATE (:A {t: 'ok'});\nCREATE (:B {t: 'unterminated});\n"}, "s.cypher: "),
    ],
)
def test_malformed_input_writes_nothing(
    backend: GraphBackend, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = backend.graphs()
    with pytest.raises(InvalidRequest) as caught:
        load_file(backend, "bad", sorted(tmp_path.iterdir()))
    assert message in caught.value.message and caught.value.exit_code == 2
    assert backend.graphs() == before  # nothing was written, not even an index


def test_engine_error_names_the_statement_line(backend: GraphBackend, tmp_path: Path) -> None:
    script = tmp_path / "s.cypher"
    script.write_text("CREATE (:A {n: 1});\n\nCREATE (:A {n: 2}) RETURN nosuchvar;\nCREATE (:A {n: 3});\n")
    with pytest.raises(GraphQueryError, match=r"s\.cypher:3: .*nosuchvar"):
        load_file(backend, "partial", script, replace=True)
    assert _count(backend, "partial", "MATCH (a:A) RETURN count(a)") == 1  # documented: no rollback


def test_missing_and_unsupported_paths(backend: GraphBackend, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="no such file or directory"):
        load_file(backend, "x", tmp_path / "nope.cypher")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InvalidRequest, match="unsupported file type '.txt'"):
        load_file(backend, "x", tmp_path / "notes.txt")
