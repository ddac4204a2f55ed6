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

valid_string(value) if {
	is_string(value)
	value != ""
}

# Every tool Maestro may call, and the scope it needs ("" = none: the argument rules are the gate).
tool_scopes := {
	"git.push": "repo:propose",
	"pr.open": "repo:propose",
	"pr.merge": "repo:merge",
	"graph.query": "cypher:read",
	"http.fetch": "",
	"url.fetch": "",
}

repo_tools := {"git.push", "pr.open"}

fetch_tools := {"http.fetch", "url.fetch"}

known_tool if tool in object.keys(tool_scopes)

deny contains "tool.call needs resource.tool" if not valid_string(tool)

deny contains "unknown tool: tools are denied unless tools.rego lists them" if {
	valid_string(tool)
	not known_tool
}

deny contains sprintf("missing scope '%s' for tool '%s'", [scope, tool]) if {
	scope := tool_scopes[tool]
	scope != ""
	not scope in data.authz.principal_scopes
}

# -- git.push / pr.open: allow-listed repository, never the default branch ----------------------------------

repos_allowed contains lower(repo) if some repo in input.context.repos_allowed

repos_allowed contains lower(repo) if some repo in data.repos_allowed[tenant]

default_branches := {"main", "master"} | {b | b := input.context.default_branch; is_string(b)}

deny contains "git.push and pr.open need string args 'repo' and 'branch'" if {
	tool in repo_tools
	not valid_string(args.repo)
}

deny contains "git.push and pr.open need string args 'repo' and 'branch'" if {
	tool in repo_tools
	not valid_string(args.branch)
}

deny contains "the repository is not in the tenant's allow-list (repos_allowed)" if {
	tool in repo_tools
	valid_string(args.repo)
	not lower(args.repo) in repos_allowed
}

# A plain branch name: no refspecs ("HEAD:main"), no "refs/..." paths, no "..", no leading "-".
valid_branch(branch) if {
	regex.match(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`, branch)
	not contains(branch, "..")
	not startswith(branch, "refs/")
}

deny contains "the branch is not a plain branch name (letters, digits, . _ / -)" if {
	tool in repo_tools
	valid_string(args.branch)
	not valid_branch(args.branch)
}

deny contains "pushing to the default branch is not allowed: push a branch and open a pull request" if {
	tool in repo_tools
	args.branch in default_branches
}

deny contains "bots may only push branches under 'maestro/'" if {
	tool in repo_tools
	not is_human
	not startswith(args.branch, "maestro/")
}

# -- pr.merge: humans only (bots only open pull requests) ---------------------------------------------------

deny contains "pr.merge is denied to bots: bots only open pull requests" if {
	tool == "pr.merge"
	not is_human
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
	tool in fetch_tools
	not valid_string(args.url)
}

deny contains "only plain https URLs may be fetched" if {
	tool in fetch_tools
	valid_string(args.url)
	not url_host
}

deny contains "the URL's host is not in the tenant's fetch allow-list (hosts_allowed)" if {
	tool in fetch_tools
	host := url_host
	not host in hosts_allowed
}
