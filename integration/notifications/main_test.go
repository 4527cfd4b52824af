// Package notifications tests webhook delivery in a real Vault on Raft
// storage: deliveries verified by a receiver that uses the Standard
// Webhooks reference library (internal/webhookrx), retries while the
// receiver is down, delivery after the plugin process is killed between a
// change and its delivery, outbound address refusals, slow and huge
// responses, and Vault's event bus seen through `vault events subscribe`.
package notifications

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/webhookrx"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }

var (
	newMount        = vaulttest.NewMount
	client          = vaulttest.Client
	write           = vaulttest.Write
	read            = vaulttest.Read
	expectStatus    = vaulttest.ExpectStatus
	setupClientRole = vaulttest.SetupClientRole
)

// receiverFor starts a receiver, creates endpoint name at mount pointing
// to it (with the given fields), and teaches the receiver its secret.
func receiverFor(t *testing.T, mount, name string, fields map[string]interface{}) *webhookrx.Receiver {
	t.Helper()
	rx, err := webhookrx.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rx.Close)
	data := map[string]interface{}{"url": rx.URL}
	for k, v := range fields {
		data[k] = v
	}
	secret := write(t, mount+"/notifications/endpoints/"+name, data).Data["secret"].(string)
	if err := rx.SetSecrets(secret); err != nil {
		t.Fatal(err)
	}
	return rx
}

// allowLoopback lets the mount deliver to the test's receivers (http on
// 127.0.0.1), as the README tells testers to.
func allowLoopback(t *testing.T, mount string, extra map[string]interface{}) {
	t.Helper()
	data := map[string]interface{}{"allow_http": true, "allow_loopback": true}
	for k, v := range extra {
		data[k] = v
	}
	write(t, mount+"/notifications/config", data)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond) // polling a running Vault, not timing
	}
}

// types returns the set of event types rx received.
func types(rx *webhookrx.Receiver) map[string]int {
	out := map[string]int{}
	for _, e := range rx.Events() {
		out[e.Type]++
	}
	return out
}
