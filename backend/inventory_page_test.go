package backend

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// invPage reads one inventory page and returns "client/name" of its keys
// and its next cursor.
func (e *testEnv) invPage(data map[string]interface{}) ([]string, string) {
	e.t.Helper()
	resp := e.ok(logical.ReadOperation, "inventory", data)
	var names []string
	for _, k := range resp.Data["keys"].([]map[string]interface{}) {
		names = append(names, k["client"].(string)+"/"+k["name"].(string))
	}
	next, _ := resp.Data["next"].(string)
	return names, next
}

// invAll pages the inventory with filter to the end and returns every key
// and the number of pages it took.
func (e *testEnv) invAll(filter map[string]interface{}) ([]string, int) {
	e.t.Helper()
	var all []string
	after, pages := "", 0
	for {
		data := map[string]interface{}{"after": after}
		for k, v := range filter {
			data[k] = v
		}
		names, next := e.invPage(data)
		all, pages = append(all, names...), pages+1
		if next == "" {
			return all, pages
		}
		if pages > 1000 {
			e.t.Fatal("inventory paging does not end")
		}
		after = next
	}
}

func (e *testEnv) issueMany(clients, perClient int) []string {
	e.t.Helper()
	var want []string
	for c := 0; c < clients; c++ {
		client := fmt.Sprintf("c%02d", c)
		e.ok(logical.CreateOperation, "clients/"+client, map[string]interface{}{"owner": "team-" + client})
		for k := 0; k < perClient; k++ {
			name := fmt.Sprintf("k%03d", k)
			e.ok(logical.CreateOperation, "keys/"+client+"/"+name, map[string]interface{}{"role": "r"})
			want = append(want, client+"/"+name)
		}
	}
	return want
}

func TestInventoryPagesVisitEveryKeyOnceInOrder(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x", "environment": "prod"})
	want := e.issueMany(3, 4)
	got, pages := e.invAll(map[string]interface{}{"limit": 5})
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("paged inventory\n got %v\nwant %v", got, want)
	}
	if pages != 3 {
		t.Fatalf("12 keys by 5 took %d pages, want 3", pages)
	}
	// A client filter walks that client only and pages within it.
	got, _ = e.invAll(map[string]interface{}{"limit": 3, "client": "c01"})
	if strings.Join(got, " ") != "c01/k000 c01/k001 c01/k002 c01/k003" {
		t.Fatalf("client c01 paged: %v", got)
	}
	// Without parameters: the first 100, no next for a small mount.
	if names, next := e.invPage(nil); len(names) != 12 || next != "" {
		t.Fatalf("default page: %d keys, next %q", len(names), next)
	}
	for _, bad := range []map[string]interface{}{
		{"limit": 0}, {"limit": 1001},
	} {
		e.userErr(logical.ReadOperation, "inventory", bad, "limit must be between 1 and 1000")
	}
	e.userErr(logical.ReadOperation, "inventory", map[string]interface{}{"after": "nocursor"}, "after must be")
	e.userErr(logical.ReadOperation, "inventory", map[string]interface{}{"after": "c00/k001", "client": "c01"}, "after")
}

// A page reads at most limit x inventoryScanFactor key records, however
// many keys the mount holds: a rare filter gives short (even empty) pages
// with a next, and paging on finds the match.
func TestInventoryPageScanIsBounded(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x", "environment": "prod"})
	e.ok(logical.CreateOperation, "roles/rare", map[string]interface{}{"scopes": "x", "environment": "prod"})
	e.issueMany(4, 10)
	e.ok(logical.CreateOperation, "keys/c03/zz", map[string]interface{}{"role": "rare"})

	counting := &rotCountingStorage{Storage: e.storage}
	q := inventoryQuery{filter: inventoryFilter{role: "rare"}, limit: 2}
	page, err := e.b.inventoryPage(e.ctx, counting, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.items) != 0 || page.next != "c00/k009" {
		t.Fatalf("first page of a rare filter: %d keys, next %q; want 0 and c00/k009 (10 records read)", len(page.items), page.next)
	}
	// 10 key records, the client records of the keys read, the listings
	// and the config: nothing proportional to the other 31 keys.
	if counting.ops > 10+10+5 {
		t.Fatalf("%d storage operations for a page of budget 10", counting.ops)
	}
	got, pages := e.invAll(map[string]interface{}{"limit": 2, "role": "rare"})
	if strings.Join(got, " ") != "c03/zz" || pages != 5 {
		t.Fatalf("rare filter paged: %v in %d pages, want c03/zz in 5", got, pages)
	}
}

