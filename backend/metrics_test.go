package backend

import (
	"time"

	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/promtext"
)

func TestMetricsJSONAndPrometheus(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"rotation_period": "720h"})
	e.ok(logical.CreateOperation, "keys/billing/a", map[string]interface{}{"role": "r"})
	e.clock.Advance(10 * record.Day)
	e.ok(logical.CreateOperation, "keys/billing/b", map[string]interface{}{"role": "r"})
	e.ok(logical.CreateOperation, "keys/billing/c", map[string]interface{}{"role": "r"})
	e.ok(logical.UpdateOperation, "keys/billing/c/revoke", nil)
	e.ok(logical.UpdateOperation, "keys/billing/b/rotate", nil)
	e.b.onVerify(record.VerifyInput{}, record.VerifyResult{Code: record.CodeMalformed})
	e.tick()
	e.b.onVerify(record.VerifyInput{}, record.VerifyResult{Code: record.CodeMalformed}) // not flushed yet: still counted

	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	states := m["keys_by_state"].(map[string]int)
	if states[record.StateActive] != 2 || states[record.StateRevoked] != 1 || states[record.StateLocked] != 0 {
		t.Fatalf("keys_by_state = %v", states)
	}
	if m["issued_total"] != uint64(3) || m["rotated_total"] != uint64(1) || m["revoked_total"] != uint64(1) {
		t.Fatalf("counts: issued %v rotated %v revoked %v", m["issued_total"], m["rotated_total"], m["revoked_total"])
	}
	if m["managed_keys"] != 2 || m["rotation_coverage"] != float64(1) || m["overdue_keys"] != 0 {
		t.Fatalf("coverage: %v", m)
	}
	if n := m["verify_outcomes"].(map[string]uint64)[record.CodeMalformed]; n != 2 {
		t.Fatalf("malformed verifies = %d", n)
	}
	age := m["key_age"].(map[string]interface{})
	buckets := age["buckets"].([]map[string]interface{})
	// a is 10 days old, b's current secret is new: one within 1d, two within 30d.
	if buckets[0]["count"] != 1 || buckets[2]["count"] != 2 || age["count"] != 2 {
		t.Fatalf("key age buckets = %v", buckets)
	}

	resp := e.ok(logical.ReadOperation, "metrics", map[string]interface{}{"format": "prometheus"})
	if resp.Data[logical.HTTPContentType] != string(prometheusTextFormat) || resp.Data[logical.HTTPStatusCode] != 200 {
		t.Fatalf("raw response: %v", resp.Data)
	}
	samples, err := promtext.Parse(string(resp.Data[logical.HTTPRawBody].([]byte)))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		`apikeys_keys{state="active"}`:                       2,
		`apikeys_lifecycle_events_total{type="key.issued"}`:  3,
		`apikeys_verify_total{outcome="malformed"}`:          2,
		`apikeys_verify_total{outcome="active"}`:             0,
		`apikeys_rotation_coverage_ratio`:                    1,
		`apikeys_key_age_seconds_bucket{le="+Inf"}`:          2,
		`apikeys_key_age_seconds_bucket{le="86400"}`:         1,
		`apikeys_time_to_revoke_seconds{quantile="0.5"}`:     0,
		`apikeys_alerts_open{type="failed_verify_burst"}`:    0,
		`apikeys_lifecycle_events_total{type="key.revoked"}`: 1,
	} {
		if got, ok := samples[name]; !ok || got != want {
			t.Fatalf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	e.userErr(logical.ReadOperation, "metrics", map[string]interface{}{"format": "xml"}, "format must be")
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.95, 10}, {0.1, 1}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Fatalf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Fatal("empty quantile")
	}
}

