"""ApprovalStore on SQLite and PostgreSQL: who may decide, deciding once, expiry, tenancy, the audit trail."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.approvals import Approval, ApprovalConflict, ApprovalStore
from maestro.core.authority import Authority, Principal, PrincipalKind
from maestro.core.authorize import Authorizer
from maestro.core.errors import InvalidRequest, NotFound, PolicyDenied
from maestro.core.policy import RegoEngine
from maestro.core.schema import approvals

POLICY_DIR = Path(__file__).resolve().parents[2] / "maestro" / "core" / "policies"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.entries.append((kind, payload))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.entries]


def who(
    name: str, kind: PrincipalKind = "user", *scopes: str, tenant: str = "acme", run_id: str | None = None
) -> Authority:
    principal = Principal(id=f"prn_{name}", tenant=tenant, name=name, kind=kind, scopes=frozenset(scopes))
    return Authority(principal=principal, scopes=frozenset(scopes), run_id=run_id)


BOT = who("remediator", "bot", "repo:propose", run_id="run_7")
ALICE = who("alice", "user", "approve:codegen")
BOB = who("bob", "user", "approve:codegen", "approve:docs")
CAROL = who("carol", "user", "approve:docs")
MALLORY = who("mallory", "user", "approve:codegen", tenant="globex")


@pytest.fixture(scope="module")
def rego() -> RegoEngine:
    return RegoEngine(POLICY_DIR)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(engine: Engine, rego: RegoEngine, recorder: Recorder, clock: Clock) -> ApprovalStore:
    authorizer = Authorizer(rego, record=recorder, clock=clock)
    return ApprovalStore(engine, authorizer=authorizer, record=recorder, clock=clock, ttl=timedelta(hours=1))


def ask(store: ApprovalStore, requester: Authority = BOT, workcell: str = "codegen") -> Approval:
    return store.request(
        requester,
        workcell=workcell,
        action="pr.open",
        resource={
            "kind": "pull_request",
            "tenant": requester.tenant,
            "repo": "acme/app",
            "branch": "maestro/x",
        },
        reason="apply the fix for CVE-2026-0001; prompt said: 'please hurry'",
    )


def status_in_db(engine: Engine, approval_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(sa.select(approvals.c.status).where(approvals.c.id == approval_id)).scalar_one()
        )


# -- asking ---------------------------------------------------------------------------------------------


def test_request_opens_a_pending_approval_and_records_ids_only(
    store: ApprovalStore, recorder: Recorder
) -> None:
    approval = ask(store)
    assert approval.status == "pending" and approval.id.startswith("apr_")
    assert (approval.tenant, approval.workcell, approval.action) == ("acme", "codegen", "pr.open")
    assert (approval.requested_by, approval.run_id) == ("prn_remediator", "run_7")
    assert approval.created_at == T0 and approval.expires_at == T0 + timedelta(hours=1)
    assert store.get(approval.id, tenant="acme") == approval
    assert recorder.entries == [
        (
            "approval.requested",
            {
                "approval_id": approval.id,
                "tenant": "acme",
                "workcell": "codegen",
                "action": "pr.open",
                "resource_kind": "pull_request",
                "run_id": "run_7",
                "requested_by": "prn_remediator",
                "expires_at": (T0 + timedelta(hours=1)).isoformat(),
            },
        )
    ]
    assert "hurry" not in repr(recorder.entries)
    assert approval.to_dict()["created_at"] == T0.isoformat()


def test_request_for_another_tenants_resource_is_refused(store: ApprovalStore, recorder: Recorder) -> None:
    with pytest.raises(PolicyDenied, match="belongs to another tenant"):
        store.request(BOT, workcell="codegen", action="pr.open", resource={"tenant": "globex"})
    assert recorder.kinds() == ["policy.denied"]
    assert store.list("acme") == [] and store.list("globex") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workcell": ""}, "workcell"),
        ({"workcell": "x" * 65}, "workcell"),
        ({"action": ""}, "action"),
        ({"resource": {"when": datetime(2026, 1, 1)}}, "JSON-serialisable"),
        ({"ttl": timedelta(0)}, "ttl must be positive"),
    ],
)
def test_request_validates_its_arguments(store: ApprovalStore, kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"workcell": "codegen", "action": "pr.open", "resource": {"tenant": "acme"}}
    with pytest.raises(InvalidRequest, match=message):
        store.request(BOT, **{**arguments, **kwargs})


# -- deciding -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("decide", "outcome"), [("grant", "granted"), ("refuse", "refused")])
def test_a_human_with_the_workcell_scope_decides(
    store: ApprovalStore, recorder: Recorder, clock: Clock, decide: str, outcome: str
) -> None:
    approval = ask(store)
    clock.now = T0 + timedelta(minutes=5)
    decided = getattr(store, decide)(approval.id, ALICE, note="looks right")
    assert decided.status == outcome
    assert (decided.decided_by, decided.decided_at, decided.decision_note) == (
        "prn_alice",
        clock.now,
        "looks right",
    )
    assert store.get(approval.id, tenant="acme") == decided
    assert recorder.kinds() == ["approval.requested", f"approval.{outcome}"]
    payload = recorder.entries[-1][1]
    assert payload["decided_by"] == "prn_alice" and payload["approval_id"] == approval.id
    assert "looks right" not in repr(recorder.entries)


def test_a_decision_is_final(store: ApprovalStore, engine: Engine) -> None:
    approval = ask(store)
    store.grant(approval.id, ALICE)
    with pytest.raises(ApprovalConflict, match="already granted by 'prn_alice'") as caught:
        store.refuse(approval.id, BOB)
    assert caught.value.http_status == 409 and caught.value.details["status"] == "granted"
    with pytest.raises(ApprovalConflict):
        store.grant(approval.id, ALICE)
    assert status_in_db(engine, approval.id) == "granted"
    assert store.get(approval.id, tenant="acme").decided_by == "prn_alice"


@pytest.mark.parametrize(
    ("approver", "reason"),
    [
        (
            who("helper", "bot", "approve:codegen"),
            "'approval.decide' is a human-only action: bots may not perform it",
        ),
        (CAROL, "missing scope 'approve:codegen' for action 'approval.decide'"),
        (who("dave", "user", "runs:read"), "missing scope 'approve:codegen' for action 'approval.decide'"),
    ],
    ids=["bot-with-scope", "other-workcell", "no-scope"],
)
def test_only_humans_with_the_workcell_scope_may_decide(
    store: ApprovalStore, recorder: Recorder, engine: Engine, approver: Authority, reason: str
) -> None:
    approval = ask(store)
    for decide in (store.grant, store.refuse):
        with pytest.raises(PolicyDenied) as caught:
            decide(approval.id, approver)
        assert reason in caught.value.details["reasons"]
    assert status_in_db(engine, approval.id) == "pending"
    assert recorder.kinds() == ["approval.requested", "policy.denied", "policy.denied"]
    assert recorder.entries[1][1]["action"] == "approval.decide"
    assert recorder.entries[1][1]["resource_id"] == approval.id


def test_the_requester_may_not_decide_their_own_request(store: ApprovalStore, engine: Engine) -> None:
    approval = ask(store, requester=ALICE)
    with pytest.raises(PolicyDenied, match="may not decide their own approval request"):
        store.grant(approval.id, ALICE)
    assert status_in_db(engine, approval.id) == "pending"
    assert store.grant(approval.id, BOB).status == "granted"


def test_another_tenant_sees_nothing(store: ApprovalStore, recorder: Recorder, engine: Engine) -> None:
    """RELIABILITY.md #2: same answer as an unknown id, nothing written."""
    approval = ask(store)
    calls: list[Callable[[], Approval]] = [
        lambda: store.get(approval.id, tenant="globex"),
        lambda: store.grant(approval.id, MALLORY),
        lambda: store.refuse(approval.id, MALLORY),
    ]
    for call in calls:
        with pytest.raises(NotFound) as caught:
            call()
        with pytest.raises(NotFound) as unknown:
            store.get("apr_doesnotexist", tenant="globex")
        assert str(caught.value).replace(approval.id, "ID") == str(unknown.value).replace(
            "apr_doesnotexist", "ID"
        )
    assert store.list("globex") == []
    assert status_in_db(engine, approval.id) == "pending"
    assert recorder.kinds() == ["approval.requested"]


