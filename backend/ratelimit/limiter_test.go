package ratelimit

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

var testStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestRateLimiterWindowsAndPrune(t *testing.T) {
	r := New()
	now := testStart
	for i := 0; i < 3; i++ {
		if !r.Allow("a", 3, time.Minute, now) {
			t.Fatalf("call %d refused", i)
		}
	}
	if r.Allow("a", 3, time.Minute, now.Add(59*time.Second)) {
		t.Fatal("4th call in the window allowed")
	}
	if !r.Allow("b", 1, time.Minute, now) {
		t.Fatal("keys share a window")
	}
	if !r.Allow("a", 3, time.Minute, now.Add(time.Minute)) {
		t.Fatal("new window refused")
	}
	r.Prune(now.Add(2 * time.Minute))
	if len(r.windows) != 0 {
		t.Fatalf("prune left %d windows", len(r.windows))
	}
}

func TestKeyRevokedForgetsOnlyRevokedKeys(t *testing.T) {
	r := New()
	r.Allow("a", 1, time.Minute, testStart)
	r.KeyRevoked(&record.Key{KeyID: "a"}) // a version revoked, the key still accepted
	if r.Allow("a", 1, time.Minute, testStart) {
		t.Fatal("a key that is not revoked lost its window")
	}
	r.KeyRevoked(&record.Key{KeyID: "a", Revoked: true})
	if len(r.windows) != 0 {
		t.Fatal("a revoked key kept its window")
	}
}
