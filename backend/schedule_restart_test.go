package backend

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// scheduleScriptEnv sets up e for the restart script: managed keys of two
// roles, leased keys of a third, and a short leased-key retention.
func scheduleScriptEnv(t *testing.T) *testEnv {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"leased_key_retention": "2h"})
	e.setupClientRole("svc", "internal", "r1", map[string]interface{}{"rotation_period": "2h", "grace_period": "10m"})
	e.ok(logical.CreateOperation, "roles/r2", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "5h", "grace_period": "10m"})
	e.setupClientRole("acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "3h"})
	for i := 0; i < 12; i++ {
		e.issue("svc", fmt.Sprintf("m%02d", i), []string{"r1", "r2"}[i%2], nil)
	}
	return e
}

// TestScheduleSurvivesRestartsAtAnyPoint: the same script of key changes
// (manual rotations, a role's period changed back and forth, revocations,
// leased keys issued and revoked) and ticks runs on a mount that is never
// restarted and keeps every key in memory (its schedules never start, as
// before the due index), and on a mount that runs on the index and is
// restarted at random points. After every tick both hold the same keys in
// the same states with the same next rotation: each due key was handled
// once, at the same tick, wherever its pointer moved.
func TestScheduleSurvivesRestartsAtAnyPoint(t *testing.T) {
	ref := scheduleScriptEnv(t)
	idx := scheduleScriptEnv(t)
	idx.startSchedules()
	envs := []*testEnv{ref, idx}
	leases := [2][]leased{}
	alive := []int{} // indexes of leases not revoked by the script
	revoked := map[int]bool{}
	rng := rand.New(rand.NewSource(15))
	period := "2h"
	restarts := 0
	for step := 0; step < 90; step++ {
		switch op := rng.Intn(10); {
		case op == 0:
			m := rng.Intn(12)
			if !revoked[m] {
				for _, e := range envs {
					e.ok(logical.UpdateOperation, fmt.Sprintf("keys/svc/m%02d/rotate", m), nil)
				}
			}
		case op == 1:
			period = map[string]string{"2h": "3h", "3h": "2h"}[period]
			for _, e := range envs {
				e.ok(logical.UpdateOperation, "roles/r1", map[string]interface{}{"rotation_period": period})
			}
		case op == 2 && len(revoked) < 4:
			m := rng.Intn(12)
			revoked[m] = true
			for _, e := range envs {
				e.ok(logical.UpdateOperation, fmt.Sprintf("keys/svc/m%02d/revoke", m), nil)
			}
		case op == 3 || op == 4:
			for i, e := range envs {
				leases[i] = append(leases[i], e.issueLeased())
			}
			alive = append(alive, len(leases[0])-1)
		case op == 5 && len(alive) > 0:
			j := rng.Intn(len(alive))
			for i, e := range envs {
				e.revokeLease(leases[i][alive[j]])
			}
			alive = append(alive[:j], alive[j+1:]...)
		}
		for _, e := range envs {
			e.clock.Advance(20 * time.Minute)
			if _, err := e.b.runRotationTick(e.ctx, e.storage); err != nil {
				t.Fatalf("step %d: tick: %v", step, err)
			}
			e.purgePass()
		}
		if rng.Intn(3) == 0 {
			idx.restart()
			restarts++
		}
		for m := 0; m < 12; m++ {
			name := fmt.Sprintf("m%02d", m)
			a, b := ref.key("svc", name), idx.key("svc", name)
			if states(a) != states(b) || !a.NextRotationAt.Equal(b.NextRotationAt) {
				t.Fatalf("step %d (%d restarts), key %s: %s next %v on the reference, %s next %v on the restarted mount",
					step, restarts, name, states(a), a.NextRotationAt, states(b), b.NextRotationAt)
			}
		}
		for j := range leases[0] {
			if a, b := ref.keyExists("acme", leases[0][j].name), idx.keyExists("acme", leases[1][j].name); a != b {
				t.Fatalf("step %d (%d restarts), leased key %d: exists %v on the reference, %v on the restarted mount", step, restarts, j, a, b)
			}
		}
	}
	rotations := func(e *testEnv) int { return len(e.logEventsOf(eventlog.KeyRotated)) }
	purged := 0
	for j := range leases[0] {
		if !idx.keyExists("acme", leases[1][j].name) {
			purged++
		}
	}
	if restarts < 10 || rotations(idx) < 20 || purged < 5 || rotations(ref) != rotations(idx) {
		t.Fatalf("the script did too little to show anything: %d restarts, %d rotations (reference %d), %d leased keys purged",
			restarts, rotations(idx), rotations(ref), purged)
	}
	t.Logf("%d restarts, %d rotations, %d leased keys purged", restarts, rotations(idx), purged)
}

