package backend

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// A metrics read costs the same at any number of keys: on a mount the
// sweep's last pass found larger than liveKeyMetricsMax it reads no key and
// lists nothing under keys/ or clients/, on this node and on any other (the
// key metrics are stored with the governance state), and its key counts
// are those of the last pass. A smaller mount is counted at the read.

// keyMetrics reads the metrics and returns keys_by_state and
// key_metrics_as_of, checking that no key was read or listed on the way.
func keyMetricsNoKeyRead(t *testing.T, e *testEnv, rs *recordingStorage) (map[string]int, string, map[string]interface{}) {
	t.Helper()
	rs.reset()
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if read := rs.keysRead(); len(read) != 0 || rs.listed(storageKeyPrefix) != 0 || rs.listed(storageClientPrefix) != 0 {
		t.Fatalf("a metrics read after a pass read %d keys, listed keys/ %d and clients/ %d times", len(read), rs.listed(storageKeyPrefix), rs.listed(storageClientPrefix))
	}
	return m["keys_by_state"].(map[string]int), m["key_metrics_as_of"].(string), m
}

func TestMetricsReadNoKeyAfterAPass(t *testing.T) {
	e := newTestEnv(t, withLiveKeyMetricsMax(5)) // 24 keys are a large mount
	rs := newRecordingStorage(e.storage)
	e.storage = rs
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"rotation_period": "720h", "key_lifetime": "240h"})
	e.ok(logical.CreateOperation, "clients/shop", map[string]interface{}{"owner": "team-shop", "type": "internal"})
	for i := 0; i < 20; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("keys/billing/k%02d", i), map[string]interface{}{"role": "r"})
	}
	for i := 0; i < 3; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("keys/shop/k%02d", i), map[string]interface{}{"role": "r"})
	}
	e.ok(logical.UpdateOperation, "keys/billing/k00/revoke", nil)
	e.ok(logical.UpdateOperation, "clients/shop/lock", map[string]interface{}{"reason": "test"})
	e.clock.Advance(time.Hour)
	passEnd := e.clock.Now()
	e.tick()

	states, asOf, m := keyMetricsNoKeyRead(t, e, rs)
	if states[record.StateActive] != 19 || states[record.StateRevoked] != 1 || states[record.StateLocked] != 3 {
		t.Fatalf("keys_by_state after a pass = %v", states)
	}
	if asOf != passEnd.UTC().Format(time.RFC3339) || m["managed_keys"] != 22 || m["overdue_keys"] != 0 {
		t.Fatalf("as of %q (want the pass's end %s), managed %v, overdue %v", asOf, passEnd, m["managed_keys"], m["overdue_keys"])
	}

	// Keys issued after the pass, and keys expiring without any write, are
	// counted by the next pass.
	e.ok(logical.CreateOperation, "keys/billing/late", map[string]interface{}{"role": "r"})
	if states, again, _ := keyMetricsNoKeyRead(t, e, rs); states[record.StateActive] != 19 || again != asOf {
		t.Fatalf("between passes: keys_by_state = %v as of %q, want the last pass's (19 active, %q)", states, again, asOf)
	}
	e.clock.Advance(239*time.Hour + 30*time.Minute) // past the key_lifetime of all but late
	e.tick()
	states, _, m = keyMetricsNoKeyRead(t, e, rs)
	if states[record.StateExpired] != 22 || states[record.StateActive] != 1 || states[record.StateRevoked] != 1 || m["managed_keys"] != 1 {
		t.Fatalf("keys_by_state after the keys expired and a pass = %v (managed %v)", states, m["managed_keys"])
	}

	// Another node, or this one restarted, reads the same without a key.
	other := e.reloaded()
	other.b.liveKeyMetricsMax = 5
	ors := newRecordingStorage(e.storage)
	other.storage = ors
	if states2, _, _ := keyMetricsNoKeyRead(t, other, ors); fmt.Sprint(states2) != fmt.Sprint(states) {
		t.Fatalf("another node reads keys_by_state %v, want %v", states2, states)
	}
}

