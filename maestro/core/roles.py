"""Roles and the scopes they grant: the one vocabulary every authorization check uses.

A principal holds roles (``admin``, ``engineer``, ``mlops``, ``viewer``, ``bot``); ``scopes_for`` turns
them into scopes such as ``rag:query`` or ``approve:codegen``. Some scopes are *human-only*: approving
an action, administering budgets or API keys, overriding the router. A bot principal never holds them,
whatever roles it was given (``scopes_for(..., kind="bot")`` strips them), so an automation that is
compromised or confused cannot approve its own pull requests (RELIABILITY.md #3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from maestro.core.authority import PrincipalKind
from maestro.core.errors import InvalidRequest

WORKCELLS: tuple[str, ...] = ("codegen", "testgen", "docs", "remediate", "cypher", "eval")
"""The workcells whose actions can wait for an approval (``approve:<workcell>``)."""

CHAT = "chat"
RAG_QUERY = "rag:query"
RAG_INGEST = "rag:ingest"
CYPHER_READ = "cypher:read"
REPO_PROPOSE = "repo:propose"
REPO_MERGE = "repo:merge"
RUNS_READ = "runs:read"
LEDGER_READ = "ledger:read"
EVAL_RUN = "eval:run"
EVAL_REPORT = "eval:report"
EVAL_APPROVE = "eval:approve"
ROUTER_OVERRIDE = "router:override"
BUDGET_ADMIN = "budget:admin"
KEYS_ADMIN = "keys:admin"
APPROVE_PREFIX = "approve:"


def approve_scope(workcell: str) -> str:
    """The scope that lets a human approve ``workcell``'s proposed actions: ``approve:<workcell>``."""
    if workcell not in WORKCELLS:
        raise InvalidRequest(
            f"unknown workcell {workcell!r} for an approve scope: use one of {', '.join(WORKCELLS)}"
        )
    return f"{APPROVE_PREFIX}{workcell}"


APPROVE_SCOPES: frozenset[str] = frozenset(f"{APPROVE_PREFIX}{cell}" for cell in WORKCELLS)

HUMAN_ONLY_SCOPES: frozenset[str] = APPROVE_SCOPES | {
    EVAL_APPROVE,
    ROUTER_OVERRIDE,
    BUDGET_ADMIN,
    KEYS_ADMIN,
    REPO_MERGE,
}
"""Scopes a bot never holds: approvals, merges, budget and key administration, routing overrides."""

SCOPES: frozenset[str] = HUMAN_ONLY_SCOPES | {
    CHAT,
    RAG_QUERY,
    RAG_INGEST,
    CYPHER_READ,
    REPO_PROPOSE,
    RUNS_READ,
    LEDGER_READ,
    EVAL_RUN,
    EVAL_REPORT,
}
"""Every scope Maestro knows. API keys may only be narrowed to a subset of these."""

ROLES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "admin": SCOPES,
        "engineer": frozenset(
            {CHAT, RAG_QUERY, RAG_INGEST, CYPHER_READ, REPO_PROPOSE, RUNS_READ, LEDGER_READ}
        ),
        "mlops": frozenset({EVAL_RUN, EVAL_REPORT, EVAL_APPROVE, RUNS_READ, LEDGER_READ}),
        "viewer": frozenset({RUNS_READ, RAG_QUERY}),
        "bot": frozenset({REPO_PROPOSE, RAG_QUERY, CYPHER_READ, CHAT}),
    }
)
"""Role name -> the scopes it grants (read-only)."""


def is_human_only(scope: str) -> bool:
    """True for scopes a bot may never hold (every ``approve:*`` scope included, known or not)."""
    return scope in HUMAN_ONLY_SCOPES or scope.startswith(APPROVE_PREFIX)


def strip_human_only(scopes: Iterable[str]) -> frozenset[str]:
    """``scopes`` without the human-only ones (see ``is_human_only``)."""
    return frozenset(scope for scope in scopes if not is_human_only(scope))


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """The roles, de-duplicated in order; raise ``InvalidRequest`` naming any unknown role."""
    ordered = tuple(dict.fromkeys(roles))
    unknown = [role for role in ordered if role not in ROLES]
    if unknown:
        raise InvalidRequest(
            f"unknown role(s) {', '.join(repr(r) for r in unknown)}: use one of {', '.join(sorted(ROLES))}",
            roles=unknown,
        )
    return ordered


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes as a frozenset; raise ``InvalidRequest`` naming any scope Maestro does not know."""
    wanted = frozenset(scopes)
    unknown = sorted(wanted - SCOPES)
    if unknown:
        raise InvalidRequest(
            f"unknown scope(s) {', '.join(repr(s) for s in unknown)}: "
            f"use some of {', '.join(sorted(SCOPES))}",
            scopes=unknown,
        )
    return wanted


def scopes_for(roles: Iterable[str], *, kind: PrincipalKind = "user") -> frozenset[str]:
    """The union of the scopes granted by ``roles``.

    Unknown roles are refused with ``InvalidRequest`` (never silently ignored). For a bot
    (``kind="bot"``) the human-only scopes (``approve:*``, ``eval:approve``, ``router:override``,
    ``budget:admin``, ``keys:admin``) are **stripped**, even when the bot was given the ``admin`` role:
    a bot can never approve, change budgets, administer keys or override routing.
    """
    granted: set[str] = set()
    for role in check_roles(roles):
        granted |= ROLES[role]
    if kind != "user":  # fail safe: anything not explicitly a user is treated as a bot
        return strip_human_only(granted)
    return frozenset(granted)
