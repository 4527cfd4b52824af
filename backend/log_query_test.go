package backend

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// logTypesOf reads the log with data and returns the page's types as
// "seq:type" and its cursors.
func (e *testEnv) logPage(data map[string]interface{}) (string, map[string]interface{}) {
	e.t.Helper()
	resp := e.ok(logical.ReadOperation, "log", data)
	var got []string
	for _, ev := range resp.Data["entries"].([]map[string]interface{}) {
		got = append(got, strconv.FormatUint(ev["seq"].(uint64), 10)+":"+ev["type"].(string))
	}
	return strings.Join(got, " "), resp.Data
}

func TestLogFilters(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("a", "internal", "r", nil) // 1 client.written, 2 role.written
	e.ok(logical.CreateOperation, "clients/b", map[string]interface{}{"owner": "team-b"})
	e.ok(logical.CreateOperation, "keys/a/k1", map[string]interface{}{"role": "r"}) // 4
	e.clock.Advance(time.Hour)
	mid := e.clock.Now()
	e.ok(logical.CreateOperation, "keys/b/k2", map[string]interface{}{"role": "r"}) // 5
	e.ok(logical.UpdateOperation, "keys/a/k1/revoke", nil)                          // 6
	if err := e.b.log.Append(e.ctx, e.storage, eventlog.Event{Type: eventlog.KeysPurged, Actor: record.Actor{Type: "system"}}); err != nil {
		t.Fatal(err)
	}
	k1 := e.issued("a", "k1").KeyID
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	cases := []struct {
		filter map[string]interface{}
		want   string
	}{
		{map[string]interface{}{"type": "key.issued"}, "5:key.issued 4:key.issued"},
		{map[string]interface{}{"type": "key.*"}, "6:key.revoked 5:key.issued 4:key.issued"},
		{map[string]interface{}{"type": "key.*", "order": "oldest"}, "4:key.issued 5:key.issued 6:key.revoked"},
		{map[string]interface{}{"client": "b"}, "5:key.issued 3:client.written"},
		{map[string]interface{}{"key_id": k1}, "6:key.revoked 4:key.issued"},
		{map[string]interface{}{"actor": "system"}, "7:keys.purged"},
		{map[string]interface{}{"actor": "entity-alice", "type": "role.*"}, "2:role.written"},
		{map[string]interface{}{"actor": "userpass-alice", "client": "b", "type": "key.*"}, "5:key.issued"},
		{map[string]interface{}{"since": rfc(mid), "type": "key.*"}, "6:key.revoked 5:key.issued"},
		{map[string]interface{}{"until": rfc(mid)}, "4:key.issued 3:client.written 2:role.written 1:client.written"},
		{map[string]interface{}{"until": rfc(mid), "after": 2}, "3:client.written 4:key.issued"},
	}
	for _, tc := range cases {
		if got, _ := e.logPage(tc.filter); got != tc.want {
			t.Errorf("log %v:\n got %s\nwant %s", tc.filter, got, tc.want)
		}
	}
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"since": "noon"}, "since must be an RFC 3339 time")
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"until": "2026-13-01"}, "until must be")
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"order": "random"}, "order must be")
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"order": "oldest", "before": 3}, "order=oldest")
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"order": "newest", "after": 3}, "order=newest")
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"type": "k*y.*"}, "type must be")
}

// A page reads at most limit x logScanFactor entries: a rare filter gives
// empty pages with a cursor, and following the cursors finds the match.
func TestLogFilteredPageIsBounded(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/rare", map[string]interface{}{"owner": "x"}) // seq 1
	for i := 0; i < 25; i++ {
		if err := e.b.log.Append(e.ctx, e.storage, eventlog.Event{Type: eventlog.AlertsPruned, Actor: record.Actor{Type: "system"}}); err != nil {
			t.Fatal(err)
		}
	}
	got, data := e.logPage(map[string]interface{}{"client": "rare", "limit": 1})
	if got != "" || data["next_before"] != uint64(17) {
		t.Fatalf("first page: %q next_before=%v; want none and 17 (10 entries read)", got, data["next_before"])
	}
	got, data = e.logPage(map[string]interface{}{"client": "rare", "limit": 1, "before": 17})
	if got != "" || data["next_before"] != uint64(7) {
		t.Fatalf("second page: %q next_before=%v", got, data["next_before"])
	}
	got, data = e.logPage(map[string]interface{}{"client": "rare", "limit": 1, "before": 7})
	if got != "1:client.written" || data["next_before"] != nil {
		t.Fatalf("last page: %q next_before=%v", got, data["next_before"])
	}
	// Forward the same way.
	got, data = e.logPage(map[string]interface{}{"type": "client.*", "order": "oldest", "limit": 1})
	if got != "1:client.written" || data["next_after"] != uint64(1) {
		t.Fatalf("forward first page: %q next_after=%v", got, data["next_after"])
	}
	got, data = e.logPage(map[string]interface{}{"type": "client.*", "after": 1, "limit": 1})
	if got != "" || data["next_after"] != uint64(11) {
		t.Fatalf("forward second page: %q next_after=%v", got, data["next_after"])
	}
}
