"""The tenant -> graph catalog on SQLite and PostgreSQL (the ``engine`` fixture runs both)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy.engine import Engine

from maestro.core.errors import InvalidRequest, NotFound
from maestro.tools.graph.catalog import GraphCatalog, graph_key


def test_register_resolve_list_remove(engine: Engine) -> None:
    catalog = GraphCatalog(engine)
    entry = catalog.register("acme", "sample", by="local:ana", nodes=10, relationships=4, source="a.cypher")
    assert entry.key == "t.acme.sample" == catalog.key_for("acme", "sample")
    assert (entry.nodes, entry.relationships, entry.source, entry.created_by) == (
        10,
        4,
        "a.cypher",
        "local:ana",
    )
    assert entry.created_at == entry.updated_at and entry.created_at.endswith("+00:00")
    assert catalog.resolve("acme", "sample") == entry

    again = catalog.register("acme", "sample", by="local:bo", nodes=12, relationships=5, source="b.csv")
    assert (again.nodes, again.relationships, again.source) == (12, 5, "b.csv")
    assert again.created_by == "local:ana" and again.created_at == entry.created_at
    assert again.updated_at >= entry.updated_at

    catalog.register("acme", "other", by="x", nodes=0, relationships=0, source=None)
    assert [e.name for e in catalog.list("acme")] == ["other", "sample"]
    assert json.loads(json.dumps(catalog.list("acme")))  # entries are JSON as they are
    assert catalog.list("acme")[1].to_dict()["nodes"] == 12

    removed = catalog.remove("acme", "sample")
    assert removed.key == "t.acme.sample" and [e.name for e in catalog.list("acme")] == ["other"]
    with pytest.raises(NotFound):
        catalog.remove("acme", "sample")


def test_a_tenant_never_sees_another_tenants_graph(engine: Engine) -> None:
    catalog = GraphCatalog(engine)
    catalog.register("acme", "payments", by="x", nodes=1, relationships=0, source=None)
    catalog.register("globex", "secret-plans", by="x", nodes=1, relationships=0, source=None)
    with pytest.raises(NotFound) as caught:
        catalog.resolve("acme", "secret-plans")
    message = caught.value.message
    assert "payments" in message and "secret-plans" in message  # the asked name, the own graphs
    assert "globex" not in message
    with pytest.raises(NotFound) as empty:
        catalog.resolve("initech", "payments")
    assert "no graphs yet" in empty.value.message and "acme" not in empty.value.message
    assert [e.name for e in catalog.list("globex")] == ["secret-plans"]
    same_name = catalog.register("globex", "payments", by="x", nodes=2, relationships=0, source=None)
    assert same_name.key != catalog.resolve("acme", "payments").key


@pytest.mark.parametrize("name", ["", "a.b", "a/b", "../x", "x" * 65, "naïve", "a b", "t.acme.x"])
def test_invalid_names_are_refused(engine: Engine, name: str) -> None:
    catalog = GraphCatalog(engine)
    with pytest.raises(InvalidRequest, match="invalid graph name"):
        catalog.register("acme", name, by="x", nodes=0, relationships=0, source=None)
    with pytest.raises(InvalidRequest):
        catalog.resolve("acme", name)


def test_keys_are_collision_proof_for_tenants_with_separators() -> None:
    pairs = [
        ("a.b", "c"),
        ("a", "b_c"),
        ("a.b.c", "d"),
        ("a", "b-c"),
        ("a%2Eb", "c"),
        ("a b", "c"),
        ("a_b", "c"),
    ]
    keys = [graph_key(tenant, name) for tenant, name in pairs]
    assert len(set(keys)) == len(keys)
    assert graph_key("a.b", "c") == "t.a%2Eb.c" and graph_key("a%2Eb", "c") == "t.a%252Eb.c"
    for key in keys:
        assert key.count(".") == 2


def test_concurrent_first_registrations_make_one_row(engine: Engine) -> None:
    catalog = GraphCatalog(engine)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def register(n: int) -> None:
        barrier.wait()
        try:
            catalog.register("acme", "race", by=f"p{n}", nodes=n, relationships=0, source=None)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [e.name for e in catalog.list("acme")] == ["race"]
