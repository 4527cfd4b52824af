package backend

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// verify calls the verify endpoint and returns its data; it must be a 200.
func (e *testEnv) verify(key string, extra map[string]interface{}) map[string]interface{} {
	e.t.Helper()
	data := map[string]interface{}{"key": key}
	for k, v := range extra {
		data[k] = v
	}
	resp := e.ok(logical.UpdateOperation, "verify", data)
	if resp == nil {
		e.t.Fatal("verify returned no response")
	}
	return resp.Data
}

// verifyCode returns "" for an active answer, else the code; an inactive
// answer must carry nothing but active and code.
func (e *testEnv) verifyCode(key string, extra map[string]interface{}) string {
	e.t.Helper()
	d := e.verify(key, extra)
	if d["active"] == true {
		return ""
	}
	// Only rate_limited adds when to retry.
	retry := d["code"] == record.CodeRateLimited && d["retry_after"] != nil
	if d["active"] != false || (len(d) != 2 && !(retry && len(d) == 3)) {
		e.t.Fatalf("inactive answer leaks more than its code: %v", d)
	}
	return d["code"].(string)
}

func (e *testEnv) issue(client, name, role string, extra map[string]interface{}) string {
	e.t.Helper()
	data := map[string]interface{}{"role": role}
	for k, v := range extra {
		data[k] = v
	}
	return e.ok(logical.CreateOperation, "keys/"+client+"/"+name, data).Data["key"].(string)
}

func TestVerifyActiveAnswer(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "orders-api,billing-api"})
	key := e.issue("svc", "k", "r", map[string]interface{}{"scopes": "orders:read"})
	d := e.verify(key, map[string]interface{}{"scope": "orders:read", "audience": "orders-api", "environment": "prod"})
	want := map[string]interface{}{
		"active": true, "client": "svc", "role": "r", "scope": "orders:read", "environment": "prod",
		"version": 1, "state": record.StateActive, "iat": testStart.Unix(),
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, d[k], d[k], v)
		}
	}
	if aud := d["aud"].([]string); len(aud) != 2 || aud[0] != "billing-api" {
		t.Errorf("aud = %v", aud)
	}
	if !strings.HasPrefix(d["key_id"].(string), "kid_") {
		t.Errorf("key_id = %v", d["key_id"])
	}
	if _, ok := d["exp"]; ok {
		t.Errorf("exp present for a key without expiry: %v", d["exp"])
	}
	for _, v := range d {
		if s, ok := v.(string); ok && s == key {
			t.Fatal("the answer echoes the key")
		}
	}
	// Scope lists are accepted space- or comma-separated.
	if c := e.verifyCode(key, map[string]interface{}{"scope": "orders:read  orders:read,orders:read", "audience": "orders-api"}); c != "" {
		t.Fatalf("scope list: %s", c)
	}
}

func TestVerifyMissingKeyIs400(t *testing.T) {
	e := newTestEnv(t)
	e.userErr(logical.UpdateOperation, "verify", map[string]interface{}{"scope": "a"}, `missing "key"`)
	if c := e.verifyCode("", nil); c != record.CodeMalformed {
		t.Fatalf("empty key: %s", c)
	}
}

