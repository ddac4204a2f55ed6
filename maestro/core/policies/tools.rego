# Per-tool argument rules, consulted by authz.rego for action "tool.call".
#
# input.resource = {"kind": "tool", "tenant", "tool": string, "args": object}. Allow-lists come from the
# static data (data.json: repos_allowed, fetch_hosts_allowed, keyed by tenant) united with what the caller
# passes in input.context (repos_allowed, hosts_allowed, default_branch). Both default to empty, so a
# repository or host nobody listed is refused: text in a prompt, a RAG chunk or a repository file that
# tells the model to push somewhere or fetch a URL cannot widen them (RELIABILITY.md #5, #6, #19).
#
# Reasons never echo argument values: those may be attacker-chosen text (an exfiltration URL).
package authz.tools

import rego.v1

tool := input.resource.tool

args := object.get(input.resource, "args", {})

tenant := input.principal.tenant

is_human if input.principal.kind == "user"

# Presence checks are rules, not functions (see authz.rego).
has_tool if {
	is_string(tool)
	tool != ""
}

has_repo if {
	is_string(args.repo)
	args.repo != ""
}

has_branch if {
	is_string(args.branch)
	args.branch != ""
}

has_url if {
	is_string(args.url)
	args.url != ""
}

# The table is data.tools (data.json): tool -> {"scope": the scope it needs, or null when the argument
# rules below are the only gate; "human_only": bots are always denied}. Unknown tools are denied.
spec := data.tools[tool]

known_tool if spec

# The tool's name as data.json spells it (reasons never carry input text: see authz.rego).
tool_name := name if {
	some name, _ in data.tools
	name == tool
}

# Tool families whose arguments the rules below check.
repo_tool if tool == "git.push"

repo_tool if tool == "pr.open"

fetch_tool if tool == "http.fetch"

fetch_tool if tool == "url.fetch"

deny contains "tool.call needs resource.tool" if not has_tool

deny contains "unknown tool: tools are denied unless data.json lists them" if {
	has_tool
	not known_tool
}

deny contains sprintf("missing scope '%s' for tool '%s'", [spec.scope, tool_name]) if {
	is_string(spec.scope)
	not spec.scope in data.authz.principal_scopes
}

deny contains sprintf("'%s' is a human-only tool: bots may not call it (bots only open pull requests)", [tool_name]) if {
	spec.human_only == true
	not is_human
}

# -- git.push / pr.open: allow-listed repository, never the default branch ----------------------------------

repos_allowed contains lower(repo) if some repo in input.context.repos_allowed

repos_allowed contains lower(repo) if some repo in data.repos_allowed[tenant]

default_branches := {"main", "master"} | {b | b := input.context.default_branch; is_string(b)}

deny contains "git.push and pr.open need string args 'repo' and 'branch'" if {
	repo_tool
	not has_repo
}

deny contains "git.push and pr.open need string args 'repo' and 'branch'" if {
	repo_tool
	not has_branch
}

deny contains "the repository is not in the tenant's allow-list (repos_allowed)" if {
	repo_tool
	has_repo
	not lower(args.repo) in repos_allowed
}

# A plain branch name: no refspecs ("HEAD:main"), no "refs/..." paths, no "..", no leading "-".
valid_branch(branch) if {
	regex.match(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`, branch)
	not contains(branch, "..")
	not startswith(branch, "refs/")
}

deny contains "the branch is not a plain branch name (letters, digits, . _ / -)" if {
	repo_tool
	has_branch
	not valid_branch(args.branch)
}

deny contains "pushing to the default branch is not allowed: push a branch and open a pull request" if {
	repo_tool
	args.branch in default_branches
}

deny contains "bots may only push branches under 'maestro/'" if {
	repo_tool
	not is_human
	not startswith(args.branch, "maestro/")
}

# -- routing-weights pull requests: ML ops sign off ---------------------------------------------------------

# A routing-weights PR (label "routing-weights", opened by the eval harness) changes where every request
# is routed: approving or merging one also needs eval:approve (a human-only scope).
weights_pr if "routing-weights" in object.get(args, "labels", [])

deny contains "approving or merging a routing-weights pull request needs the 'eval:approve' scope" if {
	tool in {"pr.review", "pr.merge"}
	weights_pr
	not "eval:approve" in data.authz.principal_scopes
}

# -- http.fetch / url.fetch: https URLs of allow-listed hosts only --------------------------------------------

hosts_allowed contains lower(host) if some host in input.context.hosts_allowed

hosts_allowed contains lower(host) if some host in data.fetch_hosts_allowed[tenant]

# The host of a strict https URL: no userinfo ("a.com@evil"), no backslashes, no spaces; else undefined.
url_host := lower(match[0][1]) if {
	match := regex.find_all_string_submatch_n(`^https://([A-Za-z0-9.-]+)(:[0-9]{1,5})?([/?#].*)?$`, args.url, 1)
	count(match) == 1
}

deny contains "fetch needs a string arg 'url'" if {
	fetch_tool
	not has_url
}

deny contains "only plain https URLs may be fetched" if {
	fetch_tool
	has_url
	not url_host
}

deny contains "the URL's host is not in the tenant's fetch allow-list (hosts_allowed)" if {
	fetch_tool
	host := url_host
	not host in hosts_allowed
}
