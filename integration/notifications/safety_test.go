package notifications

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/webhookrx"
)

// recentOf returns an endpoint's latest attempts, newest first.
func recentOf(t *testing.T, m, endpoint string) []map[string]interface{} {
	t.Helper()
	st := read(t, m+"/notifications/deliveries").Data["endpoints"].(map[string]interface{})[endpoint].(map[string]interface{})
	var out []map[string]interface{}
	for _, a := range st["recent"].([]interface{}) {
		out = append(out, a.(map[string]interface{}))
	}
	return out
}

// Each class of address a webhook must not reach is refused: at the
// write for a literal address, at connection time for a name that
// resolves to one (so DNS cannot smuggle it in).
func TestOutboundAddressesAreRefused(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	c := client(t)
	for url, want := range map[string]string{
		"http://hooks.example.com/x":                    "https",
		"https://169.254.169.254/latest/meta-data":      "metadata",
		"https://169.254.10.10/hook":                    "link-local",
		"https://[fd00:ec2::254]/latest":                "metadata",
		"https://100.100.100.200/":                      "metadata",
		"https://10.1.2.3/hook":                         "private",
		"https://192.168.1.10/hook":                     "private",
		"https://127.0.0.1/hook":                        "loopback",
		"https://[::ffff:169.254.169.254]/":             "metadata",
		"https://user:pw@hooks.example.com/":            "url",
		"https://0.0.0.0/":                              "url",
		"https://hooks.example.com/x?token=s3cr3t#frag": "url",
	} {
		_, err := c.Logical().Write(m+"/notifications/endpoints/bad", map[string]interface{}{"url": url, "event_types": "*"})
		expectStatus(t, err, http.StatusBadRequest, "")
		if !strings.Contains(strings.ToLower(err.Error()), want) {
			t.Errorf("%s: error %q does not say %q", url, err, want)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the error repeats the URL's query: %v", url, err)
		}
	}
	if keys := vaulttest.RawList(t, m, "notifications/endpoints/"); len(keys) != 0 {
		t.Fatalf("a refused endpoint was stored: %v", keys)
	}

	// A name that resolves to loopback passes the write and is refused
	// when the delivery connects: the receiver is never reached.
	rx, err := webhookrx.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rx.Close)
	write(t, m+"/notifications/config", map[string]interface{}{"allow_http": true})
	port := rx.URL[strings.LastIndex(rx.URL, ":")+1:]
	write(t, m+"/notifications/endpoints/sneaky", map[string]interface{}{"url": "http://localhost:" + port, "event_types": "*"})
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	waitFor(t, 30*time.Second, "a refused attempt", func() bool {
		for _, a := range recentOf(t, m, "sneaky") {
			if strings.Contains(fmt.Sprint(a["error"]), "loopback") {
				return true
			}
		}
		return false
	})
	if hits, _ := rx.Counts(); hits != 0 {
		t.Fatalf("the loopback receiver was reached %d times", hits)
	}
}

// A receiver that does not answer is cut off at the timeout (and retried);
// one that answers with an endless body is read up to the cap, not to
// its end, and counts as delivered.
func TestSlowAndHugeResponsesAreCutOff(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	allowLoopback(t, m, map[string]interface{}{"timeout": "1s"})
	slow := receiverFor(t, m, "slow", map[string]interface{}{"event_types": "key.issued"})
	slow.SetDelay(5 * time.Second)
	huge := receiverFor(t, m, "huge", map[string]interface{}{"event_types": "key.issued"})
	huge.SetHuge(true)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	write(t, m+"/keys/acme/a", map[string]interface{}{"role": "svc"})
	waitFor(t, 30*time.Second, "the slow receiver's timed-out attempt", func() bool {
		for _, a := range recentOf(t, m, "slow") {
			if a["outcome"] == "failed" && strings.Contains(fmt.Sprint(a["error"]), "timed out") {
				if ms := latencyMS(t, a); ms > 3000 {
					t.Fatalf("attempt took %.0f ms against a 1s timeout", ms)
				}
				return true
			}
		}
		return false
	})
	waitFor(t, 30*time.Second, "the huge answer's delivery", func() bool {
		for _, a := range recentOf(t, m, "huge") {
			if a["outcome"] == "delivered" {
				if ms := latencyMS(t, a); ms > 3000 {
					t.Fatalf("a huge answer held the delivery %.0f ms", ms)
				}
				return true
			}
		}
		return false
	})
}

// The plugin process dies after a change and before its delivery: the
// event is delivered once the plugin runs again, and the receiver sees
// each event once after de-duplication.
func TestDeliveryAfterThePluginIsKilled(t *testing.T) {
	m := newMount(t)
	allowLoopback(t, m, nil)
	rx := receiverFor(t, m, "ops", map[string]interface{}{"event_types": "key.issued,key.revoked"})
	rx.SetDown(true)
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	write(t, m+"/keys/acme/a", map[string]interface{}{"role": "svc"})
	write(t, m+"/keys/acme/a/revoke", map[string]interface{}{"reason": "before the crash"})
	waitFor(t, 30*time.Second, "failed attempts", func() bool { return len(recentOf(t, m, "ops")) > 0 })
	if _, err := vaulttest.Shared.KillPlugin(); err != nil {
		t.Fatal(err)
	}
	rx.SetDown(false)
	// Vault starts the plugin again on the next request to a mount; the
	// mount's initialization starts delivery.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if _, err := client(t).Logical().ReadWithContext(ctx, m+"/notifications/config"); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // the plugin restarting
	}
	waitFor(t, 90*time.Second, "both events after the restart", func() bool { return len(rx.Events()) == 2 })
	got := map[string]bool{}
	for _, e := range rx.Events() {
		got[e.Type] = true
	}
	if !got["key.issued"] || !got["key.revoked"] {
		t.Fatalf("received %v", rx.Events())
	}
}

func latencyMS(t *testing.T, a map[string]interface{}) float64 {
	t.Helper()
	ms, err := strconv.ParseFloat(fmt.Sprint(a["latency_ms"]), 64)
	if err != nil {
		t.Fatalf("latency_ms %v: %v", a["latency_ms"], err)
	}
	return ms
}
