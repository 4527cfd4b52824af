package verify

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVerifyActiveAnswerShape(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"audiences": "orders-api", "key_lifetime": "720h"})
	before := time.Now().Add(-time.Second)
	key := issue(t, m, "svc", "k", "r", map[string]interface{}{"scopes": "orders:read"})
	d := verify(t, client(t), m, key, map[string]interface{}{"scope": "orders:read", "audience": "orders-api", "environment": "prod"})
	if d["active"] != true || d["client"] != "svc" || d["role"] != "r" || d["scope"] != "orders:read" ||
		d["environment"] != "prod" || d["state"] != "active" || num(t, d["version"]) != 1 {
		t.Fatalf("answer: %v", d)
	}
	if !strings.HasPrefix(d["key_id"].(string), "kid_") {
		t.Fatalf("key_id: %v", d["key_id"])
	}
	if aud := d["aud"].([]interface{}); len(aud) != 1 || aud[0] != "orders-api" {
		t.Fatalf("aud: %v", d["aud"])
	}
	iat, exp := num(t, d["iat"]), num(t, d["exp"])
	if iat < before.Unix() || iat > time.Now().Unix() || exp-iat < 720*3600-5 || exp-iat > 720*3600+5 {
		t.Fatalf("iat=%d exp=%d", iat, exp)
	}
	// The key read shows the use (buffered, not yet flushed).
	r := read(t, m+"/keys/svc/k")
	if r.Data["last_used_at"] == nil {
		t.Fatal("last_used_at not set after a verify")
	}
	counts := r.Data["usage"].(map[string]interface{})["verify_counts"].(map[string]interface{})
	if num(t, counts["active"]) != 1 {
		t.Fatalf("usage counts: %v", counts)
	}
}

func TestVerifyEveryCode(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"audiences": "orders-api"})
	write(t, m+"/roles/cidr", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "bound_cidrs": "10.0.0.0/8"})
	write(t, m+"/roles/lim", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rate_limit": 2, "rate_limit_window": 3600})
	write(t, m+"/roles/nograce", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "grace_period": 0})
	write(t, m+"/clients/bound", map[string]interface{}{"owner": "o", "type": "internal", "bound_cidrs": "192.0.2.0/24"})
	write(t, m+"/clients/lockme", map[string]interface{}{"owner": "o", "type": "internal"})

	good := issue(t, m, "svc", "good", "r", map[string]interface{}{"scopes": "orders:read"})
	revoked := issue(t, m, "svc", "rev", "r", nil)
	write(t, m+"/keys/svc/rev/revoke", map[string]interface{}{"reason": "test"})
	retired := issue(t, m, "svc", "old", "nograce", nil)
	write(t, m+"/keys/svc/old/rotate", nil) // grace 0: the old version retires at once
	limited := issue(t, m, "svc", "lim", "lim", nil)
	roleBound := issue(t, m, "svc", "cidr", "cidr", nil)
	clientBound := issue(t, m, "bound", "k", "r", nil)
	locked := issue(t, m, "lockme", "k", "r", nil)
	write(t, m+"/clients/lockme/lock", map[string]interface{}{"reason": "INC-1"})

	typo := []byte(good)
	typo[len(typo)-1] ^= 1
	// A well-formed key with a valid checksum that was never issued: take
	// an issued one from another mount.
	other := newMount(t)
	setup(t, other, "svc", "r", nil)
	foreign := issue(t, other, "svc", "k", "r", nil)

	cases := []struct {
		name  string
		key   string
		extra map[string]interface{}
		want  string
	}{
		{"valid", good, map[string]interface{}{"audience": "orders-api"}, ""},
		{"no audience, the role names audiences", good, nil, "forbidden_audience"},
		{"garbage", "not-a-key", nil, "malformed"},
		{"checksum typo", string(typo), nil, "malformed"},
		{"never issued here", foreign, nil, "not_found"},
		{"revoked", revoked, nil, "revoked"},
		{"retired", retired, nil, "expired"},
		{"client locked", locked, nil, "locked"},
		{"wrong environment", good, map[string]interface{}{"environment": "staging"}, "forbidden_environment"},
		{"client cidr: outside", clientBound, map[string]interface{}{"client_ip": "198.51.100.1"}, "forbidden_ip"},
		{"client cidr: inside", clientBound, map[string]interface{}{"client_ip": "192.0.2.10", "audience": "orders-api"}, ""},
		{"role cidr: outside", roleBound, map[string]interface{}{"client_ip": "192.0.2.10"}, "forbidden_ip"},
		{"role cidr: inside", roleBound, map[string]interface{}{"client_ip": "10.9.8.7"}, ""},
		{"unknown audience", good, map[string]interface{}{"audience": "billing-api"}, "forbidden_audience"},
		{"scope the key lacks", good, map[string]interface{}{"scope": "orders:write", "audience": "orders-api"}, "forbidden_scope"},
		{"rate limit 1", limited, nil, ""},
		{"rate limit 2", limited, nil, ""},
		{"rate limit 3", limited, nil, "rate_limited"},
	}
	for _, tc := range cases {
		if got := code(t, m, tc.key, tc.extra); got != tc.want {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.want)
		}
	}
	// Unlocking restores the locked client's key.
	write(t, m+"/clients/lockme/unlock", nil)
	if got := code(t, m, locked, map[string]interface{}{"audience": "orders-api"}); got != "" {
		t.Errorf("after unlock: %q", got)
	}
	// Only a request without a key is an HTTP error.
	_, err := client(t).Logical().Write(m+"/verify", map[string]interface{}{"scope": "orders:read"})
	expectStatus(t, err, http.StatusBadRequest, "key")
}

