package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// A restriction narrows every key of the client at once, is changed and
// lifted early with log entries, and stops applying at its expiry before
// the tick records the lift as the system.
func TestClientRestrictionLifecycle(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil) // orders:read,orders:write
	k1 := e.issue("svc", "k1", "r", nil)
	k2 := e.issue("svc", "k2", "r", nil)

	e.userErr(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"scopes": "orders:read", "ttl": "1h"}, "reason is required")
	e.userErr(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"scopes": "orders:read", "reason": "x"}, "ttl or expires_at is required")
	e.userErr(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"reason": "x", "ttl": "1h"}, "must narrow at least one")
	e.userErr(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"scopes": "orders:read", "reason": "x", "ttl": "800h"}, "ttl / expires_at")
	e.userErr(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"scopes": "orders:read", "reason": "x", "ttl": "1h", "expires_at": "2030-01-01T00:00:00Z"}, "not both")
	e.userErr(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"bound_cidrs": "nope", "reason": "x", "ttl": "1h"}, "bound_cidrs")
	e.userErr(logical.UpdateOperation, "clients/nobody/restriction", map[string]interface{}{"scopes": "orders:read", "reason": "x", "ttl": "1h"}, "does not exist")
	if resp := e.do(logical.ReadOperation, "clients/svc/restriction", nil); resp != nil {
		t.Fatalf("read without restriction: %v", resp.Data)
	}

	d := e.ok(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{
		"scopes": "orders:read", "bound_cidrs": "10.0.0.0/8", "reason": "incident 42", "ttl": "1h",
	}).Data
	if d["active"] != true || d["reason"] != "incident 42" {
		t.Fatalf("apply: %v", d)
	}
	in := map[string]interface{}{"client_ip": "10.1.2.3"}
	for _, k := range []string{k1, k2} {
		if v := e.verify(k, in); v["active"] != true || v["scope"] != "orders:read" {
			t.Fatalf("restricted key: %v", v)
		}
		if c := e.verifyCode(k, map[string]interface{}{"client_ip": "10.1.2.3", "scope": "orders:write"}); c != record.CodeForbiddenScope {
			t.Fatalf("scope outside the restriction: %q", c)
		}
		if c := e.verifyCode(k, map[string]interface{}{"client_ip": "192.0.2.1"}); c != record.CodeForbiddenIP {
			t.Fatalf("address outside the restriction: %q", c)
		}
		if c := e.verifyCode(k, nil); c != record.CodeForbiddenIP {
			t.Fatalf("no address under a CIDR restriction: %q", c)
		}
	}

	// A change keeps what it does not name; a rate limit shared by both keys.
	d = e.ok(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"rate_limit": 2, "reason": "tighten", "ttl": "2h"}).Data
	if d["rate_limit"] != 2 || len(d["scopes"].([]string)) != 1 {
		t.Fatalf("change: %v", d)
	}
	if e.verifyCode(k1, in) != "" || e.verifyCode(k2, in) != "" {
		t.Fatal("within the shared restriction budget refused")
	}
	if c := e.verifyCode(k1, in); c != record.CodeRateLimited {
		t.Fatalf("third verify of the client: %q", c)
	}

	// Lift early: everything is back.
	e.ok(logical.DeleteOperation, "clients/svc/restriction", map[string]interface{}{"reason": "resolved"})
	if v := e.verify(k2, map[string]interface{}{"scope": "orders:write"}); v["active"] != true {
		t.Fatalf("after the lift: %v", v)
	}

	// Expiry: verify ignores it at once; the tick records the lift.
	e.ok(logical.UpdateOperation, "clients/svc/restriction", map[string]interface{}{"scopes": "orders:read", "reason": "again", "expires_at": testStart.Add(3 * time.Hour).Format(time.RFC3339)})
	if c := e.verifyCode(k1, map[string]interface{}{"scope": "orders:write"}); c != record.CodeForbiddenScope {
		t.Fatalf("before expiry: %q", c)
	}
	e.clock.Advance(3 * time.Hour) // at expires_at
	if c := e.verifyCode(k1, map[string]interface{}{"scope": "orders:write"}); c != "" {
		t.Fatalf("after expiry, before the tick: %q", c)
	}
	if d := e.ok(logical.ReadOperation, "clients/svc/restriction", nil).Data; d["active"] != false {
		t.Fatalf("read after expiry: %v", d)
	}
	e.tick()
	if resp := e.do(logical.ReadOperation, "clients/svc/restriction", nil); resp != nil {
		t.Fatalf("read after the tick: %v", resp.Data)
	}

	applied := e.logEventsOf(eventlog.ClientRestricted)
	if len(applied) != 3 || applied[0].Details["changed"] != "false" || applied[1].Details["changed"] != "true" || applied[1].Details["rate_limit"] != "2" {
		t.Fatalf("applied entries: %+v", applied)
	}
	lifted := e.logEventsOf(eventlog.ClientRestrictionLifted)
	if len(lifted) != 2 || lifted[0].Details["how"] != "early" || lifted[0].Details["reason"] != "resolved" ||
		lifted[1].Details["how"] != "expired" || lifted[1].Actor.Type != actorSystem || lifted[1].Client != "svc" {
		t.Fatalf("lifted entries: %+v", lifted)
	}
	e.tick() // nothing left: no second entry
	if n := len(e.logEventsOf(eventlog.ClientRestrictionLifted)); n != 2 {
		t.Fatalf("a second tick logged again: %d", n)
	}
}

