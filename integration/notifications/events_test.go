package notifications

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// With Vault's events.alpha1 experiment on, every event is also published
// on Vault's event bus, and the real `vault events subscribe` shows it.
func TestVaultEventBusShowsEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := vaulttest.Start(ctx, vaulttest.Options{Experiments: []string{"events.alpha1"}, NoAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c := srv.Client
	m := srv.Mount
	if _, err := c.Logical().Write(m+"/notifications/config", map[string]interface{}{"vault_events": true}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sub := exec.CommandContext(sctx, filepath.Join(root, "bin", "vault"), "events", "subscribe", "apikeys/*")
	sub.Env = append(os.Environ(), "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token)
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sub.Stderr = os.Stderr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sub.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	write := func(path string, data map[string]interface{}) {
		t.Helper()
		if _, err := c.Logical().Write(m+"/"+path, data); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	write("clients/acme", map[string]interface{}{"owner": "team-acme", "type": "internal"})
	write("roles/svc", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	// The subscription may start after the first events: keep making
	// revocations until one is seen.
	deadline := time.After(60 * time.Second)
	for i := 0; ; i++ {
		name := "k" + string(rune('a'+i%26))
		write("keys/acme/"+name+"x"+time.Now().Format("150405.000"), map[string]interface{}{"role": "svc"})
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("vault events subscribe ended")
			}
			if !strings.Contains(line, "apikeys/key.issued") {
				continue
			}
			var ev map[string]interface{}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("not JSON: %s", line)
			}
			if !strings.Contains(line, `"client":"acme"`) || strings.Contains(line, "ak_") {
				t.Fatalf("event: %s", line)
			}
			return
		case <-deadline:
			t.Fatal("no apikeys/key.issued event seen by vault events subscribe")
		case <-time.After(2 * time.Second):
		}
	}
}

// Without the experiment, Vault 1.13 has no event bus, and a plugin that
// publishes there crashes Vault itself (a nil EventsSender in Vault's
// GRPCEventsServer, sdk v0.8.1 grpc_events.go:37). Publishing is therefore
// off unless notifications/config vault_events is set: by default a Vault
// without the experiment delivers webhooks and stays up.
func TestNoEventBusPublishingByDefault(t *testing.T) {
	t.Parallel()
	m := newMount(t)
	allowLoopback(t, m, nil)
	if on := read(t, m+"/notifications/config").Data["vault_events"]; on != false {
		t.Fatalf("vault_events is %v by default", on)
	}
	rx := receiverFor(t, m, "ops", map[string]interface{}{"event_types": "key.issued"})
	setupClientRole(t, m, "acme", "internal", "svc", nil)
	write(t, m+"/keys/acme/a", map[string]interface{}{"role": "svc"})
	write(t, m+"/keys/acme/b", map[string]interface{}{"role": "svc"})
	waitFor(t, 30*time.Second, "the deliveries", func() bool { return len(rx.Events()) == 2 })
	if h, err := client(t).Sys().Health(); err != nil || h.Sealed {
		t.Fatalf("vault health: %v %v", h, err)
	}
}