// A key past its hard expiry (role key_lifetime) is expired, with no
// background work needed.
func TestVerifyHardExpiry(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"key_lifetime": "1s"})
	key := issue(t, m, "svc", "k", "r", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := code(t, m, key, nil)
		if c == "expired" {
			return
		}
		if c != "" || time.Now().After(deadline) {
			t.Fatalf("key with a 1s lifetime: code %q", c)
		}
		time.Sleep(100 * time.Millisecond) // polling a real-time expiry in a real Vault
	}
}

func TestVerifyGraceAndPending(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"grace_period": "1h"})
	v1 := issue(t, m, "svc", "k", "r", nil)
	rot := write(t, m+"/keys/svc/k/rotate", nil)
	v2 := rot.Data["key"].(string)

	d := verify(t, client(t), m, v1, nil)
	if d["active"] != true || d["state"] != "previous" || num(t, d["version"]) != 1 {
		t.Fatalf("previous version in grace: %v", d)
	}
	if exp := num(t, d["exp"]); exp < time.Now().Add(59*time.Minute).Unix() || exp > time.Now().Add(61*time.Minute).Unix() {
		t.Fatalf("exp of the previous version = %d, want its grace end (about an hour from now)", exp)
	}
	if d := verify(t, client(t), m, v2, nil); d["state"] != "active" || num(t, d["version"]) != 2 {
		t.Fatalf("new version: %v", d)
	}

	v3 := write(t, m+"/keys/svc/k/rotate", map[string]interface{}{"stage": true}).Data["key"].(string)
	if c := code(t, m, v3, nil); c != "not_found" {
		t.Fatalf("pending without allow_pending: %q", c)
	}
	if d := verify(t, client(t), m, v3, map[string]interface{}{"allow_pending": true}); d["active"] != true || d["state"] != "pending" || num(t, d["version"]) != 3 {
		t.Fatalf("pending with allow_pending: %v", d)
	}
	write(t, m+"/keys/svc/k/promote", nil)
	if c := code(t, m, v1, nil); c != "expired" {
		t.Fatalf("v1 after promote (retired): %q", c)
	}
	if d := verify(t, client(t), m, v2, nil); d["state"] != "previous" {
		t.Fatalf("v2 after promote: %v", d)
	}
	if d := verify(t, client(t), m, v3, nil); d["state"] != "active" {
		t.Fatalf("v3 after promote: %v", d)
	}
	// Adoption is visible on the key read.
	versions := read(t, m+"/keys/svc/k").Data["versions"].([]interface{})
	for _, v := range versions {
		vm := v.(map[string]interface{})
		if n := num(t, vm["version"]); n == 3 && vm["last_verified_at"] == nil {
			t.Fatalf("version 3 verified but has no last_verified_at: %v", vm)
		}
	}
}