func TestVerifyCodes(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "orders-api"})
	e.ok(logical.CreateOperation, "roles/lim", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rate_limit": 2, "rate_limit_window": 60})
	e.ok(logical.CreateOperation, "roles/life", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "key_lifetime": "1h"})
	e.ok(logical.CreateOperation, "roles/cidr", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "bound_cidrs": "10.0.0.0/8"})
	e.ok(logical.CreateOperation, "clients/bound", map[string]interface{}{"owner": "o", "type": "internal", "bound_cidrs": "192.0.2.0/24"})
	e.ok(logical.CreateOperation, "clients/lockme", map[string]interface{}{"owner": "o", "type": "internal"})

	good := e.issue("svc", "good", "r", map[string]interface{}{"scopes": "orders:read"})
	revoked := e.issue("svc", "rev", "r", nil)
	e.ok(logical.UpdateOperation, "keys/svc/rev/revoke", map[string]interface{}{"reason": "test"})
	expiring := e.issue("svc", "exp", "life", nil)
	limited := e.issue("svc", "lim", "lim", nil)
	roleBound := e.issue("svc", "cidr", "cidr", nil)
	clientBound := e.issue("bound", "k", "r", nil)
	locked := e.issue("lockme", "k", "r", nil)
	if _, err := e.b.setClientStatus(e.ctx, &logical.Request{Storage: e.storage, Connection: &logical.Connection{}}, "lockme", record.ClientLocked, "incident"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)

	unknown, err := keyformat.Generate(rand.Reader, "ak", "prod", 256)
	if err != nil {
		t.Fatal(err)
	}
	typo := []byte(good)
	typo[len(typo)-1] ^= 1

	cases := []struct {
		name  string
		key   string
		extra map[string]interface{}
		want  string
	}{
		{"valid", good, map[string]interface{}{"audience": "orders-api"}, ""},
		{"no audience, role names audiences", good, nil, record.CodeForbiddenAudience},
		{"garbage", "hello", nil, record.CodeMalformed},
		{"checksum typo", string(typo), nil, record.CodeMalformed},
		{"never issued", unknown, nil, record.CodeNotFound},
		{"revoked", revoked, nil, record.CodeRevoked},
		{"past hard expiry", expiring, nil, record.CodeExpired},
		{"client locked", locked, nil, record.CodeLocked},
		{"wrong environment", good, map[string]interface{}{"environment": "staging"}, record.CodeForbiddenEnvironment},
		{"client cidr: outside", clientBound, map[string]interface{}{"client_ip": "198.51.100.1"}, record.CodeForbiddenIP},
		{"client cidr: missing ip", clientBound, nil, record.CodeForbiddenIP},
		{"client cidr: inside", clientBound, map[string]interface{}{"client_ip": "192.0.2.9", "audience": "orders-api"}, ""},
		{"role cidr: outside", roleBound, map[string]interface{}{"client_ip": "192.0.2.9"}, record.CodeForbiddenIP},
		{"role cidr: inside", roleBound, map[string]interface{}{"client_ip": "10.1.2.3"}, ""},
		{"unknown audience", good, map[string]interface{}{"audience": "billing-api"}, record.CodeForbiddenAudience},
		{"scope the key lacks", good, map[string]interface{}{"scope": "orders:write", "audience": "orders-api"}, record.CodeForbiddenScope},
		{"one of two scopes lacking", good, map[string]interface{}{"scope": "orders:read orders:write", "audience": "orders-api"}, record.CodeForbiddenScope},
		{"rate limit 1", limited, nil, ""},
		{"rate limit 2", limited, nil, ""},
		{"rate limit 3", limited, nil, record.CodeRateLimited},
	}
	for _, tc := range cases {
		if got := e.verifyCode(tc.key, tc.extra); got != tc.want {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.want)
		}
	}
	// The window resets.
	e.clock.Advance(time.Minute)
	if got := e.verifyCode(limited, nil); got != "" {
		t.Errorf("after the window: %q", got)
	}
	// An index entry whose key record lacks the HMAC is not found.
	orphan, _ := keyformat.Generate(rand.Reader, "ak", "prod", 256)
	secret, _ := e.b.hmacSecret(e.ctx, e.storage)
	if err := e.b.putIndex(e.ctx, e.storage, keyHMAC(secret, orphan), record.IndexEntry{Client: "svc", Name: "good", Version: 9}); err != nil {
		t.Fatal(err)
	}
	if got := e.verifyCode(orphan, nil); got != record.CodeNotFound {
		t.Errorf("orphan index entry: %q", got)
	}
}

// countingStorage counts storage operations and can pause after one Get.
type countingStorage struct {
	logical.Storage
	ops atomic.Int64

	mu        sync.Mutex
	pauseKey  string
	readDone  chan struct{}
	resume    chan struct{}
	pausedOne bool
}

func (s *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.ops.Add(1)
	entry, err := s.Storage.Get(ctx, key)
	s.mu.Lock()
	pause := !s.pausedOne && s.pauseKey == key
	if pause {
		s.pausedOne = true
	}
	s.mu.Unlock()
	if pause {
		close(s.readDone)
		<-s.resume
	}
	return entry, err
}

func (s *countingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.ops.Add(1)
	return s.Storage.List(ctx, prefix)
}

func (s *countingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.ops.Add(1)
	return s.Storage.Put(ctx, entry)
}

