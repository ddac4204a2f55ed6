"""Time helpers: one place that knows what "now" and "this budget period" mean."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def month_period(at: datetime | None = None) -> str:
    """The budget period containing ``at``: ``YYYY-MM`` in UTC."""
    moment = at or utcnow()
    return moment.strftime("%Y-%m")


def as_utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive datetimes, which Maestro always stores in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