// TestScheduleCrashBetweenPointerAndRecord: a rotation cut off after its
// new pointer was stored and before the key record leaves the key as it
// was, still pointed at from its old bucket, so the mount started again
// rotates it once.
func TestScheduleCrashBetweenPointerAndRecord(t *testing.T) {
	e := newTestEnv(t)
	e.startSchedules()
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	e.issue("svc", "k", "r", nil)
	e.clock.Advance(time.Hour)
	e.b.commitHook = func(step string) error {
		if step == "index" {
			return errors.New("simulated crash before the key record")
		}
		return nil
	}
	if st, err := e.b.runRotationTick(e.ctx, e.storage); err == nil || st.failed != 1 {
		t.Fatalf("tick with a crash: %+v %v", st, err)
	}
	k := e.key("svc", "k")
	if states(k) != "1:active" || !k.RotationPointer.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("after the crash the key is %s, pointer noted at %v", states(k), k.RotationPointer)
	}
	// The rotated key's pointer (the adoption check before the previous
	// version's grace ends) was stored first.
	ptrs, err := e.storage.List(e.ctx, storageSchedulePrefix+"rotation/"+scheduleBucketName(testStart.Add(time.Hour))+"/")
	if err != nil {
		t.Fatal(err)
	}
	cutOff := false
	for _, p := range ptrs {
		if id, due, ok := parseSchedulePointer(p); ok && id == queueID("svc", "k") && due.After(testStart.Add(time.Hour)) {
			cutOff = true
		}
	}
	if !cutOff {
		t.Fatalf("the crash left no pointer for the change it cut off: %v", ptrs)
	}

	e.restart() // settles the WAL entry: the change never happened
	e.clock.Advance(time.Minute)
	if st, err := e.b.runRotationTick(e.ctx, e.storage); err != nil || st.rotated != 1 {
		t.Fatalf("tick after the restart: %+v %v", st, err)
	}
	e.clock.Advance(time.Minute)
	if st, err := e.b.runRotationTick(e.ctx, e.storage); err != nil || st.rotated != 0 {
		t.Fatalf("second tick: %+v %v", st, err)
	}
	if k := e.key("svc", "k"); states(k) != "1:previous 2:active" || len(e.logEventsOf(eventlog.KeyRotated)) != 1 {
		t.Fatalf("after the restart: %s, %d rotations logged", states(k), len(e.logEventsOf(eventlog.KeyRotated)))
	}
}

// TestScheduleBackfillRunsOnceAndCoversOlderMounts: a mount written without
// the due index (no pointers, no state) gets every key's pointer from the
// backfill at its first start, which queues what is due at once; the next
// start reads no key, and keys due later are found from their pointers.
func TestScheduleBackfillRunsOnceAndCoversOlderMounts(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	e.ok(logical.CreateOperation, "roles/hourly", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "1h", "grace_period": "10m"})
	e.ok(logical.CreateOperation, "roles/daily", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "24h", "grace_period": "10m"})
	e.ok(logical.CreateOperation, "clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	e.issue("svc", "soon", "hourly", nil)
	e.issue("svc", "later", "daily", nil)
	dead := e.issueLeased()
	e.revokeLease(dead)
	e.forgetScheduleIndex()

	e.clock.Advance(time.Hour)
	cs := &opLogStorage{Storage: e.storage}
	e.storage = cs
	e.restart()
	if got := countOps(cs.take(), "GET", "keys/"); got != 3 {
		t.Fatalf("the backfill read %d key records, want the 3 keys", got)
	}
	for _, id := range []string{queueID("svc", "soon")} {
		if _, ok := e.b.sched.rotation.Due(id); !ok {
			t.Fatalf("%s due now is not queued after the backfill", id)
		}
	}
	if _, ok := e.b.sched.purge.Due(queueID("acme", dead.name)); !ok {
		t.Fatal("the dead leased key is not queued after the backfill")
	}
	for _, runner := range []string{"rotation", "purge"} {
		if len(e.scheduleBuckets(runner)) == 0 {
			t.Fatalf("the backfill wrote no %s pointers", runner)
		}
	}
	if st, err := e.b.runRotationTick(e.ctx, e.storage); err != nil || st.rotated != 1 {
		t.Fatalf("tick after the backfill: %+v %v", st, err)
	}
	if st := e.purgePass(); st.purged != 1 {
		t.Fatalf("purge after the backfill: %+v", st)
	}

	// The next start: no backfill, no key read.
	cs.take()
	e.restart()
	if got := countOps(cs.take(), "GET", "keys/"); got != 0 {
		t.Fatalf("a start after the backfill read %d key records", got)
	}
	// The daily key is found from the pointer the backfill gave it.
	e.clock.Set(testStart.Add(24*time.Hour + time.Minute))
	for i := 0; i < 30; i++ { // a catch-up of listings, a tick at a time
		if _, err := e.b.runRotationTick(e.ctx, e.storage); err != nil {
			t.Fatal(err)
		}
	}
	if k := e.key("svc", "later"); k.LatestVersion() != 2 {
		t.Fatalf("the daily key after its day: %s", states(k))
	}
}

