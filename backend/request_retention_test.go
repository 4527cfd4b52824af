package backend

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// prefixCountingStorage counts reads and listings under the prefixes it
// watches.
type prefixCountingStorage struct {
	logical.Storage
	prefixes     []string
	gets, lists  int
	listPrefixes []string
}

func (c *prefixCountingStorage) watched(key string) bool {
	for _, p := range c.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (c *prefixCountingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if c.watched(key) {
		c.gets++
	}
	return c.Storage.Get(ctx, key)
}

func (c *prefixCountingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if c.watched(prefix) {
		c.lists++
		c.listPrefixes = append(c.listPrefixes, prefix)
	}
	return c.Storage.List(ctx, prefix)
}

func (c *prefixCountingStorage) reset() { c.gets, c.lists, c.listPrefixes = 0, 0, nil }

// retentionTickOn runs the retention pass of every kind over s.
func (e *testEnv) retentionTickOn(s logical.Storage) {
	e.t.Helper()
	if err := e.b.retentionTick(e.ctx, &logical.Request{Storage: s}); err != nil {
		e.t.Fatalf("retentionTick: %v", err)
	}
}

// requestExists reports whether request id is stored.
func (e *testEnv) requestExists(id string) bool {
	e.t.Helper()
	r, err := getRequest(e.ctx, e.storage, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r != nil
}

// prunedIDs returns the ids named by the entries of typ under field.
func (e *testEnv) prunedIDs(typ, field string) []string {
	e.t.Helper()
	var ids []string
	for _, ev := range e.logEventsOf(typ) {
		ids = append(ids, strings.Split(ev.Details[field], ",")...)
	}
	return ids
}

// endOfUTCDay is the end of t's UTC day: a record whose retention counts
// from t is pruned by the first pass at or after its end plus the retention.
func endOfUTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

func newRequestRetentionEnv(t *testing.T, retention string, opts ...backendOption) *testEnv {
	e := newTestEnv(t, opts...)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"approval_request_retention": retention})
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	return e
}

