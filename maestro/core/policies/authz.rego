# Maestro's authorization policy: attribute-based, deny by default.
#
# Evaluated in-process by regopy (maestro/core/policy.py, RegoEngine) or by an OPA server loaded with
# this same directory as its bundle (OPAEngine). Both read one document: data.authz.decision.
#
# input:
#   principal  {"id", "tenant", "kind": "user" | "bot", "scopes": [string]}   who acts (effective scopes)
#   authority  {"clearance": "public" | "internal" | "pii", "run_id", "expired": bool}
#   action     string, e.g. "rag.query", "approval.decide", "model.call", "tool.call"
#   resource   {"tenant", "kind", ...} plus the attributes the action needs:
#                approval.decide: workcell, requested_by
#                model.call:      data_class, model_pii_allowed (and optionally model)
#                tool.call:       tool, args (rules in tools.rego)
#              any resource that carries data_class is checked against the authority's clearance
#   context    optional per-request facts: repos_allowed, default_branch, hosts_allowed (tools.rego)
#
# output: data.authz.decision = {"allow": bool, "reasons": [string]}
#   A request is allowed only when its action is known AND no deny rule fires. Every deny rule adds a
#   reason: a sentence saying what was refused and what would be needed instead. Reasons end up in the
#   audit ledger and in API error bodies, so they never echo tool arguments or another tenant's name.
#
# rego-cpp (regopy 1.5.2) notes: sprintf supports %s/%v but not %q (it silently shifts the arguments);
# every sprintf-built reason has a constant twin for the case where its arguments are undefined.
package authz

import rego.v1

import data.authz.tools

default allow := false

allow if {
	known_action
	count(deny) == 0
}

decision := {"allow": allow, "reasons": reasons}

reasons := sort(deny) if {
	count(deny) > 0
} else := [] if {
	allow
} else := ["denied by default: no rule allows this request"]

# -- actions and the scope each needs -------------------------------------------------------------------

action_scopes := {
	"chat": "chat",
	"rag.query": "rag:query",
	"rag.ingest": "rag:ingest",
	"cypher.read": "cypher:read",
	"repo.propose": "repo:propose",
	"pr.open": "repo:propose",
	"router.override": "router:override",
	"eval.run": "eval:run",
	"eval.report": "eval:report",
	"eval.approve": "eval:approve",
	"keys.admin": "keys:admin",
	"budget.admin": "budget:admin",
	"ledger.read": "ledger:read",
	"runs.read": "runs:read",
}

# Actions that need no scope of their own; every other attribute is still checked.
#   model.call       the router asks before each model call: clearance and PII rules below
#   approval.request a run asks a human to decide; anyone in the tenant may ask
#   tool.call        the scope depends on the tool (tools.rego)
scope_free_actions := {"model.call", "approval.request", "tool.call"}

# Actions only a human may take, whatever scopes a bot was given (RELIABILITY.md #3).
human_only_actions := {"approval.decide", "budget.admin", "router.override", "keys.admin", "eval.approve"}

known_action if action_scopes[input.action]

known_action if input.action == "approval.decide"

known_action if input.action in scope_free_actions

required_scope := action_scopes[input.action]

required_scope := concat("", ["approve:", input.resource.workcell]) if {
	input.action == "approval.decide"
	valid_string(input.resource.workcell)
}

principal_scopes := {s | some s in input.principal.scopes}

is_human if input.principal.kind == "user"

valid_string(value) if {
	is_string(value)
	value != ""
}

deny contains "the request has no action" if not valid_string(input.action)

deny contains sprintf("unknown action '%s': it is denied until authz.rego lists it", [input.action]) if {
	valid_string(input.action)
	not known_action
}

deny contains sprintf("missing scope '%s' for action '%s'", [scope, input.action]) if {
	scope := required_scope
	not scope in principal_scopes
}

deny contains sprintf("'%s' is a human-only action: bots may not perform it", [input.action]) if {
	input.action in human_only_actions
	not is_human
}

# -- principal, tenant, authority ------------------------------------------------------------------------

deny contains "the principal has no id" if not valid_string(input.principal.id)

deny contains "the principal has no tenant" if not valid_string(input.principal.tenant)

deny contains "the principal's kind must be 'user' or 'bot'" if not input.principal.kind in {"user", "bot"}

deny contains "the resource has no tenant" if not valid_string(input.resource.tenant)

# Cross-tenant access is always denied. The reason does not name the other tenant.
deny contains "the resource belongs to another tenant" if {
	valid_string(input.resource.tenant)
	input.resource.tenant != input.principal.tenant
}

deny contains "the run's authority has expired: start a new run" if input.authority.expired == true

# -- data class and clearance ----------------------------------------------------------------------------

clearance_rank := {"public": 0, "internal": 1, "pii": 2}

deny contains "the authority has no valid clearance (public, internal or pii)" if {
	not clearance_rank[input.authority.clearance]
}

deny contains "the resource's data_class is not known: use public, internal or pii" if {
	"data_class" in object.keys(input.resource)
	not clearance_rank[input.resource.data_class]
}

deny contains sprintf("clearance '%s' is below the data class '%s'", [clearance, data_class]) if {
	clearance := input.authority.clearance
	data_class := input.resource.data_class
	clearance_rank[clearance] < clearance_rank[data_class]
}

deny contains "model.call needs resource.data_class (public, internal or pii)" if {
	input.action == "model.call"
	not "data_class" in object.keys(input.resource)
}

deny contains "PII may only be sent to a model cleared for it (model_pii_allowed is not true)" if {
	input.action == "model.call"
	input.resource.data_class == "pii"
	not input.resource.model_pii_allowed == true
}

# -- approvals -------------------------------------------------------------------------------------------

deny contains "approval.decide needs resource.workcell" if {
	input.action == "approval.decide"
	not valid_string(input.resource.workcell)
}

deny contains "the requester may not decide their own approval request" if {
	input.action == "approval.decide"
	input.resource.requested_by == input.principal.id
}

# -- tools (tools.rego) ----------------------------------------------------------------------------------

deny contains reason if {
	input.action == "tool.call"
	some reason in tools.deny
}