func (s *countingStorage) Delete(ctx context.Context, key string) error {
	s.ops.Add(1)
	return s.Storage.Delete(ctx, key)
}

func TestVerifyStorageAccess(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	cs := &countingStorage{Storage: e.storage}

	if res, _ := e.b.verifyKey(e.ctx, cs, record.VerifyInput{Key: "ak_prod_nonsense"}); res.Code != record.CodeMalformed {
		t.Fatalf("malformed: %+v", res)
	}
	if n := cs.ops.Load(); n != 0 {
		t.Fatalf("a malformed key caused %d storage operations", n)
	}
	e.b.cache.verify.Purge()
	if res, _ := e.b.verifyKey(e.ctx, cs, record.VerifyInput{Key: key}); !res.Active {
		t.Fatalf("cold verify: %+v", res)
	}
	cold := cs.ops.Load()
	if cold == 0 {
		t.Fatal("a cold cache read nothing")
	}
	for i := 0; i < 10; i++ {
		if res, _ := e.b.verifyKey(e.ctx, cs, record.VerifyInput{Key: key}); !res.Active {
			t.Fatalf("warm verify: %+v", res)
		}
	}
	if n := cs.ops.Load(); n != cold {
		t.Fatalf("warm verifies touched storage %d times", n-cold)
	}
}

func TestVerifyGraceAndPending(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "1h"})
	v1 := e.issue("svc", "k", "r", nil)
	e.clock.Advance(time.Minute)
	rotatedAt := e.clock.Now()
	v2 := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil).Data["key"].(string)

	d := e.verify(v1, nil)
	if d["active"] != true || d["state"] != record.StatePrevious || d["version"] != 1 {
		t.Fatalf("previous in grace: %v", d)
	}
	if d["exp"] != rotatedAt.Add(time.Hour).Unix() {
		t.Fatalf("exp of previous = %v, want grace end %d", d["exp"], rotatedAt.Add(time.Hour).Unix())
	}
	if d := e.verify(v2, nil); d["state"] != record.StateActive || d["version"] != 2 || d["iat"] != rotatedAt.Unix() {
		t.Fatalf("new version: %v", d)
	}

	// Stage v3: only accepted with allow_pending.
	v3 := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true}).Data["key"].(string)
	if c := e.verifyCode(v3, nil); c != record.CodeNotFound {
		t.Fatalf("pending without allow_pending: %q", c)
	}
	if d := e.verify(v3, map[string]interface{}{"allow_pending": true}); d["active"] != true || d["state"] != record.StatePending {
		t.Fatalf("pending with allow_pending: %v", d)
	}

	// Past the grace period the previous version is expired, even before
	// background work retires it.
	e.clock.Advance(time.Hour)
	if c := e.verifyCode(v1, nil); c != record.CodeExpired {
		t.Fatalf("previous past grace: %q", c)
	}
	// Promoting v3 retires v1 and makes v2 previous.
	e.ok(logical.UpdateOperation, "keys/svc/k/promote", nil)
	if c := e.verifyCode(v1, nil); c != record.CodeExpired {
		t.Fatalf("retired: %q", c)
	}
	if d := e.verify(v2, nil); d["state"] != record.StatePrevious {
		t.Fatalf("v2 after promote: %v", d)
	}
	if d := e.verify(v3, nil); d["state"] != record.StateActive {
		t.Fatalf("v3 after promote: %v", d)
	}
}

func TestVerifyRoleNarrowingTakesEffectAtOnce(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "a"})
	key := e.issue("svc", "k", "r", nil)
	if d := e.verify(key, map[string]interface{}{"scope": "orders:write", "audience": "a"}); d["scope"] != "orders:read orders:write" {
		t.Fatalf("before: %v", d)
	}
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "audiences": "b"})
	if c := e.verifyCode(key, map[string]interface{}{"scope": "orders:write", "audience": "b"}); c != record.CodeForbiddenScope {
		t.Fatalf("after narrowing: %q", c)
	}
	if c := e.verifyCode(key, map[string]interface{}{"audience": "a"}); c != record.CodeForbiddenAudience {
		t.Fatalf("audience after narrowing: %q", c)
	}
	if d := e.verify(key, map[string]interface{}{"audience": "b"}); d["scope"] != "orders:read" {
		t.Fatalf("effective scopes after narrowing: %v", d)
	}
	// Widening the role again does not widen the key beyond its own scopes.
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:*,billing:read"})
	if d := e.verify(key, map[string]interface{}{"audience": "b"}); d["scope"] != "orders:read orders:write" {
		t.Fatalf("after widening: %v", d)
	}
}