// Before the sweep's first pass ends (a new mount, or the first ticks after
// an upgrade), a mount of at most liveKeyMetricsMax keys is counted at
// once, and a larger one reports no key metrics rather than read every
// key: the read stops one key past the bound.
func TestMetricsBeforeTheFirstPassAreBounded(t *testing.T) {
	const max = 5
	e := newTestEnv(t, withLiveKeyMetricsMax(max), sweepBatchOf(4))
	rs := newRecordingStorage(e.storage)
	e.storage = rs
	e.setupClientRole("billing", "internal", "r", nil)
	for i := 0; i < max; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("keys/billing/k%02d", i), map[string]interface{}{"role": "r"})
	}
	rs.reset()
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if got := m["keys_by_state"].(map[string]int)[record.StateActive]; got != max || m["key_metrics_as_of"] != e.clock.Now().UTC().Format(time.RFC3339) {
		t.Fatalf("a small mount before its first pass: %d active as of %v, want %d as of now", got, m["key_metrics_as_of"], max)
	}
	e.ok(logical.CreateOperation, "keys/billing/k99", map[string]interface{}{"role": "r"})
	rs.reset()
	m = e.ok(logical.ReadOperation, "metrics", nil).Data
	if read := len(rs.keysRead()); read > max+1 {
		t.Fatalf("a metrics read of a mount over the bound read %d keys, want at most %d", read, max+1)
	}
	if got := m["keys_by_state"].(map[string]int)[record.StateActive]; got != 0 || m["key_metrics_as_of"] != "" || m["issued_total"] != uint64(max+1) {
		t.Fatalf("a mount over the bound before its first pass: %d active as of %q, issued %v; want none counted, the events still", got, m["key_metrics_as_of"], m["issued_total"])
	}
	// Found over the bound once, it is not counted again before the pass.
	rs.reset()
	e.ok(logical.ReadOperation, "metrics", nil)
	if read := len(rs.keysRead()); read != 0 {
		t.Fatalf("a second metrics read before the first pass read %d keys, want none", read)
	}

	// A pass of two ticks (batch 4, 6 keys): nothing is published until
	// it ends, then every key is counted.
	e.tick()
	if m := e.ok(logical.ReadOperation, "metrics", nil).Data; m["key_metrics_as_of"] != "" {
		t.Fatalf("key metrics published after the first tick of a 2-tick pass: %v", m["keys_by_state"])
	}
	e.tick()
	states, _, _ := keyMetricsNoKeyRead(t, e, rs)
	if states[record.StateActive] != max+1 {
		t.Fatalf("after a whole pass: keys_by_state %v, want %d active", states, max+1)
	}
}

// A mount the last pass found small is counted at the read: a change shows
// at once, and the read stops one key past the bound when it has grown.
func TestMetricsOfASmallMountAreLive(t *testing.T) {
	const max = 3
	e := newTestEnv(t, withLiveKeyMetricsMax(max))
	rs := newRecordingStorage(e.storage)
	e.storage = rs
	e.setupClientRole("billing", "internal", "r", nil)
	for i := 0; i < max; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("keys/billing/k%02d", i), map[string]interface{}{"role": "r"})
	}
	e.tick()
	e.ok(logical.UpdateOperation, "keys/billing/k00/revoke", nil)
	e.clock.Advance(time.Minute)
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if states := m["keys_by_state"].(map[string]int); states[record.StateRevoked] != 1 || m["key_metrics_as_of"] != e.clock.Now().UTC().Format(time.RFC3339) {
		t.Fatalf("a small mount after a revocation: %v as of %v, want it counted now", states, m["key_metrics_as_of"])
	}
	for i := max; i < 2*max; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("keys/billing/k%02d", i), map[string]interface{}{"role": "r"})
	}
	rs.reset()
	m = e.ok(logical.ReadOperation, "metrics", nil).Data
	if read := len(rs.keysRead()); read > max+1 {
		t.Fatalf("a mount grown past the bound: the read counted %d keys, want at most %d", read, max+1)
	}
	if states := m["keys_by_state"].(map[string]int); states[record.StateActive] != max {
		t.Fatalf("a mount grown past the bound: %v, want the last pass's %d active", states, max)
	}
}