// All keys of a client draw from its shared budget, on top of each key's
// role limit; the answer carries the tightest state and when to retry.
func TestClientSharedRateLimit(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rate_limit": 10, "rate_limit_window": 60})
	e.userErr(logical.UpdateOperation, "clients/svc", map[string]interface{}{"rate_limit": -1}, "rate_limit")
	e.userErr(logical.UpdateOperation, "clients/svc", map[string]interface{}{"rate_limit_window": "48h"}, "rate_limit_window")
	d := e.ok(logical.UpdateOperation, "clients/svc", map[string]interface{}{"rate_limit": 3, "rate_limit_window": 30}).Data
	if d["rate_limit"] != 3 || d["rate_limit_window"] != int64(30) {
		t.Fatalf("client: %v", d)
	}
	k1 := e.issue("svc", "k1", "r", nil)
	k2 := e.issue("svc", "k2", "r", nil)
	v := e.verify(k1, nil)
	rl, _ := v["rate_limit"].(map[string]interface{})
	if rl["limit"] != 3 || rl["remaining"] != 2 || rl["reset"] != int64(30) {
		t.Fatalf("first verify: %v", v)
	}
	e.clock.Advance(10 * time.Second)
	if e.verifyCode(k2, nil) != "" || e.verifyCode(k1, nil) != "" {
		t.Fatal("within the client's budget refused")
	}
	v = e.verify(k2, nil)
	if v["code"] != record.CodeRateLimited || v["retry_after"] != int64(20) {
		t.Fatalf("over the client's budget: %v", v)
	}
	// The refused verify spent no key budget: after the client's window
	// the key limit of 10 still has 8 left for k1.
	e.clock.Advance(20 * time.Second)
	v = e.verify(k1, nil)
	rl, _ = v["rate_limit"].(map[string]interface{})
	if v["active"] != true || rl["limit"] != 3 || rl["remaining"] != 2 {
		t.Fatalf("new client window: %v", v)
	}
	// GET form: the standard headers, Retry-After when refused.
	resp, err := e.verifyGet(map[string][]string{"X-Api-Key": {k1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := resp.Headers; h["RateLimit-Limit"][0] != "3" || h["RateLimit-Remaining"][0] != "1" || h["RateLimit-Reset"][0] != "30" || h["Retry-After"] != nil {
		t.Fatalf("GET headers: %v", h)
	}
	e.verifyGet(map[string][]string{"X-Api-Key": {k1}}, nil)
	resp, _ = e.verifyGet(map[string][]string{"X-Api-Key": {k1}}, nil)
	doc := introspectionBody(t, resp)
	if doc["code"] != record.CodeRateLimited || doc["retry_after"] != float64(30) || resp.Headers["Retry-After"][0] != "30" || resp.Headers["RateLimit-Remaining"][0] != "0" {
		t.Fatalf("GET refused: %v %v", doc, resp.Headers)
	}
}