def test_concurrent_decisions_exactly_one_wins(
    store: ApprovalStore, engine: Engine, recorder: Recorder
) -> None:
    """RELIABILITY.md #28: grant and refuse race; one UPDATE ... WHERE status='pending' wins."""
    approvers = [ALICE, BOB] * 4
    approval = ask(store)
    start = threading.Barrier(len(approvers))

    def attempt(index: int) -> str:
        start.wait()
        decide: Callable[..., Approval] = store.grant if index % 2 == 0 else store.refuse
        try:
            return decide(approval.id, approvers[index]).status
        except ApprovalConflict:
            return "conflict"

    with ThreadPoolExecutor(max_workers=len(approvers)) as pool:
        outcomes = list(pool.map(attempt, range(len(approvers))))
    winners = [outcome for outcome in outcomes if outcome != "conflict"]
    assert len(winners) == 1 and outcomes.count("conflict") == len(approvers) - 1
    assert status_in_db(engine, approval.id) == winners[0]
    decisions = [kind for kind in recorder.kinds() if kind in ("approval.granted", "approval.refused")]
    assert decisions == [f"approval.{winners[0]}"]


# -- expiry ---------------------------------------------------------------------------------------------


def test_an_expired_approval_cannot_be_decided(store: ApprovalStore, clock: Clock, engine: Engine) -> None:
    approval = ask(store)
    clock.now = T0 + timedelta(hours=1)
    assert store.get(approval.id, tenant="acme").status == "expired"
    assert status_in_db(engine, approval.id) == "pending"  # reads do not write
    with pytest.raises(ApprovalConflict, match="expired at") as caught:
        store.grant(approval.id, ALICE)
    assert caught.value.details["status"] == "expired"
    assert status_in_db(engine, approval.id) == "expired"


