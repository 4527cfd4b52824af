package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// TestSchedulesFollowCommitsNotUsageFlushes: a key's place in the rotation
// queue changes with a committed change of the key, not with the usage
// flush that rewrites its record just before every tick. Otherwise a flush
// landing after the early adoption decision fell due would move the key to
// the end of its grace, and the tick would decide too late.
func TestSchedulesFollowCommitsNotUsageFlushes(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	first := r.issue("svc", "k", "r")
	id := queueID("svc", "k")
	if due, ok := r.b.sched.rotation.Due(id); !ok || !due.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("issued key queued at %v %v", due, ok)
	}
	r.clock.Advance(time.Hour)
	if st := r.tick(); st.rotated != 1 {
		t.Fatalf("tick: %+v", st)
	}
	// Version 1's grace ends at +1h10m; the adoption decision is due two
	// minutes earlier.
	early := testStart.Add(time.Hour + 8*time.Minute)
	if due, ok := r.b.sched.rotation.Due(id); !ok || !due.Equal(early) {
		t.Fatalf("rotated key queued at %v %v, want %v", due, ok, early)
	}
	r.clock.Set(early.Add(time.Second))
	if code := r.verifyCode(first, nil); code != "" {
		t.Fatalf("verify of the previous version: %q", code)
	}
	if err := r.b.flushUsage(r.ctx, &logical.Request{Storage: r.storage}); err != nil {
		t.Fatal(err)
	}
	if used := r.key("svc", "k").LastUsedAt; !used.Equal(r.clock.Now()) {
		t.Fatalf("the flush did not write the key: last used %v", used)
	}
	if due, ok := r.b.sched.rotation.Due(id); !ok || !due.Equal(early) {
		t.Fatalf("after the usage flush the key is queued at %v %v, want %v", due, ok, early)
	}
	// A committed change moves it: a revoked key leaves the queue.
	r.ok(logical.UpdateOperation, "keys/svc/k/revoke", nil)
	if due, ok := r.b.sched.rotation.Due(id); ok {
		t.Fatalf("revoked key still queued at %v", due)
	}
}

// TestLeasedKeyScheduledByItsCommits: issuing, renewing and revoking a
// leased key move it in the purge queue (the same hook as rotation).
func TestLeasedKeyScheduledByItsCommits(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	l := e.issueLeased()
	id := queueID("acme", l.name)
	if due, ok := e.b.sched.purge.Due(id); !ok || !due.Equal(l.issued.Add(time.Hour)) {
		t.Fatalf("issued leased key queued at %v %v", due, ok)
	}
	if _, ok := e.b.sched.rotation.Due(id); ok {
		t.Fatal("a leased key is in the rotation queue")
	}
	e.clock.Advance(10 * time.Minute)
	e.revokeLease(l)
	if due, ok := e.b.sched.purge.Due(id); !ok || !due.Equal(e.clock.Now()) {
		t.Fatalf("revoked leased key queued at %v %v, want %v", due, ok, e.clock.Now())
	}
}
