package notifications

import (
	"testing"
	"time"
)

// A response policy acts on its own in a running Vault: a leak report's
// alert locks the client, the lock and the response name the alert, and
// the endpoint is told of all three.
func TestResponsePolicyLocksTheClient(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	allowLoopback(t, m, nil)
	rx := receiverFor(t, m, "secops", map[string]interface{}{"event_types": "alert.*,client.locked,response.*"})
	write(t, m+"/responses/lock-on-leak", map[string]interface{}{"alert_types": "leak_reported", "action": "lock_client"})
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	key := write(t, m+"/keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	write(t, m+"/leaks", map[string]interface{}{"key": key, "source": "https://paste.example/x"})
	waitFor(t, 30*time.Second, "the client to be locked", func() bool {
		return read(t, m+"/clients/acme").Data["status"] == "locked"
	})
	waitFor(t, 30*time.Second, "the alert, the lock and the response at the endpoint", func() bool {
		got := types(rx)
		return got["alert.leak_reported"] == 1 && got["client.locked"] == 1 && got["response.executed"] == 1
	})
	var alertID string
	for _, e := range rx.Events() {
		if e.Type == "alert.leak_reported" {
			alertID = e.Details["alert_id"]
		}
	}
	for _, e := range rx.Events() {
		if e.Type == "response.executed" && (e.Details["alert_id"] != alertID || e.Actor["type"] != "system" || e.Details["action"] != "lock_client") {
			t.Fatalf("response entry %+v (alert %s)", e, alertID)
		}
	}
	// Undone as a manual lock is.
	write(t, m+"/clients/acme/unlock", nil)
	if st := read(t, m+"/clients/acme").Data["status"]; st != "active" {
		t.Fatalf("status after unlock: %v", st)
	}
}