// Verify outcomes by client: the clients of metrics_clients by name, the
// rest as _other, keyless answers as _none; flushed and unflushed counts
// add up, and a client dropped from the list folds into _other at the next
// flush, so the series stay bounded by the list.
func TestMetricsVerifyByClient(t *testing.T) {
	e := newTestEnv(t)
	for _, c := range []string{"billing", "shop", "search"} {
		e.setupClientRole(c, "internal", "r-"+c, nil)
	}
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"metrics_clients": "shop,billing,billing"})
	if got := e.ok(logical.ReadOperation, "config", nil).Data["metrics_clients"]; fmt.Sprint(got) != "[billing shop]" {
		t.Fatalf("metrics_clients read back as %v", got)
	}
	keys := map[string]string{}
	for _, c := range []string{"billing", "shop", "search"} {
		keys[c] = e.ok(logical.CreateOperation, "keys/"+c+"/main", map[string]interface{}{"role": "r-" + c}).Data["key"].(string)
	}
	e.verify(keys["billing"], nil)
	e.verify(keys["search"], nil)
	e.tick()
	e.verify(keys["billing"], nil) // not flushed yet: still counted
	e.verify(keys["shop"], nil)
	e.verifyCode("ak_live_nope", nil)

	want := map[string]float64{
		`apikeys_verify_by_client_total{client="billing",outcome="active"}`:  2,
		`apikeys_verify_by_client_total{client="shop",outcome="active"}`:     1,
		`apikeys_verify_by_client_total{client="_other",outcome="active"}`:   1,
		`apikeys_verify_by_client_total{client="_none",outcome="malformed"}`: 1,
	}
	e.checkVerifyByClient(want)

	// billing leaves the list: its counts move to _other.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"metrics_clients": "shop"})
	e.tick()
	delete(want, `apikeys_verify_by_client_total{client="billing",outcome="active"}`)
	want[`apikeys_verify_by_client_total{client="_other",outcome="active"}`] = 3
	e.checkVerifyByClient(want)

	e.userErr(logical.UpdateOperation, "config", map[string]interface{}{"metrics_clients": "bad name"}, "metrics_clients")
}

// checkVerifyByClient asserts the apikeys_verify_by_client_total series of
// the exposition are exactly want.
func (e *testEnv) checkVerifyByClient(want map[string]float64) {
	e.t.Helper()
	raw := e.ok(logical.ReadOperation, "metrics", map[string]interface{}{"format": "prometheus"}).Data[logical.HTTPRawBody].([]byte)
	samples, err := promtext.Parse(string(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	got := map[string]float64{}
	for name, v := range samples {
		if strings.HasPrefix(name, "apikeys_verify_by_client_total") {
			got[name] = v
		}
	}
	if !reflect.DeepEqual(got, want) {
		e.t.Fatalf("verify by client = %v, want %v", got, want)
	}
}

// Lifespans count ended secrets from their version's creation to the entry
// that ended them, folded from the log: a revocation two days after
// issuance, and a rotated-out version retired at the end of its grace.
func TestMetricsKeyLifespans(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"rotation_period": "720h", "grace_period": "1h"})
	e.ok(logical.CreateOperation, "keys/billing/a", map[string]interface{}{"role": "r"})
	e.ok(logical.CreateOperation, "keys/billing/b", map[string]interface{}{"role": "r"})
	e.clock.Advance(2 * record.Day)
	e.ok(logical.UpdateOperation, "keys/billing/a/revoke", nil)
	e.ok(logical.UpdateOperation, "keys/billing/b/rotate", nil)
	// b's first version retires at the end of its grace (the adoption
	// decision is taken a little before).
	for _, step := range []time.Duration{58 * time.Minute, 2 * time.Minute} {
		e.clock.Advance(step)
		if _, err := e.b.runRotationTick(e.ctx, e.storage); err != nil {
			t.Fatal(err)
		}
	}
	e.tick() // folds the log

	l := e.ok(logical.ReadOperation, "metrics", nil).Data["key_lifespan"].(map[string]interface{})
	if l["count"] != uint64(2) {
		t.Fatalf("key_lifespan = %v, want 2 ended secrets", l)
	}
	raw := e.ok(logical.ReadOperation, "metrics", map[string]interface{}{"format": "prometheus"}).Data[logical.HTTPRawBody].([]byte)
	samples, err := promtext.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		`apikeys_key_lifespan_seconds_bucket{le="3600"}`:   0,
		`apikeys_key_lifespan_seconds_bucket{le="86400"}`:  0,
		`apikeys_key_lifespan_seconds_bucket{le="604800"}`: 2,
		`apikeys_key_lifespan_seconds_count`:               2,
	} {
		if got, ok := samples[name]; !ok || got != want {
			t.Fatalf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// a lived 2 days; b's first version 2 days and its hour of grace.
	if sum := samples[`apikeys_key_lifespan_seconds_sum`]; sum < 4*86400 || sum > 4*86400+3*3600 {
		t.Fatalf("lifespan sum %v s", sum)
	}
}

// A new mount, before any verify, has no series of verify counts by
// client: the exposition leaves the family out rather than fail the scrape.
func TestMetricsOfANewMountRender(t *testing.T) {
	e := newTestEnv(t)
	raw := e.ok(logical.ReadOperation, "metrics", map[string]interface{}{"format": "prometheus"}).Data[logical.HTTPRawBody].([]byte)
	samples, err := promtext.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := samples[`apikeys_keys{state="active"}`]; !ok || got != 0 {
		t.Fatalf("active keys of a new mount = %v (present %v)", got, ok)
	}
}
