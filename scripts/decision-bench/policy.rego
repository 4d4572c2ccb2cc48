# The decision service's questions in Rego, for the side-by-side benchmark
# (scripts/decision-bench.sh, docs/performance.md). The data
# (`data.org.namespaces`) is what `benches/decision_http.rs export` writes:
# every group's and key's privileges already resolved by orgaccess (templates,
# access lists), so this policy only looks up and compares, as the decision
# service's cached check does. Inputs are the decision service's own request
# bodies (POST /v1/check, /v1/keys/verify).
package orgaccess

ns := data.org.namespaces[input.namespace]

# The need: SERVICE/DOMAIN[/RESOURCE] and a verb.
parts := split(input.target, "/")

domain := concat("/", array.slice(parts, 0, 2))

resource := parts[2] if count(parts) > 2

rank := {"view": 1, "edit": 2}

# A privilege set covers the need: the domain-wide level, the resource's
# level, or the ability the verb names.
covers(privileges) if privileges[domain].level >= rank[input.verb]

covers(privileges) if privileges[domain].resources[resource] >= rank[input.verb]

covers(privileges) if privileges[domain].abilities[input.verb]

# A member: the accepted member's groups that cover the need.
member_granted_by contains g if {
	m := ns.members[input.principal.member]
	m.accepted
	some g in m.groups
	covers(ns.groups[g].privileges)
}

# A key, by name: live, and its privileges cover the need.
key_live(k) if {
	k.enabled
	time.now_ns() < k.expiresNs
}

key_granted_by contains "privileges" if {
	k := ns.apiKeys[input.principal.apiKey]
	key_live(k)
	covers(k.privileges)
}

check := {"allowed": count(member_granted_by) > 0, "grantedBy": sort(member_granted_by)} if input.principal.member

check := {"allowed": count(key_granted_by) > 0, "grantedBy": sort(key_granted_by)} if input.principal.apiKey

# Several checks in one request (POST /v1/check/batch's body as input):
# each answered as `check` answers it alone.
batch := [c | some q in input.checks; c := check with input as q]

# A presented key value: its SHA-256 names a live key the client's address
# may use (the deny list wins over the allow list).
address_denied(k) if {
	some c in k.deniedIps
	net.cidr_contains(c, input.clientIp)
}

address_allowed(k) if count(k.allowedIps) == 0

address_allowed(k) if {
	some c in k.allowedIps
	net.cidr_contains(c, input.clientIp)
}

verify := {"valid": true, "key": {"name": name, "privileges": k.specs}} if {
	name := ns.keyDigests[crypto.sha256(input.key)]
	k := ns.apiKeys[name]
	key_live(k)
	not address_denied(k)
	address_allowed(k)
} else := {"valid": false}
