"""Time helpers: one place that knows what "now" and "this budget period" mean."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def month_period(at: datetime | None = None) -> str:
    """The budget period containing ``at``: ``YYYY-MM`` in UTC."""
    moment = at or utcnow()
    return moment.strftime("%Y-%m")
