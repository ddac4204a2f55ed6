"""The Cypher guard (RELIABILITY #9-13): the red-team suite, the tokenizer, rewrites, parameters, bad
input, the ``maestro cypher check`` CLI, and a property test that no input makes it raise.

``data/cypher_redteam.jsonl`` holds one query per line: ``query``, ``allowed`` (the expected verdict),
``why``; optional ``params`` (passed to ``check``) and ``expect_query_contains`` (a string or a list of
strings the rewritten query must contain).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro.core.errors import ConfigurationError, Refused
from maestro.tools.cypher import (
    MAX_QUERY_BYTES,
    CypherGuard,
    CypherRefused,
    CypherSyntaxError,
    GuardResult,
    tokenize,
)

REDTEAM = Path(__file__).parent / "data" / "cypher_redteam.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in REDTEAM.read_text().splitlines() if line.strip()]
MALICIOUS = [row for row in ROWS if not row["allowed"]]
BENIGN = [row for row in ROWS if row["allowed"]]
MAESTRO = str(Path(sys.executable).with_name("maestro"))


@pytest.fixture(scope="module")
def guard() -> CypherGuard:
    return CypherGuard()


def _id(row: dict[str, Any]) -> str:
    return f"{ROWS.index(row)}-{row['why'][:40]}"


# -- the red-team suite -----------------------------------------------------------------------------


def test_redteam_suite_size_and_coverage() -> None:
    assert len(MALICIOUS) >= 70
    assert len(BENIGN) >= 70
    malicious = "\n".join(row["query"] for row in MALICIOUS)
    for needle in (
        "MATCH (n) DETACH DELETE n",
        "SET ",
        "MERGE ",
        "CREATE (",
        "REMOVE ",
        "DROP ",
        "FOREACH",
        "CALL {",
        "IN TRANSACTIONS",
        "apoc.load.json",
        "apoc.periodic.iterate",
        "apoc.cypher.run",
        "apoc.create.node",
        "apoc.refactor.",
        "dbms.security.createUser",
        "dbms.killQuery",
        "CREATE USER",
        "GRANT ROLE",
        "DROP DATABASE",
        "LOAD CSV FROM 'http://169.254.169.254/",
        "file:///etc/passwd",
        "; CREATE",
        "/* */ ; DELETE",
        "cReAtE",
        "EXPLAIN",
        "PROFILE",
        "UNION",
        "EXISTS {",
        "*1..1000",
    ):
        assert needle in malicious, needle
    benign = "\n".join(row["query"] for row in BENIGN)
    for needle in (
        "'DELETE everything'",
        "`CREATE`",
        "$name",
        "OPTIONAL MATCH",
        "UNWIND",
        "CASE",
        "EXISTS {",
        "CALL db.labels() YIELD label RETURN label",
        "apoc.text.join",
        "shortestPath",
        "UNION",
        "-[*]->",
    ):
        assert needle in benign, needle


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_redteam(guard: CypherGuard, row: dict[str, Any]) -> None:
    result = guard.check(row["query"], row.get("params"))
    assert result.allowed is row["allowed"], (row["why"], result.reasons)
    if not result.allowed:
        assert result.reasons, "a refusal always says why"
        assert result.query == row["query"]
        return
    expected = row.get("expect_query_contains") or []
    for fragment in [expected] if isinstance(expected, str) else expected:
        assert fragment in result.query, (fragment, result.query)


@pytest.mark.parametrize("row", BENIGN, ids=_id)
def test_rewrite_is_idempotent(guard: CypherGuard, row: dict[str, Any]) -> None:
    first = guard.check(row["query"], row.get("params"))
    again = guard.check(first.query, row.get("params"))
    assert again.allowed
    assert again.query == first.query
    assert not any(note.startswith(("appended", "lowered", "bounded")) for note in again.reasons)


# -- tokenizer --------------------------------------------------------------------------------------


def _kinds(query: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(query)][:-1]


def test_strings_with_escaped_quotes() -> None:
    tokens = _kinds(r"""RETURN 'O\'Brien', "say \"DELETE\"", 'a\\' , 'x''y'""")
    assert tokens == [
        ("ident", "RETURN"),
        ("string", r"'O\'Brien'"),
        ("op", ","),
        ("string", r'"say \"DELETE\""'),
        ("op", ","),
        ("string", r"'a\\'"),
        ("op", ","),
        ("string", "'x'"),
        ("string", "'y'"),
    ]


def test_comments_are_dropped_and_keywords_in_them_are_not_tokens() -> None:
    tokens = tokenize("MATCH (n) // CREATE (m)\nRETURN /* DELETE n */ n")
    assert [t.upper for t in tokens if t.kind == "ident"] == ["MATCH", "N", "RETURN", "N"]
    assert tokens[-1].kind == "eof"


def test_backticked_names_never_read_as_keywords() -> None:
    (token,) = [t for t in tokenize("MATCH (n:`CRE``ATE`) RETURN n") if t.kind == "qident"]
    assert token.text == "CRE`ATE"
    assert token.upper == ""


def test_parameters_numbers_and_operators() -> None:
    assert _kinds("$name $0 $`odd name`") == [("param", "name"), ("param", "0"), ("param", "odd name")]
    assert _kinds("0x1F 1.5e3 .5 7") == [
        ("number", "0x1F"),
        ("number", "1.5e3"),
        ("number", ".5"),
        ("number", "7"),
    ]
    assert _kinds("*1..5") == [("op", "*"), ("number", "1"), ("op", ".."), ("number", "5")]
    assert [t for _, t in _kinds("a <> b <= c =~ d <-- e")] == [
        "a",
        "<>",
        "b",
        "<=",
        "c",
        "=~",
        "d",
        "<",
        "-",
        "-",
        "e",
    ]


@pytest.mark.parametrize(
    ("query", "message", "offset"),
    [
        ("RETURN 1 /* a /* b */", "nested '/*'", 14),
        ("RETURN 1 /* open", "unterminated block comment", 9),
        ("RETURN 'open", "unterminated string literal", 7),
        ("RETURN `open", "unterminated backticked name", 7),
        ("CRE\u200bATE (n)", "U+200B ZERO WIDTH SPACE", 3),
        ("RETURN 1 // x\u2028CREATE (n)", "U+2028 LINE SEPARATOR", 13),
        ("RETURN 1 \\ 2", "unexpected character", 9),
        ("MATCH (n) \u017fET n.x = 1", "read as 'SET'", 10),
    ],
)
def test_tokenizer_errors_name_what_and_where(query: str, message: str, offset: int) -> None:
    with pytest.raises(CypherSyntaxError) as caught:
        tokenize(query)
    assert message in caught.value.message
    assert caught.value.offset == offset
    assert "line 1, column" in caught.value.message


# -- rewrites ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "rewritten"),
    [
        ("MATCH (n) RETURN n", "MATCH (n) RETURN n LIMIT 1000"),
        ("MATCH (n) RETURN n;", "MATCH (n) RETURN n LIMIT 1000;"),
        ("MATCH (n) RETURN n // all of them\n", "MATCH (n) RETURN n LIMIT 1000 // all of them\n"),
        ("MATCH (n) RETURN n LIMIT 5000", "MATCH (n) RETURN n LIMIT 1000"),
        ("MATCH (n) RETURN n LIMIT 0x2000", "MATCH (n) RETURN n LIMIT 1000"),
        ("MATCH (n) RETURN n ORDER BY n.x SKIP 5", "MATCH (n) RETURN n ORDER BY n.x SKIP 5 LIMIT 1000"),
        ("MATCH (a)-[*]->(b) RETURN b LIMIT 3", "MATCH (a)-[*1..5]->(b) RETURN b LIMIT 3"),
        ("MATCH (a)-[:R*2..]->(b) RETURN b LIMIT 3", "MATCH (a)-[:R*2..5]->(b) RETURN b LIMIT 3"),
        (
            "MATCH (a)-[r *0.. {x: 1}]->(b) RETURN b LIMIT 3",
            "MATCH (a)-[r *0..5 {x: 1}]->(b) RETURN b LIMIT 3",
        ),
        (
            "MATCH p = shortestPath((a:A)-[*]-(b:B)) RETURN p LIMIT 1",
            "MATCH p = shortestPath((a:A)-[*1..5]-(b:B)) RETURN p LIMIT 1",
        ),
        (
            "MATCH (a:A) RETURN a.x AS x UNION MATCH (b:B) RETURN b.x AS x",
            "MATCH (a:A) RETURN a.x AS x LIMIT 1000 UNION MATCH (b:B) RETURN b.x AS x LIMIT 1000",
        ),
        (
            "MATCH (n {name: 'a  b', `odd  key`: \"*\"})   RETURN   n.name  /* kept */",
            "MATCH (n {name: 'a  b', `odd  key`: \"*\"})   RETURN   n.name LIMIT 1000  /* kept */",
        ),
    ],
)
def test_rewrites_splice_the_original_text(guard: CypherGuard, query: str, rewritten: str) -> None:
    result = guard.check(query)
    assert result.allowed, result.reasons
    assert result.query == rewritten
    assert result.reasons, "every rewrite is reported as a note"
    again = guard.check(result.query)
    assert (again.allowed, again.query, again.reasons) == (True, rewritten, [])


@pytest.mark.parametrize(
    "query",
    [
        "MATCH (n) RETURN n LIMIT 1000",
        "MATCH (n) RETURN n LIMIT 10",
        "MATCH (a)-[*..3]->(b) RETURN b LIMIT 10",
        "MATCH (a)-[*5]->(b) RETURN b LIMIT 10",
        "CALL db.labels()",
    ],
)
def test_nothing_to_rewrite(guard: CypherGuard, query: str) -> None:
    assert guard.check(query) == GuardResult(True, [], query)


def test_limits_are_configurable() -> None:
    small = CypherGuard(max_hops=2, row_cap=10)
    assert small.check("MATCH (a)-[*]->(b) RETURN b").query == "MATCH (a)-[*1..2]->(b) RETURN b LIMIT 10"
    assert small.check("MATCH (n) RETURN n LIMIT 11").query == "MATCH (n) RETURN n LIMIT 10"
    refused = small.check("MATCH (a)-[*3]->(b) RETURN b")
    assert not refused.allowed
    assert "max_hops 2" in refused.reasons[0]
    assert not small.check("MATCH (a)-[*3..]->(b) RETURN b").allowed


@pytest.mark.parametrize(
    ("params", "allowed", "reason"),
    [
        ({"n": 25}, True, ""),
        ({"n": 1000}, True, ""),
        ({"n": 1001}, False, "over the row cap 1000"),
        ({"n": "25"}, False, "must be a non-negative integer"),
        ({"n": -1}, False, "must be a non-negative integer"),
        (None, False, "without parameters"),
    ],
)
def test_limit_parameter(
    guard: CypherGuard, params: dict[str, Any] | None, allowed: bool, reason: str
) -> None:
    result = guard.check("MATCH (n:Service) RETURN n.name LIMIT $n", params)
    assert result.allowed is allowed
    assert result.query == "MATCH (n:Service) RETURN n.name LIMIT $n"
    assert reason in " ".join(result.reasons)


@pytest.mark.parametrize("limit", ["2 * 3", "toInteger($n)", "1.5"])
def test_limit_expressions_are_refused(guard: CypherGuard, limit: str) -> None:
    result = guard.check(f"MATCH (n) RETURN n LIMIT {limit}", {"n": 3} if "$n" in limit else None)
    assert not result.allowed
    assert "LIMIT" in result.reasons[0]


# -- refusals ---------------------------------------------------------------------------------------


def test_every_refusal_is_listed_with_its_position(guard: CypherGuard) -> None:
    result = guard.check("MATCH (n)\nSET n.x = 1\nDETACH DELETE n\nRETURN n")
    assert not result.allowed
    assert result.reasons == [
        "SET at line 2, column 1 writes properties or labels: only read-only queries are allowed",
        "DETACH DELETE at line 3, column 1 deletes nodes with all their relationships: "
        "only read-only queries are allowed",
    ]


def test_unknown_syntax_fails_closed_naming_the_token(guard: CypherGuard) -> None:
    result = guard.check("MATCH (n) FINISH")
    assert not result.allowed
    assert result.reasons == [
        "unrecognised clause 'FINISH': the guard allows MATCH, OPTIONAL MATCH, WITH, UNWIND, CALL, RETURN "
        "and UNION at line 1, column 11"
    ]


def test_allow_lists_are_configurable() -> None:
    query = "CALL apoc.meta.schema() YIELD value RETURN value.x AS x, apoc.text.foo('a') AS y"
    assert not CypherGuard().check(query).allowed
    custom = CypherGuard(procedures={"apoc.meta.schema"}, apoc_functions={"apoc.text.foo"})
    assert custom.check(query).allowed
    assert not custom.check("CALL db.labels()").allowed


def test_cartesian_limit_is_configurable() -> None:
    query = "MATCH (s:Service), (t:Team), (p:Policy) RETURN count(*)"
    assert not CypherGuard().check(query).allowed
    assert CypherGuard(max_cartesian=3).check(query).allowed


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "5"])
def test_bad_configuration_raises(value: Any) -> None:
    with pytest.raises(ConfigurationError):
        CypherGuard(max_hops=value)
    with pytest.raises(ConfigurationError):
        CypherGuard(row_cap=value)


# -- parameters -------------------------------------------------------------------------------------

QUERY_WITH_PARAMS = "MATCH (s:Service {name: $name}) WHERE s.tier IN $tiers RETURN s LIMIT 5"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"name": "billing", "tiers": [1, 2]}, None),
        ({"name": "billing", "tiers": (1, 2)}, None),
        ({"name": None, "tiers": []}, None),
        ({"name": "billing"}, "parameter $tiers is used at line 1, column 49 but not supplied"),
        (
            {"name": "x", "tiers": [1], "extra": 1},
            "parameter $extra is supplied but the query never reads it",
        ),
        ({"name": {"a": {"b": 1}}, "tiers": [1]}, "maps hold scalars only"),
        ({"name": "x", "tiers": [[1]]}, "lists hold scalars only"),
        ({"name": b"x", "tiers": [1]}, "bytes is not a scalar Cypher value"),
        ({"name": 2**70, "tiers": [1]}, "outside the 64-bit range"),
        ({"name": "x", "tiers": {1: "a"}}, "map key 1 is not a string"),
    ],
)
def test_parameter_policy(guard: CypherGuard, params: dict[str, Any], reason: str | None) -> None:
    result = guard.check(QUERY_WITH_PARAMS, params)
    assert result.allowed is (reason is None), result.reasons
    if reason is not None:
        assert any(reason in r for r in result.reasons), result.reasons


def test_parameters_inside_refused_clauses_still_count_as_used(guard: CypherGuard) -> None:
    result = guard.check("LOAD CSV FROM $url AS row RETURN row", {"url": "file:///etc/passwd"})
    assert not result.allowed
    assert len(result.reasons) == 1 and result.reasons[0].startswith("LOAD CSV")


def test_extra_parameters_can_be_allowed() -> None:
    relaxed = CypherGuard(allow_extra_params=True)
    assert relaxed.check("MATCH (n:A) RETURN n LIMIT 1", {"unused": 1}).allowed
    assert not relaxed.check("MATCH (n:A) RETURN n LIMIT 1", {"unused": object()}).allowed


def test_params_must_be_a_mapping(guard: CypherGuard) -> None:
    result = guard.check("RETURN 1 AS x", ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert not result.allowed
    assert "params must be a mapping" in result.reasons[0]


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "empty query"),
        ("  \n\t ", "empty query"),
        ("// only a comment\n/* and another */", "empty query"),
        ("MATCH (n)\x00 RETURN n", "NUL byte at offset 9"),
        ("RETURN '" + "x" * 200_000 + "'", f"over the {MAX_QUERY_BYTES}-byte limit"),
        ("RETURN 'é" + "é" * 60_000 + "'", f"over the {MAX_QUERY_BYTES}-byte limit"),
        ("RETURN '\ud800'", "lone surrogate at offset 8"),
        ("RETURN " + "(" * 500 + "1" + ")" * 500, "nest deeper than"),
        ("RETURN " + "CASE WHEN true THEN " * 300 + "1" + " END" * 300, "nests deeper than"),
        ("MATCH (n) RETURN n)", "unbalanced ')'"),
        ("MATCH (n RETURN n", "'(' is never closed"),
    ],
)
def test_bad_input_is_refused_not_raised(guard: CypherGuard, query: str, reason: str) -> None:
    result = guard.check(query)
    assert not result.allowed
    assert reason in " ".join(result.reasons), result.reasons
    assert result.query == query


def test_non_string_query_is_refused(guard: CypherGuard) -> None:
    result = guard.check(b"MATCH (n) RETURN n")  # type: ignore[arg-type]
    assert result == GuardResult(False, ["the query must be a string, not bytes"], "")


def test_reasons_are_capped(guard: CypherGuard) -> None:
    result = guard.check("CREATE (n) " * 500)
    assert not result.allowed
    assert len(result.reasons) == 21
    assert result.reasons[-1] == "further problems were not listed"


# -- result -----------------------------------------------------------------------------------------


def test_result_shape_and_require(guard: CypherGuard) -> None:
    allowed = guard.check("MATCH (n:A) RETURN n LIMIT 1")
    assert allowed.to_dict() == {"allowed": True, "reasons": [], "query": "MATCH (n:A) RETURN n LIMIT 1"}
    assert allowed.require() == "MATCH (n:A) RETURN n LIMIT 1"
    refused = guard.check("MATCH (n) DELETE n")
    assert list(refused.to_dict()) == ["allowed", "reasons", "query"]
    with pytest.raises(CypherRefused) as caught:
        refused.require()
    assert isinstance(caught.value, Refused)
    assert caught.value.exit_code == 3
    assert caught.value.reasons == refused.reasons


# -- property test ----------------------------------------------------------------------------------

_CYPHERISH = st.lists(
    st.sampled_from(
        list("()[]{}<>-*.:;,|$`'\"/\\ \n\t=+!&%^0123456789abnxyz")
        + ["MATCH ", "RETURN ", "WITH ", "WHERE ", "UNION ", "CALL ", "CREATE ", "EXISTS ", "CASE ", "END "]
        + ["(n)", "-[*]->", "LIMIT ", "//", "/*", "*/", "$p", "db.labels()", "apoc.", "\u2028", "\u200b"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), _CYPHERISH))
def test_any_text_is_allowed_or_refused_never_raises(query: str) -> None:
    guard = CypherGuard()
    result = guard.check(query)
    assert isinstance(result.allowed, bool)
    assert all(isinstance(reason, str) for reason in result.reasons)
    if result.allowed:
        again = guard.check(result.query)
        assert again.allowed and again.query == result.query
    else:
        assert result.reasons and result.query == query


# -- the CLI ----------------------------------------------------------------------------------------


def cli(args: list[str], tmp_path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    environment["MAESTRO_DATA_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [MAESTRO, "cypher", "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )


def test_cli_allowed_prints_the_rewritten_query(tmp_path: Path) -> None:
    done = cli(["--max-hops", "3", "--row-cap", "50"], tmp_path, "MATCH (a:A)-[*]->(b) RETURN b")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "MATCH (a:A)-[*1..3]->(b) RETURN b LIMIT 50\n"
    assert "allowed" in done.stderr and "LIMIT 50" in done.stderr


def test_cli_refused_exits_3_with_reasons(tmp_path: Path) -> None:
    done = cli([], tmp_path, "MATCH (n) RETURN n; CREATE (m)")
    assert done.returncode == 3
    assert done.stdout == ""
    assert "refused" in done.stderr and "only one statement" in done.stderr


def test_cli_json_shape(tmp_path: Path) -> None:
    allowed = cli(["--json"], tmp_path, "MATCH (n:A) RETURN n")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout) == {
        "allowed": True,
        "reasons": ["appended LIMIT 1000 to the RETURN at line 1, column 13 (row cap)"],
        "query": "MATCH (n:A) RETURN n LIMIT 1000",
    }
    refused = cli(["--json"], tmp_path, "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l")
    assert refused.returncode == 3
    document = json.loads(refused.stdout)
    assert list(document) == ["allowed", "reasons", "query"]
    assert document["allowed"] is False
    assert document["query"] == "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l"
    assert "LOAD CSV FROM 'file:///etc/passwd'" in document["reasons"][0]


def test_cli_params_and_usage_errors(tmp_path: Path) -> None:
    query = "MATCH (s:Service {name: $name}) RETURN s LIMIT 5"
    assert cli(["--params", '{"name": "billing"}'], tmp_path, query).returncode == 0
    assert cli(["--params", "{}"], tmp_path, query).returncode == 3
    bad_json = cli(["--params", "{oops", "--json"], tmp_path, query)
    assert bad_json.returncode == 2
    assert json.loads(bad_json.stdout)["error"]["code"] == "invalid_request"
    assert cli(["--max-hops", "0"], tmp_path, query).returncode == 2
    assert cli([], tmp_path, "").returncode == 3
