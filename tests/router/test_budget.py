"""Budgets: arithmetic, limits, periods, alerts, idempotency, isolation, and concurrency (RELIABILITY #20).

Every test runs on SQLite and on PostgreSQL (the ``engine`` / ``db_url`` fixtures).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.db import create_db_engine
from maestro.core.errors import BudgetExceeded, InvalidRequest, NotFound
from maestro.core.schema import NANO, budget_periods, budget_reservations
from maestro.router.budget import BudgetEvent, BudgetStore, Reservation, principal_scope

MILLI = NANO // 1000  # $0.001
CENT = NANO // 100  # $0.01


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_store(
    engine: Engine, *, tenant_usd: float = 10.0, principal_usd: float = 5.0, **kw: Any
) -> BudgetStore:
    return BudgetStore(engine, tenant_default_usd=tenant_usd, principal_default_usd=principal_usd, **kw)


def period_row(engine: Engine, kind: str, scope_id: str) -> tuple[int, int, int] | None:
    """(limit, spent, reserved) of every period of a scope summed; None if no row exists."""
    cols = budget_periods.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cols.limit_nano, cols.spent_nano, cols.reserved_nano).where(
                cols.scope_kind == kind, cols.scope_id == scope_id
            )
        ).all()
    if not rows:
        return None
    return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)


# -- arithmetic, limits, periods ------------------------------------------------------------------------


def test_reserve_settle_release_arithmetic(engine: Engine) -> None:
    store = make_store(engine)
    first = store.reserve(tenant="acme", principal="alice", amount_nano=300 * MILLI, decision_id="dec_1")
    second = store.reserve(tenant="acme", principal="alice", amount_nano=200 * MILLI)
    assert first.tenant == "acme" and first.principal == "alice" and first.amount_nano == 300 * MILLI

    tenant = store.status("tenant", "acme")
    assert (tenant.limit_usd, tenant.spent_usd, tenant.reserved_usd, tenant.remaining_usd) == (
        10,
        0,
        0.5,
        9.5,
    )
    assert store.remaining_nano(tenant="acme", principal="alice") == 5 * NANO - 500 * MILLI

    assert store.settle(first, actual_nano=120 * MILLI) == []
    store.release(second)
    for kind, scope_id, limit in (("tenant", "acme", 10.0), ("principal", "acme/alice", 5.0)):
        status = store.status(kind, scope_id)  # type: ignore[arg-type]
        assert (status.limit_usd, status.spent_usd, status.reserved_usd) == (limit, 0.12, 0)
        assert status.remaining_usd == pytest.approx(limit - 0.12)

    with engine.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(sa.select(budget_reservations).order_by(budget_reservations.c.created_at))
        }
    assert rows[first.id].status == "settled" and rows[first.id].settled_nano == 120 * MILLI
    assert rows[first.id].decision_id == "dec_1" and rows[first.id].estimated is False
    assert rows[second.id].status == "released" and rows[second.id].settled_nano is None


def test_lazy_defaults_read_without_writing(engine: Engine) -> None:
    store = make_store(engine, tenant_usd=7.5, principal_usd=2.0)
    status = store.status("principal", "acme/alice")
    assert (status.limit_usd, status.spent_usd, status.remaining_usd) == (2.0, 0, 2.0)
    assert store.remaining_nano(tenant="acme", principal="alice") == 2 * NANO
    assert period_row(engine, "tenant", "acme") is None  # reading creates nothing

    store.reserve(tenant="acme", principal="alice", amount_nano=0)
    assert period_row(engine, "tenant", "acme") == (7_500_000_000, 0, 0)
    assert period_row(engine, "principal", "acme/alice") == (2 * NANO, 0, 0)


def test_tenant_limit_refuses_with_clear_error(engine: Engine) -> None:
    store = make_store(engine)
    store.set_limit("tenant", "acme", 1.0)
    held = store.reserve(tenant="acme", principal="alice", amount_nano=600 * MILLI)
    with pytest.raises(BudgetExceeded) as info:
        store.reserve(tenant="acme", principal="bob", amount_nano=500 * MILLI)
    error = info.value
    assert error.code == "budget_exceeded" and error.http_status == 402
    assert "tenant 'acme'" in error.message and "$0.4 left" in error.message and "$0.5" in error.message
    assert "`maestro budget set --tenant acme --usd 2`" in error.message
    assert error.details["scope"] == "tenant" and error.details["scope_id"] == "acme"
    assert error.details["remaining_usd"] == 0.4 and error.details["requested_usd"] == 0.5
    # Nothing was held by the refused call, for either scope.
    assert store.status("tenant", "acme").reserved_usd == 0.6
    assert period_row(engine, "principal", "acme/bob") is None  # the whole transaction rolled back
    # The exact remainder still fits.
    store.reserve(tenant="acme", principal="bob", amount_nano=400 * MILLI)
    assert store.remaining_nano(tenant="acme", principal="alice") == 0
    store.release(held)


def test_principal_limit_is_namespaced_by_tenant(engine: Engine) -> None:
    store = make_store(engine)
    store.set_limit("principal", "acme/alice", 0.05)
    with pytest.raises(BudgetExceeded) as info:
        store.reserve(tenant="acme", principal="alice", amount_nano=60 * MILLI)
    assert info.value.details["scope"] == "principal" and info.value.details["scope_id"] == "acme/alice"
    assert "`maestro budget set --tenant acme --principal alice --usd 1`" in info.value.message
    assert store.status("tenant", "acme").reserved_usd == 0  # the tenant hold was rolled back
    # Other principals of acme, and alice of another tenant, keep the default.
    store.reserve(tenant="acme", principal="bob", amount_nano=60 * MILLI)
    store.reserve(tenant="globex", principal="alice", amount_nano=60 * MILLI)
    assert store.status("principal", "globex/alice").limit_usd == 5.0
    assert principal_scope("acme", "alice") == "acme/alice"


def test_set_limit_updates_the_current_period(engine: Engine) -> None:
    store = make_store(engine)
    store.reserve(tenant="acme", principal="alice", amount_nano=NANO)
    store.set_limit("tenant", "acme", 1.0)  # lowered to exactly what is held
    assert store.status("tenant", "acme").remaining_usd == 0
    with pytest.raises(BudgetExceeded):
        store.reserve(tenant="acme", principal="alice", amount_nano=1)
    store.set_limit("tenant", "acme", 3.0)
    store.reserve(tenant="acme", principal="alice", amount_nano=2 * NANO)
    assert store.status("tenant", "acme").limit_usd == 3.0
    store.set_limit("tenant", "fresh", 0.25)  # a scope with no row yet
    assert period_row(engine, "tenant", "fresh") == (250 * 1_000_000, 0, 0)


def test_next_month_starts_fresh(engine: Engine) -> None:
    clock = FakeClock(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    store = make_store(engine, tenant_usd=1.0, clock=clock)
    store.set_limit("principal", "acme/alice", 0.5)
    january = store.reserve(tenant="acme", principal="alice", amount_nano=500 * MILLI)
    store.settle(january, actual_nano=500 * MILLI)
    assert january.period == "2026-01"
    with pytest.raises(BudgetExceeded):
        store.reserve(tenant="acme", principal="alice", amount_nano=1)

    clock.now = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    status = store.status("principal", "acme/alice")
    assert (status.period, status.limit_usd, status.spent_usd) == (
        "2026-02",
        0.5,
        0,
    )  # the set limit carries on
    february = store.reserve(tenant="acme", principal="alice", amount_nano=500 * MILLI)
    assert february.period == "2026-02"
    # A reservation settles in the period it was made in.
    clock.now = datetime(2026, 3, 1, tzinfo=UTC)
    store.settle(february, actual_nano=100 * MILLI)
    clock.now = datetime(2026, 2, 15, tzinfo=UTC)
    assert store.status("tenant", "acme").spent_usd == 0.1


def test_zero_limit_refuses_every_positive_reservation(engine: Engine) -> None:
    store = make_store(engine, principal_usd=0.0)
    with pytest.raises(BudgetExceeded) as info:
        store.reserve(tenant="acme", principal="alice", amount_nano=1)
    assert info.value.details["remaining_usd"] == 0
    assert "--usd 1`" in info.value.message
    store.set_limit("tenant", "acme", 0)
    store.set_limit("principal", "acme/alice", 1)
    with pytest.raises(BudgetExceeded, match="tenant 'acme'"):
        store.reserve(tenant="acme", principal="alice", amount_nano=1)


@pytest.mark.parametrize("amount", [-1, 1.5, True, 10**19])
def test_bad_amounts_are_rejected(engine: Engine, amount: Any) -> None:
    store = make_store(engine)
    with pytest.raises(InvalidRequest):
        store.reserve(tenant="acme", principal="alice", amount_nano=amount)
    held = store.reserve(tenant="acme", principal="alice", amount_nano=MILLI)
    with pytest.raises(InvalidRequest):
        store.settle(held, actual_nano=amount)
    assert store.status("tenant", "acme").reserved_usd == 0.001  # the failed settle changed nothing


def test_bad_scopes_are_rejected(engine: Engine) -> None:
    store = make_store(engine)
    for tenant, principal in (("", "alice"), ("a/b", "alice"), ("acme", ""), ("x" * 201, "alice")):
        with pytest.raises(InvalidRequest):
            store.reserve(tenant=tenant, principal=principal, amount_nano=1)
    with pytest.raises(InvalidRequest, match="acme/alice"):
        store.set_limit("principal", "alice", 1)
    with pytest.raises(InvalidRequest, match="'tenant' or 'principal'"):
        store.set_limit("team", "acme", 1)  # type: ignore[arg-type]
    for usd in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidRequest):
            store.set_limit("tenant", "acme", usd)


# -- settle, release, alerts --------------------------------------------------------------------------


def test_alerts_fire_once_at_80_and_100_percent(engine: Engine) -> None:
    store = make_store(engine, tenant_usd=10.0, principal_usd=100.0)
    store.set_limit("tenant", "acme", 1.0)

    def spend(nano: int) -> list[BudgetEvent]:
        return store.settle(
            store.reserve(tenant="acme", principal="alice", amount_nano=nano), actual_nano=nano
        )

    assert spend(790 * MILLI) == []
    assert spend(10 * MILLI) == [BudgetEvent("tenant", "acme", store.current_period(), 80, 800 * MILLI, NANO)]
    assert spend(100 * MILLI) == []  # 90 %: 80 % already fired
    assert spend(100 * MILLI) == [BudgetEvent("tenant", "acme", store.current_period(), 100, NANO, NANO)]
    assert store.remaining_nano(tenant="acme", principal="alice") == 0
    store.set_limit("tenant", "acme", 5.0)
    assert spend(2 * NANO) == []  # past 100 % of the old limit again: each threshold once per period

    assert [e.threshold_pct for e in store.events()] == [80, 100]
    assert store.events(scope_kind="principal") == []
    assert [e.threshold_pct for e in store.events(scope_kind="tenant", scope_id="acme")] == [80, 100]
    assert store.events(scope_id="globex") == []


def test_an_overrun_crosses_both_thresholds_for_both_scopes(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(engine, tenant_usd=1.0, principal_usd=1.0)
    held = store.reserve(tenant="acme", principal="alice", amount_nano=500 * MILLI)
    with caplog.at_level("WARNING", logger="maestro.budget"):
        events = store.settle(held, actual_nano=1200 * MILLI)  # the provider reported more than reserved
    assert {(e.scope_kind, e.scope_id, e.threshold_pct) for e in events} == {
        ("tenant", "acme", 80),
        ("tenant", "acme", 100),
        ("principal", "acme/alice", 80),
        ("principal", "acme/alice", 100),
    }
    assert all(e.used_nano == 1200 * MILLI and e.limit_nano == NANO for e in events)
    assert sum("budget alert" in r.getMessage() for r in caplog.records) == 4
    status = store.status("tenant", "acme")
    assert (status.spent_usd, status.reserved_usd, status.remaining_usd) == (1.2, 0, 0)  # recorded anyway
    with pytest.raises(BudgetExceeded):
        store.reserve(tenant="acme", principal="alice", amount_nano=0)  # over budget: nothing more


def test_settle_and_release_are_idempotent(engine: Engine) -> None:
    store = make_store(engine, tenant_usd=1.0)
    settled = store.reserve(tenant="acme", principal="alice", amount_nano=900 * MILLI)
    assert len(store.settle(settled, actual_nano=900 * MILLI)) == 1  # tenant at 90 %
    assert store.settle(settled, actual_nano=900 * MILLI) == []
    assert store.settle(settled, actual_nano=5 * MILLI) == []  # a second, different figure changes nothing
    store.release(settled)  # after settling: no-op
    assert store.status("tenant", "acme").spent_usd == 0.9

    released = store.reserve(tenant="acme", principal="alice", amount_nano=100 * MILLI)
    store.release(released)
    store.release(released)
    status = store.status("tenant", "acme")
    assert (status.spent_usd, status.reserved_usd) == (0.9, 0)
    assert status.remaining_usd == pytest.approx(0.1)
    assert store.remaining_nano(tenant="acme", principal="alice") == 100 * MILLI  # the money came back


def test_settle_after_release_charges_late_usage(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    store = make_store(engine)
    held = store.reserve(tenant="acme", principal="alice", amount_nano=100 * MILLI)
    store.release(held)
    with caplog.at_level("WARNING", logger="maestro.budget"):
        store.settle(held, actual_nano=40 * MILLI, estimated=True)
    assert any("after its release" in r.getMessage() for r in caplog.records)
    assert any("estimated" in r.getMessage() for r in caplog.records)
    status = store.status("principal", "acme/alice")
    assert (status.spent_usd, status.reserved_usd) == (0.04, 0)
    store.settle(held, actual_nano=40 * MILLI)
    assert store.status("tenant", "acme").spent_usd == 0.04
    with engine.connect() as conn:
        row = conn.execute(sa.select(budget_reservations).where(budget_reservations.c.id == held.id)).one()
    assert (row.status, row.settled_nano, row.estimated) == ("settled", 40 * MILLI, True)


def test_unknown_reservation_is_not_found(engine: Engine) -> None:
    store = make_store(engine)
    ghost = Reservation(id="res_ghost", tenant="acme", principal="alice", period="2026-01", amount_nano=1)
    with pytest.raises(NotFound, match="res_ghost"):
        store.settle(ghost, actual_nano=1)
    with pytest.raises(NotFound):
        store.release(ghost)


def test_tenants_are_isolated(engine: Engine) -> None:
    store = make_store(engine, tenant_usd=1.0, principal_usd=1.0)
    before = (store.status("tenant", "globex"), store.status("principal", "globex/alice"))
    for _ in range(3):
        held = store.reserve(tenant="acme", principal="alice", amount_nano=300 * MILLI)
        store.settle(held, actual_nano=300 * MILLI)
    store.reserve(tenant="acme", principal="alice", amount_nano=50 * MILLI)
    store.set_limit("tenant", "acme", 0.95)
    with pytest.raises(BudgetExceeded):
        store.reserve(tenant="acme", principal="alice", amount_nano=300 * MILLI)
    assert (store.status("tenant", "globex"), store.status("principal", "globex/alice")) == before
    assert store.events(scope_id="globex") == [] and store.events(scope_id="globex/alice") == []
    assert store.remaining_nano(tenant="globex", principal="alice") == NANO
    assert period_row(engine, "tenant", "globex") is None


# -- concurrency: RELIABILITY #20 ----------------------------------------------------------------------


def _spend_down_to_one_cent(store: BudgetStore) -> None:
    """Leave the tenant 'acme' exactly $0.01 of its $1 limit."""
    store.set_limit("tenant", "acme", 1.0)
    held = store.reserve(tenant="acme", principal="setup", amount_nano=990 * MILLI)
    store.settle(held, actual_nano=990 * MILLI)
    assert store.remaining_nano(tenant="acme", principal="anyone") == CENT


def test_50_concurrent_thread_reservations_never_overspend(engine: Engine) -> None:
    store = make_store(engine, principal_usd=100.0)
    _spend_down_to_one_cent(store)
    amount = 3 * MILLI
    expected = CENT // amount  # 3
    start = threading.Barrier(50)
    done = threading.Event()
    worst = [0]

    def watch() -> None:  # samples spent + reserved while the race runs
        while not done.is_set():
            _, spent, reserved = period_row(engine, "tenant", "acme") or (0, 0, 0)
            worst[0] = max(worst[0], spent + reserved)

    def attempt(i: int) -> Reservation | BudgetExceeded:
        start.wait(timeout=60)
        try:
            return store.reserve(tenant="acme", principal=f"user{i % 7}", amount_nano=amount)
        except BudgetExceeded as exc:
            return exc

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(attempt, range(50)))
    finally:
        done.set()
        watcher.join()

    held = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(held) == expected and len(refused) == 50 - expected
    assert all(e.code == "budget_exceeded" and e.details["scope"] == "tenant" for e in refused)
    assert worst[0] <= NANO
    limit, spent, reserved = period_row(engine, "tenant", "acme") or (0, 0, 0)
    assert (limit, spent, reserved) == (NANO, 990 * MILLI, expected * amount)

    # Settle concurrently with the provider-reported figures; one call reported more than it reserved.
    actuals = [amount - 700_000, amount - 1, amount + 400_000][:expected]
    with ThreadPoolExecutor(max_workers=expected) as pool:
        list(
            pool.map(lambda pair: store.settle(pair[0], actual_nano=pair[1]), zip(held, actuals, strict=True))
        )
    limit, spent, reserved = period_row(engine, "tenant", "acme") or (0, 0, 0)
    assert (spent, reserved) == (990 * MILLI + sum(actuals), 0)
    assert spent - limit <= amount  # overspend at most one request's reserved maximum
    principals_spent = sum(
        (period_row(engine, "principal", f"acme/user{i}") or (0, 0, 0))[1] for i in range(7)
    )
    assert principals_spent == sum(actuals)


PROCESSES = 4
ATTEMPTS = 10


def _reserve_in_process(
    url: str,
    index: int,
    amount: int,
    start: Any,
    reserved: Any,
    settle: Any,
    results: Any,
) -> None:
    """Child process: race for reservations, wait until the parent has checked, then settle them."""
    engine = create_db_engine(url)
    try:
        store = BudgetStore(engine, tenant_default_usd=10.0, principal_default_usd=100.0)
        start.wait(timeout=120)
        held: list[Reservation] = []
        refused = 0
        for attempt in range(ATTEMPTS):
            try:
                held.append(
                    store.reserve(tenant="acme", principal=f"p{index}-{attempt % 3}", amount_nano=amount)
                )
            except BudgetExceeded:
                refused += 1
        reserved.wait(timeout=120)
        settle.wait(timeout=120)
        actuals = [amount - 1000 * (index + 1) for _ in held]
        for reservation, actual in zip(held, actuals, strict=True):
            store.settle(reservation, actual_nano=actual)
        results.put((index, len(held), refused, sum(actuals), None))
    except BaseException:  # report every failure to the parent, then unblock it
        results.put((index, 0, 0, 0, traceback.format_exc()))
        for barrier in (start, reserved, settle):
            barrier.abort()
    finally:
        engine.dispose()


def test_concurrent_process_reservations_never_overspend(engine: Engine, db_url: str) -> None:
    store = make_store(engine, principal_usd=100.0)
    _spend_down_to_one_cent(store)
    amount = 1500 * 1000  # $0.0015
    expected = CENT // amount  # 6 of 40 attempts
    ctx = multiprocessing.get_context("spawn")
    start, reserved, settle = ctx.Barrier(PROCESSES), ctx.Barrier(PROCESSES + 1), ctx.Barrier(PROCESSES + 1)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_reserve_in_process, args=(db_url, i, amount, start, reserved, settle, results))
        for i in range(PROCESSES)
    ]
    for child in children:
        child.start()
    try:
        try:
            reserved.wait(timeout=180)
            limit, spent, held = period_row(engine, "tenant", "acme") or (0, 0, 0)
            assert (limit, spent, held) == (NANO, 990 * MILLI, expected * amount)
            settle.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass  # a child failed: its traceback is in the results
        outcomes = []
        for _ in children:
            try:
                outcomes.append(results.get(timeout=120))
            except queue.Empty:
                pytest.fail("a budget child process neither reported nor failed within 120 s")
    finally:
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.kill()
    errors = [error for *_, error in outcomes if error]
    assert not errors, errors[0]
    assert sum(o[1] for o in outcomes) == expected
    assert sum(o[2] for o in outcomes) == PROCESSES * ATTEMPTS - expected
    limit, spent, held = period_row(engine, "tenant", "acme") or (0, 0, 0)
    assert (spent, held) == (990 * MILLI + sum(o[3] for o in outcomes), 0)
    assert spent <= limit
