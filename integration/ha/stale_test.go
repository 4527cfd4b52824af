package ha

import (
	"fmt"
	"testing"
)

// TestReactivatedNodeServesFreshState: node A verifies keys (filling its
// verify caches with the index entries, keys, role and clients), steps
// down, and node B revokes a key, locks a client and narrows the role. When
// A is active again it must answer from storage as B left it, not from
// what it had cached. Then the same the other way round: A unlocks the
// client, and B, active again, must not answer from its cached "locked".
//
// In Vault OSS a node that steps down tears its mounts down and its plugin
// process ends, so what is proven here is the outcome users rely on — no
// stale answer on a re-promoted node — whichever way the backend gets it.
func TestReactivatedNodeServesFreshState(t *testing.T) {
	m := newMount(t)
	// Cluster.MakeActive makes any node active (it stops the other
	// follower while the leader steps down).
	a := 0
	makeActive(t, a)
	ca := node(t, a)
	for _, cl := range []string{"c1", "c2", "c3"} {
		setupClient(t, ca, m, cl)
	}
	write(t, ca, m+"/roles/r", map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod"})
	k1 := issue(t, ca, m, "c1", "k", "r") // to be revoked on B
	k2 := issue(t, ca, m, "c2", "k", "r") // its client to be locked on B
	k3 := issue(t, ca, m, "c3", "k", "r") // its role to be narrowed on B
	writeOn := func(c int, path string, data map[string]interface{}) { write(t, node(t, c), m+"/"+path, data) }
	check := func(c int, key, scope string, wantActive bool, wantCode string) {
		t.Helper()
		extra := map[string]interface{}{}
		if scope != "" {
			extra["scope"] = scope
		}
		expectVerify(t, node(t, c), m, key, extra, wantActive, wantCode)
	}
	checkRole := func(c int, want string) {
		t.Helper()
		if got := fmt.Sprint(read(t, node(t, c), m+"/roles/r").Data["scopes"]); got != want {
			t.Fatalf("role scopes via %s: %s, want %s", nodeID(c), got, want)
		}
	}
	// Warm A's caches, twice so every lookup is answered from them.
	for range 2 {
		check(a, k1, "orders:read", true, "")
		check(a, k2, "orders:read", true, "")
		check(a, k3, "orders:write", true, "")
	}

	pidsBefore := pluginPIDs(t, a)
	b := stepDown(t, a)
	writeOn(b, "keys/c1/k/revoke", map[string]interface{}{"reason": "stale-cache test"})
	writeOn(b, "clients/c2/lock", map[string]interface{}{"reason": "stale-cache test"})
	writeOn(b, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	// B's own answers (and its caches, for the way back).
	check(b, k1, "", false, "revoked")
	check(b, k2, "", false, "locked")
	check(b, k3, "orders:write", false, "forbidden_scope")
	check(b, k3, "orders:read", true, "")

	makeActive(t, a)
	requireActive(t, a)
	t.Logf("%s's plugin processes: %v before it stepped down, %v now", nodeID(a), pidsBefore, pluginPIDs(t, a))
	check(a, k1, "", false, "revoked")
	check(a, k2, "", false, "locked")
	check(a, k3, "orders:write", false, "forbidden_scope")
	check(a, k3, "orders:read", true, "")
	checkRole(a, "[orders:read]")

	// The way back: a change on A must reach B's answers once B leads.
	writeOn(a, "clients/c2/unlock", map[string]interface{}{})
	writeOn(a, "roles/r", map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod"})
	check(a, k2, "", true, "")
	makeActive(t, b)
	requireActive(t, b)
	check(b, k2, "", true, "")
	check(b, k1, "", false, "revoked")
	// Widening the role again never widens an existing key silently, but
	// k3 was issued with both scopes, so both are effective again.
	check(b, k3, "orders:write", true, "")
	checkRole(b, "[orders:read orders:write]")
}
