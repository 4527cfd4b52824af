package governance

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// governance/state holds only bounded fields: filled to its worst case it
// stays far below the storage's entry limit.
func TestGovStateEntryBounded(t *testing.T) {
	st := &State{Events: map[string]uint64{}, Verify: map[string]uint64{}}
	for i := 0; i < 100; i++ { // more types and outcomes than exist
		st.Events[fmt.Sprintf("event.type.with.a.long.name.%03d", i)] = 1<<64 - 1
		st.Verify[fmt.Sprintf("outcome_with_a_long_name_%03d", i)] = 1<<64 - 1
	}
	for i := 0; i < 2*maxTTRSamples; i++ {
		st.addTTR(123456789.123456789 + float64(i)/7)
	}
	long := strings.Repeat("x", 64) // the longest client or key name
	st.Sweep = Cursor{Client: long, Key: long}
	st.DroppedAlerts, st.LogSeq = 1<<64-1, 1<<64-1
	entry, err := logical.StorageEntryJSON(StateKey, st)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(entry.Value); n > 64<<10 {
		t.Fatalf("worst-case governance/state is %d bytes, want under 64 KiB", n)
	}
	t.Logf("worst-case governance/state: %d bytes", len(entry.Value))
}

// Update saves what fn changed, writes nothing when nothing changed, and
// nothing at all when fn fails.
func TestUpdateSavesOnlyChanges(t *testing.T) {
	e := newEnv(t, Options{})
	cs := &countingStorage{Storage: e.s}
	e.s = cs
	e.update(func(st *State) error { return nil }) // the first state
	cs.puts = 0
	e.update(func(st *State) error { return nil })
	if cs.puts+cs.deletes != 0 {
		t.Fatalf("an update that changed nothing wrote %d entries", cs.puts+cs.deletes)
	}
	e.update(func(st *State) error {
		st.Verify["active"] += 3
		st.SetMarks("kid_a", Marks{Review: testStart})
		return nil
	})
	if st := e.state(); st.Verify["active"] != 3 {
		t.Fatalf("verify counts not saved: %v", st.Verify)
	}
	if keys := e.list(MarksPrefix); join(keys) != "kid_a" {
		t.Fatalf("marks entries %v", keys)
	}
	failed := errors.New("step failed")
	if err := e.r.Update(e.ctx, e.s, func(st *State) error {
		st.Verify["active"] += 1
		st.SetMarks("kid_b", Marks{Review: testStart})
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("Update returned %v", err)
	}
	if st := e.state(); st.Verify["active"] != 3 {
		t.Fatalf("a failed update saved its counts: %v", st.Verify)
	}
	if keys := e.list(MarksPrefix); join(keys) != "kid_a" {
		t.Fatalf("a failed update saved marks: %v", keys)
	}
}
