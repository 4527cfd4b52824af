package incident

import (
	"net/http"
	"testing"
	"time"
)

// A restriction narrows every key of the client in a real Vault, refuses
// bad input with a 400 naming the field, lifts early on DELETE and lifts
// itself at its expiry.
func TestClientControlsRestriction(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", map[string]interface{}{"scopes": "orders:read,orders:write"})
	k1 := issue(t, m, "svc", "k1", "r")
	k2 := issue(t, m, "svc", "k2", "r")
	p := m + "/clients/svc/restriction"
	for field, data := range map[string]map[string]interface{}{
		"reason":      {"scopes": "orders:read", "ttl": "1h"},
		"ttl":         {"scopes": "orders:read", "reason": "x"},
		"bound_cidrs": {"bound_cidrs": "nope", "reason": "x", "ttl": "1h"},
		"rate_limit":  {"reason": "x", "ttl": "1h"},
		"unknown":     {"scopes": "orders:read", "reason": "x", "ttl": "1h", "colour": "red"},
	} {
		_, err := client(t).Logical().Write(p, data)
		expectStatus(t, err, http.StatusBadRequest, field)
	}
	write(t, p, map[string]interface{}{"scopes": "orders:read", "bound_cidrs": "10.0.0.0/8", "rate_limit": 3, "reason": "incident", "ttl": "1h"})
	ip := map[string]interface{}{"client_ip": "10.1.2.3"}
	if verifyCode(t, m, k1, map[string]interface{}{"client_ip": "10.1.2.3", "scope": "orders:write"}) != "forbidden_scope" ||
		verifyCode(t, m, k2, map[string]interface{}{"client_ip": "192.0.2.1"}) != "forbidden_ip" {
		t.Fatal("restriction not applied")
	}
	// Three verifies for the whole client: k1, k2, k1, then refused.
	for i, k := range []string{k1, k2, k1} {
		if c := verifyCode(t, m, k, ip); c != "active" {
			t.Fatalf("verify %d: %s", i, c)
		}
	}
	if c := verifyCode(t, m, k2, ip); c != "rate_limited" {
		t.Fatalf("fourth verify of the client: %s", c)
	}
	if _, err := client(t).Logical().Delete(p); err != nil {
		t.Fatal(err)
	}
	if c := verifyCode(t, m, k2, map[string]interface{}{"scope": "orders:write"}); c != "active" {
		t.Fatalf("after the lift: %s", c)
	}
	// Lifts itself: a minute is the shortest lifetime.
	write(t, p, map[string]interface{}{"scopes": "orders:read", "reason": "short", "ttl": "1m"})
	if c := verifyCode(t, m, k1, map[string]interface{}{"scope": "orders:write"}); c != "forbidden_scope" {
		t.Fatalf("short restriction: %s", c)
	}
	waitFor(t, 2*time.Minute, "the restriction to expire", func() bool {
		return verifyCode(t, m, k1, map[string]interface{}{"scope": "orders:write"}) == "active"
	})
	// The periodic tick records the lift as the system.
	waitFor(t, 3*time.Minute, "the expiry's log entry", func() bool { return ccLifted(t, m) != "" })
	if who := ccLifted(t, m); who != "system" {
		t.Fatalf("expiry logged by %q", who)
	}
}

// ccLifted is the actor type of the newest client.restriction_lifted entry
// with how=expired ("" when none).
func ccLifted(t *testing.T, m string) string {
	t.Helper()
	entries, _ := read(t, m+"/log").Data["entries"].([]interface{})
	for _, e := range entries {
		ev, _ := e.(map[string]interface{})
		details, _ := ev["details"].(map[string]interface{})
		if ev["type"] == "client.restriction_lifted" && details["how"] == "expired" {
			actor, _ := ev["actor"].(map[string]interface{})
			typ, _ := actor["type"].(string)
			return typ
		}
	}
	return ""
}

// All keys of a client share its rate_limit, on top of the role's per key.
func TestClientControlsSharedRateLimit(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", map[string]interface{}{"rate_limit": 100, "rate_limit_window": "1h"})
	write(t, m+"/clients/svc", map[string]interface{}{"rate_limit": 2, "rate_limit_window": "1h"})
	k1 := issue(t, m, "svc", "k1", "r")
	k2 := issue(t, m, "svc", "k2", "r")
	if verifyCode(t, m, k1, nil) != "active" || verifyCode(t, m, k2, nil) != "active" {
		t.Fatal("within the client's budget refused")
	}
	if c := verifyCode(t, m, k1, nil); c != "rate_limited" {
		t.Fatalf("third verify of the client: %s", c)
	}
	_, err := client(t).Logical().Write(m+"/clients/svc", map[string]interface{}{"rate_limit": -1})
	expectStatus(t, err, http.StatusBadRequest, "rate_limit")
}