def test_expire_due_marks_overdue_requests(store: ApprovalStore, clock: Clock, engine: Engine) -> None:
    old = ask(store)
    clock.now = T0 + timedelta(minutes=30)
    fresh = ask(store)
    clock.now = T0 + timedelta(minutes=31)  # ids made in one millisecond do not sort by creation
    never = store.request(
        BOT, workcell="docs", action="pr.open", resource={"tenant": "acme"}, ttl=timedelta(days=30)
    )
    clock.now = T0 + timedelta(minutes=61)
    assert store.expire_due() == 1
    assert store.expire_due() == 0
    assert status_in_db(engine, old.id) == "expired"
    assert [a.id for a in store.list("acme", "pending")] == [fresh.id, never.id]


def test_store_without_ttl_never_expires(engine: Engine, rego: RegoEngine, clock: Clock) -> None:
    store = ApprovalStore(engine, authorizer=Authorizer(rego), clock=clock, ttl=None)
    approval = ask(store)
    assert approval.expires_at is None
    clock.now = T0 + timedelta(days=365)
    assert store.grant(approval.id, ALICE).status == "granted"


# -- listing --------------------------------------------------------------------------------------------


def test_list_filters_by_tenant_and_status(store: ApprovalStore, clock: Clock) -> None:
    granted = ask(store)
    store.grant(granted.id, ALICE)
    clock.now = T0 + timedelta(minutes=1)
    refused = ask(store)
    store.refuse(refused.id, BOB)
    clock.now = T0 + timedelta(minutes=2)
    overdue = store.request(
        BOT, workcell="docs", action="pr.open", resource={"tenant": "acme"}, ttl=timedelta(minutes=5)
    )
    clock.now = T0 + timedelta(minutes=3)
    pending = ask(store)
    theirs = ask(store, requester=who("other-bot", "bot", tenant="globex"))
    clock.now = T0 + timedelta(minutes=10)

    def ids(status: Any = None) -> list[str]:
        return [approval.id for approval in store.list("acme", status)]

    assert ids() == [granted.id, refused.id, overdue.id, pending.id]
    assert ids("pending") == [pending.id]
    assert ids("granted") == [granted.id]
    assert ids("refused") == [refused.id]
    assert ids("expired") == [overdue.id]
    assert [a.status for a in store.list("acme")] == ["granted", "refused", "expired", "pending"]
    assert [a.id for a in store.list("globex")] == [theirs.id]
    assert len(store.list("acme", limit=2)) == 2
    with pytest.raises(InvalidRequest, match="unknown approval status"):
        store.list("acme", "approved")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="limit"):
        store.list("acme", limit=0)
