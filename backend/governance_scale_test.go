package backend

import (
	"fmt"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// governanceEntryLimit is what any entry governance writes must stay under,
// half of Raft's default max entry size.
const governanceEntryLimit = 512 << 10

// TestGovernanceAtScale: every key of a large mount is overdue for rotation
// and due for review (as after an outage), and earlier ticks had alerted all
// but 1% of them, so the mount carries a governance mark for almost every
// key: together far over 1 MiB, which is why marks are entries of their own.
// Under storage that refuses entries over 1 MiB like Raft:
//   - every tick succeeds;
//   - no entry written under governance/ reaches 512 KiB;
//   - no tick reads more than the sweep batch of keys (and of marks), and
//     one pass visits every key once;
//   - only the unmarked 1% alert, once; a second pass writes no marks.
func TestGovernanceAtScale(t *testing.T) {
	testGovernanceAtScale(t, 50000) // about 12 s with -race on 2 cores
}

// TestGovernanceAtLargerScale is the same at 200k keys, skipped with -short
// and under the race detector (about 10 s without it).
func TestGovernanceAtLargerScale(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("200k keys: skipped with -short and with -race")
	}
	testGovernanceAtScale(t, 200000)
}

// scaleTestBatch is the sweep batch of testGovernanceAtScale, whose budget
// is lifted so every tick visits a whole batch however slow the machine.
const scaleTestBatch = 10000

func testGovernanceAtScale(t *testing.T, n int) {
	e := newTestEnv(t, withGovernance(governance.Options{SweepBatch: scaleTestBatch, SweepBudget: time.Hour}))
	rs := newRecordingStorage(e.storage)
	e.storage = rs
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})

	// Keys straight into storage, in a minimal hand-made encoding (issuing
	// them through the API, or even json.Marshal, would only slow the
	// setup, several times over with -race): created 100 days ago (default
	// review_period 90d), due for rotation two hours ago (tolerance 1h).
	created, due := testStart.Add(-100*record.Day), testStart.Add(-2*time.Hour)
	unmarked, alerted := 0, 0
	setup := time.Now()
	for c := 0; c < 100; c++ {
		client := fmt.Sprintf("c%03d", c)
		if err := rs.Storage.Put(e.ctx, &logical.StorageEntry{Key: clientStorageKey(client), Value: []byte(`{"name":"` + client + `","status":"active"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		client, name := fmt.Sprintf("c%03d", i%100), fmt.Sprintf("k%07d", i)
		keyID := "kid_scale" + name
		body := `{"key_id":"` + keyID + `","client":"` + client + `","name":"` + name + `","role":"r",` +
			`"created_at":"` + created.Format(time.RFC3339) + `","next_rotation_at":"` + due.Format(time.RFC3339) + `",` +
			`"versions":[{"version":1,"state":"active","created_at":"` + created.Format(time.RFC3339) + `"}]}`
		if err := rs.Storage.Put(e.ctx, &logical.StorageEntry{Key: keyStorageKey(client, name), Value: []byte(body)}); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			unmarked++
			continue
		}
		m := governance.Marks{Review: testStart.Add(-time.Hour), Overdue: due}
		if alerted < 10000 { // some alerts still open, as time-to-revoke samples to be
			m.Alerted = testStart.Add(-time.Hour)
			alerted++
		}
		entry, err := logical.StorageEntryJSON(governance.MarksKey(keyID), m)
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.Storage.Put(e.ctx, entry); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d keys, %d of them marked; setup %v", n, n-unmarked, time.Since(setup).Round(time.Millisecond))

	// One pass: ceil(n/batch) ticks.
	ticks := (n + scaleTestBatch - 1) / scaleTestBatch
	visited := map[string]bool{}
	var slowest time.Duration
	for i := 0; i < ticks; i++ {
		rs.reset()
		start := time.Now()
		e.tick()
		took := time.Since(start)
		read := rs.keysRead()
		t.Logf("tick %d: %v, %d keys read, %d governance reads, %d governance writes", i+1, took.Round(time.Millisecond), len(read), rs.reads("governance/"), rs.writes("governance/"))
		if i > 0 && took > slowest {
			slowest = took
		}
		if len(read) > scaleTestBatch {
			t.Fatalf("tick %d read %d keys, more than the batch %d", i+1, len(read), scaleTestBatch)
		}
		// One marks entry per key visited, and the state.
		if g := rs.reads("governance/"); i > 0 && g > scaleTestBatch+1 {
			t.Fatalf("tick %d made %d governance reads", i+1, g)
		}
		for _, k := range read {
			if visited[k] {
				t.Fatalf("%s visited twice in one pass", k)
			}
			visited[k] = true
		}
	}
	if len(visited) != n {
		t.Fatalf("one pass visited %d of %d keys", len(visited), n)
	}
	largest := rs.largestWrite("governance/")
	t.Logf("largest governance/ entry written: %d bytes; slowest tick after the first: %v", largest, slowest.Round(time.Millisecond))
	if largest >= governanceEntryLimit {
		t.Fatalf("a governance/ entry of %d bytes was written, want < %d", largest, governanceEntryLimit)
	}
	for _, typ := range []string{record.AlertRotationOverdue, record.AlertReviewDue} {
		if got := len(e.alertsOf(typ)); got != unmarked {
			t.Fatalf("%s alerts = %d, want %d (the keys not alerted before)", typ, got, unmarked)
		}
	}
	marks, err := rs.Storage.List(e.ctx, governance.MarksPrefix)
	if err != nil || len(marks) != n {
		t.Fatalf("%d marks entries (%v), want one per key (%d)", len(marks), err, n)
	}

	// A second pass: nothing new, so no mark is written (at most the
	// state, for the cursor) and no alert raised.
	rs.reset()
	for i := 0; i < ticks; i++ {
		e.tick()
	}
	if w := rs.writes("governance/"); w > ticks {
		t.Fatalf("second pass wrote %d governance entries, want at most %d (the state)", w, ticks)
	}
	if got := len(e.alertsOf(record.AlertRotationOverdue)); got != unmarked {
		t.Fatalf("overdue alerts after a second pass = %d, want %d", got, unmarked)
	}
}
