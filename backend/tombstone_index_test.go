package backend

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func (e *testEnv) tombstoneNames(s logical.Storage) []string {
	e.t.Helper()
	q := inventoryQuery{limit: 100, tombstonesWanted: true}
	clientOf := memoByName(func(name string) (*record.Client, error) { return e.b.getClient(e.ctx, s, name) })
	tombstones, _, err := e.b.tombstonePage(e.ctx, s, q, clientOf)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, ts := range tombstones {
		names = append(names, ts["client"].(string))
	}
	return names
}

// The tombstone page of the inventory reads the records of de-provisioned clients
// only, once their pointers are complete; clients de-provisioned before
// pointers existed get theirs from the backfill, and until it ends the
// page reads every client as before.
func TestTombstonePageReadsOnlyDeprovisionedClients(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 30; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("clients/c%02d", i), map[string]interface{}{"owner": "team", "type": "internal"})
	}
	e.ok(logical.DeleteOperation, "clients/c05", nil)
	e.ok(logical.DeleteOperation, "clients/c20", nil)
	// c05 as an older version de-provisioned it: without a pointer.
	if err := e.storage.Delete(e.ctx, storageTombstonePrefix+"c05"); err != nil {
		t.Fatal(err)
	}
	// A pointer left by a de-provisioning cut off before the status write.
	if err := e.b.putTombstonePointer(e.ctx, e.storage, "c10"); err != nil {
		t.Fatal(err)
	}
	if got := e.tombstoneNames(e.storage); strings.Join(got, " ") != "c05 c20" {
		t.Fatalf("before the backfill: tombstones %v", got)
	}

	if err := e.b.tombstoneBackfillTick(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if st, err := e.b.tombstoneBackfill().state(e.ctx, e.storage); err != nil || !st.Done || st.Written != 2 {
		t.Fatalf("backfill state %+v, %v; want done with 2 written", st, err)
	}
	rec := &listRecorder{Storage: e.storage}
	if got := e.tombstoneNames(rec); strings.Join(got, " ") != "c05 c20" {
		t.Fatalf("after the backfill: tombstones %v", got)
	}
	var clientReads []string
	for _, k := range rec.gets {
		if strings.HasPrefix(k, storageClientPrefix) {
			clientReads = append(clientReads, k)
		}
	}
	if len(clientReads) != 3 { // c05, c10 (skipped: not de-provisioned), c20
		t.Fatalf("the tombstone page read client records %v", clientReads)
	}
	for _, p := range rec.prefixes {
		if p == storageClientPrefix {
			t.Fatalf("the tombstone page listed every client: %v", rec.prefixes)
		}
	}
	// Later de-provisionings write their pointer as they happen.
	e.ok(logical.DeleteOperation, "clients/c29", nil)
	if got := e.tombstoneNames(e.storage); strings.Join(got, " ") != "c05 c20 c29" {
		t.Fatalf("after a new de-provisioning: tombstones %v", got)
	}
}

// The backfill crosses its step budget over several ticks and ends.
func TestTombstoneBackfillInSteps(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 5; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("clients/c%02d", i), map[string]interface{}{"owner": "team", "type": "internal"})
		e.ok(logical.DeleteOperation, fmt.Sprintf("clients/c%02d", i), nil)
		if err := e.storage.Delete(e.ctx, fmt.Sprintf("%sc%02d", storageTombstonePrefix, i)); err != nil {
			t.Fatal(err)
		}
	}
	f := e.b.tombstoneBackfill()
	cursor := ""
	for steps := 0; ; steps++ {
		if steps > 5 {
			t.Fatal("the backfill does not end")
		}
		next, written, err := e.b.tombstoneBackfillStepWithin(e.ctx, e.storage, cursor, 2)
		if err != nil || written > 2 {
			t.Fatalf("step %d: written %d, %v", steps, written, err)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if names, err := e.storage.List(e.ctx, storageTombstonePrefix); err != nil || len(names) != 5 {
		t.Fatalf("pointers after the backfill: %v %v", names, err)
	}
	if done, _ := f.finished(e.ctx, e.storage); done {
		t.Fatal("steps run by hand must not mark the backfill done")
	}
}
