"""Reservations left by a crashed process are charged at their maximum by the reaper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from maestro.router.budget import BudgetStore


def test_stale_reservations_are_charged_at_their_maximum(engine: Engine) -> None:
    now = [datetime(2026, 11, 22, 12, 0, tzinfo=UTC)]
    store = BudgetStore(engine, tenant_default_usd=10, principal_default_usd=10, clock=lambda: now[0])
    crashed = store.reserve(tenant="acme", principal="alice", amount_nano=5_000_000)
    settled = store.reserve(tenant="acme", principal="alice", amount_nano=7_000_000)
    store.settle(settled, actual_nano=1_000_000)
    now[0] += timedelta(minutes=10)
    fresh = store.reserve(tenant="acme", principal="alice", amount_nano=3_000_000)
    reaped = store.reap_stale(older_than=timedelta(minutes=5))
    assert [r.id for r in reaped] == [crashed.id]
    status = store.status("tenant", "acme")
    assert status.spent_usd == pytest.approx(0.006)  # 1 settled + 5 reaped at the maximum
    assert status.reserved_usd == pytest.approx(0.003)  # the fresh one is still held
    assert store.reap_stale(older_than=timedelta(minutes=5)) == []
    store.release(fresh)
