package governance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSweepPassEndingOnBatchBoundaryWrapsAtOnce(t *testing.T) {
	e := newEnv(t, Options{SweepBatch: 4})
	e.putKeys("a/k0", "a/k1", "a/k2", "a/k3", "c/k0", "c/k1", "c/k2", "c/k3")
	if got := join(append(e.sweep(), e.sweep()...)); got != "a/k0 a/k1 a/k2 a/k3 c/k0 c/k1 c/k2 c/k3" {
		t.Fatalf("first pass: %s", got)
	}
	// The previous step stopped on the last key: this one does not idle.
	if got := join(e.sweep()); got != "a/k0 a/k1 a/k2 a/k3" {
		t.Fatalf("step after the pass: %s", got)
	}
}

// The cursor is persisted: a new active node (here a new runtime on the
// same storage) carries on where the previous one stopped.
func TestSweepResumesFromStoredCursor(t *testing.T) {
	e := newEnv(t, Options{SweepBatch: 4})
	e.putKeys("a/k0", "a/k1", "a/k2", "a/k3", "a/k4", "c/k0", "c/k1", "c/k2", "c/k3", "c/k4", "c/k5")
	if got := join(e.sweep()); got != "a/k0 a/k1 a/k2 a/k3" {
		t.Fatalf("first step: %s", got)
	}
	e.restart()
	if got := join(e.sweep()); got != "a/k4 c/k0 c/k1 c/k2" {
		t.Fatalf("new node: %s", got)
	}
	// Keys changing under the cursor: the key at the cursor is gone from
	// storage, a client before the cursor gains a key. The walk carries
	// on after the cursor, and the new key is visited in the next pass,
	// which the step goes on with.
	if err := e.s.Delete(e.ctx, testKeyPrefix+"c/k2"); err != nil {
		t.Fatal(err)
	}
	e.putKeys("a/k99")
	e.restart() // re-list from the stored cursor
	if got := join(e.sweep()); got != "c/k3 c/k4 c/k5 a/k0" {
		t.Fatalf("after changes: %s", got)
	}
	seen := map[string]bool{}
	for range 3 {
		for _, k := range e.sweep() {
			seen[k] = true
		}
	}
	if !seen["a/k99"] || len(seen) != 11 {
		t.Fatalf("next pass visited %v", seen)
	}
}

// A client gone with the cursor on it: the walk goes on with the next
// client, then into the next pass up to where the step began.
func TestSweepCursorClientGone(t *testing.T) {
	e := newEnv(t, Options{SweepBatch: 2})
	e.putKeys("a/k0", "b/k0", "b/k1", "c/k0")
	if got := join(e.sweep()); got != "a/k0 b/k0" {
		t.Fatalf("first step: %s", got)
	}
	for _, k := range []string{"b/k0", "b/k1"} {
		if err := e.s.Delete(e.ctx, testKeyPrefix+k); err != nil {
			t.Fatal(err)
		}
	}
	e.restart()
	if got := join(e.sweep()); got != "c/k0 a/k0" {
		t.Fatalf("after the cursor's client went: %s", got)
	}
}

// A key whose visit fails is skipped; the context ending stops the step
// before the key it was on.
func TestSweepSkipsFailedKeysStopsOnContextEnd(t *testing.T) {
	e := newEnv(t, Options{})
	e.putKeys("a/k0", "a/k1", "a/k2")
	e.update(func(st *State) error {
		err := e.r.Sweep(e.ctx, e.s, st, func(client, name string) error {
			if name == "k1" {
				return errors.New("undecodable")
			}
			return nil
		})
		if err != nil || st.Sweep != (Cursor{}) {
			t.Fatalf("a failed key ended the pass: %v, cursor %+v", err, st.Sweep)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(e.ctx)
	e.update(func(st *State) error {
		err := e.r.Sweep(ctx, e.s, st, func(client, name string) error {
			if name == "k1" {
				cancel()
				return ctx.Err()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("sweep with its context ended: %v", err)
		}
		return nil
	})
	if got := e.state().Sweep; got != (Cursor{Client: "a", Key: "k0"}) {
		t.Fatalf("cursor %+v, want before the key the sweep was on", got)
	}
}

// The walkers' positions are guarded by the state lock: a state that is
// not the one Update runs with is refused.
func TestWalkersRefuseStateOutsideUpdate(t *testing.T) {
	e := newEnv(t, Options{})
	e.putKeys("a/k0")
	st := e.state()
	if err := e.r.Sweep(e.ctx, e.s, st, func(string, string) error { return nil }); !errors.Is(err, errNotUpdating) {
		t.Fatalf("Sweep with a snapshot: %v", err)
	}
	if _, err := e.r.PruneAlerts(e.ctx, e.s, st, testStart, func([]string) error { return nil }); !errors.Is(err, errNotUpdating) {
		t.Fatalf("PruneAlerts with a snapshot: %v", err)
	}
}

// A step stops once its time budget is spent, after whichever key it was
// on, and the next step carries on from there: the pass still visits every
// key once, and the step that ends it goes on with the next pass.
func TestSweepStopsAtItsBudget(t *testing.T) {
	at := testStart
	// Each reading of the stopwatch is a second after the previous one.
	tick := func() time.Time { at = at.Add(time.Second); return at }
	e := newEnv(t, Options{SweepBudget: 3 * time.Second, Stopwatch: tick})
	var keys []string
	for i := 0; i < 10; i++ {
		keys = append(keys, fmt.Sprintf("a/k%d", i))
	}
	e.putKeys(keys...)
	seen := map[string]bool{}
	for step, want := range []string{"a/k0 a/k1 a/k2", "a/k3 a/k4 a/k5", "a/k6 a/k7 a/k8", "a/k9 a/k0"} {
		got := e.sweep()
		if join(got) != want {
			t.Fatalf("step %d visited %v, want %s", step+1, got, want)
		}
		for _, k := range got {
			seen[k] = true
		}
	}
	if len(seen) != len(keys) {
		t.Fatalf("the pass visited %d of %d keys", len(seen), len(keys))
	}
}
