package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// opLogStorage records every storage operation as "<OP> <storage key>".
type opLogStorage struct {
	logical.Storage
	mu  sync.Mutex
	ops []string
}

func (s *opLogStorage) note(op, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op+" "+key)
}

func (s *opLogStorage) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.ops
	s.ops = nil
	return out
}

func (s *opLogStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.note("GET", key)
	return s.Storage.Get(ctx, key)
}

func (s *opLogStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.note("LIST", prefix)
	return s.Storage.List(ctx, prefix)
}

func (s *opLogStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.note("PUT", entry.Key)
	return s.Storage.Put(ctx, entry)
}

func (s *opLogStorage) Delete(ctx context.Context, key string) error {
	s.note("DELETE", key)
	return s.Storage.Delete(ctx, key)
}

// TestIssueStorageOperations pins the storage operations of an issuance,
// existence check included: each is a gRPC round trip from the plugin into
// Vault's storage, and issuance throughput follows their number (make
// bench, issue_floor_ratio). The lifecycle log's own operations (log/) are
// its package's business and are only counted apart.
func TestIssueStorageOperations(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	// Earlier keys of the client: an issuance must not cost more for them.
	for i := 0; i < 50; i++ {
		e.issue("svc", fmt.Sprintf("old-%d", i), "r", nil)
	}
	s := &opLogStorage{Storage: e.storage}
	e.storage = s
	e.issue("svc", "k", "r", nil)
	ops := s.take()

	// What an issuance must do, in order: the existence check's read of
	// the key (the handler trusts it while nothing has written the key
	// since: verifycache/absence.go), the key_id pointer, then the commit
	// (wal.go): WAL entry, index entry, key record, log entries, WAL entry
	// deleted. The new key's HMAC is not looked up (generateKey says why).
	// The key's pointer in the rotation schedule's due index is written
	// alongside the WAL and index entries (its own round trip overlaps
	// theirs), before the key record; it is checked apart.
	want := []string{
		"GET keys/svc/k",
		"PUT keyids/",
		"PUT wal/",
		"PUT index/",
		"PUT keys/svc/k",
		"DELETE wal/",
	}
	var got []string
	logOps, pointers := 0, 0
	for _, op := range ops {
		if strings.Contains(op, " log/") {
			logOps++
			continue
		}
		if strings.HasPrefix(op, "PUT schedule/rotation/") {
			if pointers++; len(got) < 2 || got[len(got)-1] == "PUT keys/svc/k" {
				t.Fatalf("the schedule pointer was not written between the key_id pointer and the key record:\n%s", strings.Join(ops, "\n"))
			}
			continue
		}
		got = append(got, op)
	}
	if pointers != 1 {
		t.Fatalf("an issuance wrote %d schedule pointers, want 1:\n%s", pointers, strings.Join(ops, "\n"))
	}
	if len(got) != len(want) {
		t.Fatalf("an issuance made %d storage operations outside the log, want %d:\n%s", len(got), len(want), strings.Join(ops, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Fatalf("storage operation %d is %q, want %q...:\n%s", i+1, got[i], w, strings.Join(ops, "\n"))
		}
	}
	if logOps == 0 {
		t.Fatalf("an issuance appended nothing to the lifecycle log:\n%s", strings.Join(ops, "\n"))
	}
	t.Logf("%d storage operations: %d outside the log, %d of the log append", len(ops), len(got), logOps)
}

// TestIssueSeesClientAndRoleChanges: issuance reads its client and role
// through the verify cache (issueTarget), so it must see every change of
// them made on this node, and those another node made (which reach the
// mount through Invalidate), from the next issuance on.
func TestIssueSeesClientAndRoleChanges(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.issue("svc", "k1", "r", nil) // caches the client and the role
	if got := e.issued("svc", "k1").Scopes; strings.Join(got, ",") != "orders:read,orders:write" {
		t.Fatalf("k1 scopes %v", got)
	}

	// A role change here.
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read"})
	e.issue("svc", "k2", "r", nil)
	if got := e.issued("svc", "k2").Scopes; strings.Join(got, ",") != "orders:read" {
		t.Fatalf("k2 scopes %v, want the role's new scopes", got)
	}

	// A client lock here, then an unlock.
	e.ok(logical.UpdateOperation, "clients/svc/lock", map[string]interface{}{"reason": "x"})
	e.userErr(logical.CreateOperation, "keys/svc/k3", map[string]interface{}{"role": "r"}, "is locked")
	e.ok(logical.UpdateOperation, "clients/svc/unlock", map[string]interface{}{"reason": "x"})
	e.issue("svc", "k3", "r", nil)

	// Another node locks the client and narrows the role: its writes
	// reach this node's storage and Invalidate, not this node's writers.
	c, err := e.b.getClient(e.ctx, e.storage, "svc")
	if err != nil {
		t.Fatal(err)
	}
	c.Status = record.ClientLocked
	e.putRaw(clientStorageKey("svc"), c)
	e.b.invalidate(e.ctx, clientStorageKey("svc"))
	e.userErr(logical.CreateOperation, "keys/svc/k4", map[string]interface{}{"role": "r"}, "is locked")
	c.Status = record.ClientActive
	e.putRaw(clientStorageKey("svc"), c)
	e.b.invalidate(e.ctx, clientStorageKey("svc"))

	r, err := e.b.getRole(e.ctx, e.storage, "r")
	if err != nil {
		t.Fatal(err)
	}
	r.Scopes = []string{"orders:write"}
	e.putRaw(roleStorageKey("r"), r)
	e.b.invalidate(e.ctx, roleStorageKey("r"))
	e.issue("svc", "k4", "r", nil)
	if got := e.issued("svc", "k4").Scopes; strings.Join(got, ",") != "orders:write" {
		t.Fatalf("k4 scopes %v, want the scopes another node set", got)
	}

	// A role deleted elsewhere is gone for issuance too.
	if err := e.storage.Delete(e.ctx, roleStorageKey("r")); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(e.ctx, roleStorageKey("r"))
	e.userErr(logical.CreateOperation, "keys/svc/k5", map[string]interface{}{"role": "r"}, "does not exist")
}

// blockingStorage holds the first Put of one storage key until released.
type blockingStorage struct {
	logical.Storage
	key      string
	once     sync.Once
	reached  chan struct{}
	released chan struct{}
}

func (s *blockingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if entry.Key == s.key {
		s.once.Do(func() {
			close(s.reached)
			<-s.released
		})
	}
	return s.Storage.Put(ctx, entry)
}

// issueWhileBlocked starts issuing svc/a, holds it at its key record write,
// and reports whether an issuance of svc/b completed meanwhile (within
// wait) and what each returned.
func issueWhileBlocked(t *testing.T, e *testEnv, wait time.Duration) (bSideBySide bool, errA, errB error) {
	t.Helper()
	bs := &blockingStorage{Storage: e.storage, key: keyStorageKey("svc", "a"), reached: make(chan struct{}), released: make(chan struct{})}
	e.storage = bs
	issue := func(name string) error {
		resp, err := e.doErr(logical.CreateOperation, "keys/svc/"+name, map[string]interface{}{"role": "r"})
		if err == nil && resp != nil && resp.IsError() {
			err = resp.Error()
		}
		return err
	}
	doneA := make(chan error, 1)
	go func() { doneA <- issue("a") }()
	select {
	case <-bs.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the issuance of svc/a never wrote its key record")
	}
	doneB := make(chan error, 1)
	go func() { doneB <- issue("b") }()
	select {
	case errB = <-doneB:
		bSideBySide = true
	case <-time.After(wait):
	}
	close(bs.released)
	errA = <-doneA
	if !bSideBySide {
		errB = <-doneB
	}
	return bSideBySide, errA, errB
}

// Issuances to one client run side by side, but not under a role with
// max_keys_per_client, whose count must not interleave with another
// issuance to the client.
func TestIssueClientLock(t *testing.T) {
	t.Run("side by side", func(t *testing.T) {
		e := newTestEnv(t)
		e.setupClientRole("svc", "internal", "r", nil)
		// Long enough for a loaded machine: it returns as soon as svc/b is
		// issued.
		sideBySide, errA, errB := issueWhileBlocked(t, e, 20*time.Second)
		if errA != nil || errB != nil {
			t.Fatalf("issuances failed: %v, %v", errA, errB)
		}
		if !sideBySide {
			t.Fatal("an issuance to the client waited for another one to finish")
		}
	})
	t.Run("max_keys_per_client", func(t *testing.T) {
		e := newTestEnv(t)
		e.setupClientRole("svc", "internal", "r", map[string]interface{}{"max_keys_per_client": 1})
		// svc/b cannot finish while svc/a holds the client's lock, however
		// long it is given; a short wait shows it.
		sideBySide, errA, errB := issueWhileBlocked(t, e, 300*time.Millisecond)
		if sideBySide {
			t.Fatal("an issuance counting the client's keys ran beside another one")
		}
		if errA != nil || errB == nil || !strings.Contains(errB.Error(), "max_keys_per_client") {
			t.Fatalf("want the first issuance to pass and the second refused by max_keys_per_client; got %v, %v", errA, errB)
		}
		if k, _ := e.b.getKey(e.ctx, e.storage, "svc", "b"); k != nil {
			t.Fatal("the refused issuance stored its key")
		}
	})
}

// TestIssueRereadsAKeyWrittenAfterItsExistenceCheck: the handler of an
// issuance skips its read of the key only while nothing has written the
// key since the existence check found it absent. A key issued in between
// by another request must be seen, and the late issuance refused rather
// than overwrite it.
func TestIssueRereadsAKeyWrittenAfterItsExistenceCheck(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	late := &logical.Request{
		Operation: logical.CreateOperation, Path: "keys/svc/k", Data: map[string]interface{}{"role": "r"},
		Storage: e.storage, ID: "late-request", EntityID: "entity-alice", DisplayName: "userpass-alice",
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
	found, exists, err := e.b.HandleExistenceCheck(e.ctx, late)
	if err != nil || !found || exists {
		t.Fatalf("existence check: found=%v exists=%v err=%v", found, exists, err)
	}
	first := e.issue("svc", "k", "r", nil)

	resp, err := e.b.HandleRequest(e.ctx, late)
	if err != nil {
		t.Fatal(err)
	}
	if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "already exists") {
		t.Fatalf("late issuance of an existing key: %#v", resp)
	}
	if got := e.verify(first, nil); got["active"] != true {
		t.Fatalf("the first key no longer verifies: %v", got)
	}
}
