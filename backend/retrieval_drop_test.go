package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// storedSecrets returns the versions of a key whose record keeps plaintext.
func (e *testEnv) storedSecrets(client, name string) []int {
	e.t.Helper()
	var out []int
	for _, v := range e.issued(client, name).Versions {
		if v.Secret != "" {
			out = append(out, v.Version)
		}
	}
	return out
}

func (e *testEnv) readSecret(client, name string) interface{} {
	e.t.Helper()
	return e.ok(logical.ReadOperation, "keys/"+client+"/"+name, nil).Data["key"]
}

// Turning retrieval off and on again before the background drop reached
// the key never brings back a secret that existed when it was turned off;
// only versions created afterwards are read back.
func TestRetrievalOffNeverBringsBackOldSecrets(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	first := e.issue("svc", "k", "r", nil)
	e.clock.Advance(time.Second)
	e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	if got := e.storedSecrets("svc", "k"); len(got) != 2 {
		t.Fatalf("versions keeping plaintext before: %v", got)
	}

	e.clock.Advance(time.Second)
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"retrievable": false})
	if got := e.readSecret("svc", "k"); got != nil {
		t.Fatal("a key read returned a secret with retrieval off")
	}
	e.clock.Advance(time.Second)
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"retrievable": true})
	if got := e.readSecret("svc", "k"); got != nil {
		t.Fatalf("retrievable=true brought back a secret that existed when retrieval was turned off (first was %v)", got == first)
	}

	e.clock.Advance(time.Second)
	fresh := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil).Data["key"]
	if got := e.readSecret("svc", "k"); got == nil || got != fresh {
		t.Fatal("a version created after retrieval was turned back on is not read back")
	}

	// (Version 1 was retired by the second rotation, which dropped its
	// plaintext; version 2 is previous and still keeps it.)
	e.tick()
	if got := e.storedSecrets("svc", "k"); len(got) != 1 || got[0] != 3 {
		t.Fatalf("versions keeping plaintext after the drop: %v, want only 3", got)
	}
	drops := e.logEventsOf(eventlog.KeyPlaintextDropped)
	if len(drops) != 1 || drops[0].Details["versions"] != "2" || drops[0].Details["retrievable"] != "" {
		t.Fatalf("key.plaintext_dropped entries: %+v", drops)
	}
	e.tick()
	if n := len(e.logEventsOf(eventlog.KeyPlaintextDropped)); n != 1 {
		t.Fatalf("a second tick dropped again: %d entries", n)
	}
	if got := e.readSecret("svc", "k"); got != fresh {
		t.Fatal("the drop removed the readable version")
	}
	e.logValid()
}

// The drop is bounded per tick and carries on after a restart from the
// stored cursor until every key of the role keeps no plaintext.
func TestRetrievalOffDropsPlaintextInBoundedTicks(t *testing.T) {
	e := newTestEnv(t, sweepBatchOf(2))
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.CreateOperation, "roles/keep", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		e.issue("svc", n, "r", nil)
	}
	kept := e.issue("svc", "other", "keep", nil)
	e.clock.Advance(time.Second)
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"retrievable": false})

	stored := func() int {
		n := 0
		for _, name := range names {
			n += len(e.storedSecrets("svc", name))
		}
		return n
	}
	e.tick()
	if n := stored(); n != 2 {
		t.Fatalf("after one tick of batch 2, %d keys keep plaintext, want 2", n)
	}
	e.restart()
	e.tick()
	e.tick()
	if n := stored(); n != 0 {
		t.Fatalf("%d keys keep plaintext after the pass", n)
	}
	for _, name := range names {
		if k := e.issued("svc", name); k.Retrievable {
			t.Fatalf("key %s still retrievable", name)
		}
	}
	if drops := e.logEventsOf(eventlog.KeyPlaintextDropped); len(drops) != len(names) || drops[0].Details["retrievable"] != "false" {
		t.Fatalf("key.plaintext_dropped entries: %+v", drops)
	}
	if got := e.readSecret("svc", "other"); got != kept {
		t.Fatal("a key of another role lost its plaintext")
	}
	// Turning retrieval back on returns none of the dropped secrets.
	e.clock.Advance(time.Second)
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"retrievable": true})
	if got := e.readSecret("svc", "a"); got != nil {
		t.Fatal("a dropped secret came back")
	}
}