// Every outcome of a request (used, denied, expired unused, expired
// pending) is kept approval_request_retention after its expires_at, then
// deleted with a requests.pruned entry naming it; a request still pending
// is never pruned, however old its siblings get.
func TestApprovalRequestsPrunedAfterRetention(t *testing.T) {
	e := newRequestRetentionEnv(t, "48h")
	used := e.approvedRequest("main")
	expectOK(t, e.doAs("alice", logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": used}))
	denied := e.newRequest("alice", "billing", "gated", "other", nil)
	expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+denied+"/deny", nil))
	unused := e.approvedRequest("third")
	pending := e.newRequest("alice", "billing", "gated", "fourth", nil)
	ended := []string{used, denied, unused, pending}
	expires := testStart.Add(defaultApprovalTTL)

	// Just before expires_at + retention every request is kept.
	e.clock.Set(expires.Add(48*time.Hour - time.Second))
	long := e.newRequest("alice", "billing", "gated", "fifth", map[string]interface{}{"ttl": "168h"})
	for i := 0; i < 3; i++ {
		e.retentionTickOn(e.storage)
	}
	for _, id := range append(ended, long) {
		if !e.requestExists(id) {
			t.Fatalf("request %s pruned before its retention", id)
		}
	}
	if n := len(e.logEventsOf(eventlog.RequestsPruned)); n != 0 {
		t.Fatalf("%d requests.pruned entries before the retention", n)
	}

	// Once the day of their expiry is the retention old, all four go,
	// through the periodic function; the one made later stays pending.
	e.clock.Set(endOfUTCDay(expires).Add(48 * time.Hour))
	e.periodicTick()
	for _, id := range ended {
		if e.requestExists(id) {
			t.Fatalf("request %s kept past its retention", id)
		}
	}
	if !e.requestExists(long) {
		t.Fatal("a pending request was pruned")
	}
	resp := e.ok(logical.ReadOperation, "requests/"+long, nil)
	if resp.Data["state"] != requestPending {
		t.Fatalf("the long request is %v", resp.Data["state"])
	}
	got := e.prunedIDs(eventlog.RequestsPruned, "approval_ids")
	if strings.Join(sortedCopy(got), ",") != strings.Join(sortedCopy(ended), ",") {
		t.Fatalf("requests.pruned names %v, want %v", got, ended)
	}
	ev := e.logEventsOf(eventlog.RequestsPruned)[0]
	if ev.Actor.Type != actorSystem || ev.Details["approval_request_retention"] != "48h0m0s" {
		t.Fatalf("requests.pruned entry: %+v", ev)
	}
	// The decision and use entries stay in the log, and the log verifies.
	if len(e.logEventsOf(eventlog.RequestApproved)) != 2 || len(e.logEventsOf(eventlog.RequestUsed)) != 1 {
		t.Fatal("request history left the lifecycle log")
	}
	e.logValid()
	list := e.ok(logical.ListOperation, "requests/", nil).Data["keys"].([]string)
	if len(list) != 1 || list[0] != long {
		t.Fatalf("requests listed after the prune: %v", list)
	}

	// The pending one ends too, in its time.
	e.clock.Set(endOfUTCDay(testStart.Add(48*time.Hour + 168*time.Hour)).Add(96 * time.Hour))
	e.retentionTickOn(e.storage)
	if e.requestExists(long) {
		t.Fatal("the long request was kept past its retention")
	}
	if keys, _ := e.storage.List(e.ctx, storageRetentionPrefix+retentionKindRequests+"/"); len(keys) != 1 || keys[0] != "state" {
		t.Fatalf("retention pointers left behind: %v", keys)
	}
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A request an issuance on this node is using right now is not pruned; it
// is looked at again the next day.
func TestApprovalRequestInUseNotPruned(t *testing.T) {
	e := newRequestRetentionEnv(t, "1h")
	id := e.approvedRequest("main")
	e.b.approvals.mu.Lock()
	e.b.approvals.reserveLocked(id)
	e.b.approvals.mu.Unlock()
	e.clock.Set(endOfUTCDay(testStart.Add(defaultApprovalTTL)).Add(time.Hour))
	e.retentionTickOn(e.storage)
	if !e.requestExists(id) {
		t.Fatal("a request in use was pruned")
	}
	e.b.approvals.release(id)
	e.retentionTickOn(e.storage)
	if !e.requestExists(id) {
		t.Fatal("the moved pointer was handled before its day was due")
	}
	e.clock.Advance(record.Day + time.Hour)
	e.retentionTickOn(e.storage)
	if e.requestExists(id) {
		t.Fatal("a request no longer in use was kept")
	}
}

// A request whose issuance committed its key but was cut off before
// marking it used has its use recorded (request.used) before it goes.
func TestApprovalRequestPruneRecordsInterruptedUse(t *testing.T) {
	e := newRequestRetentionEnv(t, "1h")
	id := e.approvedRequest("main")
	expectOK(t, e.doAs("alice", logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": id}))
	// As a crash after the key commit leaves it: approved, bound to the key.
	r, err := getRequest(e.ctx, e.storage, id)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.UsedAt, r.UsedBy = requestApproved, time.Time{}, nil
	if err := putRequest(e.ctx, e.storage, r); err != nil {
		t.Fatal(err)
	}
	before := len(e.logEventsOf(eventlog.RequestUsed))
	e.clock.Set(endOfUTCDay(testStart.Add(defaultApprovalTTL)).Add(time.Hour))
	e.retentionTickOn(e.storage)
	if e.requestExists(id) {
		t.Fatal("request kept past its retention")
	}
	used := e.logEventsOf(eventlog.RequestUsed)
	if len(used) != before+1 || used[len(used)-1].Details["recorded_after_interruption"] != "true" {
		t.Fatalf("the interrupted use was not recorded before the prune: %d -> %d", before, len(used))
	}
}

// A pass examines at most its batch; the rest waits, and the cursor and
// pointers in storage let a restarted backend carry on.
func TestApprovalRequestRetentionBoundedAndResumes(t *testing.T) {
	e := newRequestRetentionEnv(t, "1h", withRetentionBatch(2))
	var ids []string
	for i := 0; i < 5; i++ {
		id := e.newRequest("alice", "billing", "gated", "k"+strconv.Itoa(i), nil)
		expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/deny", nil))
		ids = append(ids, id)
	}
	remaining := func() int {
		n := 0
		for _, id := range ids {
			if e.requestExists(id) {
				n++
			}
		}
		return n
	}
	e.clock.Set(endOfUTCDay(testStart.Add(defaultApprovalTTL)).Add(time.Hour))
	e.retentionTickOn(e.storage)
	if n := remaining(); n != 3 {
		t.Fatalf("%d requests left after one bounded pass, want 3", n)
	}
	e.restart()
	e.retentionTickOn(e.storage)
	if n := remaining(); n != 1 {
		t.Fatalf("%d requests left after a pass of the restarted backend, want 1", n)
	}
	e.retentionTickOn(e.storage)
	if n := remaining(); n != 0 {
		t.Fatalf("%d requests left, want 0", n)
	}
	if got := e.prunedIDs(eventlog.RequestsPruned, "approval_ids"); len(got) != 5 {
		t.Fatalf("requests.pruned named %v", got)
	}
}

// A pass with nothing due reads no request and lists nothing, however many
// requests are kept; the day that becomes due costs one listing of that
// day's pointers and a read of each of its requests.
func TestApprovalRequestRetentionTickDoesNotScan(t *testing.T) {
	e := newRequestRetentionEnv(t, "720h")
	e.retentionTickOn(e.storage) // the backfill finds nothing and ends
	var ids []string
	for i := 0; i < 30; i++ {
		id := e.newRequest("alice", "billing", "gated", "k"+strconv.Itoa(i), nil)
		expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/deny", nil))
		ids = append(ids, id)
	}
	cs := &prefixCountingStorage{Storage: e.storage, prefixes: []string{storageRequestPrefix, storageRetentionPrefix + retentionKindRequests + "/2"}}
	for i := 0; i < 5; i++ {
		e.clock.Advance(time.Hour)
		e.retentionTickOn(cs)
	}
	if cs.gets != 0 || cs.lists != 0 {
		t.Fatalf("passes with nothing due read %d requests or pointers and listed %d prefixes (%v)", cs.gets, cs.lists, cs.listPrefixes)
	}
	cs.reset()
	e.clock.Set(endOfUTCDay(testStart.Add(defaultApprovalTTL)).Add(720 * time.Hour))
	// From the cursor (a month before the first pass) to the due day: one
	// listing per day, at most retentionDaysPerPass a pass, and reads of
	// the due day's requests only.
	e.retentionTickOn(cs)
	if cs.lists != retentionDaysPerPass {
		t.Fatalf("a pass listed %d days, want %d", cs.lists, retentionDaysPerPass)
	}
	e.retentionTickOn(cs)
	days := int(endOfUTCDay(testStart.Add(defaultApprovalTTL)).Sub(endOfUTCDay(testStart.Add(-retentionDaysPerPass*record.Day))) / record.Day)
	if cs.lists != days || cs.gets != len(ids) {
		t.Fatalf("the due pass listed %d prefixes (want %d) and read %d requests (want %d)", cs.lists, days, cs.gets, len(ids))
	}
	for _, id := range ids {
		if e.requestExists(id) {
			t.Fatal("a due request was kept")
		}
	}
}

// approval_request_retention=0 keeps requests forever.
func TestApprovalRequestRetentionZeroKeepsForever(t *testing.T) {
	e := newRequestRetentionEnv(t, "0")
	e.retentionTickOn(e.storage)
	id := e.newRequest("alice", "billing", "gated", "main", nil)
	e.clock.Advance(3 * 365 * record.Day)
	e.retentionTickOn(e.storage)
	if !e.requestExists(id) {
		t.Fatal("a request was pruned with approval_request_retention=0")
	}
	// A retention set later applies to it.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"approval_request_retention": "24h"})
	for i := 0; i < 60 && e.requestExists(id); i++ {
		e.retentionTickOn(e.storage)
	}
	if e.requestExists(id) {
		t.Fatal("a request was kept after a retention was set")
	}
}

// Requests stored before retention pointers existed get theirs from the
// backfill, in bounded steps, and are kept at least the retention from it.
func TestApprovalRequestRetentionBackfill(t *testing.T) {
	e := newRequestRetentionEnv(t, "24h")
	var ids []string
	for i := 0; i < 3; i++ {
		r := &ApprovalRequest{ID: "req_00000000000000000000000" + string(rune('a'+i)), Client: "billing", Role: "gated", KeyName: "old",
			State: requestDenied, CreatedAt: testStart.Add(-400 * record.Day), ExpiresAt: testStart.Add(-399 * record.Day)}
		if err := putRequest(e.ctx, e.storage, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	e.retentionTickOn(e.storage)
	st, err := getJSON[retentionState](e.ctx, e.storage, retentionStateKey(retentionKindRequests), "state")
	if err != nil || st == nil || !st.Backfilled {
		t.Fatalf("backfill state %+v, %v", st, err)
	}
	for _, id := range ids {
		if !e.requestExists(id) {
			t.Fatal("a backfilled request was pruned at once")
		}
	}
	e.clock.Set(endOfUTCDay(testStart).Add(24 * time.Hour))
	e.retentionTickOn(e.storage)
	for _, id := range ids {
		if e.requestExists(id) {
			t.Fatal("a backfilled request was kept past its retention")
		}
	}
}