func TestInventoryKeyIDUsesThePointerAndFallsBackToScan(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x", "environment": "prod"})
	e.issueMany(2, 10)
	id := e.issued("c01", "k007").KeyID

	counting := &rotCountingStorage{Storage: e.storage}
	page, err := e.b.inventoryPage(e.ctx, counting, inventoryQuery{filter: inventoryFilter{keyID: id}, limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.items) != 1 || page.items[0]["name"] != "k007" || page.next != "" {
		t.Fatalf("key_id lookup: %v next %q", page.items, page.next)
	}
	if counting.ops > 8 {
		t.Fatalf("key_id lookup took %d storage operations: it scanned", counting.ops)
	}
	// An unknown id with the shape of an id: no pointer, so the scan.
	if got, _ := e.invAll(map[string]interface{}{"key_id": "kid_000000000000000000000000", "limit": 1}); len(got) != 0 {
		t.Fatalf("unknown key id matched %v", got)
	}
	// A key issued before pointers existed (v0.1.0 data): found by scan.
	if err := e.storage.Delete(e.ctx, storageKeyIDPrefix+id); err != nil {
		t.Fatal(err)
	}
	got, pages := e.invAll(map[string]interface{}{"key_id": id, "limit": 2})
	if strings.Join(got, " ") != "c01/k007" || pages < 2 {
		t.Fatalf("key without a pointer: %v in %d pages", got, pages)
	}
	// A pointer whose key was revoked and deleted from the listing's view
	// still answers its key (revoked keys stay listed).
	e.ok(logical.UpdateOperation, "keys/c00/k001/revoke", nil)
	rid := e.issued("c00", "k001").KeyID
	if got, _ := e.invAll(map[string]interface{}{"key_id": rid, "state": "revoked"}); strings.Join(got, " ") != "c00/k001" {
		t.Fatalf("revoked key by id: %v", got)
	}
	if got, _ := e.invAll(map[string]interface{}{"key_id": rid, "client": "c01"}); len(got) != 0 {
		t.Fatalf("key_id of c00 with client c01 matched %v", got)
	}
}

func TestInventoryTimeAndEnvironmentFilters(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/a", map[string]interface{}{"owner": "team-a"})
	e.ok(logical.CreateOperation, "roles/short", map[string]interface{}{"scopes": "x", "environment": "prod", "key_lifetime": "24h"})
	e.ok(logical.CreateOperation, "roles/long", map[string]interface{}{"scopes": "x", "environment": "staging", "key_lifetime": "240h"})
	e.ok(logical.CreateOperation, "roles/none", map[string]interface{}{"scopes": "x", "environment": "prod"})
	start := e.clock.Now()
	e.ok(logical.CreateOperation, "keys/a/short", map[string]interface{}{"role": "short"})
	e.ok(logical.CreateOperation, "keys/a/long", map[string]interface{}{"role": "long"})
	e.ok(logical.CreateOperation, "keys/a/none", map[string]interface{}{"role": "none"})
	at := func(d time.Duration) string { return start.Add(d).UTC().Format(time.RFC3339) }
	cases := []struct {
		filter map[string]interface{}
		want   string
	}{
		{map[string]interface{}{"environment": "staging"}, "a/long"},
		{map[string]interface{}{"environment": "prod"}, "a/none a/short"},
		{map[string]interface{}{"expires_before": at(48 * time.Hour)}, "a/short"},
		{map[string]interface{}{"expires_after": at(48 * time.Hour)}, "a/long"},
		{map[string]interface{}{"expires_after": at(time.Hour), "expires_before": at(1000 * time.Hour)}, "a/long a/short"},
		{map[string]interface{}{"last_used_before": at(time.Hour)}, "a/long a/none a/short"},
		{map[string]interface{}{"last_used_before": at(-time.Hour)}, ""},
		{map[string]interface{}{"state": "disabled"}, ""},
	}
	for _, tc := range cases {
		if got, _ := e.invAll(tc.filter); strings.Join(got, " ") != tc.want {
			t.Errorf("inventory %v: %v, want %q", tc.filter, got, tc.want)
		}
	}
	for _, name := range []string{"expires_before", "expires_after", "last_used_before"} {
		e.userErr(logical.ReadOperation, "inventory", map[string]interface{}{name: "yesterday"}, name+" must be an RFC 3339 time")
	}
}

func TestInventoryTombstonesArePaged(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 5; i++ {
		c := fmt.Sprintf("gone%d", i)
		e.ok(logical.CreateOperation, "clients/"+c, map[string]interface{}{"owner": "team"})
		e.ok(logical.DeleteOperation, "clients/"+c, nil)
	}
	var got []string
	data := map[string]interface{}{"limit": 2}
	for pages := 0; ; pages++ {
		resp := e.ok(logical.ReadOperation, "inventory", data)
		for _, ts := range resp.Data["tombstones"].([]map[string]interface{}) {
			got = append(got, ts["client"].(string))
		}
		next, _ := resp.Data["tombstones_next"].(string)
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("tombstone paging does not end")
		}
		data = map[string]interface{}{"limit": 2, "tombstones_after": next}
	}
	if strings.Join(got, " ") != "gone0 gone1 gone2 gone3 gone4" {
		t.Fatalf("tombstones paged: %v", got)
	}
}

