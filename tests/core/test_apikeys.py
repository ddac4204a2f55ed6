"""API keys: create/verify/list/revoke/expiry, hashes at rest, tenant isolation, scope narrowing.

Storage tests run on SQLite and PostgreSQL (the ``engine`` fixture). RELIABILITY.md #1-#3.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.apikeys import ApiKeyStore
from maestro.core.authn import Authenticator
from maestro.core.authority import Principal
from maestro.core.errors import InvalidRequest, NotFound, Unauthenticated
from maestro.core.principals import AUTHENTICATION_FAILED, PrincipalStore
from maestro.core.roles import HUMAN_ONLY_SCOPES
from maestro.core.schema import api_keys

KEY_RE = re.compile(r"^mk_[a-z2-7]{8}_[a-z2-7]{52}$")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def principals(engine: Engine) -> PrincipalStore:
    return PrincipalStore(engine)


@pytest.fixture
def keys(engine: Engine, clock: FakeClock) -> ApiKeyStore:
    return ApiKeyStore(engine, clock=clock)


def reason_of(exc: pytest.ExceptionInfo[Unauthenticated]) -> str:
    assert exc.value.message == AUTHENTICATION_FAILED  # one message for every failure: no oracle
    return str(exc.value.details["reason"])


def test_create_returns_the_plaintext_once_and_verify_maps_it_back(
    principals: PrincipalStore, keys: ApiKeyStore
) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintext, info = keys.create(alice.id, "laptop")
    assert KEY_RE.fullmatch(plaintext)
    assert plaintext.split("_")[1] == info.prefix
    assert info.tenant == "acme" and info.principal_id == alice.id and info.name == "laptop"
    assert info.scopes is None and info.revoked_at is None and info.expires_at is None
    assert info.display == f"mk_{info.prefix}_…"
    assert plaintext not in repr(info) and plaintext not in str(info.to_dict())

    assert keys.verify(plaintext) == alice
    other, other_info = keys.create(alice.id, "laptop")  # names need not be unique; keys are
    assert other != plaintext and other_info.prefix != info.prefix


def test_plaintext_never_reaches_the_database(
    engine: Engine, principals: PrincipalStore, keys: ApiKeyStore
) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintexts = [keys.create(alice.id, f"k{i}")[0] for i in range(3)]
    for plaintext in plaintexts:
        keys.verify(plaintext)  # also after use (last_used_at written)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys)).mappings().all()
    dump = "\n".join(repr(dict(r)) for r in rows)
    assert len(rows) == 3
    for plaintext in plaintexts:
        secret = plaintext.rsplit("_", 1)[1]
        assert plaintext not in dump
        assert secret not in dump
        assert secret[:16] not in dump
    assert all(len(r["secret_hash"]) == 64 for r in rows)


def test_list_shows_prefixes_never_secrets_or_hashes(principals: PrincipalStore, keys: ApiKeyStore) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    bob = principals.create("acme", "bob", roles=["viewer"])
    _, k1 = keys.create(alice.id, "one")
    _, k2 = keys.create(bob.id, "two")
    listed = keys.list("acme")
    assert [k.id for k in listed] == [k1.id, k2.id]
    assert [k.id for k in keys.list("acme", principal_id=bob.id)] == [k2.id]
    assert not hasattr(listed[0], "secret_hash")
    assert "secret_hash" not in listed[0].to_dict()
    assert listed[0].to_dict()["prefix"] == k1.prefix


def test_revoke_by_id_or_prefix(principals: PrincipalStore, keys: ApiKeyStore, clock: FakeClock) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    p1, k1 = keys.create(alice.id, "one")
    p2, k2 = keys.create(alice.id, "two")
    p3, k3 = keys.create(alice.id, "three")
    assert keys.revoke(k1.id, tenant="acme").revoked_at == T0
    assert keys.revoke(k2.prefix, tenant="acme").revoked_at == T0
    assert keys.revoke(f"mk_{k3.prefix}", tenant="acme").revoked_at == T0
    clock.now = T0 + timedelta(hours=1)
    assert keys.revoke(k1.id, tenant="acme").revoked_at == T0  # idempotent: first revocation kept
    for plaintext in (p1, p2, p3):
        with pytest.raises(Unauthenticated) as exc:
            keys.verify(plaintext)
        assert reason_of(exc) == "revoked"
    assert all(k.revoked_at == T0 for k in keys.list("acme"))


def test_tenant_a_cannot_see_or_revoke_tenant_bs_key(principals: PrincipalStore, keys: ApiKeyStore) -> None:
    carol = principals.create("globex", "carol", roles=["admin"])
    plaintext, info = keys.create(carol.id, "prod")
    assert keys.list("acme") == []
    errors = []
    for ref in (info.id, info.prefix, f"mk_{info.prefix}", "key_doesnotexist", "zzzzzzzz"):
        with pytest.raises(NotFound) as exc:
            keys.revoke(ref, tenant="acme")
        errors.append(exc.value.message.replace(ref, "REF"))
    assert len(set(errors)) == 1  # same answer whether the key exists elsewhere or not
    assert keys.verify(plaintext) == carol  # nothing written
    assert keys.list("globex")[0].revoked_at is None


def test_create_for_another_tenants_or_a_disabled_principal_is_not_found(
    principals: PrincipalStore, keys: ApiKeyStore
) -> None:
    carol = principals.create("globex", "carol", roles=["admin"])
    with pytest.raises(NotFound):
        keys.create(carol.id, "x", tenant="acme")
    principals.disable(carol.id, tenant="globex")
    with pytest.raises(NotFound):
        keys.create(carol.id, "x")
    with pytest.raises(NotFound):
        keys.create("prn_missing", "x")


def test_expiry(principals: PrincipalStore, keys: ApiKeyStore, clock: FakeClock) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintext, info = keys.create(alice.id, "short", expires_at=T0 + timedelta(hours=1))
    assert info.expires_at == T0 + timedelta(hours=1)
    clock.now = T0 + timedelta(minutes=59)
    assert keys.verify(plaintext) == alice
    clock.now = T0 + timedelta(hours=1)
    with pytest.raises(Unauthenticated) as exc:
        keys.verify(plaintext)
    assert reason_of(exc) == "expired"
    assert not keys.list("acme")[0].active(clock.now)
    with pytest.raises(InvalidRequest, match="past"):
        keys.create(alice.id, "late", expires_at=clock.now - timedelta(seconds=1))
    with pytest.raises(InvalidRequest, match="timezone"):
        keys.create(alice.id, "naive", expires_at=datetime(2031, 1, 1))


def test_expiry_in_another_timezone_is_stored_in_utc(principals: PrincipalStore, keys: ApiKeyStore) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plus_two = (T0 + timedelta(hours=3)).astimezone(timezone(timedelta(hours=2)))
    _, info = keys.create(alice.id, "tz", expires_at=plus_two)
    assert keys.list("acme")[0].expires_at == T0 + timedelta(hours=3) == info.expires_at


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "mk_",
        "mk_abcdefgh",
        "mk_abcdefgh_short",
        "mk_ABCDEFGH_" + "a" * 52,
        "mk_abcdefgh_" + "a" * 52 + "\n",
        "mk_abcdefgh_" + "a" * 53,
        "xx_abcdefgh_" + "a" * 52,
        "mk_abcdefgh_" + "a" * 51 + "1",
    ],
)
def test_malformed_keys_fail_with_the_generic_message(keys: ApiKeyStore, bad: str) -> None:
    with pytest.raises(Unauthenticated) as exc:
        keys.verify(bad)
    assert reason_of(exc) == "malformed_key"


def test_unknown_wrong_secret_and_disabled_principal_all_look_the_same(
    principals: PrincipalStore, keys: ApiKeyStore
) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintext, info = keys.create(alice.id, "one")
    secret = plaintext.rsplit("_", 1)[1]
    wrong_secret = f"mk_{info.prefix}_{'a' * 52 if secret != 'a' * 52 else 'b' * 52}"
    unknown = f"mk_{'a' * 8 if info.prefix != 'a' * 8 else 'b' * 8}_{secret}"
    reasons = {}
    for label, key in (("wrong", wrong_secret), ("unknown", unknown)):
        with pytest.raises(Unauthenticated) as exc:
            keys.verify(key)
        reasons[label] = reason_of(exc)
        assert "acme" not in str(exc.value.to_dict())
    assert reasons == {"wrong": "wrong_secret", "unknown": "unknown_key"}
    principals.disable(alice.id, tenant="acme")
    with pytest.raises(Unauthenticated) as exc:
        keys.verify(plaintext)
    assert reason_of(exc) == "principal_disabled"


def test_key_scopes_only_narrow_the_principals(principals: PrincipalStore, keys: ApiKeyStore) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintext, info = keys.create(alice.id, "ro", scopes=["rag:query", "runs:read"])
    assert info.scopes == frozenset({"rag:query", "runs:read"})
    verified = keys.verify(plaintext)
    assert verified.scopes == {"rag:query", "runs:read"}
    assert (verified.id, verified.tenant, verified.roles) == (alice.id, "acme", ("engineer",))
    with pytest.raises(InvalidRequest, match="budget:admin"):
        keys.create(alice.id, "escalate", scopes=["rag:query", "budget:admin"])
    with pytest.raises(InvalidRequest, match="root"):
        keys.create(alice.id, "unknown", scopes=["root"])
    empty, _ = keys.create(alice.id, "nothing", scopes=[])
    assert keys.verify(empty).scopes == frozenset()


def test_bot_key_never_carries_human_only_scopes(principals: PrincipalStore, keys: ApiKeyStore) -> None:
    bot = principals.create("acme", "remediation-bot", roles=["admin", "bot"], kind="bot")
    plaintext, _ = keys.create(bot.id, "nightly")
    verified = keys.verify(plaintext)
    assert verified.kind == "bot"
    assert not verified.scopes & HUMAN_ONLY_SCOPES
    with pytest.raises(InvalidRequest, match="approve:remediate"):
        keys.create(bot.id, "sneaky", scopes=["repo:propose", "approve:remediate"])


def test_last_used_at_is_written_at_most_once_a_minute(
    principals: PrincipalStore, keys: ApiKeyStore, clock: FakeClock
) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintext, _ = keys.create(alice.id, "one")
    assert keys.list("acme")[0].last_used_at is None
    keys.verify(plaintext)
    assert keys.list("acme")[0].last_used_at == T0
    clock.now = T0 + timedelta(seconds=59)
    keys.verify(plaintext)
    assert keys.list("acme")[0].last_used_at == T0
    clock.now = T0 + timedelta(seconds=61)
    keys.verify(plaintext)
    assert keys.list("acme")[0].last_used_at == T0 + timedelta(seconds=61)


# -- Authenticator: the API key path --------------------------------------------------------------------


def test_authenticator_accepts_bearer_api_keys(principals: PrincipalStore, keys: ApiKeyStore) -> None:
    alice = principals.create("acme", "alice", roles=["engineer"])
    plaintext, _ = keys.create(alice.id, "one")
    auth = Authenticator(keys, oidc=None)
    assert auth.authenticate(f"Bearer {plaintext}") == alice
    assert auth.authenticate(f"bearer   {plaintext} ") == alice
    assert isinstance(auth.authenticate(f"BEARER {plaintext}"), Principal)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_credentials"),
        ("", "missing_credentials"),
        ("Basic YWxpY2U6cGFzcw==", "unsupported_scheme"),
        ("mk_abcdefgh_" + "a" * 52, "unsupported_scheme"),
        ("Bearer", "malformed_header"),
        ("Bearer a b", "malformed_header"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "oidc_not_configured"),
        ("Bearer mk_nope", "malformed_key"),
    ],
)
def test_authenticator_refuses_everything_else(keys: ApiKeyStore, header: str | None, reason: str) -> None:
    with pytest.raises(Unauthenticated) as exc:
        Authenticator(keys, oidc=None).authenticate(header)
    assert reason_of(exc) == reason
