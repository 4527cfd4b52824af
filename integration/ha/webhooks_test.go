package ha

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/webhookrx"
)

// Keys issued before and after the failover of TestWebhookFailoverMidBacklog.
const (
	webhookKeysBefore = 30
	webhookKeysAfter  = 10
)

// webhookDeadline bounds waiting for the backlog once the receiver is back:
// the engine retries the oldest failed delivery as a probe with backoff
// (5s doubling), so the probe after a minute of downtime is at most about a
// minute away, and then everything waiting goes at once.
const webhookDeadline = 120 * time.Second

// TestWebhookFailoverMidBacklog: webhook deliveries fail while the receiver
// is down, leaving failed deliveries waiting and a backlog in the lifecycle
// log; the active node steps down mid-backlog. The new active node carries
// on from the delivery state the old one stored (the outbox runs only where
// the mount may write, with per-endpoint cursors in Vault storage), and once
// the receiver is back, every key.issued event, from before and after the
// failover, arrives exactly once as a distinct webhook-id, verified by the
// Standard Webhooks reference library, and nothing is left waiting.
func TestWebhookFailoverMidBacklog(t *testing.T) {
	m := newMount(t)
	a := waitActive(t)
	ca := node(t, a)
	write(t, ca, m+"/notifications/config", map[string]interface{}{"allow_http": true, "allow_loopback": true})
	rx, err := webhookrx.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rx.Close)
	rx.SetDown(true)
	s := write(t, ca, m+"/notifications/endpoints/ops", map[string]interface{}{"url": rx.URL, "event_types": "key.issued"})
	secret, _ := s.Data["secret"].(string)
	if err := rx.SetSecrets(secret); err != nil {
		t.Fatal(err)
	}
	setupClient(t, ca, m, "svc")
	write(t, ca, m+"/roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})

	names := map[string]string{} // key_id -> key name
	issueKeys := func(c *api.Client, from, n int) {
		for i := from; i < from+n; i++ {
			name := fmt.Sprintf("k%02d", i)
			s := write(t, c, m+"/keys/svc/"+name, map[string]interface{}{"role": "r"})
			id, _ := s.Data["key_id"].(string)
			if id == "" || names[id] != "" {
				t.Fatalf("issue %s: key_id %q (empty or already seen)", name, id)
			}
			names[id] = name
		}
	}
	issueKeys(ca, 0, webhookKeysBefore)

	// A backlog under the first leader: deliveries failed and wait for a
	// retry. Only the active node runs the plugin, so only it attempts them.
	before := waitDeliveries(t, ca, m, "ops", 30*time.Second, "failed deliveries waiting under the first leader", func(st map[string]interface{}) bool {
		return num(t, st["failures"]) > 0 && len(st["pending"].([]interface{})) > 0
	})
	requirePluginOnlyOn(t, a)
	if got := len(rx.Events()); got != 0 {
		t.Fatalf("the receiver is down but has %d events", got)
	}
	hitsBefore, _ := rx.Counts()
	if hitsBefore == 0 {
		t.Fatal("deliveries failed without reaching the receiver")
	}
	t.Logf("under %s: %d requests refused; state %s", nodeID(a), hitsBefore, summary(t, before))

	b := stepDown(t, a)
	requireActive(t, b)
	requirePluginOnlyOn(t, b)
	cb := node(t, b)

	// The new leader reads the state the old one stored: the same
	// deliveries wait, none forgotten, and the cursor did not go back.
	carried := deliveries(t, cb, m, "ops")
	waiting := map[int64]bool{}
	for _, p := range carried["pending"].([]interface{}) {
		waiting[num(t, p.(map[string]interface{})["seq"])] = true
	}
	for _, p := range before["pending"].([]interface{}) {
		if seq := num(t, p.(map[string]interface{})["seq"]); !waiting[seq] {
			t.Fatalf("delivery of entry %d waited under %s but not under %s: %s", seq, nodeID(a), nodeID(b), summary(t, carried))
		}
	}
	if num(t, carried["cursor"]) < num(t, before["cursor"]) {
		t.Fatalf("cursor went back across the failover: %s, was %s", summary(t, carried), summary(t, before))
	}

	issueKeys(cb, webhookKeysBefore, webhookKeysAfter)
	rx.SetDown(false)
	up := time.Now()
	const want = webhookKeysBefore + webhookKeysAfter
	waitFor(t, webhookDeadline, fmt.Sprintf("%d distinct events at the receiver", want), func() bool { return len(rx.Events()) >= want })
	t.Logf("all %d events arrived %v after the receiver came back", want, time.Since(up).Round(100*time.Millisecond))
	final := waitDeliveries(t, cb, m, "ops", 30*time.Second, "backlog 0 and nothing pending on the new leader", func(st map[string]interface{}) bool {
		return num(t, st["backlog"]) == 0 && len(st["pending"].([]interface{})) == 0
	})
	requireActive(t, b) // the new leader delivered: no other failover meanwhile

	events := rx.Events()
	if len(events) != want {
		t.Fatalf("receiver has %d distinct events, want %d", len(events), want)
	}
	seen := map[string]bool{}
	seqs := map[uint64]bool{}
	for _, e := range events {
		if e.Type != "key.issued" || e.Client != "svc" || names[e.KeyID] == "" || e.Key != names[e.KeyID] {
			t.Fatalf("unexpected event %+v", e)
		}
		if seen[e.KeyID] || seqs[e.Seq] {
			t.Fatalf("key %s (entry %d) delivered under two webhook-ids", e.KeyID, e.Seq)
		}
		seen[e.KeyID], seqs[e.Seq] = true, true
	}
	for id, name := range names {
		if !seen[id] {
			t.Fatalf("key.issued of %s (%s) never arrived", name, id)
		}
	}
	if d := num(t, final["dead_lettered"]); d != 0 {
		t.Fatalf("%d deliveries dead-lettered: %s", d, summary(t, final))
	}
	if d := num(t, final["delivered"]); d < want {
		t.Fatalf("state counts %d delivered, want at least %d: %s", d, want, summary(t, final))
	}
}

// deliveries reads the delivery state of endpoint ep.
func deliveries(t *testing.T, c *api.Client, m, ep string) map[string]interface{} {
	t.Helper()
	eps, _ := read(t, c, m+"/notifications/deliveries").Data["endpoints"].(map[string]interface{})
	st, _ := eps[ep].(map[string]interface{})
	if st == nil {
		t.Fatalf("notifications/deliveries has no endpoint %s: %v", ep, eps)
	}
	return st
}

// waitDeliveries polls endpoint ep's delivery state until cond holds.
func waitDeliveries(t *testing.T, c *api.Client, m, ep string, within time.Duration, what string, cond func(map[string]interface{}) bool) map[string]interface{} {
	t.Helper()
	var st map[string]interface{}
	waitFor(t, within, what, func() bool {
		st = deliveries(t, c, m, ep)
		return cond(st)
	})
	return st
}

// summary renders a delivery state without its recent attempts.
func summary(t *testing.T, st map[string]interface{}) string {
	t.Helper()
	return fmt.Sprintf("cursor=%v backlog=%v delivered=%v failures=%v dead_lettered=%v pending=%d",
		st["cursor"], st["backlog"], st["delivered"], st["failures"], st["dead_lettered"], len(st["pending"].([]interface{})))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(200 * time.Millisecond) // polling a running cluster, not timing
	}
}
