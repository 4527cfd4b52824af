package governance

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/promtext"
)

// A leak report revokes the key at once, lands on the revocation list and in
// the alerts, and never echoes the key.
func TestLeakReportRevokes(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "r", nil)
	key := issue(t, m, "billing", "main", "r")

	s := write(t, m+"/leaks", map[string]interface{}{"key": key, "reporter": "secret-scanner", "source": "https://git.example/acme/app/commit/abc"})
	body, _ := json.Marshal(s)
	if strings.Contains(string(body), key) {
		t.Fatal("leak response contains the key")
	}
	if s.Data["status"] != "revoked" || s.Data["client"] != "billing" || s.Data["alert_id"] == nil {
		t.Fatalf("leak report: %v", s.Data)
	}
	if active, code := verify(t, m, key, nil); active || code != "revoked" {
		t.Fatalf("verify after leak: active=%v code=%q", active, code)
	}
	revs := read(t, m+"/clients/billing/revocations").Data["revocations"].([]interface{})
	if len(revs) != 1 || !strings.Contains(revs[0].(map[string]interface{})["reason"].(string), "secret-scanner") {
		t.Fatalf("revocation list: %v", revs)
	}
	alerts, err := client(t).Logical().ReadWithData(m+"/alerts", map[string][]string{"type": {"leak_reported"}})
	if err != nil {
		t.Fatal(err)
	}
	list := alerts.Data["alerts"].([]interface{})
	if len(list) != 1 || list[0].(map[string]interface{})["details"].(map[string]interface{})["reporter"] != "secret-scanner" {
		t.Fatalf("leak alerts: %v", alerts.Data)
	}
	types := logTypes(t, m)
	if !types["leak.reported"] || !types["alert.raised"] || !types["key.revoked"] {
		t.Fatalf("lifecycle log: %v", types)
	}

	// Harmless repeats, unknown keys and junk.
	if s = write(t, m+"/leaks", map[string]interface{}{"key": key}); s.Data["status"] != "already_revoked" {
		t.Fatalf("repeat: %v", s.Data)
	}
	if s = write(t, m+"/leaks", map[string]interface{}{"key": "ghp_notours"}); s.Data["status"] != "malformed" {
		t.Fatalf("junk: %v", s.Data)
	}
	// The audit log holds no plaintext key.
	audit, err := readFile(t)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(audit, key) {
		t.Fatal("audit log contains the leaked key in plaintext")
	}
}

// A burst of bad verifies (guessing) raises an alert; reading alerts
// persists what verify detected, so no need to wait for the periodic tick.
func TestFailedVerifyBurstRaisesAlert(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "5m"})
	for i := 0; i < 5; i++ {
		k := "ak_prod_guess" + strings.Repeat("x", i)
		if active, _ := verify(t, m, k, map[string]interface{}{"client_ip": "203.0.113.66"}); active {
			t.Fatal("a guess verified")
		}
	}
	l, err := client(t).Logical().List(m + "/alerts")
	if err != nil || l == nil {
		t.Fatalf("list alerts: %v %v", l, err)
	}
	info := l.Data["key_info"].(map[string]interface{})
	var found map[string]interface{}
	for _, v := range info {
		if a := v.(map[string]interface{}); a["type"] == "failed_verify_burst" {
			found = a
		}
	}
	if found == nil || found["severity"] != "critical" {
		t.Fatalf("no failed_verify_burst alert: %v", info)
	}
	// Readable one by one, acknowledgeable, and in the lifecycle log.
	id := l.Data["keys"].([]interface{})[0].(string)
	a := read(t, m+"/alerts/"+id)
	if !strings.Contains(a.Data["details"].(map[string]interface{})["sources"].(string), "203.0.113.66") {
		t.Fatalf("alert details: %v", a.Data)
	}
	if s := write(t, m+"/alerts/"+id+"/ack", map[string]interface{}{"note": "pen test"}); s.Data["acknowledged"] != true {
		t.Fatalf("ack: %v", s.Data)
	}
	if !logTypes(t, m)["alert.raised"] {
		t.Fatal("alert not in the lifecycle log")
	}
}

