package backend

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// apiTime is how answers show t (render.go).
func apiTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// goDuration matches what time.Duration.String produces ("24h0m0s", "2.5ms").
var goDuration = regexp.MustCompile(`^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)

// checkConventions fails on any value of a response that breaks the
// API's conventions: a time not in RFC 3339 UTC to the second, a duration
// that is not a number, retrievable that is not a boolean (or null).
func checkConventions(t *testing.T, where string, v interface{}) {
	t.Helper()
	switch x := v.(type) {
	case time.Time, *time.Time:
		t.Errorf("%s: a time value %v (rendered with nanoseconds)", where, x)
	case time.Duration:
		t.Errorf("%s: a time.Duration %v", where, x)
	case string:
		if ts, err := time.Parse(time.RFC3339Nano, x); err == nil && x != apiTime(ts) {
			t.Errorf("%s: time %q, want %q", where, x, apiTime(ts))
		}
		if goDuration.MatchString(x) {
			t.Errorf("%s: duration %q as a Go duration string, want seconds", where, x)
		}
	case map[string]string:
		for k, s := range x {
			checkConventions(t, where+"."+k, s)
		}
	case map[string]interface{}:
		for k, e := range x {
			if k == "retrievable" {
				if _, ok := e.(bool); !ok && e != nil {
					t.Errorf("%s.retrievable = %#v, want a boolean or null", where, e)
				}
			}
			if _, group := e.(map[string]interface{}); !group && (k == "time_to_revoke" || k == "time_to_revoke_ms") {
				t.Errorf("%s.%s: measured durations are shown as time_to_revoke_seconds", where, k)
			}
			checkConventions(t, where+"."+k, e)
		}
	case []map[string]interface{}:
		for i, e := range x {
			checkConventions(t, fmt.Sprintf("%s[%d]", where, i), e)
		}
	case []interface{}:
		for i, e := range x {
			checkConventions(t, fmt.Sprintf("%s[%d]", where, i), e)
		}
	}
}

// Every answer shows times, durations and flags one way: times RFC 3339 UTC
// to the second, durations in seconds (also inside log and alert details),
// retrievable a boolean, the issuer as issued_by.
func TestResponsesFollowOneConventionPerKind(t *testing.T) {
	e := newTestEnv(t)
	e.clock.Advance(1234567891 * time.Nanosecond) // times with a fraction
	var answers []string
	check := func(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
		t.Helper()
		resp := e.ok(op, path, data)
		if resp != nil {
			checkConventions(t, string(op)+" "+path, resp.Data)
			answers = append(answers, path)
		}
		return resp
	}
	check(logical.UpdateOperation, "config", map[string]interface{}{"alert_window": "90s"})
	check(logical.ReadOperation, "config", nil)
	check(logical.CreateOperation, "clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	check(logical.CreateOperation, "roles/r", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod", "audiences": "orders-api",
		"rotation_period": "24h", "grace_period": "1h", "idle_timeout": "720h", "ttl": "1h", "max_ttl": "2h",
	})
	role := check(logical.ReadOperation, "roles/r", nil)
	if role.Data["retrievable"] != nil || role.Data["grace_period"] != int64(3600) {
		t.Fatalf("role read: retrievable %#v, grace_period %#v", role.Data["retrievable"], role.Data["grace_period"])
	}
	key := check(logical.CreateOperation, "keys/svc/main", map[string]interface{}{"role": "r"}).Data["key"].(string)
	e.clock.Advance(1500 * time.Millisecond)
	check(logical.UpdateOperation, "verify", map[string]interface{}{"key": key, "client_ip": "10.1.2.3"})
	check(logical.UpdateOperation, "keys/svc/main/rotate", nil)
	read := check(logical.ReadOperation, "keys/svc/main", nil)
	if read.Data["created_at"] != apiTime(testStart.Add(1234567891*time.Nanosecond)) {
		t.Fatalf("created_at = %v", read.Data["created_at"])
	}
	inv := check(logical.ReadOperation, "inventory", nil).Data["keys"].([]map[string]interface{})
	if len(inv) != 1 || inv[0]["issued_by"] == nil || inv[0]["issuer"] != nil {
		t.Fatalf("inventory names the issuer as a key read does (issued_by): %v", inv)
	}
	check(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api"})
	check(logical.ReadOperation, "creds/svc/r", nil)
	leaked := check(logical.CreateOperation, "keys/svc/other", map[string]interface{}{"role": "r"}).Data["key"].(string)
	e.clock.Advance(2 * time.Millisecond)
	check(logical.UpdateOperation, "leaks", map[string]interface{}{"key": leaked, "reporter": "scanner"})
	alerts := check(logical.ReadOperation, "alerts", nil).Data["alerts"].([]map[string]interface{})
	if len(alerts) == 0 {
		t.Fatal("no alert after a leak report")
	}
	if d := alerts[0]["details"].(map[string]interface{}); d["time_to_revoke_seconds"] == nil {
		t.Fatalf("leak alert details: %v", d)
	}
	check(logical.UpdateOperation, "keys/svc/main/revoke", map[string]interface{}{"reason": "test"})
	check(logical.ReadOperation, "clients/svc/revocations", nil)
	check(logical.ReadOperation, "clients/svc", nil)
	check(logical.ReadOperation, "policy", nil)
	check(logical.ReadOperation, "metrics", nil)
	log := check(logical.ReadOperation, "log", map[string]interface{}{"limit": 1000})
	var sawDuration bool
	for _, ev := range log.Data["entries"].([]map[string]interface{}) {
		if d, ok := ev["details"].(map[string]interface{}); ok && ev["type"] == eventlog.KeyRotated {
			sawDuration = d["grace_period"] == int64(3600)
		}
	}
	if !sawDuration {
		t.Fatalf("key.rotated entry without grace_period in seconds: %v", log.Data["entries"])
	}
	if t.Failed() {
		t.Logf("answers checked: %s", strings.Join(answers, ", "))
	}
}

// The log answers newest first; before pages back, after follows forward.
func TestLogNewestFirstWithPaging(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil) // entries 1, 2
	for i := 0; i < 3; i++ {
		e.issue("svc", fmt.Sprintf("k%d", i), "r", nil) // entries 3, 4, 5
	}
	seqs := func(resp *logical.Response) string {
		var out []string
		for _, ev := range resp.Data["entries"].([]map[string]interface{}) {
			out = append(out, fmt.Sprint(ev["seq"]))
		}
		return strings.Join(out, ",")
	}
	page := e.ok(logical.ReadOperation, "log", map[string]interface{}{"limit": 2})
	if got := seqs(page); got != "5,4" || page.Data["next_before"] != uint64(4) {
		t.Fatalf("newest page: %s next_before=%v", got, page.Data["next_before"])
	}
	page = e.ok(logical.ReadOperation, "log", map[string]interface{}{"limit": 2, "before": 4})
	if got := seqs(page); got != "3,2" || page.Data["next_before"] != uint64(2) {
		t.Fatalf("second page: %s next_before=%v", got, page.Data["next_before"])
	}
	page = e.ok(logical.ReadOperation, "log", map[string]interface{}{"limit": 2, "before": 2})
	if got := seqs(page); got != "1" || page.Data["next_before"] != nil {
		t.Fatalf("last page: %s next_before=%v", got, page.Data["next_before"])
	}
	page = e.ok(logical.ReadOperation, "log", map[string]interface{}{"after": 0, "limit": 3})
	if got := seqs(page); got != "1,2,3" || page.Data["next_after"] != uint64(3) {
		t.Fatalf("forward page: %s next_after=%v", got, page.Data["next_after"])
	}
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"after": 1, "before": 3}, "after and before")
	e.userErr(logical.ReadOperation, "log", map[string]interface{}{"before": 0}, "before")
}

// A client_ip that is no address is a 400 naming the field, in both forms
// of verify, also when no CIDRs are bound (nothing would check it then).
func TestVerifyRefusesClientIPThatIsNoAddress(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.issue("svc", "k", "r", nil)
	for _, bad := range []string{"not-an-ip", "10.1.2", "10.1.2.3/32", "host:443"} {
		e.userErr(logical.UpdateOperation, "verify", map[string]interface{}{"key": key, "client_ip": bad}, "client_ip")
		resp, err := e.verifyGet(map[string][]string{"X-Api-Key": {key}}, map[string]interface{}{"client_ip": bad})
		if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "client_ip") {
			t.Fatalf("GET verify with client_ip=%q: %v %v", bad, resp, err)
		}
	}
	for _, good := range []string{"10.1.2.3", "10.1.2.3:443", "2001:db8::1", "[2001:db8::1]:443"} {
		if c := e.verifyCode(key, map[string]interface{}{"client_ip": good}); c != "" {
			t.Fatalf("client_ip=%q: code %q", good, c)
		}
	}
}

// Hints in error messages name the mount the request came through.
func TestErrorHintsNameTheMount(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation:  logical.CreateOperation,
		Path:       "keys/svc/k",
		MountPoint: "team/keys/",
		Data:       map[string]interface{}{"role": "nope"},
		Storage:    e.storage,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("issuance with a missing role: %v %v", resp, err)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, "vault list team/keys/roles") || strings.Contains(msg, mountPlaceholder) {
		t.Fatalf("hint does not name the mount: %q", msg)
	}
}
