package verify

import (
	"crypto/rand"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// unknownKey is a well-formed key (valid checksum) no mount issued.
func unknownKey(t *testing.T) string {
	t.Helper()
	k, err := keyformat.Generate(rand.Reader, "ak", "prod", keyformat.DefaultEntropyBits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// burstAlerts reads the failed_verify_burst alerts (newest first); the
// read stores what verify detected, handing it over.
func burstAlerts(t *testing.T, m string) []map[string]interface{} {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(m+"/alerts", map[string][]string{"type": {"failed_verify_burst"}})
	if err != nil || s == nil {
		t.Fatalf("reading alerts: %v %v", s, err)
	}
	var out []map[string]interface{}
	for _, a := range s.Data["alerts"].([]interface{}) {
		out = append(out, a.(map[string]interface{}))
	}
	return out
}

// Failed verifies after a failed_verify_burst alert was read used to be
// counted into the alert already stored and never written: 100 unknown
// keys from a new address appeared in no alert.
func TestGuessingCountsAfterAlertRead(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"failed_verify_threshold": 5, "alert_window": "1h"})
	c := client(t)
	guess := func(n int, ip string) {
		for i := 0; i < n; i++ {
			if d := verify(t, c, m, unknownKey(t), map[string]interface{}{"client_ip": ip}); d["code"] != "not_found" {
				t.Fatalf("unknown key: %v", d)
			}
		}
	}
	guess(6, "203.0.113.9")
	first := burstAlerts(t, m)
	if len(first) != 1 || num(t, first[0]["count"]) != 6 {
		t.Fatalf("first burst: %v", first)
	}
	guess(100, "198.51.100.7")
	got := burstAlerts(t, m)
	if len(got) != 2 {
		t.Fatalf("after 100 more unknown keys from a new address: %d alerts %v", len(got), got)
	}
	newer := got[0]
	details := newer["details"].(map[string]interface{})
	if num(t, newer["count"]) != 100 || details["sources"] != "198.51.100.7=100" || details["continues"] != first[0]["id"] {
		t.Fatalf("follow-up alert: %v", newer)
	}
	if total := num(t, got[0]["count"]) + num(t, got[1]["count"]); total != 106 {
		t.Fatalf("alerts count %d failures, want 106", total)
	}
}