func TestKeysListPages(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x", "environment": "prod"})
	e.issueMany(1, 5)
	list := func(data map[string]interface{}) (string, interface{}) {
		resp := e.ok(logical.ListOperation, "keys/c00/", data)
		return strings.Join(resp.Data["keys"].([]string), " "), resp.Data["next"]
	}
	if got, next := list(nil); got != "k000 k001 k002 k003 k004" || next != nil {
		t.Fatalf("list without parameters: %q next %v", got, next)
	}
	if got, next := list(map[string]interface{}{"limit": 2}); got != "k000 k001" || next != "k001" {
		t.Fatalf("first page: %q next %v", got, next)
	}
	if got, next := list(map[string]interface{}{"limit": 2, "after": "k003"}); got != "k004" || next != nil {
		t.Fatalf("last page: %q next %v", got, next)
	}
	if got, _ := list(map[string]interface{}{"after": "k001"}); got != "k002 k003 k004" {
		t.Fatalf("after without limit: %q", got)
	}
	e.userErr(logical.ListOperation, "keys/c00/", map[string]interface{}{"limit": 0}, "limit must be")
	e.userErr(logical.ListOperation, "keys/c00/", map[string]interface{}{"after": "a/b"}, "after")
}

func TestInventoryExport(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/a", map[string]interface{}{"owner": `team "a", ops`})
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x,y", "environment": "prod"})
	var secrets []string
	for _, n := range []string{"k1", "k2", "k3"} {
		secrets = append(secrets, e.ok(logical.CreateOperation, "keys/a/"+n, map[string]interface{}{"role": "r"}).Data["key"].(string))
	}
	export := func(data map[string]interface{}) (string, []byte) {
		resp := e.ok(logical.ReadOperation, "inventory/export", data)
		if resp.Data[logical.HTTPStatusCode] != 200 {
			t.Fatalf("export status %v", resp.Data[logical.HTTPStatusCode])
		}
		body := resp.Data[logical.HTTPRawBody].([]byte)
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Fatal("the export holds a key")
			}
		}
		return resp.Data[logical.HTTPContentType].(string), body
	}

	ct, body := export(map[string]interface{}{"format": "csv", "limit": 2})
	if !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("csv content type %q", ct)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("csv does not parse: %v\n%s", err, body)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(exportColumns, ",") {
		t.Fatalf("csv rows: %q", rows)
	}
	if rows[1][0] == "" || rows[1][2] != "k1" || rows[1][4] != `team "a", ops` || rows[1][7] != "x y" || rows[1][6] != "active" {
		t.Fatalf("csv row: %q", rows[1])
	}
	if rows[3][0] != "#next" || rows[3][1] != "a/k2" {
		t.Fatalf("csv next row: %q", rows[3])
	}
	_, body = export(map[string]interface{}{"format": "csv", "after": "a/k2"})
	if rows, _ := csv.NewReader(bytes.NewReader(body)).ReadAll(); len(rows) != 2 || rows[1][2] != "k3" {
		t.Fatalf("csv last page: %q", rows)
	}

	ct, body = export(map[string]interface{}{"limit": 2})
	if ct != "application/x-ndjson" {
		t.Fatalf("jsonl content type %q", ct)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 3 || lines[2] != `{"next":"a/k2"}` {
		t.Fatalf("jsonl lines: %q", lines)
	}
	var rec map[string]interface{}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["name"] != "k1" || rec["owner"] != `team "a", ops` {
		t.Fatalf("jsonl record %v: %v", rec, err)
	}
	if s, ok := rec["created_at"].(string); !ok || !strings.HasSuffix(s, "Z") {
		t.Fatalf("jsonl created_at %v", rec["created_at"])
	}
	_, body = export(map[string]interface{}{"after": "a/k2"})
	if strings.Count(string(body), "\n") != 1 || strings.Contains(string(body), `{"next"`) {
		t.Fatalf("jsonl last page: %q", body)
	}
	e.userErr(logical.ReadOperation, "inventory/export", map[string]interface{}{"format": "xml"}, "format must be jsonl or csv")
	e.userErr(logical.ReadOperation, "inventory/export", map[string]interface{}{"state": "x"}, "state must be")
}

