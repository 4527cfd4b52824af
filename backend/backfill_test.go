package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A new mount has no record without its index entries, so its backfills
// end when it starts instead of walking every key it receives before the
// first tick; a mount with records (as an older version left it: no
// backfill state) still walks them.
func TestNewMountEndsItsBackfillsAtStart(t *testing.T) {
	e := newTestEnv(t)
	e.restart()
	for _, f := range []backfill{e.b.keyIDBackfill(), e.b.tombstoneBackfill()} {
		st, err := f.state(e.ctx, e.storage)
		if err != nil || !st.Done || st.Written != 0 {
			t.Fatalf("%s of a new mount: %+v, %v; want ended with nothing written", f.what, st, err)
		}
	}
	counting := &rotCountingStorage{Storage: e.storage}
	req := &logical.Request{Storage: counting}
	if err := e.b.keyIDBackfillTick(e.ctx, req); err != nil || counting.ops != 0 {
		t.Fatalf("a backfill tick of a new mount: %d storage operations, %v", counting.ops, err)
	}

	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x", "environment": "prod"})
	e.issueMany(2, 3)
	for _, key := range []string{storageKeyIDBackfill, storageTombstoneBackfill} {
		if err := e.storage.Delete(e.ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	e.restart()
	for _, f := range []backfill{e.b.keyIDBackfill(), e.b.tombstoneBackfill()} {
		if done, err := f.finished(e.ctx, e.storage); err != nil || done {
			t.Fatalf("%s of a mount with records and no backfill state ended at start (%v)", f.what, err)
		}
	}
	// Telling a new mount costs the same at any size: no listing, which
	// reads every entry under its prefix.
	rec := &listRecorder{Storage: e.storage}
	if err := e.b.endBackfillsOfANewMount(e.ctx, rec); err != nil || len(rec.prefixes) != 0 || len(rec.gets) > 1 {
		t.Fatalf("telling a new mount listed %v and read %v (%v)", rec.prefixes, rec.gets, err)
	}
}
