package ha

import (
	"testing"
)

// TestFailoverKeepsStateAndLog: keys issued and revoked under one leader
// keep their state after it steps down, seen through the new leader and
// through the old one (now a standby), and the new leader's lifecycle-log
// entries continue the same hash chain: log/verify reports one valid chain
// holding the events written under both leaders.
func TestFailoverKeepsStateAndLog(t *testing.T) {
	m := newMount(t)
	a := waitActive(t)
	ca := node(t, a)
	setupClient(t, ca, m, "svc")
	write(t, ca, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	one := issue(t, ca, m, "svc", "one", "r")
	two := issue(t, ca, m, "svc", "two", "r")
	write(t, ca, m+"/keys/svc/two/revoke", map[string]interface{}{"reason": "before failover"})
	underA := logEntries(t, ca, m)
	headA := underA[len(underA)-1]
	requireLogValid(t, ca, m, len(underA), headA["hash"].(string))

	b := stepDown(t, a)
	cb := node(t, b) // ca now reaches a standby, which forwards to b
	requireActive(t, b)
	for _, c := range []struct {
		name string
		i    int
	}{{"new leader", b}, {"old leader, now standby", a}} {
		cl := node(t, c.i)
		expectVerify(t, cl, m, one, nil, true, "")
		expectVerify(t, cl, m, two, nil, false, "revoked")
		if s := read(t, cl, m+"/keys/svc/two"); s.Data["state"] != "revoked" {
			t.Fatalf("key two via %s: state %v, want revoked", c.name, s.Data["state"])
		}
	}

	// Writes under the new leader extend the chain the old one wrote.
	three := issue(t, cb, m, "svc", "three", "r")
	write(t, ca, m+"/keys/svc/one/revoke", map[string]interface{}{"reason": "after failover"})
	expectVerify(t, cb, m, one, nil, false, "revoked")
	expectVerify(t, cb, m, three, nil, true, "")
	requireActive(t, b)

	entries := logEntries(t, cb, m)
	if len(entries) != len(underA)+2 {
		t.Fatalf("log has %d entries, want the %d written under %s and 2 under %s: %v", len(entries), len(underA), nodeID(a), nodeID(b), entries)
	}
	for i, e := range underA {
		if entries[i]["hash"] != e["hash"] {
			t.Fatalf("entry %d changed across the failover: %v, was %v", i+1, entries[i], e)
		}
	}
	afterA := entries[len(underA):]
	if afterA[0]["prev"] != headA["hash"] {
		t.Fatalf("first entry under the new leader does not chain to the old head: prev %v, head was %v", afterA[0]["prev"], headA["hash"])
	}
	if afterA[0]["type"] != "key.issued" || afterA[0]["key"] != "three" ||
		afterA[1]["type"] != "key.revoked" || afterA[1]["key"] != "one" {
		t.Fatalf("entries under the new leader: %v", afterA)
	}
	var issuedA, revokedA int
	for _, e := range underA {
		switch e["type"] {
		case "key.issued":
			issuedA++
		case "key.revoked":
			revokedA++
		}
	}
	if issuedA != 2 || revokedA != 1 {
		t.Fatalf("entries under the old leader: %d key.issued, %d key.revoked, want 2 and 1: %v", issuedA, revokedA, underA)
	}
	requireLogValid(t, cb, m, len(entries), entries[len(entries)-1]["hash"].(string))
}