// forgetScheduleIndex makes e's storage look written by a version without
// the due index: no pointers, no state, no notes on the key records.
func (e *testEnv) forgetScheduleIndex() {
	e.t.Helper()
	for _, sk := range e.storageKeys() {
		if strings.HasPrefix(sk, storageSchedulePrefix) {
			if err := e.storage.Delete(e.ctx, sk); err != nil {
				e.t.Fatal(err)
			}
		}
		if client, name, ok := strings.Cut(strings.TrimPrefix(sk, storageKeyPrefix), "/"); ok && strings.HasPrefix(sk, storageKeyPrefix) {
			k := e.key(client, name)
			k.RotationPointer, k.PurgePointer = time.Time{}, time.Time{}
			if err := e.b.putKey(e.ctx, e.storage, k); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// TestScheduleRetryOutlivesItsBucket: a key whose handling keeps failing
// lives on in memory, re-queued for a retry, after the bucket that pointed
// at it is dropped; it gets a pointer at its retry first, so a restart
// still finds it.
func TestScheduleRetryOutlivesItsBucket(t *testing.T) {
	e := newTestEnv(t)
	e.startSchedules()
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	e.issue("svc", "k", "r", nil)
	healthy := e.storage
	failing := true
	e.storage = &faultyStorage{Storage: healthy, fail: func(op, key string) error {
		if failing && op == "get" && key == keyStorageKey("svc", "k") {
			return errors.New("transient: storage unavailable")
		}
		return nil
	}}
	e.clock.Advance(time.Hour + time.Minute)
	if st, _ := e.b.runRotationTick(e.ctx, e.storage); st.failed != 1 {
		t.Fatalf("first failing tick: %+v", st)
	}
	// Past the end of the key's bucket (and its slack): the bucket goes
	// while the key waits in memory for its next retry.
	e.clock.Set(testStart.Add(2*time.Hour + scheduleConsumeSlack + time.Minute))
	if st, _ := e.b.runRotationTick(e.ctx, e.storage); st.failed != 1 {
		t.Fatalf("second failing tick: %+v", st)
	}
	if buckets := e.scheduleBuckets("rotation"); len(buckets) == 0 || buckets[0] <= scheduleBucketName(testStart.Add(time.Hour)) {
		t.Fatalf("the handled bucket was not dropped: %v", buckets)
	}
	failing = false
	e.storage = healthy
	e.restart()
	e.clock.Advance(2 * time.Minute)
	if st, err := e.b.runRotationTick(e.ctx, e.storage); err != nil || st.rotated != 1 {
		t.Fatalf("tick after the restart: %+v %v", st, err)
	}
}

// TestScheduleLoadWaitsForAWritableNode: a mount started where this node
// may not write (a performance standby) loads nothing and writes no state;
// once the node may write, its first tick loads the schedules.
func TestScheduleLoadWaitsForAWritableNode(t *testing.T) {
	e := newTestEnv(t)
	e.startSchedules()
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	e.issue("svc", "k", "r", nil)

	b2 := newBackend(e.clock)
	sys := logical.TestSystemView()
	sys.ReplicationStateVal = consts.ReplicationPerformanceStandby
	if err := b2.Setup(e.ctx, &logical.BackendConfig{Logger: e.b.logger, System: sys, StorageView: e.storage}); err != nil {
		t.Fatal(err)
	}
	if err := b2.Initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if b2.sched.rebuild.Running() || b2.sched.rotationIndex.started.Load() {
		t.Fatal("a standby loads the schedules")
	}
	sys.ReplicationStateVal = 0
	e.clock.Advance(time.Hour)
	req := &logical.Request{Storage: e.storage}
	if err := b2.rotationTick(e.ctx, req); err != nil { // starts the load
		t.Fatal(err)
	}
	if err := b2.sched.rebuild.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b2.rotationTick(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	if k, err := b2.getKey(e.ctx, e.storage, "svc", "k"); err != nil || k.LatestVersion() != 2 {
		t.Fatalf("after the node could write and two ticks: %s %v", states(k), err)
	}
}