// A key whose role was narrowed past all of its scopes can do nothing: both
// verify forms refuse it with forbidden_scope even when no scope is asked
// for (as the token exchange does), from the very next call after the role
// change although the caches were warm, and it comes back when the role
// allows one of its scopes again.
func TestVerifyKeyWithNoEffectiveScopeLeftIsForbidden(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"audiences": "orders-api"}) // orders:read,orders:write
	key := e.issue("svc", "k", "r", map[string]interface{}{"scopes": "orders:write"})
	aud := map[string]interface{}{"audience": "orders-api"}
	if d := e.verify(key, aud); d["active"] != true || d["scope"] != "orders:write" {
		t.Fatalf("before narrowing (POST): %v", d)
	}
	if d := e.verifyGetData(key, aud); d["active"] != true {
		t.Fatalf("before narrowing (GET): %v", d)
	}

	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read"})
	for _, q := range []map[string]interface{}{aud, {"scope": "orders:write", "audience": "orders-api"}} {
		if c := e.verifyCode(key, q); c != record.CodeForbiddenScope {
			t.Fatalf("POST verify %v after narrowing: code %q, want %s", q, c, record.CodeForbiddenScope)
		}
		d := e.verifyGetData(key, q)
		if d["active"] != false || d["code"] != record.CodeForbiddenScope || len(d) != 2 {
			t.Fatalf("GET verify %v after narrowing: %v, want the POST answer", q, d)
		}
	}
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api"}, "no effective scopes left (its role no longer allows any of them) (code=forbidden_scope)")
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:write"}, "does not grant every requested scope (code=forbidden_scope)")

	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:*"})
	if d := e.verify(key, aud); d["active"] != true || d["scope"] != "orders:write" {
		t.Fatalf("after widening again (POST): %v", d)
	}
	if d := e.verifyGetData(key, aud); d["active"] != true || d["scope"] != "orders:write" {
		t.Fatalf("after widening again (GET): %v", d)
	}
}

func TestVerifyRevokeLockDeprovisionHaveNoWindow(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "1h"})
	k1 := e.issue("svc", "k1", "r", nil)
	k2 := e.issue("svc", "k2", "r", nil)
	req := &logical.Request{Storage: e.storage, Connection: &logical.Connection{}}

	// Warm the caches, then revoke: the very next verify refuses.
	for _, k := range []string{k1, k2} {
		if c := e.verifyCode(k, nil); c != "" {
			t.Fatalf("warm-up: %q", c)
		}
	}
	e.ok(logical.UpdateOperation, "keys/svc/k1/revoke", nil)
	if c := e.verifyCode(k1, nil); c != record.CodeRevoked {
		t.Fatalf("after revoke: %q", c)
	}
	// Revoking one version of a rotated key.
	old := k2
	e.ok(logical.UpdateOperation, "keys/svc/k2/rotate", nil)
	if c := e.verifyCode(old, nil); c != "" {
		t.Fatalf("previous before version revoke: %q", c)
	}
	e.ok(logical.UpdateOperation, "keys/svc/k2/revoke", map[string]interface{}{"version": 1})
	if c := e.verifyCode(old, nil); c != record.CodeRevoked {
		t.Fatalf("after version revoke: %q", c)
	}
	// Lock and unlock the client.
	k3 := e.issue("svc", "k3", "r", nil)
	if c := e.verifyCode(k3, nil); c != "" {
		t.Fatalf("k3: %q", c)
	}
	if _, err := e.b.setClientStatus(e.ctx, req, "svc", record.ClientLocked, "incident"); err != nil {
		t.Fatal(err)
	}
	if c := e.verifyCode(k3, nil); c != record.CodeLocked {
		t.Fatalf("after lock: %q", c)
	}
	if _, err := e.b.setClientStatus(e.ctx, req, "svc", record.ClientActive, "resolved"); err != nil {
		t.Fatal(err)
	}
	if c := e.verifyCode(k3, nil); c != "" {
		t.Fatalf("after unlock: %q", c)
	}
	// De-provisioning (client delete) revokes everything at once.
	e.ok(logical.DeleteOperation, "clients/svc", nil)
	if c := e.verifyCode(k3, nil); c != record.CodeRevoked {
		t.Fatalf("after de-provisioning: %q", c)
	}
}

