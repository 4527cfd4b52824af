package backend

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// exportedHash returns the chain hash of entry seq from log/export, as an
// operator archiving would take it.
func exportedHash(e *testEnv, seq int) string {
	e.t.Helper()
	lines := e.ok(logical.ReadOperation, "log/export", map[string]interface{}{"after": fmt.Sprint(seq - 1), "limit": 1}).Data["entries"].(string)
	var entry struct {
		Seq  int    `json:"seq"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(lines)), &entry); err != nil || entry.Seq != seq {
		e.t.Fatalf("export of entry %d: %q %v", seq, lines, err)
	}
	return entry.Hash
}

func TestLogArchivalKeepsTheLogVerifiableAndProvable(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	for i := 0; i < 30; i++ {
		e.ok(logical.UpdateOperation, "keys/svc/k"+fmt.Sprint(i), map[string]interface{}{"role": "r"})
	}
	through := 20
	hash := exportedHash(e, through)
	args := map[string]interface{}{"through": through, "through_hash": hash}

	e.userErr(logical.UpdateOperation, "log/archive", args, "retention is 0")
	e.ok(logical.UpdateOperation, "log/config", map[string]interface{}{"retention": "24h"})
	e.userErr(logical.UpdateOperation, "log/archive", args, "past the latest signed checkpoint")
	e.ok(logical.UpdateOperation, "log/checkpoint", nil)
	e.userErr(logical.UpdateOperation, "log/archive", args, "within the retention")
	e.clock.Advance(25 * time.Hour)
	e.userErr(logical.UpdateOperation, "log/archive", map[string]interface{}{"through": through, "through_hash": strings.Repeat("0", 64)}, "through_hash is not the hash of entry 20")
	e.userErr(logical.UpdateOperation, "log/config", map[string]interface{}{"retention": "30s"}, "retention must be 0")

	got := e.ok(logical.UpdateOperation, "log/archive", args).Data
	if got["archived_through"] != through || got["archived"] != uint64(through) {
		t.Fatalf("archive: %v", got)
	}
	e.userErr(logical.UpdateOperation, "log/archive", args, "archived already")

	// What is kept verifies from the archived point, and nothing below it
	// is listed or exported.
	v := e.ok(logical.ReadOperation, "log/verify", nil).Data
	if v["valid"] != true || v["complete"] != true || v["archived_through"] != uint64(through) || v["from"] != uint64(through) {
		t.Fatalf("verify after archival: %v", v)
	}
	if ex := e.ok(logical.ReadOperation, "log/export", nil).Data; ex["first"] != uint64(through+1) {
		t.Fatalf("export after archival starts at %v", ex["first"])
	}
	page := e.ok(logical.ReadOperation, "log", map[string]interface{}{"order": "oldest", "limit": 5}).Data["entries"].([]map[string]interface{})
	if page[0]["seq"] != uint64(through+1) {
		t.Fatalf("oldest listed entry after archival = %v", page[0]["seq"])
	}
	logged := e.ok(logical.ReadOperation, "log", map[string]interface{}{"type": "log.archived"}).Data["entries"].([]map[string]interface{})
	if len(logged) != 1 || logged[0]["details"].(map[string]interface{})["through_hash"] != hash {
		t.Fatalf("log.archived entries: %v", logged)
	}

	// The periodic function removes the archived entries; proofs still work
	// for them, from the kept tree hashes.
	if err := e.b.periodic(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= through; seq++ {
		if entry, _ := e.storage.Get(e.ctx, fmt.Sprintf("log/entries/%020d", seq)); entry != nil {
			t.Fatalf("archived entry %d is still stored", seq)
		}
	}
	if entry, _ := e.storage.Get(e.ctx, fmt.Sprintf("log/entries/%020d", through+1)); entry == nil {
		t.Fatal("the first kept entry was removed")
	}
	incl := e.ok(logical.ReadOperation, "log/proof/inclusion", map[string]interface{}{"seq": 5}).Data
	if _, stored := incl["entry"]; stored || len(incl["proof"].([]string)) == 0 {
		t.Fatalf("inclusion proof of an archived entry: %v", incl)
	}
	if v := e.ok(logical.ReadOperation, "log/verify", nil).Data; v["valid"] != true {
		t.Fatalf("verify after removal: %v", v)
	}
}

func TestLogVerifyPagesAndIncremental(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	for i := 0; i < 12; i++ {
		e.ok(logical.UpdateOperation, "keys/svc/k"+fmt.Sprint(i), map[string]interface{}{"role": "r"})
	}
	head := e.ok(logical.ReadOperation, "log", map[string]interface{}{"limit": 1}).Data["head_seq"].(uint64)
	// A full verification in pages of 5, each continuing the one before.
	from, hash, pages := uint64(0), "", 0
	for {
		args := map[string]interface{}{"limit": 5, "from": from}
		if hash != "" {
			args["from_hash"] = hash
		}
		v := e.ok(logical.ReadOperation, "log/verify", args).Data
		pages++
		if v["valid"] != true {
			t.Fatalf("page from %d: %v", from, v)
		}
		if v["complete"] == true {
			if v["to"] != head {
				t.Fatalf("last page ends at %v, head %d", v["to"], head)
			}
			break
		}
		from, hash = v["next_from"].(uint64), v["next_hash"].(string)
	}
	if want := int(head+4) / 5; pages != want {
		t.Fatalf("%d pages for %d entries, want %d", pages, head, want)
	}
	if v := e.ok(logical.ReadOperation, "log/verify", map[string]interface{}{"from": 3, "from_hash": strings.Repeat("a", 64)}).Data; v["valid"] != false || v["broken_at"] != uint64(3) {
		t.Fatalf("a page that does not continue the one before: %v", v)
	}
	e.userErr(logical.ReadOperation, "log/verify", map[string]interface{}{"limit": 0}, "limit must be between 1 and 100000")
	e.userErr(logical.ReadOperation, "log/verify", map[string]interface{}{"incremental": true, "from": 2}, "cannot be combined")

	// Incremental: the first covers everything; the next only what is new.
	if v := e.ok(logical.ReadOperation, "log/verify", map[string]interface{}{"incremental": true}).Data; v["valid"] != true || v["complete"] != true || v["to"] != head {
		t.Fatalf("first incremental: %v", v)
	}
	e.ok(logical.UpdateOperation, "keys/svc/new", map[string]interface{}{"role": "r"})
	v := e.ok(logical.ReadOperation, "log/verify", map[string]interface{}{"incremental": true}).Data
	if v["valid"] != true || v["from"] != head || v["entries"] != 1 || v["complete"] != true {
		t.Fatalf("incremental after one issue: %v", v)
	}
}