func TestVerifyRoleNarrowingTakesEffectOnNextVerify(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", nil)
	key := issue(t, m, "svc", "k", "r", nil)
	if d := verify(t, client(t), m, key, map[string]interface{}{"scope": "orders:write"}); d["scope"] != "orders:read orders:write" {
		t.Fatalf("before narrowing: %v", d)
	}
	write(t, m+"/roles/r", map[string]interface{}{"scopes": "orders:read"})
	if c := code(t, m, key, map[string]interface{}{"scope": "orders:write"}); c != "forbidden_scope" {
		t.Fatalf("after narrowing: %q", c)
	}
	if d := verify(t, client(t), m, key, nil); d["scope"] != "orders:read" {
		t.Fatalf("effective scopes after narrowing: %v", d)
	}
}

// Each revoke is followed at once by a verify: no window where the revoked
// key (cached a moment earlier) is still accepted.
func TestRevokeThenVerifyHasNoWindow(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", nil)
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("k%d", i)
		key := issue(t, m, "svc", name, "r", nil)
		if c := code(t, m, key, nil); c != "" {
			t.Fatalf("%s before revoke: %q", name, c)
		}
		write(t, m+"/keys/svc/"+name+"/revoke", nil)
		if c := code(t, m, key, nil); c != "revoked" {
			t.Fatalf("%s right after revoke: %q", name, c)
		}
	}
	// De-provisioning (deleting the client) kills every key at once.
	a, b := issue(t, m, "svc", "a", "r", nil), issue(t, m, "svc", "b", "r", nil)
	for _, k := range []string{a, b} {
		if c := code(t, m, k, nil); c != "" {
			t.Fatalf("before delete: %q", c)
		}
	}
	if _, err := client(t).Logical().Delete(m + "/clients/svc"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{a, b} {
		if c := code(t, m, k, nil); c != "revoked" {
			t.Fatalf("after client delete: %q", c)
		}
	}
}

// Verifiers hammer a set of keys while they are revoked one by one; a
// verify that starts after a revoke returned must refuse that key.
func TestConcurrentRevokeWhileVerifying(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", nil)
	const n = 6
	keys := make([]string, n)
	for i := range keys {
		keys[i] = issue(t, m, "svc", fmt.Sprintf("k%d", i), "r", nil)
	}
	var revoked [n]atomic.Bool
	var bad, checks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := client(t)
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := i % n
				was := revoked[j].Load()
				s, err := c.Logical().Write(m+"/verify", map[string]interface{}{"key": keys[j]})
				if err != nil {
					t.Errorf("verify: %v", err)
					return
				}
				checks.Add(1)
				if was && s.Data["active"] == true {
					bad.Add(1)
				}
			}
		}(w)
	}
	for j := 0; j < n; j++ {
		time.Sleep(50 * time.Millisecond) // let verifies warm the caches in between
		write(t, fmt.Sprintf("%s/keys/svc/k%d/revoke", m, j), nil)
		revoked[j].Store(true)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d verifies accepted a key after its revoke returned", bad.Load(), checks.Load())
	}
	if checks.Load() < 20 {
		t.Fatalf("only %d verifies ran", checks.Load())
	}
}

func TestVerifyRecordsUsageWithoutLeaking(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", nil)
	key := issue(t, m, "svc", "k", "r", nil)
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		if c := code(t, m, key, map[string]interface{}{"client_ip": ip}); c != "" {
			t.Fatal(c)
		}
	}
	code(t, m, key, map[string]interface{}{"scope": "admin"})
	usage := read(t, m+"/keys/svc/k").Data["usage"].(map[string]interface{})
	counts := usage["verify_counts"].(map[string]interface{})
	if num(t, counts["active"]) != 2 || num(t, counts["forbidden_scope"]) != 1 {
		t.Fatalf("counts: %v", counts)
	}
	src := usage["recent_sources"].([]interface{})
	if len(src) != 2 || src[0] != "192.0.2.2" {
		t.Fatalf("recent_sources: %v", src)
	}
}
