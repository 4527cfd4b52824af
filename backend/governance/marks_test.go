package governance

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// countingStorage counts writes and deletes.
type countingStorage struct {
	logical.Storage
	puts, deletes int
}

func (c *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.puts++
	return c.Storage.Put(ctx, e)
}

func (c *countingStorage) Delete(ctx context.Context, key string) error {
	c.deletes++
	return c.Storage.Delete(ctx, key)
}

// Marks are written only when changed (as instants: a time read back from
// storage is equal to the one set), and empty marks are deleted, so a key
// without marks costs no storage.
func TestMarkStoreWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	cs := &countingStorage{Storage: &logical.InmemStorage{}}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.FixedZone("CET", 3600))

	ms := newMarkStore(cs)
	if m, err := ms.get(ctx, "kid_a"); err != nil || !m.empty() {
		t.Fatalf("marks of an unmarked key: %+v %v", m, err)
	}
	ms.set("kid_a", Marks{})
	ms.set("kid_b", Marks{Overdue: at})
	if err := ms.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if cs.puts != 1 || cs.deletes != 0 { // kid_b written; kid_a read as none and left so
		t.Fatalf("first flush: %d puts, %d deletes", cs.puts, cs.deletes)
	}

	cs.puts, cs.deletes = 0, 0
	ms = newMarkStore(cs)
	m, err := ms.get(ctx, "kid_b")
	if err != nil || !m.Overdue.Equal(at) {
		t.Fatalf("read back: %+v %v", m, err)
	}
	ms.set("kid_b", Marks{Overdue: at.UTC()}) // the same instant
	if err := ms.flush(ctx); err != nil || cs.puts+cs.deletes != 0 {
		t.Fatalf("unchanged marks: %d puts, %d deletes (%v)", cs.puts, cs.deletes, err)
	}
	ms.set("kid_b", Marks{})
	if err := ms.flush(ctx); err != nil || cs.deletes != 1 {
		t.Fatalf("cleared marks: %d deletes (%v)", cs.deletes, err)
	}
	if entry, _ := cs.Get(ctx, MarksKey("kid_b")); entry != nil {
		t.Fatal("cleared marks still stored")
	}
}

func TestMarksAgeAndSettle(t *testing.T) {
	now := testStart
	m := Marks{Review: now, Overdue: now, Alerted: now.Add(-OpenAlertMaxAge)}
	m.Age(now)
	if m.Alerted.IsZero() {
		t.Fatal("an alert exactly OpenAlertMaxAge old left time-to-revoke tracking")
	}
	m.Age(now.Add(time.Second))
	if !m.Alerted.IsZero() {
		t.Fatal("an alert older than OpenAlertMaxAge kept in time-to-revoke tracking")
	}
	m.Settle(true, false)
	if m.Review.IsZero() || !m.Overdue.IsZero() {
		t.Fatalf("settled (stale, not overdue): %+v", m)
	}
	m.Settle(false, false)
	if !m.empty() {
		t.Fatalf("settled (neither): %+v", m)
	}
}

// DropMarks deletes the marks of purged keys under the state lock, and
// reports a mark it could not delete.
func TestDropMarks(t *testing.T) {
	e := newEnv(t, Options{})
	e.update(func(st *State) error {
		st.SetMarks("kid_a", Marks{Review: testStart})
		st.SetMarks("kid_b", Marks{Review: testStart})
		return nil
	})
	var failed []string
	e.r.DropMarks(e.ctx, e.s, []string{"kid_a", "kid_gone"}, func(id string, err error) { failed = append(failed, id) })
	if len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	if keys := e.list(MarksPrefix); join(keys) != "kid_b" {
		t.Fatalf("marks left: %v", keys)
	}
}
