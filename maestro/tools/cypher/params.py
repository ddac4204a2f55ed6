"""The parameter policy: user values go in as ``$parameters``, and parameters are plain data.

When the caller passes ``params`` (a mapping), the guard refuses:

- a ``$name`` the query reads that ``params`` does not supply;
- a supplied parameter the query never reads (unless ``allow_extra_params``): a value the caller meant
  to pass that the query does not use usually means the value was pasted into the query text instead;
- a value that is not plain data: allowed are ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``,
  a list or tuple of those, or a mapping with ``str`` keys and such values (one level; no nesting,
  no bytes, dates, objects or sets).

With ``params=None`` the query is checked on its own (static check) and parameters are not validated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["param_refusals", "value_problem"]

_INT64 = (-(2**63), 2**63 - 1)


def _scalar_problem(value: object) -> str | None:
    if value is None or isinstance(value, (str, bool, float)):
        return None
    if isinstance(value, int):
        return None if _INT64[0] <= value <= _INT64[1] else "the integer is outside the 64-bit range"
    return f"{type(value).__name__} is not a scalar Cypher value"


def value_problem(value: object) -> str | None:
    """Why ``value`` is not an allowed parameter value, or ``None``."""
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = _scalar_problem(item)
            if problem is not None:
                return f"a list item: {problem} (lists hold scalars only)"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"map key {key!r} is not a string"
            problem = _scalar_problem(item)
            if problem is not None:
                return f"map value {key!r}: {problem} (maps hold scalars only)"
        return None
    return _scalar_problem(value)


def param_refusals(
    used: Mapping[str, int],
    params: object,
    *,
    allow_extra: bool,
    where: Callable[[int], str],
) -> list[str]:
    """Every problem with ``params`` for a query that reads ``used`` (name -> offset of first use)."""
    if not isinstance(params, Mapping):
        return [f"params must be a mapping of names to values, not {type(params).__name__}"]
    reasons: list[str] = []
    for name, offset in used.items():
        if name not in params:
            reasons.append(f"parameter ${name} is used at {where(offset)} but not supplied")
    for name, value in params.items():
        if not isinstance(name, str):
            reasons.append(f"parameter name {name!r} is not a string")
            continue
        if name not in used and not allow_extra:
            reasons.append(
                f"parameter ${name} is supplied but the query never reads it: pass user values as "
                "parameters the query uses"
            )
        problem = value_problem(value)
        if problem is not None:
            reasons.append(f"parameter ${name}: {problem}")
    return reasons
