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
#                model.call:      data_class, model_pii_allowed
#                tool.call:       tool, args (rules in tools.rego)
#              any resource that carries data_class is checked against the authority's clearance
#   context    optional per-request facts: repos_allowed, default_branch, hosts_allowed (tools.rego)
#
# output: data.authz.decision = {"allow": bool, "reasons": [string]}
#   A request is allowed only when its action is known AND no deny rule fires. Every deny rule adds a
#   reason: a sentence saying what was refused and what would be needed instead.
#
# Reasons carry constant text and names taken from data.json, never text from the input: they end up in
# the audit ledger and in API error bodies (no prompt text, no tool arguments, no other tenant's name),
# and rego-cpp 1.5.2 neither escapes quotes when it serialises a string nor formats a `with`-substituted
# variable correctly in sprintf. (It also lacks sprintf's %q: use %s.)
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
#
# The table is data.actions (data.json): action -> {"scope": the scope it needs, or null for none;
# "scope_prefix": the scope is this prefix + resource.workcell (approval.decide -> approve:<workcell>);
# "human_only": bots are always denied, whatever scopes they were given (RELIABILITY.md #3)}.
# Scope-free actions still go through every other rule:
#   model.call       the router asks before each model call: clearance and PII rules below
#   approval.request a run asks a human to decide; anyone in the tenant may ask
#   tool.call        the scope depends on the tool (data.tools, tools.rego)
# An action missing from the table is unknown, and unknown actions are denied.

action := data.actions[input.action]

known_action if action

# The action's name as data.json spells it (for reasons).
action_name := name if {
	some name, _ in data.actions
	name == input.action
}

# The workcell's name as data.json spells it; approvals for a workcell it does not list are denied.
workcell_name := name if {
	some name in data.workcells
	name == input.resource.workcell
}

principal_scopes := {s | some s in input.principal.scopes}

is_human if input.principal.kind == "user"

# Presence checks are rules, not functions: rego-cpp calls a user function for ~10 us, a rule is cached.
has_action if {
	is_string(input.action)
	input.action != ""
}

has_principal_id if {
	is_string(input.principal.id)
	input.principal.id != ""
}

has_principal_tenant if {
	is_string(input.principal.tenant)
	input.principal.tenant != ""
}

has_resource_tenant if {
	is_string(input.resource.tenant)
	input.resource.tenant != ""
}

has_data_class if "data_class" in object.keys(input.resource)

valid_kind if input.principal.kind == "user"

valid_kind if input.principal.kind == "bot"

# -- action and scope ------------------------------------------------------------------------------------

deny contains "the request has no action" if not has_action

deny contains "unknown action: actions are denied unless data.json lists them" if {
	has_action
	not known_action
}

deny contains sprintf("missing scope '%s' for action '%s'", [action.scope, action_name]) if {
	is_string(action.scope)
	not action.scope in principal_scopes
}

# rego-cpp 1.5.2 prints a concat() result wrapped in quotes when it reaches sprintf, so the parts go in.
deny contains sprintf("missing scope '%s%s' for action '%s'", [action.scope_prefix, workcell_name, action_name]) if {
	is_string(action.scope_prefix)
	not concat("", [action.scope_prefix, workcell_name]) in principal_scopes
}

deny contains sprintf("'%s' is a human-only action: bots may not perform it", [action_name]) if {
	action.human_only == true
	not is_human
}

deny contains sprintf("'%s' needs resource.workcell naming a workcell listed in data.json", [action_name]) if {
	is_string(action.scope_prefix)
	not workcell_name
}

# -- principal, tenant, authority ------------------------------------------------------------------------

deny contains "the principal has no id" if not has_principal_id

deny contains "the principal has no tenant" if not has_principal_tenant

deny contains "the principal's kind must be 'user' or 'bot'" if not valid_kind

deny contains "the resource has no tenant" if not has_resource_tenant

# Cross-tenant access is always denied.
deny contains "the resource belongs to another tenant" if {
	has_resource_tenant
	input.resource.tenant != input.principal.tenant
}

deny contains "the run's authority has expired: start a new run" if input.authority.expired == true

# -- data class and clearance ----------------------------------------------------------------------------
#
# data.clearance_rank (data.json): public 0 < internal 1 < pii 2. Any resource that carries a data class
# needs an authority cleared at least that high.

clearance := name if {
	some name, _ in data.clearance_rank
	name == input.authority.clearance
}

data_class := name if {
	some name, _ in data.clearance_rank
	name == input.resource.data_class
}

deny contains "the authority has no valid clearance (public, internal or pii)" if not clearance

deny contains "the resource's data_class is not known: use public, internal or pii" if {
	has_data_class
	not data_class
}

deny contains sprintf("clearance '%s' is below the data class '%s'", [clearance, data_class]) if {
	data.clearance_rank[clearance] < data.clearance_rank[data_class]
}

deny contains "model.call needs resource.data_class (public, internal or pii)" if {
	input.action == "model.call"
	not has_data_class
}

deny contains "PII may only be sent to a model cleared for it (model_pii_allowed is not true)" if {
	input.action == "model.call"
	input.resource.data_class == "pii"
	not input.resource.model_pii_allowed == true
}

# -- approvals -------------------------------------------------------------------------------------------

deny contains "the requester may not decide their own approval request" if {
	input.action == "approval.decide"
	input.resource.requested_by == input.principal.id
}

# -- tools (tools.rego) ----------------------------------------------------------------------------------

deny contains reason if {
	input.action == "tool.call"
	some reason in tools.deny
}