// The Prometheus exposition parses and agrees with the JSON metrics.
func TestMetricsPrometheusParses(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "r", nil)
	key := issue(t, m, "billing", "a", "r")
	issue(t, m, "billing", "b", "r")
	write(t, m+"/keys/billing/b/rotate", nil)
	write(t, m+"/keys/billing/b/revoke", nil)
	verify(t, m, key, nil)
	verify(t, m, "ak_prod_nope", nil)

	js := read(t, m+"/metrics").Data
	if js["issued_total"].(json.Number).String() != "2" || js["rotated_total"].(json.Number).String() != "1" || js["revoked_total"].(json.Number).String() != "1" {
		t.Fatalf("json metrics: %v", js)
	}

	c := client(t)
	r := c.NewRequest("GET", "/v1/"+m+"/metrics")
	r.Params.Set("format", "prometheus")
	resp, err := c.RawRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := promtext.Parse(string(raw))
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	for name, want := range map[string]float64{
		`apikeys_keys{state="active"}`:                       1,
		`apikeys_keys{state="revoked"}`:                      1,
		`apikeys_lifecycle_events_total{type="key.issued"}`:  2,
		`apikeys_lifecycle_events_total{type="key.rotated"}`: 1,
		`apikeys_verify_total{outcome="active"}`:             1,
		`apikeys_rotation_coverage_ratio`:                    1,
		`apikeys_keys_overdue`:                               0,
		`apikeys_key_age_seconds_count`:                      1,
	} {
		if got, ok := samples[name]; !ok || got != want {
			t.Fatalf("%s = %v (present %v), want %v\n%s", name, got, ok, want, raw)
		}
	}
	if got := samples[`apikeys_verify_total{outcome="malformed"}`] + samples[`apikeys_verify_total{outcome="not_found"}`]; got != 1 {
		t.Fatalf("failed verifies = %v\n%s", got, raw)
	}
	if strings.Contains(string(raw), key) {
		t.Fatal("metrics contain a key")
	}
}

// The policy document renders the config and roles in force.
func TestPolicyDocumentMatchesConfig(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{
		"key_prefix": "acme", "entropy_bits": 160, "risk_tiers": []string{"low=180d", "critical=7d"},
		"default_risk_tier": "low", "default_grace_period": "6h", "token_ttl": "2m", "signing_key_rotation_period": "720h",
	})
	setup(t, m, "billing", "crit", map[string]interface{}{"risk_tier": "critical", "grace_period": "1h", "ttl": "15m", "max_ttl": "1h"})
	cfg := read(t, m+"/config").Data
	p := read(t, m+"/policy").Data

	kf := p["key_format"].(map[string]interface{})
	if kf["prefix"] != cfg["key_prefix"] || kf["entropy_bits"].(json.Number).String() != cfg["entropy_bits"].(json.Number).String() {
		t.Fatalf("key_format %v vs config %v", kf, cfg)
	}
	if kf["random_length"].(json.Number).String() != "27" || !strings.Contains(kf["checksum"].(string), "CRC32") {
		t.Fatalf("key_format = %v", kf)
	}
	if p["storage"].(map[string]interface{})["hash"] != "HMAC-SHA256" {
		t.Fatalf("storage = %v", p["storage"])
	}
	tiers := p["rotation"].(map[string]interface{})["risk_tiers"].(map[string]interface{})
	cfgTiers := cfg["risk_tiers"].(map[string]interface{})
	if len(tiers) != len(cfgTiers) {
		t.Fatalf("tiers %v vs %v", tiers, cfgTiers)
	}
	for name, period := range cfgTiers {
		tier := tiers[name].(map[string]interface{})
		if tier["rotation_period"].(json.Number).String() != period.(json.Number).String() || tier["grace_period"].(json.Number).String() != "21600" {
			t.Fatalf("tier %s = %v, config %v", name, tier, period)
		}
	}
	role := p["roles"].(map[string]interface{})["crit"].(map[string]interface{})
	for field, want := range map[string]string{"rotation_period": "604800", "grace_period": "3600", "ttl": "900", "max_ttl": "3600"} {
		if role[field].(json.Number).String() != want {
			t.Fatalf("role crit %s = %v, want %s", field, role[field], want)
		}
	}
	lease := p["leased_keys"].(map[string]interface{})
	if lease["mount_max_lease_ttl"].(json.Number).String() != "2764800" { // the dev server's 768h
		t.Fatalf("leased_keys = %v", lease)
	}
	tok := p["tokens"].(map[string]interface{})
	if tok["token_ttl"].(json.Number).String() != "120" || tok["signing_key_rotation_period"].(json.Number).String() != "2592000" || !strings.Contains(tok["algorithm"].(string), "EdDSA") {
		t.Fatalf("tokens = %v", tok)
	}
}
