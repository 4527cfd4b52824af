package notifications

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// Every kind of event a user acts on arrives, verified by the Standard
// Webhooks reference library with the endpoint's secret; nothing secret is
// in a payload; a tampered delivery, or one replayed outside the
// timestamp tolerance, is refused by that library.
func TestDeliveriesArriveVerified(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	allowLoopback(t, m, nil)
	rx := receiverFor(t, m, "secops", map[string]interface{}{"event_types": "*"})
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	key := write(t, m+"/keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	write(t, m+"/keys/acme/main/rotate", nil)
	write(t, m+"/keys/acme/other", map[string]interface{}{"role": "svc"})
	write(t, m+"/keys/acme/other/revoke", map[string]interface{}{"reason": "test"})
	write(t, m+"/leaks", map[string]interface{}{"key": key, "source": "https://paste.example/abc"})
	write(t, m+"/clients/acme/lock", map[string]interface{}{"reason": "incident"})
	write(t, m+"/clients/acme/unlock", map[string]interface{}{"reason": "resolved"})
	if _, err := client(t).Logical().Delete(m + "/clients/acme"); err != nil {
		t.Fatal(err)
	}
	want := []string{"key.issued", "key.rotated", "key.revoked", "leak.reported", "alert.leak_reported", "client.locked", "client.unlocked", "client.deleted"}
	waitFor(t, 60*time.Second, "every event type", func() bool {
		got := types(rx)
		for _, w := range want {
			if got[w] == 0 {
				return false
			}
		}
		return true
	})
	for _, e := range rx.Events() {
		if e.Seq == 0 || e.ID == "" {
			t.Fatalf("event without seq or id: %+v", e)
		}
	}
	for _, raw := range rx.Raws() {
		if bytes.Contains(raw.Body, []byte(key)) {
			t.Fatalf("a payload holds the key: %s", raw.Body)
		}
	}
	_, rejectedBefore := rx.Counts()

	// Tampering and replaying, at the receiver.
	orig := rx.Raws()[0]
	post := func(h http.Header, body []byte) int {
		req, err := http.NewRequest(http.MethodPost, rx.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(orig.Header, append(bytes.Clone(orig.Body[:len(orig.Body)-1]), ' ', '}')); code != http.StatusUnauthorized {
		t.Fatalf("a tampered body was answered %d", code)
	}
	old := orig.Header.Clone()
	ts, _ := strconv.ParseInt(old.Get("webhook-timestamp"), 10, 64)
	old.Set("webhook-timestamp", strconv.FormatInt(ts-3600, 10))
	if code := post(old, orig.Body); code != http.StatusUnauthorized {
		t.Fatalf("a delivery replayed an hour later was answered %d", code)
	}
	if _, rejected := rx.Counts(); rejected != rejectedBefore+2 {
		t.Fatalf("receiver rejected %d, want %d", rejected, rejectedBefore+2)
	}
	if code := post(orig.Header, orig.Body); code != http.StatusNoContent {
		t.Fatalf("the untouched delivery was answered %d", code)
	}

	// The deliveries listing shows the attempts.
	st := read(t, m+"/notifications/deliveries").Data["endpoints"].(map[string]interface{})["secops"].(map[string]interface{})
	if vaulttest.Num(t, st["delivered"]) < int64(len(want)) || len(st["recent"].([]interface{})) == 0 {
		t.Fatalf("deliveries: %v", st)
	}
}

// Notices come from the governance sweep (Vault's periodic function, about
// once a minute): a key its owner must rotate gets key.rotation_due_soon,
// a key whose role asks for it gets key.expiring.
func TestNoticesArrive(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	allowLoopback(t, m, nil)
	write(t, m+"/config", map[string]interface{}{"rotation_notice_lead_times": "8760h"})
	rx := receiverFor(t, m, "owners", map[string]interface{}{"event_types": "key.rotation_due_soon,key.expiring"})
	setupClientRole(t, m, "partner", "external", "ext", map[string]interface{}{"rotation_period": "720h", "key_lifetime": "2160h", "expiry_notice": "8760h"})
	write(t, m+"/keys/partner/main", map[string]interface{}{"role": "ext"})
	waitFor(t, 150*time.Second, "rotation and expiry notices", func() bool {
		got := types(rx)
		return got["key.rotation_due_soon"] == 1 && got["key.expiring"] == 1
	})
	for _, e := range rx.Events() {
		if e.Client != "partner" || e.Details["lead"] == "" || e.Actor["type"] != "system" {
			t.Fatalf("notice %+v", e)
		}
	}
}

// A receiver that is down gets everything once it is back; the listing
// shows the failed attempts and the retries waiting meanwhile.
func TestRetriesUntilTheReceiverIsBack(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	allowLoopback(t, m, nil)
	rx := receiverFor(t, m, "ops", map[string]interface{}{"event_types": "key.issued"})
	rx.SetDown(true)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	for i := 0; i < 20; i++ {
		write(t, m+"/keys/acme/k"+strconv.Itoa(i), map[string]interface{}{"role": "svc"})
	}
	waitFor(t, 30*time.Second, "failed attempts to show", func() bool {
		st := read(t, m+"/notifications/deliveries").Data["endpoints"].(map[string]interface{})["ops"].(map[string]interface{})
		return vaulttest.Num(t, st["failures"]) > 0 && len(st["pending"].([]interface{})) > 0
	})
	rx.SetDown(false)
	waitFor(t, 90*time.Second, "all 20 events after the receiver came back", func() bool { return len(rx.Events()) == 20 })
}
