package ha

import (
	"context"
	"testing"
	"time"
)

// TestActiveNodeCrash: the active node is killed outright (SIGKILL to Vault
// and its plugin process, as a host crash would). A standby wins the Raft
// election and serves the keys as they were; changes made while the node is
// down are kept; the node, restarted from its data directory and unsealed,
// rejoins and serves the current state, and the lifecycle log is one valid
// chain across both leaders.
func TestActiveNodeCrash(t *testing.T) {
	ctx := context.Background()
	m := newMount(t)
	a := waitActive(t)
	ca := node(t, a)
	setupClient(t, ca, m, "svc")
	write(t, ca, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	one := issue(t, ca, m, "svc", "one", "r")
	two := issue(t, ca, m, "svc", "two", "r")
	write(t, ca, m+"/keys/svc/two/revoke", map[string]interface{}{"reason": "before the crash"})

	killed := time.Now()
	cluster().Kill(a)
	// Whatever happens below, the other tests get their third node back.
	t.Cleanup(func() {
		if !cluster().Nodes[a].Running() {
			if err := cluster().Restart(ctx, a); err != nil {
				t.Errorf("restarting %s: %v", nodeID(a), err)
			}
		}
	})
	b := waitActive(t)
	t.Logf("%s killed; %s active after %v", nodeID(a), nodeID(b), time.Since(killed).Round(100*time.Millisecond))
	if pids := pluginPIDs(t, a); len(pids) != 0 {
		t.Fatalf("plugin processes of the killed node still run: %v", pids)
	}
	cb := node(t, b)
	expectVerify(t, cb, m, one, nil, true, "")
	expectVerify(t, cb, m, two, nil, false, "revoked")
	three := issue(t, cb, m, "svc", "three", "r")
	write(t, cb, m+"/keys/svc/one/revoke", map[string]interface{}{"reason": "while the old leader is down"})

	if err := cluster().Restart(ctx, a); err != nil {
		t.Fatal(err)
	}
	now := waitActive(t)
	t.Logf("%s restarted and rejoined; %s active", nodeID(a), nodeID(now))
	requirePluginOnlyOn(t, now)
	ca = node(t, a) // answers itself if it leads again, else forwards
	expectVerify(t, ca, m, one, nil, false, "revoked")
	expectVerify(t, ca, m, two, nil, false, "revoked")
	expectVerify(t, ca, m, three, nil, true, "")
	entries := logEntries(t, ca, m)
	requireLogValid(t, ca, m, len(entries), entries[len(entries)-1]["hash"].(string))
	if last := entries[len(entries)-1]; last["type"] != "key.revoked" || last["key"] != "one" {
		t.Fatalf("last log entry %v, want the revocation made while %s was down", last, nodeID(a))
	}
}