// A verify that read the key record before a revoke must not put that
// stale record into the cache after the revoke returned.
func TestVerifyCacheFillRacingRevoke(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	e.b.cache.verify.Purge()
	cs := &countingStorage{Storage: e.storage, pauseKey: keyStorageKey("svc", "k"), readDone: make(chan struct{}), resume: make(chan struct{})}

	done := make(chan record.VerifyResult)
	go func() {
		res, err := e.b.verifyKey(e.ctx, cs, record.VerifyInput{Key: key})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-cs.readDone // the verify holds the pre-revoke record
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", nil)
	close(cs.resume)
	<-done // concurrent with the revoke: either answer is fine
	if c := e.verifyCode(key, nil); c != record.CodeRevoked {
		t.Fatalf("stale record cached by a racing fill: %q", c)
	}
}

// Verifies running while a key is revoked: any verify that starts after
// the revoke returned must refuse the key. Run with -race.
func TestVerifyConcurrentRevoke(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	const n = 8
	keys := make([]string, n)
	for i := range keys {
		keys[i] = e.issue("svc", "k"+string(rune('a'+i)), "r", nil)
	}
	var revoked [n]atomic.Bool
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := (i + w) % n
				wasRevoked := revoked[j].Load()
				res, err := e.b.verifyKey(e.ctx, e.storage, record.VerifyInput{Key: keys[j]})
				if err != nil {
					t.Error(err)
					return
				}
				if wasRevoked && res.Active {
					bad.Add(1)
				}
				if !wasRevoked && !res.Active && res.Code != record.CodeRevoked {
					t.Errorf("unexpected code %q", res.Code)
				}
			}
		}(w)
	}
	for j := 0; j < n; j++ {
		// Invalidate other caches now and then so fills race the revokes.
		e.b.cache.invalidate(roleStorageKey("r"))
		e.ok(logical.UpdateOperation, "keys/svc/k"+string(rune('a'+j))+"/revoke", nil)
		revoked[j].Store(true)
	}
	// Let the workers run a little after the last revoke.
	for j := 0; j < n; j++ {
		if res, _ := e.b.verifyKey(e.ctx, e.storage, record.VerifyInput{Key: keys[j]}); res.Active {
			bad.Add(1)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d verifies accepted a key after its revoke returned", bad.Load())
	}
}

func TestVerifyInvalidateFromOtherNodes(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatal(c)
	}
	// Another node revokes: storage changes behind this node's back, then
	// Vault calls Invalidate with the storage key.
	k, err := e.b.getKey(e.ctx, e.storage, "svc", "k")
	if err != nil {
		t.Fatal(err)
	}
	k.RevokeAll(e.clock.Now(), "elsewhere", record.Actor{Type: actorSystem})
	entry, _ := logical.StorageEntryJSON(keyStorageKey("svc", "k"), k)
	if err := e.storage.Put(e.ctx, entry); err != nil {
		t.Fatal(err)
	}
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("without Invalidate the cached record still answers: %q", c)
	}
	e.b.invalidate(e.ctx, keyStorageKey("svc", "k"))
	if c := e.verifyCode(key, nil); c != record.CodeRevoked {
		t.Fatalf("after Invalidate: %q", c)
	}
	// Clients and roles follow the same way.
	key2 := e.issue("svc", "k2", "r", nil)
	e.verifyCode(key2, nil)
	c, _ := e.b.getClient(e.ctx, e.storage, "svc")
	c.Status = record.ClientLocked
	entry, _ = logical.StorageEntryJSON(clientStorageKey("svc"), c)
	_ = e.storage.Put(e.ctx, entry)
	e.b.invalidate(e.ctx, clientStorageKey("svc"))
	if code := e.verifyCode(key2, nil); code != record.CodeLocked {
		t.Fatalf("client invalidate: %q", code)
	}
}
