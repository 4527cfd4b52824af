package backend

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// startSchedules starts e's key schedules as the mount's start does and
// waits for the load, so e runs as a mount of this version: its index
// state exists and its backfill has ended.
func (e *testEnv) startSchedules() {
	e.t.Helper()
	if err := e.b.initRotation(e.ctx, e.storage); err != nil {
		e.t.Fatal(err)
	}
	if err := e.b.sched.rebuild.Wait(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// seedKeys commits n keys of role as issuance does (without its request
// checks, which would only slow a large setup), named <prefix><i>.
func (e *testEnv) seedKeys(client, role, prefix string, n int) {
	e.t.Helper()
	req := &logical.Request{Storage: e.storage, ID: "req-seed", EntityID: "entity-seed", DisplayName: "seed"}
	cfg, err := e.b.config(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.b.getRole(e.ctx, e.storage, role)
	if err != nil || r == nil {
		e.t.Fatalf("role %s: %v %v", role, r, err)
	}
	c, err := e.b.getClient(e.ctx, e.storage, client)
	if err != nil || c == nil {
		e.t.Fatalf("client %s: %v %v", client, c, err)
	}
	for i := 0; i < n; i++ {
		k, _, err := e.b.newKey(e.ctx, req, cfg, r, c, fmt.Sprintf("%s%04d", prefix, i), r.Scopes, r.RetrievableFor(c.Type))
		if err != nil {
			e.t.Fatal(err)
		}
		k.NextRotationAt = r.RotationPolicy(cfg).Next(k.CreatedAt)
		if err := e.b.commitKey(e.ctx, e.storage, k, k.Versions, issuedEvent(req, k)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// countOps counts the operations of kind op on keys under prefix among
// ops (as opLogStorage records them).
func countOps(ops []string, op, prefix string) int {
	n := 0
	for _, o := range ops {
		if strings.HasPrefix(o, op+" "+prefix) {
			n++
		}
	}
	return n
}

// TestScheduleStartReadsOnlyWhatIsDue: the mount's start reads no key
// record and lists only the buckets up to the horizon, however many keys
// the mount holds; memory holds the keys due within the horizon, and
// those rotate on the next tick.
func TestScheduleStartReadsOnlyWhatIsDue(t *testing.T) {
	e := newTestEnv(t)
	e.startSchedules()
	e.setupClientRole("svc", "internal", "monthly", map[string]interface{}{"rotation_period": "720h", "grace_period": "1h"})
	e.ok(logical.CreateOperation, "roles/hourly", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "1h", "grace_period": "10m"})
	e.seedKeys("svc", "monthly", "later", 5000)
	e.seedKeys("svc", "hourly", "now", 10)
	if n := e.b.sched.rotation.Len(); n != 10 {
		t.Fatalf("memory holds %d keys, want the 10 due within the horizon", n)
	}

	e.clock.Advance(time.Hour + time.Second)
	cs := &opLogStorage{Storage: e.storage}
	e.storage = cs
	e.restart()
	ops := cs.take()
	if got := countOps(ops, "GET", "keys/"); got != 0 {
		t.Fatalf("the mount's start read %d key records", got)
	}
	// The cursor's bucket is the hour before the first start: the load
	// lists from the next one to the one after now (12h, 13h, 14h).
	if got := countOps(ops, "LIST", "schedule/"); got > 3 {
		t.Fatalf("the mount's start listed %d schedule buckets:\n%s", got, strings.Join(ops, "\n"))
	}
	if n := e.b.sched.rotation.Len(); n != 10 {
		t.Fatalf("after the restart memory holds %d keys, want the 10 due", n)
	}

	st, err := e.b.runRotationTick(e.ctx, e.storage)
	if err != nil || st.rotated != 10 || st.handled != 10 {
		t.Fatalf("tick after the restart: %+v %v", st, err)
	}
	if got := countOps(cs.take(), "GET", "keys/"); got > 10*3 {
		t.Fatalf("the tick read %d key records to rotate 10 keys", got)
	}
	for i := 0; i < 10; i++ {
		if k := e.key("svc", fmt.Sprintf("now%04d", i)); states(k) != "1:previous 2:active" {
			t.Fatalf("now%04d: %s", i, states(k))
		}
	}
}

// scheduleBuckets lists the buckets of one due index in storage.
func (e *testEnv) scheduleBuckets(runner string) []string {
	e.t.Helper()
	names, err := e.storage.List(e.ctx, storageSchedulePrefix+runner+"/")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			out = append(out, strings.TrimSuffix(n, "/"))
		}
	}
	sort.Strings(out)
	return out
}

// TestScheduleLoadsBucketsAsTimeComes: keys due over the next two days
// rotate each at its hour while memory holds only the hour's and the
// next's, and the buckets done with are dropped behind a stored cursor.
func TestScheduleLoadsBucketsAsTimeComes(t *testing.T) {
	e := newTestEnv(t)
	e.startSchedules()
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "720h", "grace_period": "10m"})
	for i := 0; i < 48; i++ {
		e.issue("svc", fmt.Sprintf("k%02d", i), "r", nil)
		// Key i's next rotation is i hours and a half from now.
		k := e.key("svc", fmt.Sprintf("k%02d", i))
		k.NextRotationAt = testStart.Add(time.Duration(i)*time.Hour + 30*time.Minute)
		e.commitKeyLocked(k)
	}
	if n := e.b.sched.rotation.Len(); n > 2 {
		t.Fatalf("memory holds %d keys, want those of the current and the next hour", n)
	}
	for h := 0; h < 48; h++ {
		e.clock.Set(testStart.Add(time.Duration(h)*time.Hour + 31*time.Minute))
		st, err := e.b.runRotationTick(e.ctx, e.storage)
		if err != nil || st.rotated != 1 {
			t.Fatalf("hour %d: %+v %v", h, st, err)
		}
		if n := e.b.sched.rotation.Len(); n > 3 {
			t.Fatalf("hour %d: memory holds %d keys", h, n)
		}
		if h%12 == 11 {
			e.restart()
		}
	}
	for i := 0; i < 48; i++ {
		if k := e.key("svc", fmt.Sprintf("k%02d", i)); k.LatestVersion() != 2 || k.Current().Version != 2 {
			t.Fatalf("k%02d: %s", i, states(k))
		}
	}
	// The buckets of the hours handled are gone but for the last few
	// (a bucket goes once it ended and its keys were handled); the
	// rotated keys' next rotations wait a month ahead.
	buckets := e.scheduleBuckets("rotation")
	if len(buckets) == 0 || buckets[0] < scheduleBucketName(testStart.Add(46*time.Hour)) {
		t.Fatalf("buckets left behind: %v", buckets)
	}
}

// commitKeyLocked commits a change of k as the handlers do.
func (e *testEnv) commitKeyLocked(k *record.Key) {
	e.t.Helper()
	defer e.b.locks.lockKey(k.Client, k.Name)()
	if err := e.b.commitKey(e.ctx, e.storage, k, nil); err != nil {
		e.t.Fatal(err)
	}
}

// TestSchedulePointerNames: a pointer's name gives back its queue id and
// due time to the nanosecond, sorts by due time within a bucket, and a
// due time beyond what the name holds is clamped, never wrapped around.
func TestSchedulePointerNames(t *testing.T) {
	due := testStart.Add(90*time.Minute + 123*time.Nanosecond)
	id, got, ok := parseSchedulePointer(schedulePointerName("svc/k.1_x-y", due))
	if !ok || id != "svc/k.1_x-y" || !got.Equal(due) {
		t.Fatalf("parsed %q %v %v", id, got, ok)
	}
	if a, b := schedulePointerName("z/z", due), schedulePointerName("a/a", due.Add(time.Second)); a >= b {
		t.Fatalf("%q sorts after %q", a, b)
	}
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, got, ok := parseSchedulePointer(schedulePointerName("svc/k", far)); !ok || !got.Equal(scheduleMaxDue) {
		t.Fatalf("a due time in 3000 reads back as %v", got)
	}
	if b := scheduleBucketName(scheduleBucketOf(far)); b != scheduleBucketName(scheduleMaxDue) {
		t.Fatalf("its bucket is %s", b)
	}
	for _, bad := range []string{"state", "x~svc~k", "123", "123~"} {
		if _, _, ok := parseSchedulePointer(bad); ok {
			t.Fatalf("%q parsed as a pointer", bad)
		}
	}
}
