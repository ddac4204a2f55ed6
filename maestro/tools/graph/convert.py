"""Engine values -> JSON values, so a ``GraphResult`` can go straight into an API response or a prompt.

Nodes become ``{"labels": [...], "properties": {...}}``, relationships ``{"type": ..., "properties":
{...}}`` (plus ``"start"``/``"end"`` node ids when the engine gives them), paths ``{"nodes": [...],
"relationships": [...]}``. Temporal values become ISO 8601 strings, durations ISO 8601 durations, points
``{"latitude", "longitude"}`` maps, non-finite floats the strings ``"NaN"``/``"Infinity"``/``"-Infinity"``
(JSON has no such numbers). Engine ids are included as ``"id"`` for display only: they are recycled
after deletes and must never be used as a durable reference.

The functions here only see plain Python values and the FalkorDB client's ``Node``/``Edge``/``Path``
(duck-typed: this module imports no driver); the Neo4j backend turns its driver's objects into the same
shapes with its own pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

__all__ = ["iso_duration", "to_json"]


def to_json(value: Any) -> Any:
    """A JSON-serialisable form of one value returned by an engine."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(days=value.days, seconds=value.seconds + value.microseconds / 1e6)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    kind = type(value).__name__
    if kind == "Node" and hasattr(value, "labels") and hasattr(value, "properties"):
        return {"id": getattr(value, "id", None), "labels": list(value.labels or []), **_props(value)}
    if kind == "Edge" and hasattr(value, "relation"):
        return {
            "id": getattr(value, "id", None),
            "type": value.relation,
            "start": _node_id(getattr(value, "src_node", None)),
            "end": _node_id(getattr(value, "dest_node", None)),
            **_props(value),
        }
    if kind == "Path" and callable(getattr(value, "nodes", None)):
        return {
            "nodes": [to_json(n) for n in value.nodes()],
            "relationships": [to_json(e) for e in value.edges()],
        }
    if kind == "relativedelta":  # FalkorDB durations (python-dateutil)
        return iso_duration(
            years=value.years,
            months=value.months,
            days=value.days,
            seconds=value.hours * 3600 + value.minutes * 60 + value.seconds + value.microseconds / 1e6,
        )
    return str(value)


def iso_duration(*, years: int = 0, months: int = 0, days: int = 0, seconds: float = 0.0) -> str:
    """An ISO 8601 duration such as ``P1Y2M3DT4H5M6.5S`` (``PT0S`` for zero)."""
    date_part = "".join(f"{n}{unit}" for n, unit in ((years, "Y"), (months, "M"), (days, "D")) if n)
    whole = int(seconds)
    hours, rest = divmod(abs(whole), 3600)
    minutes, secs = divmod(rest, 60)
    sign = "-" if seconds < 0 else ""
    frac = abs(seconds) - abs(whole)
    sec_text = f"{secs + frac:.6f}".rstrip("0").rstrip(".") if frac else str(secs)
    time_part = "".join(f"{sign}{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n) + (
        f"{sign}{sec_text}S" if secs or frac else ""
    )
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + ("T" + time_part if time_part else "")


def _props(entity: Any) -> dict[str, Any]:
    return {"properties": {str(k): to_json(v) for k, v in (entity.properties or {}).items()}}


def _node_id(node: Any) -> Any:
    if node is None or isinstance(node, int):
        return node
    return getattr(node, "id", None)


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