// The one-time backfill gives keys issued before key-id pointers existed
// theirs; after it, an id without a pointer is answered without a scan.
func TestKeyIDBackfillEndsTheScanFallback(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "x", "environment": "prod"})
	e.issueMany(2, 10)
	old := []string{e.issued("c00", "k003").KeyID, e.issued("c01", "k008").KeyID}
	for _, id := range old {
		if err := e.storage.Delete(e.ctx, storageKeyIDPrefix+id); err != nil {
			t.Fatal(err)
		}
	}
	unknown := inventoryQuery{filter: inventoryFilter{keyID: "kid_000000000000000000000000"}, limit: 100}
	counting := &rotCountingStorage{Storage: e.storage}
	if _, err := e.b.inventoryPage(e.ctx, counting, unknown); err != nil {
		t.Fatal(err)
	}
	if counting.ops < 20 {
		t.Fatalf("before the backfill an unknown id took %d storage operations; the fallback scan should read every key", counting.ops)
	}
	req := &logical.Request{Storage: e.storage}
	if err := e.b.keyIDBackfillTick(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	st, err := e.b.keyIDBackfill().state(e.ctx, e.storage)
	if err != nil || !st.Done || st.Written != 2 {
		t.Fatalf("backfill state %+v, %v; want done with 2 written", st, err)
	}
	for i, id := range old {
		k, found, err := e.b.keyByID(e.ctx, e.storage, id)
		if err != nil || !found || k == nil || k.Name != []string{"k003", "k008"}[i] {
			t.Fatalf("after the backfill %s resolves to %+v (found %v, %v)", id, k, found, err)
		}
	}
	counting = &rotCountingStorage{Storage: e.storage}
	page, err := e.b.inventoryPage(e.ctx, counting, unknown)
	if err != nil || len(page.items) != 0 || page.next != "" {
		t.Fatalf("unknown id after the backfill: %v next %q, %v", page.items, page.next, err)
	}
	if counting.ops > 4 {
		t.Fatalf("unknown id after the backfill took %d storage operations: it scanned", counting.ops)
	}
	// A further tick does nothing: the walk is done once.
	counting = &rotCountingStorage{Storage: e.storage}
	if err := e.b.keyIDBackfillTick(e.ctx, &logical.Request{Storage: counting}); err != nil || counting.ops != 0 {
		t.Fatalf("a tick after the backfill: %d storage operations, %v", counting.ops, err)
	}
}
