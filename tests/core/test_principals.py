"""Roles -> scopes, the bot guard, and the principals table (SQLite and PostgreSQL).

RELIABILITY.md #2 (no cross-tenant existence oracle) and #3 (a bot never holds human-only scopes).
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from maestro.core.errors import InvalidRequest, NotFound
from maestro.core.principals import PrincipalStore, check_name
from maestro.core.roles import (
    APPROVE_SCOPES,
    HUMAN_ONLY_SCOPES,
    ROLES,
    SCOPES,
    WORKCELLS,
    approve_scope,
    check_scopes,
    is_human_only,
    scopes_for,
    strip_human_only,
)

# -- roles -> scopes ------------------------------------------------------------------------------------


def test_role_scopes_match_the_design() -> None:
    assert scopes_for(["engineer"]) == {
        "chat",
        "rag:query",
        "rag:ingest",
        "cypher:read",
        "repo:propose",
        "runs:read",
        "ledger:read",
    }
    assert scopes_for(["mlops"]) == {"eval:run", "eval:report", "eval:approve", "runs:read", "ledger:read"}
    assert scopes_for(["viewer"]) == {"runs:read", "rag:query"}
    assert scopes_for(["bot"], kind="bot") == {"repo:propose", "rag:query", "cypher:read", "chat"}
    assert scopes_for([]) == frozenset()


def test_admin_holds_every_scope_including_explicit_approvals() -> None:
    admin = scopes_for(["admin"])
    assert admin == SCOPES
    assert {"keys:admin", "budget:admin", "router:override", "eval:approve"} <= admin
    for cell in ("codegen", "testgen", "docs", "remediate", "cypher", "eval"):
        assert f"approve:{cell}" in admin
    assert APPROVE_SCOPES == {approve_scope(cell) for cell in WORKCELLS}


def test_roles_union_and_are_read_only() -> None:
    assert scopes_for(["viewer", "mlops"]) == ROLES["viewer"] | ROLES["mlops"]
    with pytest.raises(TypeError):
        ROLES["root"] = SCOPES  # type: ignore[index]


def test_unknown_role_is_refused_with_a_clear_error() -> None:
    with pytest.raises(InvalidRequest) as exc:
        scopes_for(["engineer", "superuser"])
    assert "superuser" in exc.value.message
    assert "admin" in exc.value.message  # the message lists the known roles
    assert exc.value.details["roles"] == ["superuser"]


def test_unknown_scope_and_workcell_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="approve:everything"):
        check_scopes(["chat", "approve:everything"])
    with pytest.raises(InvalidRequest, match="nope"):
        approve_scope("nope")
    assert check_scopes(["chat", "chat"]) == {"chat"}


def test_bot_never_holds_human_only_scopes_even_as_admin() -> None:
    bot_admin = scopes_for(["admin", "bot"], kind="bot")
    assert not bot_admin & HUMAN_ONLY_SCOPES
    assert not any(s.startswith("approve:") for s in bot_admin)
    for scope in ("keys:admin", "budget:admin", "router:override", "eval:approve", "approve:codegen"):
        assert scope not in bot_admin
    # the bot keeps the harmless part of admin
    assert {"rag:ingest", "eval:run", "chat"} <= bot_admin
    # the same roles on a user keep everything
    assert scopes_for(["admin"], kind="user") >= HUMAN_ONLY_SCOPES


def test_human_only_covers_unknown_approve_scopes_and_unknown_kinds_fail_safe() -> None:
    assert is_human_only("approve:future-workcell")
    assert strip_human_only({"chat", "approve:x", "keys:admin"}) == {"chat"}
    assert not scopes_for(["admin"], kind="robot") & HUMAN_ONLY_SCOPES  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", " alice", "a b", "x" * 201, "ünï", "../etc", "a\nb"])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        check_name(bad, what="principal name")


# -- the principals table -------------------------------------------------------------------------------


def test_create_get_and_list(engine: Engine) -> None:
    store = PrincipalStore(engine)
    alice = store.create("acme", "alice@acme.io", roles=["engineer", "engineer", "viewer"])
    assert alice.id.startswith("prn_")
    assert alice.kind == "user"
    assert alice.roles == ("engineer", "viewer")
    assert alice.scopes == scopes_for(["engineer", "viewer"])
    assert store.get(alice.id) == alice
    assert store.get(alice.id, tenant="acme") == alice
    assert store.get_by_name("acme", "alice@acme.io") == alice

    bot = store.create("acme", "remediation-bot", roles=["bot"], kind="bot")
    store.create("globex", "carol", roles=["viewer"])
    listed = store.list("acme")
    assert [info.principal for info in listed] == [alice, bot]
    assert all(not info.disabled for info in listed)
    assert listed[0].to_dict()["roles"] == ["engineer", "viewer"]
    assert listed[0].created_at.tzinfo is not None


def test_bot_created_with_admin_role_has_its_human_only_scopes_stripped(engine: Engine) -> None:
    store = PrincipalStore(engine)
    bot = store.create("acme", "ci-bot", roles=["admin"], kind="bot")
    assert bot.roles == ("admin",)
    assert not bot.scopes & HUMAN_ONLY_SCOPES
    assert not store.get(bot.id).scopes & HUMAN_ONLY_SCOPES  # also when loaded back


def test_create_refuses_duplicates_unknown_roles_and_kinds(engine: Engine) -> None:
    store = PrincipalStore(engine)
    store.create("acme", "alice", roles=["viewer"])
    with pytest.raises(InvalidRequest, match="already exists"):
        store.create("acme", "alice", roles=["admin"])
    store.create("globex", "alice", roles=["viewer"])  # same name, other tenant: fine
    with pytest.raises(InvalidRequest, match="wizard"):
        store.create("acme", "bob", roles=["wizard"])
    with pytest.raises(InvalidRequest, match="robot"):
        store.create("acme", "bob", roles=["viewer"], kind="robot")  # type: ignore[arg-type]
    assert [i.principal.name for i in store.list("acme")] == ["alice"]


def test_other_tenants_principals_look_exactly_like_missing_ones(engine: Engine) -> None:
    store = PrincipalStore(engine)
    carol = store.create("globex", "carol", roles=["admin"])
    with pytest.raises(NotFound) as cross:
        store.get(carol.id, tenant="acme")
    with pytest.raises(NotFound) as missing:
        store.get("prn_doesnotexist", tenant="acme")
    assert cross.value.message.replace(carol.id, "ID") == missing.value.message.replace(
        "prn_doesnotexist", "ID"
    )
    with pytest.raises(NotFound):
        store.disable(carol.id, tenant="acme")
    assert store.get(carol.id).name == "carol"  # untouched
    with pytest.raises(NotFound):
        store.get_by_name("acme", "carol")
    assert store.list("acme") == []


def test_disable_is_idempotent_and_hides_the_principal(engine: Engine) -> None:
    store = PrincipalStore(engine)
    alice = store.create("acme", "alice", roles=["engineer"])
    store.disable(alice.id, tenant="acme")
    first = store.list("acme", include_disabled=True)[0].disabled_at
    store.disable(alice.id, tenant="acme")
    infos = store.list("acme", include_disabled=True)
    assert infos[0].disabled and infos[0].disabled_at == first
    assert store.list("acme") == []
    with pytest.raises(NotFound):
        store.get(alice.id)
    with pytest.raises(NotFound):
        store.get_by_name("acme", "alice")
